"""Writes for a tenant's agent configuration: the default on first use, audited changes, the gateway's MCP key."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from anmei.ai.models import AgentConfig
from anmei.ai.selectors import agent_config_default
from anmei.audit.services import audit_changes, audit_record, audit_snapshot
from anmei.mcp_admin.services import mcp_group_create
from anmei.tenants.models import Tenant

logger = logging.getLogger("anmei.ai")

SECRET_FIELDS = ("api_key", "mcp_group_key")
GATEWAY_MCP_GROUP = "ai-gateway"
GATEWAY_MCP_TOOLS = ["get_user_profile", "analyze_customer", "get_conversation_data"]


def agent_config_get_or_create(*, tenant_id: int) -> AgentConfig:
    """Return the tenant's agent configuration, creating the offline default (local) on first use."""
    config = AgentConfig.objects.filter(tenant_id=tenant_id).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            config = agent_config_default(tenant_id=tenant_id)
            config.save(force_insert=True)
            return config
    except IntegrityError:
        return AgentConfig.objects.get(tenant_id=tenant_id)


def agent_config_update(
    *, config: AgentConfig, api_key: str | None = None, mcp_group_key: str | None = None, **fields
) -> AgentConfig:
    """Change a configuration; secrets are given in clear here and stored encrypted."""
    names = [*fields, *(["api_key"] if api_key is not None else []), *(["mcp_group_key"] if mcp_group_key else [])]
    with transaction.atomic():
        before = audit_snapshot(config, names)
        for name, value in fields.items():
            setattr(config, name, value)
        if api_key is not None:
            config.api_key = api_key
        if mcp_group_key is not None:
            config.mcp_group_key = mcp_group_key
        config.save()
        audit_record(
            tenant_id=config.tenant_id,
            action="update",
            object_type="agent_config",
            object_id=config.pk,
            changes=audit_changes(before, audit_snapshot(config, names), secrets=SECRET_FIELDS),
        )
    return config


def agent_config_mcp_key(*, config: AgentConfig) -> str:
    """Return the MCP group key the gateway calls our sidecar with, provisioning a group once.

    A tenant that configured nothing still gets personalised welcomes: on first need the gateway
    creates its own tool group and keeps the key (encrypted). The row lock makes concurrent
    first runs create one group, not several.
    """
    if config.mcp_group_key_encrypted:
        return config.mcp_group_key
    with transaction.atomic():
        locked = AgentConfig.objects.select_for_update().get(pk=config.pk)
        if locked.mcp_group_key_encrypted:
            return locked.mcp_group_key
        name = GATEWAY_MCP_GROUP
        tenant = Tenant.objects.get(pk=config.tenant_id)
        for attempt in range(3):
            try:
                with transaction.atomic():
                    _group, key = mcp_group_create(
                        tenant=tenant,
                        name=name,
                        description="Used by the AI gateway (registration welcomes, bot replies)",
                        tool_names=GATEWAY_MCP_TOOLS,
                    )
                break
            except Exception:  # noqa: BLE001 - a name clash with an admin-made group: pick another
                name = f"{GATEWAY_MCP_GROUP}-{config.pk}-{attempt + 1}"
        else:
            return ""
        locked.mcp_group_key = key
        locked.save(update_fields=["mcp_group_key_encrypted", "updated_at"])
        logger.info("ai gateway mcp group provisioned", extra={"tenant_id": config.tenant_id, "group": name})
    config.mcp_group_key_encrypted = locked.mcp_group_key_encrypted
    return key
