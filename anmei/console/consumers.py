"""WebSocket transport: ticket authentication, tenant-scoped groups, event forwarding.

Close codes: 4400 no ticket, 4401 invalid/expired/used ticket or access revoked since the connect,
4403 wrong role for this endpoint.

A socket is bound to what its ticket granted (user, role, tenant, the login token that asked for
it): that is re-checked before every command, and services that take access away (logout,
password change, deactivation, role change, tenant suspension) close the socket through the
user's and the tenant's session groups (anmei.common.realtime.sockets_close_user / _tenant).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from anmei.accounts.services import ws_session_user, ws_ticket_consume
from anmei.common import presence, realtime
from anmei.common.metrics import WEBSOCKET_CONNECTIONS

logger = logging.getLogger("anmei.ws")

CLOSE_NO_TICKET = 4400
CLOSE_BAD_TICKET = 4401
CLOSE_FORBIDDEN = 4403


def conversation_event_data(event, *, staff: bool) -> dict:
    """A stored status change as the timeline shows it (a customer never sees staff-only details)."""
    return {
        "id": event.id,
        "conversation_id": event.conversation_id,
        "action": event.action,
        "from_status": event.from_status,
        "status": event.to_status,
        "actor_id": event.actor_id,
        "details": event.details_for(staff=staff),
        "created_at": event.created_at.isoformat(),
    }


class TicketConsumer(AsyncJsonWebsocketConsumer):
    allowed_roles: tuple[str, ...] = ()

    async def connect(self):
        self.user = None
        self.session = None
        self.revoked = False
        self.left = False
        self.groups_joined: list[str] = []
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        ticket = (query.get("ticket") or [""])[0]
        await self.accept()
        if not ticket:
            await self.close(code=CLOSE_NO_TICKET)
            return
        granted = await database_sync_to_async(ws_ticket_consume)(ticket)
        if granted is None:
            await self.close(code=CLOSE_BAD_TICKET)
            return
        user, session = granted
        if user.role not in self.allowed_roles:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user, self.session = user, session
        self.checked_at = time.monotonic()
        WEBSOCKET_CONNECTIONS.labels(endpoint=self.endpoint_name).inc()
        for group in [*self.groups_for(user), realtime.sessions_group(user.tenant_id)]:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        logger.info(
            "ws connected",
            extra={"tenant_id": user.tenant_id, "user_id": user.id, "endpoint": self.endpoint_name},
        )
        await self.on_authenticated()

    async def disconnect(self, code):
        await self._leave()
        if self.user is not None:
            WEBSOCKET_CONNECTIONS.labels(endpoint=self.endpoint_name).dec()
            logger.info(
                "ws disconnected",
                extra={"tenant_id": self.user.tenant_id, "user_id": self.user.id, "code": code},
            )

    async def _leave(self) -> None:
        """Leave every group and the presence set (once: on revocation, then on the disconnect)."""
        groups, self.groups_joined = self.groups_joined, []
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.user is not None and not self.left:
            self.left = True
            await self.on_disconnected()

    def groups_for(self, user) -> list[str]:
        return [realtime.user_group(user.tenant_id, user.id)]

    async def on_authenticated(self) -> None:
        await self.send_json({"type": "connection.ready", "user_id": self.user.id, "role": self.user.role})

    async def on_disconnected(self) -> None:
        return None

    async def receive_json(self, content, **kwargs):
        if self.user is None or self.revoked:
            return
        # Re-authorise every command: the user, role, tenant and token as they are now, not at connect.
        if not await self._reauthorise():
            return
        kind = content.get("type") if isinstance(content, dict) else None
        handler = self.commands().get(kind)
        if handler is None:
            await self.send_json({"type": "error", "code": "unknown_command", "command": kind})
            return
        await handler(content)

    async def _reauthorise(self) -> bool:
        """Re-check the socket's grant now; close it (4401) and answer False when it is gone."""
        user = await database_sync_to_async(ws_session_user)(self.session)
        self.checked_at = time.monotonic()
        if user is None:
            await self._revoke("access revoked")
            return False
        self.user = user
        return True

    async def session_revoke(self, message) -> None:
        """A service took this user's (or tenant's) access away: close, unless another token's logout."""
        token_id = message.get("token_id")
        if token_id is None or (self.session is not None and token_id == self.session.token_id):
            await self._revoke("closed by the server")

    async def _revoke(self, reason: str) -> None:
        if self.revoked:
            return
        self.revoked = True
        logger.info(
            "ws access revoked",
            extra={"tenant_id": self.user.tenant_id, "user_id": self.user.id, "reason": reason},
        )
        await self._leave()
        await self.close(code=CLOSE_BAD_TICKET)

    async def decode_json(self, text_data):
        try:
            return await super().decode_json(text_data)
        except ValueError:
            return None

    def commands(self) -> dict:
        return {"ping": self.cmd_ping, "sync": self.cmd_sync}

    async def cmd_ping(self, content) -> None:
        await self.send_json({"type": "pong"})

    async def cmd_sync(self, content) -> None:
        """Resync after a reconnect: what happened after the client's last message and event ids.

        `{"type": "sync", "since_message": <id>, "since_event": <id>}` → `sync.result` with the
        messages and status changes the user could have been told about, oldest first (a short
        overlap before the cursors is included: the client drops ids it already has), and the
        `cursor` to send next time. Without a cursor only the current cursor comes back (a fresh tab).
        """
        since: dict[str, int | None] = {}
        for field in ("since_message", "since_event"):
            value = content.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                await self.send_json(
                    {
                        "type": "error",
                        "command": "sync",
                        "code": "validation_error",
                        "status": 400,
                        "message": f"{field}: a non-negative integer is required",
                        "details": {"field": field},
                    }
                )
                return
            since[field] = value
        await self.send_json(await database_sync_to_async(self._sync_result)(since))

    def _sync_result(self, since: dict[str, int | None]) -> dict:
        from anmei.console.selectors import conversation_events_since, messages_since, sync_cursor
        from anmei.conversations.api import MessageOutputSerializer

        cursor = sync_cursor(user=self.user)
        messages, events, more = [], [], False
        if since["since_message"] is not None:
            messages, more = messages_since(user=self.user, after_id=since["since_message"])
            cursor["message"] = max([since["since_message"], *(m.id for m in messages)])
        if since["since_event"] is not None:
            events, more_events = conversation_events_since(user=self.user, after_id=since["since_event"])
            cursor["event"] = max([since["since_event"], *(e.id for e in events)])
            more = more or more_events
        return {
            "type": "sync.result",
            "messages": MessageOutputSerializer(messages, many=True).data,
            "events": [conversation_event_data(e, staff=self.user.role != "customer") for e in events],
            "cursor": cursor,
            "more": more,
        }

    async def event_forward(self, message):
        # A socket that only listens is re-checked too, at most every WS_REAUTH_SECONDS: a lost
        # close message (or a token that simply expired) stops the events within that time.
        if self.revoked:
            return
        if time.monotonic() - self.checked_at >= settings.WS_REAUTH_SECONDS and not await self._reauthorise():
            return
        await self.send_json(message["event"])

    @property
    def endpoint_name(self) -> str:
        return type(self).__name__


