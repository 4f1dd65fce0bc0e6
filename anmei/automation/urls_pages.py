from django.urls import path

from anmei.automation import views

urlpatterns = [path("", views.dashboard_page, name="registration-automation-page")]
