from django.urls import path

from anmei.automation import api

urlpatterns = [
    path("dashboard", api.DashboardApi.as_view(), name="registration-automation-dashboard"),
    path("runs/<id:run_id>/retry", api.RunRetryApi.as_view(), name="registration-automation-run-retry"),
]
