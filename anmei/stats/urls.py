from django.urls import path

from anmei.stats import api

urlpatterns = [
    path("overview", api.StatsOverviewApi.as_view(), name="stats-overview"),
    path("timeseries", api.StatsTimeseriesApi.as_view(), name="stats-timeseries"),
]
