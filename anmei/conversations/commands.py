"""Console WebSocket commands → conversation services (the WS twin of the REST lifecycle views).

Runs in a worker thread (`database_sync_to_async`); returns the JSON the consumer sends back.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from anmei.accounts.models import User
from anmei.common.api import IdField, validated_input
from anmei.common.errors import ApplicationError, first_message
from anmei.conversations import services
from anmei.conversations.api import (
    ConversationOutputSerializer,
    MessageInputSerializer,
    MessageOutputSerializer,
    TransferInputSerializer,
)


class CommandSerializer(serializers.Serializer):
    """The conversation a command acts on (REST carries it in the URL)."""

    conversation_id = IdField()


def run_console_command(user: User, kind: str, service_name: str, content: dict[str, Any]) -> dict[str, Any]:
    """Run one lifecycle command; errors come back as `{"type": "error", ...}` with the REST code and status.

    Input is checked by the REST views' own serializers, so both doors accept and refuse the same.
    """
    try:
        conversation_id = validated_input(CommandSerializer, content)["conversation_id"]
        if service_name == "conversation_transfer":
            data = validated_input(TransferInputSerializer, content)
            conversation = services.conversation_transfer(
                user=user,
                conversation_id=conversation_id,
                to_consultant_id=data["to_consultant"],
                note=data.get("note", ""),
            )
        elif service_name == "conversation_message_send":
            data = validated_input(
                MessageInputSerializer, {"type": content.get("message_type", "text"), "content": content.get("content")}
            )
            message = services.conversation_message_send(
                user=user, conversation_id=conversation_id, type=data["type"], content=data["content"]
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
            "message": first_message(exc.detail),
            "details": {"fields": exc.detail},
        }
    return {"type": "command.ok", "command": kind, "conversation": ConversationOutputSerializer(conversation).data}
