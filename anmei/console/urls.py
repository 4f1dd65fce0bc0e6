from django.urls import path

from anmei.console import views

urlpatterns = [
    path("", views.index, name="index"),
    path("console/", views.console, name="console"),
    path("chat/", views.chat, name="chat"),
]
