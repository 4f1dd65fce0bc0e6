from django.urls import path

from anmei.blacklist import api

# Included at /api/v1/ with an empty prefix: full paths here.
urlpatterns = [
    path("blacklist", api.BlacklistListCreateApi.as_view(), name="blacklist"),
    path("blacklist/batch", api.BlacklistBatchApi.as_view(), name="blacklist-batch"),
    path("blacklist/<id:entry_id>", api.BlacklistDeleteApi.as_view(), name="blacklist-entry"),
]
