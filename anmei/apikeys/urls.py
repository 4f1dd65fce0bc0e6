from django.urls import path

from anmei.apikeys import api

# Included at /api/v1/ with an empty prefix: full paths here.
urlpatterns = [
    path("api-keys", api.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api-keys/<id:api_key_id>", api.ApiKeyRevokeApi.as_view(), name="api-key"),
]
