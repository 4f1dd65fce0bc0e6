"""The four MCP tools: thin adapters from validated arguments to anmei.mcp_admin selectors.

Each reads the call's scope (tenant, subject customer) that the pipeline in server.py set before
calling it, and runs the selector in the ORM thread pool. Access control lives in the pipeline,
not here.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import Field

from anmei.mcp_admin.selectors import tool_data
from mcp_server.auth import CallScope
from mcp_server.db import run_db

current_scope: ContextVar[CallScope] = ContextVar("mcp_call_scope")

UserId = Annotated[int, Field(ge=1, description="The customer's user id on the platform (tenant-scoped).")]


# Fields an admin may withhold from agents through the tool's config_data {"hide_fields": [...]}.
_HIDEABLE_PROFILE_FIELDS = {"email", "phone", "registration_time", "source"}


async def get_user_profile(user_id: UserId) -> dict[str, Any]:
    """Get a customer's profile: username, nickname, email, masked phone, registration time, whether
    they are new, where they came from, and how many conversations they have (open and in total)."""
    scope = current_scope.get()
    profile = await run_db(
        tool_data.customer_profile,
        tenant_id=scope.tenant_id,
        user_id=user_id,
        subject_customer_id=scope.subject_customer_id,
    )
    hidden = set(scope.grant.config_data.get("hide_fields") or []) & _HIDEABLE_PROFILE_FIELDS
    return {k: v for k, v in profile.items() if k not in hidden}


async def analyze_customer(user_id: UserId) -> dict[str, Any]:
    """Analyse a customer for a consultant: visit count, new or returning, last activity, top
    keywords from their own messages, channels used, and their open conversations."""
    scope = current_scope.get()
    return await run_db(
        tool_data.customer_analysis,
        tenant_id=scope.tenant_id,
        user_id=user_id,
        subject_customer_id=scope.subject_customer_id,
    )


async def get_conversation_data(
    conversation_id: Annotated[int, Field(ge=1, description="The conversation id (tenant-scoped).")],
    limit: Annotated[int, Field(ge=1, le=100, description="How many of the latest messages to return.")] = 20,
) -> dict[str, Any]:
    """Get a conversation: status, channel, customer, assigned consultant, and its latest messages
    (oldest first)."""
    scope = current_scope.get()
    max_messages = scope.grant.config_data.get("max_messages")
    if isinstance(max_messages, int) and max_messages > 0:
        limit = min(limit, max_messages)  # an admin's cap (config_data {"max_messages": n}) wins
    return await run_db(
        tool_data.conversation_data,
        tenant_id=scope.tenant_id,
        conversation_id=conversation_id,
        limit=limit,
        subject_customer_id=scope.subject_customer_id,
    )


async def get_business_metrics(
    days: Annotated[int, Field(ge=1, le=90, description="Size of the window in days, ending now.")] = 7,
) -> dict[str, Any]:
    """Get the clinic's figures for the last `days` days: registrations, conversations by status and
    channel, messages, active customers, the registration automation's success rate, and under
    `statistics` the rolled-up reporting figures (customers, resolution, first response, handling
    time, CSAT, bot hand-offs, channels, hot words, per consultant; `as_of` says up to when)."""
    scope = current_scope.get()
    return await run_db(tool_data.business_metrics, tenant_id=scope.tenant_id, days=days)


TOOLS = (get_user_profile, analyze_customer, get_conversation_data, get_business_metrics)
