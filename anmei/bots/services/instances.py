"""Bot instances: creation and credential rotation, liveness, run-time settings, signed HTTP to bots."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.audit.services import audit_changes, audit_record
from anmei.blacklist.services import blacklist_cursor_create
from anmei.bots.models import BotInstance, GatewaySettings
from anmei.common import outbound
from anmei.common.crypto import decrypt, encrypt, hash_token, hmac_sha256_hex, new_token
from anmei.common.errors import ApplicationError
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.bots")

TOKEN_PREFIX = "bot_"
SECRET_PREFIX = "bsec_"


def _new_credentials() -> tuple[str, str]:
    return new_token(TOKEN_PREFIX), new_token(SECRET_PREFIX)


def bot_create(
    *, tenant_id: int, name: str, platform: str, callback_url: str, **options: Any
) -> tuple[BotInstance, str, str]:
    """Create a bot; returns (bot, token, secret) — the only time either is available in clear.

    `options` are the bot's other editable fields (status, away_message, auto_reply_rules), as the
    Django admin's add form gives them.

    Its blacklist cursor starts at the tenant's current version: a new bot pulls the full list at
    start, so it needs only the changes made after it exists.
    """
    token, secret = _new_credentials()
    try:
        with transaction.atomic():
            bot = BotInstance.objects.create(
                tenant_id=tenant_id,
                name=name,
                platform=platform,
                callback_url=callback_url,
                token_hash=hash_token(token),
                token_prefix=token[:12],
                secret_encrypted=encrypt(secret),
                **options,
            )
            blacklist_cursor_create(bot=bot)
    except IntegrityError as exc:
        raise ApplicationError(
            "bot_name_taken", f"a bot named '{name}' exists", status_code=409, details={"field": "name"}
        ) from exc
    logger.info("bot created", extra={"tenant_id": tenant_id, "bot_id": bot.id, "platform": platform})
    return bot, token, secret


def bot_credentials_rotate(*, bot: BotInstance, token: bool = True, secret: bool = True) -> dict[str, str]:
    """Replace the token and/or the signing secret; the old ones stop working at once."""
    new_tok, new_sec = _new_credentials()
    result: dict[str, str] = {}
    fields = ["rotated_at"]
    if token:
        bot.token_hash, bot.token_prefix = hash_token(new_tok), new_tok[:12]
        fields += ["token_hash", "token_prefix"]
        result["token"] = new_tok
    if secret:
        bot.secret_encrypted = encrypt(new_sec)
        fields.append("secret_encrypted")
        result["secret"] = new_sec
    bot.rotated_at = timezone.now()
    bot.save(update_fields=fields)
    logger.info(
        "bot credentials rotated", extra={"tenant_id": bot.tenant_id, "bot_id": bot.id, "rotated": list(result)}
    )
    return result


def _storable(value: Any, depth: int = 0) -> Any:
    """Make a bot's free-form status storable: PostgreSQL text/jsonb refuse NUL, and depth is capped."""
    if depth > 5:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")[:1000]
    if isinstance(value, dict):
        return {str(k).replace("\x00", "")[:100]: _storable(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [_storable(v, depth + 1) for v in value[:50]]
    return value


def bot_heartbeat(*, bot: BotInstance, status: dict[str, Any] | None = None) -> BotInstance:
    """Record liveness (and the bot's self-reported status, sanitised) for stale detection."""
    bot.last_heartbeat_at = timezone.now()
    fields = ["last_heartbeat_at"]
    if status is not None:
        bot.last_reported_status = _storable(status)
        fields.append("last_reported_status")
    BotInstance.objects.filter(pk=bot.pk).update(**{f: getattr(bot, f) for f in fields})
    return bot


def bot_stale_sweep() -> int:
    """Raise one admin alert per silence episode of a bot (no heartbeat for BOT_STALE_AFTER_SECONDS).

    An episode is named by the bot's last heartbeat: however often the beat task runs during one
    silence, the alert's dedupe key is the same; a heartbeat followed by a new silence is a new
    episode. A bot that never sent a heartbeat has nothing to be stale from. Returns alerts raised.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.BOT_STALE_AFTER_SECONDS)
    stale = BotInstance.objects.filter(status=BotInstance.Status.ACTIVE, last_heartbeat_at__lt=cutoff)
    raised = 0
    for bot in stale.only("id", "tenant_id", "name", "last_heartbeat_at"):
        _, created = admin_alert_raise(
            tenant_id=bot.tenant_id,
            source="bot_health",
            code="bot_stale",
            level="warning",
            message=f"bot '{bot.name}' has sent no heartbeat since {bot.last_heartbeat_at.isoformat()}",
            dedupe_key=f"bot_stale:{bot.id}:{bot.last_heartbeat_at.isoformat()}",
            details={"bot_id": bot.id, "last_heartbeat_at": bot.last_heartbeat_at.isoformat()},
        )
        raised += created
    return raised


def gateway_settings_get_or_create(*, tenant_id: int) -> GatewaySettings:
    """Read the tenant's run-time knobs (fresh from the database on every call: admin edits apply at once)."""
    found = GatewaySettings.objects.filter(tenant_id=tenant_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return GatewaySettings.objects.create(tenant_id=tenant_id)
    except IntegrityError:
        return GatewaySettings.objects.get(tenant_id=tenant_id)


def gateway_settings_update(*, tenant_id: int, retry_countdowns: list[float]) -> GatewaySettings:
    """Change the tenant's retry schedule; the next attempt of every delivery and push reads it."""
    gateway = gateway_settings_get_or_create(tenant_id=tenant_id)
    before = gateway.retry_countdowns
    gateway.retry_countdowns = [int(v) if float(v).is_integer() else float(v) for v in retry_countdowns]
    gateway.clean()  # the API's serializer checked the same bounds; the admin form calls it too
    with transaction.atomic():
        gateway.save(update_fields=["retry_countdowns", "updated_at"])
        audit_record(
            tenant_id=tenant_id,
            action="update",
            object_type="bot_gateway",
            object_id=gateway.pk,
            changes=audit_changes({"retry_countdowns": before}, {"retry_countdowns": gateway.retry_countdowns}),
        )
    logger.info(
        "gateway settings updated", extra={"tenant_id": tenant_id, "retry_countdowns": gateway.retry_countdowns}
    )
    return gateway


def bot_secret(bot: BotInstance) -> str:
    return decrypt(bot.secret_encrypted)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` as API.md fixes it."""
    return "sha256=" + hmac_sha256_hex(secret, timestamp.encode() + b"." + body)


def signed_call(
    *,
    bot: BotInstance,
    path: str,
    payload: dict[str, Any],
    timeout: float | None = None,
    extra_headers: dict | None = None,
) -> requests.Response:
    """POST JSON to `<callback_url><path>` signed with the bot's secret, through the guarded client.

    The callback URL is tenant-configured: SSRF rules at connect time, no redirects. Raises
    `outbound.OutboundError` (its category is safe to show) when the call cannot be made.
    """
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Anmei-Timestamp": timestamp,
        "X-Anmei-Signature": sign(bot_secret(bot), timestamp, body),
        "X-Anmei-Bot-Id": str(bot.id),
        **(extra_headers or {}),
    }
    url = outbound.join(bot.callback_url, path)
    return outbound.post(url, data=body, headers=headers, timeout=timeout or settings.BOT_HTTP_TIMEOUT_SECONDS)


def signed_post(*, bot: BotInstance, path: str, payload: dict[str, Any], extra_headers: dict | None = None) -> str:
    """`signed_call` for a push or delivery; return why it failed.

    "" means the bot acknowledged (2xx). Anything else — a non-2xx status ("HTTP 500") or a network
    error (its outbound category) — is a failure the caller retries on its schedule.
    """
    try:
        response = signed_call(bot=bot, path=path, payload=payload, extra_headers=extra_headers)
    except outbound.OutboundError as exc:
        return exc.category
    response.close()
    return "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
