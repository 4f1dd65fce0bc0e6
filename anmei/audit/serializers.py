from __future__ import annotations

from rest_framework import serializers

from anmei.audit.models import AuditEntry

OBJECT_TYPES = [
    "automation_settings",
    "agent_config",
    "agent_variant",
    "bot_config",
    "bot_gateway",
    "mcp_group",
    "mcp_tool",
    "routing",
    "sla_policy",
    "retention",
    "privacy_notice",
    "api_key",
    "blacklist_entry",
    "user",
]


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "changes"]

    def get_actor(self, obj) -> dict | None:
        if obj.actor_id is None and not obj.actor_username:
            return None
        return {"id": obj.actor_id, "username": obj.actor_username}
