from django.urls import path

from anmei.asr import api

urlpatterns = [
    path("tasks/<str:asr_task_id>", api.AsrTaskDetailApi.as_view(), name="asr-task"),
    path("tasks/<str:asr_task_id>/retry", api.AsrTaskRetryApi.as_view(), name="asr-task-retry"),
]
