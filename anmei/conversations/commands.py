"""Console WebSocket commands → conversation services (the WS twin of the REST lifecycle views).

Runs in a worker thread (`database_sync_to_async`); returns the JSON the consumer sends back.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError

from anmei.accounts.models import User
from anmei.common.errors import ApplicationError
from anmei.conversations import services


def _int(content: dict, field: str) -> int:
    value = content.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit() or int(value) < 1:
        raise ApplicationError(
            "validation_error",
            f"{field}: a positive integer is required",
            details={"fields": {field: ["a positive integer is required"]}},
        )
    return int(value)


def run_console_command(user: User, kind: str, service_name: str, content: dict[str, Any]) -> dict[str, Any]:
    """Run one lifecycle command; errors come back as `{"type": "error", ...}` with the REST code and status."""
    from anmei.conversations.api import ConversationOutputSerializer, MessageOutputSerializer

    try:
        conversation_id = _int(content, "conversation_id")
        if service_name == "conversation_transfer":
            conversation = services.conversation_transfer(
                user=user, conversation_id=conversation_id, to_consultant_id=_int(content, "to_consultant")
            )
        elif service_name == "conversation_message_send":
            text = content.get("content")
            kind_of_message = content.get("message_type", "text")
            if not isinstance(text, str) or not text.strip() or len(text) > 10000:
                raise ApplicationError(
                    "validation_error",
                    "content: 1 to 10000 characters required",
                    details={"fields": {"content": ["required"]}},
                )
            if kind_of_message not in ("text", "image", "voice", "file"):
                raise ApplicationError(
                    "validation_error",
                    "message_type is not valid",
                    details={"fields": {"message_type": ["invalid choice"]}},
                )
            message = services.conversation_message_send(
                user=user, conversation_id=conversation_id, type=kind_of_message, content=text
            )
            return {"type": "command.ok", "command": kind, "message": MessageOutputSerializer(message).data}
        else:
            conversation = getattr(services, service_name)(user=user, conversation_id=conversation_id)
    except ApplicationError as exc:
        return {
            "type": "error",
            "command": kind,
            "code": exc.code,
            "status": exc.status_code,
            "message": exc.message,
            "details": exc.details,
        }
    except ValidationError as exc:
        return {
            "type": "error",
            "command": kind,
            "code": "validation_error",
            "status": 400,
            "message": str(exc.detail),
            "details": {},
        }
    return {"type": "command.ok", "command": kind, "conversation": ConversationOutputSerializer(conversation).data}
