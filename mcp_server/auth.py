"""Who is calling: the group key, the caller app id and the optional subject token of one call.

Over streamable HTTP they come from each request's headers (`Authorization: Bearer mcp_key_…`,
`X-Caller-App-Id`, `X-Anmei-Subject`), so a regenerated key fails on the very next request of an
already open session. Over stdio there are no headers; the launching process passes them in the
environment (MCP_API_KEY, MCP_CALLER_APP_ID, MCP_SUBJECT), which is how stdio servers get secrets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from anmei.mcp_admin.selectors.access import CallGrant, CallRefused, mcp_call_authorize
from anmei.mcp_admin.subject import SubjectTokenError, subject_token_verify

SUBJECT_HEADER = "x-anmei-subject"
CALLER_HEADER = "x-caller-app-id"
CUSTOMER_LEVEL_TOOLS = {"get_user_profile", "analyze_customer", "get_conversation_data"}


@dataclass(frozen=True)
class Credentials:
    key: str | None
    caller_app_id: str
    subject_token: str | None


@dataclass(frozen=True)
class CallScope:
    """What a granted call may read: one tenant, and one customer when a subject token was sent."""

    grant: CallGrant
    caller_app_id: str
    subject_customer_id: int | None

    @property
    def tenant_id(self) -> int:
        return self.grant.tenant_id


def credentials_from(request) -> Credentials:
    """Read the credentials of one call from its HTTP request, or from the environment over stdio."""
    if request is None:
        return Credentials(
            key=os.environ.get("MCP_API_KEY") or None,
            caller_app_id=os.environ.get("MCP_CALLER_APP_ID", "")[:100],
            subject_token=os.environ.get("MCP_SUBJECT") or None,
        )
    headers = request.headers
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    key = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return Credentials(
        key=key,
        caller_app_id=headers.get(CALLER_HEADER, "")[:100],
        subject_token=headers.get(SUBJECT_HEADER) or None,
    )


def call_authorize(credentials: Credentials, tool_name: str) -> CallScope:
    """Run the access checks of one call (database reads: call it off the event loop).

    Order: key → group enabled → tool in group and enabled → subject token valid, unexpired, same
    tenant, and allowed for this tool. Raises CallRefused with a stable code.
    """
    grant = mcp_call_authorize(key=credentials.key, tool_name=tool_name)
    subject_customer_id = None
    if credentials.subject_token:
        ids = {"tenant_id": grant.tenant_id, "group_id": grant.group_id}
        try:
            subject = subject_token_verify(credentials.subject_token)
        except SubjectTokenError as exc:
            raise CallRefused(exc.code, exc.message, **ids) from exc
        if subject["tenant_id"] != grant.tenant_id:
            raise CallRefused("subject_mismatch", "the subject token belongs to another tenant", **ids)
        if tool_name not in CUSTOMER_LEVEL_TOOLS:
            raise CallRefused(
                "subject_not_allowed", f"'{tool_name}' reads tenant-wide data: not for a customer-bound call", **ids
            )
        subject_customer_id = subject["customer_id"]
    return CallScope(grant=grant, caller_app_id=credentials.caller_app_id, subject_customer_id=subject_customer_id)