class ConsoleConsumer(TicketConsumer):
    """Consultants and admins: their own events, the tenant's console group, admins' alerts.

    The connection counts as presence while it is open and heartbeats (`{"type": "ping"}`) keep
    arriving within PRESENCE_TTL_SECONDS.
    """

    allowed_roles = ("consultant", "admin")

    async def on_authenticated(self) -> None:
        self.away = False
        await self._touch()
        await self._available()
        await super().on_authenticated()
        # Notifications stored while this user was offline (registration automation) are shown now.
        from anmei.notifications.services import notifications_take_undelivered

        for event in await database_sync_to_async(notifications_take_undelivered)(user=self.user):
            await self.send_json(event)

    async def on_disconnected(self) -> None:
        await self._leave_presence()
        await self._unavailable()

    async def _leave_presence(self) -> None:
        await database_sync_to_async(presence.presence_leave)(
            tenant_id=self.user.tenant_id, user_id=self.user.id, role=self.user.role, channel_name=self.channel_name
        )

    async def _unavailable(self) -> None:
        """Away or gone: transfers waiting on this consultant return to the queue (automatic routing)."""
        from anmei.conversations.services.transfer_return import consultant_unavailable

        await database_sync_to_async(consultant_unavailable)(
            tenant_id=self.user.tenant_id, user_id=self.user.id, role=self.user.role
        )

    async def cmd_ping(self, content) -> None:
        await self._touch()
        await super().cmd_ping(content)

    async def cmd_presence_set(self, content) -> None:
        """`{"type": "presence.set", "status": "online"|"away"}`: away leaves the routing's online set."""
        status = content.get("status")
        if status not in ("online", "away"):
            await self.send_json(
                {
                    "type": "error",
                    "command": "presence.set",
                    "code": "validation_error",
                    "status": 400,
                    "message": "status must be online or away",
                    "details": {"field": "status"},
                }
            )
            return
        self.away = status == "away"
        await self._touch()
        if self.away:
            await self._unavailable()
        else:
            await self._available()
        await self.send_json({"type": "presence.state", "status": status})

    async def _available(self) -> None:
        """Online and not away: automatic routing may give this consultant waiting work."""
        from anmei.conversations.services.routing import assignment_consultant_available

        await database_sync_to_async(assignment_consultant_available)(
            tenant_id=self.user.tenant_id, user_id=self.user.id, role=self.user.role
        )

    async def cmd_presence_list(self, content) -> None:
        """The tenant's staff and who is online (the transfer picker)."""
        from anmei.console.selectors import staff_presence_list

        staff = await database_sync_to_async(staff_presence_list)(tenant_id=self.user.tenant_id)
        await self.send_json({"type": "presence.list", "staff": staff})

    def commands(self) -> dict:
        """Lifecycle commands mirror the REST endpoints (same services, same errors)."""
        lifecycle = {
            "conversation.claim": "conversation_claim",
            "claim_customer": "conversation_claim",  # the `action` of a new_customer event
            "conversation.transfer": "conversation_transfer",
            "conversation.accept": "conversation_accept",
            "conversation.decline": "conversation_decline",
            "conversation.end": "conversation_end",
            "message.send": "conversation_message_send",
        }
        handlers = {
            kind: (lambda content, kind=kind, fn=fn: self.cmd_conversation(kind, fn, content))
            for kind, fn in lifecycle.items()
        }
        presence_commands = {"presence.set": self.cmd_presence_set, "presence.list": self.cmd_presence_list}
        return {**super().commands(), **presence_commands, **handlers}

    async def cmd_conversation(self, kind: str, service_name: str, content: dict) -> None:
        from anmei.conversations.commands import run_console_command

        await self.send_json(await database_sync_to_async(run_console_command)(self.user, kind, service_name, content))

    async def _touch(self) -> None:
        if self.away:
            await self._leave_presence()
            return
        await database_sync_to_async(presence.presence_touch)(
            tenant_id=self.user.tenant_id, user_id=self.user.id, role=self.user.role, channel_name=self.channel_name
        )

    def groups_for(self, user) -> list[str]:
        groups = [realtime.user_group(user.tenant_id, user.id), realtime.console_group(user.tenant_id)]
        if user.role == "admin":
            groups.append(realtime.admins_group(user.tenant_id))
        return groups


class CustomerConsumer(TicketConsumer):
    """A web customer's own conversations."""

    allowed_roles = ("customer",)
