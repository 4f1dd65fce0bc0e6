from django.urls import path

from anmei.media.views import media_play

urlpatterns = [
    path("media/<str:token>", media_play, name="media-play"),
]
