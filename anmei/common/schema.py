from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

# The error shape of API.md, documented on each operation for the statuses it can answer
# (schema truthfulness: tests/test_schema_conformance.py has schemathesis check every status it sees is documented).
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
_ERRORS = {
    "400": "invalid input (`validation_error` and others)",
    "401": "missing, invalid or expired credentials",
    "403": "authenticated but not allowed (role, scope, tenant state)",
    "404": "no such object in the caller's tenant",
    "409": "conflict with the current state",
    "413": "request body too large",
    "415": "unsupported media type",
    "429": "throttled (`Retry-After`)",
    "503": "a dependency is down",
}


# Query parameters that name an object of the caller's tenant (an unknown one is a 404).
_ID_PARAMETERS = {"consultant", "tenant", "slug", "conversation", "customer", "bot", "label", "group"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# Areas as the README and API.md name them, from the app a view lives in.
_AREA_TAGS = {
    "accounts": "auth",
    "tenants": "tenants",
    "conversations": "conversations",
    "bots": "bots",
    "blacklist": "blacklist",
    "ai": "ai",
    "apikeys": "api-keys",
    "asr": "asr",
    "stats": "statistics",
    "mcp_admin": "mcp",
    "automation": "registration-automation",
    "console": "console",
    "common": "health",
    "media": "media",
}


class AutoSchema(SpectacularAutoSchema):
    """Name nested `InputSerializer`/`OutputSerializer` classes after their view (HackSoft layout).

    Without this every view's `InputSerializer` would collide as one `Input` component. Every
    operation also documents the API.md error responses, and a list that refuses to be empty says
    so (`minItems: 1`).
    """

    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return outer.split(".")[-1].removesuffix("Api") + name
        return name

    def get_tags(self) -> list[str]:
        """One tag per area (the app the view lives in), not one "v1" tag for everything."""
        parts = type(self.view).__module__.split(".")
        app = parts[1] if len(parts) > 1 and parts[0] == "anmei" else ""
        return [_AREA_TAGS.get(app, app or "other")]

    def get_description(self):
        """The view's (or method's) docstring; else a sentence made from the method and path."""
        description = super().get_description()
        if description:
            return description
        verb = {"GET": "Read", "POST": "Create or run", "PUT": "Replace", "PATCH": "Update", "DELETE": "Delete"}
        return f"{verb.get(self.method, self.method)} `{self.path}`."

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        component = ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, schema=_ERROR_SCHEMA, object="Error")
        registry.register_on_missing(component)
        responses = operation.setdefault("responses", {})
        for code in sorted(self._error_statuses(path, method.upper(), operation)):
            responses.setdefault(
                code, {"description": _ERRORS[code], "content": {"application/json": {"schema": component.ref}}}
            )
        return operation

    def _error_statuses(self, path: str, method: str, operation: dict) -> set[str]:
        """The API.md errors this operation can answer, read from what the view does.

        400 where it takes input (parameters or a body); 401 where credentials are read (an
        authentication class, or a view that checks them itself: `checks_credentials`); 403 where a
        permission beyond "anyone" applies; 404 where an id is taken (in the path, the body or an id
        query parameter); 409 where state changes; 413/415 where a body is read; 429 where a
        throttle or an API key's rate limit applies; 503 where a dependency is used (every view but
        one marked `uses_dependencies = False`, e.g. the liveness probe).
        """
        view = self.view
        body = method in _BODY_METHODS
        query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
        authenticators = list(getattr(view, "authentication_classes", []) or [])
        anyone = all(
            getattr(cls, "__name__", "") == "AllowAny" for cls in getattr(view, "permission_classes", []) or []
        )
        credentials = bool(authenticators) or getattr(view, "checks_credentials", False)
        codes = set()
        if query or body or "{" in path:
            codes.add("400")
        if credentials:
            codes.add("401")
        if credentials and (not anyone or getattr(view, "checks_credentials", False)):
            codes.add("403")
        if "{" in path or body or any(p["name"] in _ID_PARAMETERS or p["name"].endswith("_id") for p in query):
            codes.add("404")
        if body or method == "DELETE":
            codes.add("409")
        if body:
            codes |= {"413", "415"}
        throttled = bool(getattr(view, "throttle_classes", []) or [])
        if throttled or any(getattr(cls, "__name__", "") == "ApiKeyAuthentication" for cls in authenticators):
            codes.add("429")
        if getattr(view, "uses_dependencies", True):
            codes.add("503")
        return codes

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.ListSerializer | serializers.ListField)
            and getattr(field, "allow_empty", True) is False
            and schema.get("type") == "array"
        ):
            schema["minItems"] = max(1, schema.get("minItems", 0))
        return schema
