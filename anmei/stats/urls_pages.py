from django.urls import path

from anmei.stats import views

urlpatterns = [
    path("", views.stats_page, name="stats-page"),
    path("data.json", views.stats_data, name="stats-page-data"),
    path("export.csv", views.stats_export_csv, name="stats-page-export"),
]
