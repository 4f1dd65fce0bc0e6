"""The five steps of a registration run. Each is idempotent by a database key, not by luck.

1. create_default_conversation — the partial unique index "one default conversation per customer";
2. generate_welcome            — the text is kept on the run; a second attempt reuses it; the
                                 generic template only when the agent and its platform-profile
                                 step both failed and no retry fits in the welcome's bound;
3. deliver_welcome             — Message.external_id "welcome:<customer_id>" (unique per tenant);
4. notify_consultants          — Notification.dedupe_key "new_customer:<customer>:<consultant>", and
                                 the online/offline decision kept on the run;
5. record_metrics              — the orchestrator's `automation_run_finish`: a conditional UPDATE
                                 (only a running run of this generation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from anmei.accounts.models import User
from anmei.ai.gateway import NOT_DEGRADED
from anmei.ai.gateway import welcome_generate as agent_welcome
from anmei.ai.templating import message_cap
from anmei.automation.models import AutomationRun, AutomationSettings, AutomationStep
from anmei.common import realtime
from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import conversation_create
from anmei.conversations.services.handoffs import message_deliver_schedule
from anmei.conversations.services.messages import message_create, message_event
from anmei.notifications.backends import NotificationBackendError, backend_for
from anmei.notifications.services import notification_create, notification_send

logger = logging.getLogger("anmei.automation")

NEW_CUSTOMER_TITLE = "新客户注册"
NEW_CUSTOMER_MESSAGE = "新客户已注册并开始咨询，等待顾问认领"
PUSH_TITLE = "新客户等待服务"
PUSH_BODY = "有新客户注册，请及时响应"
DEFAULT_BOT_NAME = "AI助手"


def create_default_conversation(*, run: AutomationRun, config: AutomationSettings) -> dict[str, Any]:
    conversation, created = conversation_create(
        customer=run.customer,
        channel=run.customer.source or "web",
        bot_name=DEFAULT_BOT_NAME,
        reuse_default=True,
        event_action="created_by_automation",
        event_details={"run_id": run.id},
    )
    if run.conversation_id != conversation.id:
        AutomationRun.objects.filter(pk=run.pk).update(conversation=conversation)
        run.conversation = conversation
    return {"conversation_id": conversation.id, "created": created}


def generate_welcome(*, run: AutomationRun, config: AutomationSettings) -> dict[str, Any]:
    if run.welcome_text:
        return {"source": run.welcome_source, "reused": True}
    outcome = agent_welcome(tenant_id=run.tenant_id, customer_id=run.customer_id, conversation_id=run.conversation_id)
    if outcome.text:
        text, source = outcome.text, "agent"  # the agent's, or its platform-profile step (outcome.degraded)
    elif outcome.error not in NOT_DEGRADED and _retry_fits_bound(run, config):
        # stored, the template would end the retries: a retry may still greet by name in time
        raise WelcomeRetry(f"agent failed ({outcome.error}); retrying within the welcome's bound")
    else:
        text, source = message_cap(config.welcome_template), "template"
    AutomationRun.objects.filter(pk=run.pk).update(
        welcome_text=text, welcome_source=source, welcome_provider=outcome.provider, agent_error=outcome.error
    )
    run.welcome_text, run.welcome_source, run.welcome_provider = text, source, outcome.provider
    return {
        "source": source,
        "provider": outcome.provider,
        "agent_error": outcome.error,
        "agent_ms": round(outcome.duration_ms, 1),
    }


class WelcomeRetry(Exception):
    """The agent failed early enough that the step's next retry still comes within the bound."""


def _retry_fits_bound(run: AutomationRun, config: AutomationSettings) -> bool:
    failed = AutomationStep.objects.filter(
        run_id=run.id, generation=run.generation, step="generate_welcome", success=False
    ).count()
    if failed >= config.max_retries:
        return False
    elapsed = (timezone.now() - run.started_at).total_seconds()
    return elapsed + config.countdown_for(failed + 1) <= settings.AUTOMATION_WELCOME_BOUND_SECONDS


def deliver_welcome(*, run: AutomationRun, config: AutomationSettings) -> dict[str, Any]:
    if run.conversation_id is None or not run.welcome_text:
        raise RuntimeError("conversation or welcome missing: earlier steps did not finish")
    conversation = Conversation.objects.get(pk=run.conversation_id)
    message, created = message_create(
        conversation=conversation,
        sender_type=Message.SenderType.BOT,
        type=Message.Type.TEXT,
        content=run.welcome_text,
        payload={"kind": "welcome", "source": run.welcome_source},
        external_id=f"welcome:{run.customer_id}",
    )
    if run.welcome_message_id != message.id:
        AutomationRun.objects.filter(pk=run.pk).update(welcome_message=message)
    pushed = False
    if run.welcome_delivered_at is None:
        # a failed push fails the step: its retry pushes again (welcome_delivered_at is still unset)
        realtime.broadcast_to_user(run.tenant_id, run.customer_id, message_event(message), raise_on_error=True)
        if run.customer.source != "web":
            message_deliver_schedule(tenant_id=run.tenant_id, message_id=message.id)  # through their bot
        delivered_at = timezone.now()
        AutomationRun.objects.filter(pk=run.pk).update(welcome_delivered_at=delivered_at)
        run.welcome_delivered_at = delivered_at
        pushed = True
    return {"message_id": message.id, "created": created, "pushed": pushed}


def new_customer_event(run: AutomationRun) -> dict[str, Any]:
    """The `new_customer` console event of API.md ("WebSockets")."""
    return {
        "type": "new_customer",
        "title": NEW_CUSTOMER_TITLE,
        "message": NEW_CUSTOMER_MESSAGE,
        "customer_id": run.customer_id,
        "conversation_id": run.conversation_id,
        "timestamp": timezone.now().isoformat(),
        "action": "claim_customer",
    }


def notify_consultants(*, run: AutomationRun, config: AutomationSettings) -> dict[str, Any]:
    """Online consultants get the event now; otherwise every consultant gets a Notification.

    The online/offline decision is stored on the run the first time, so a retry finishes the
    same plan instead of mixing both.
    """
    if not config.notify_consultants:
        return {"skipped": "notifications off"}
    plan = dict(run.consultants_notified or {})
    event = new_customer_event(run)
    if not plan:
        online = sorted(online_user_ids(tenant_id=run.tenant_id, roles=("consultant",)))
        plan = {"mode": "online", "user_ids": online} if online else {"mode": "offline", "user_ids": []}
        AutomationRun.objects.filter(pk=run.pk).update(consultants_notified=plan)
        run.consultants_notified = plan
    if plan["mode"] == "online":
        if not plan.get("pushed"):
            for user_id in plan["user_ids"]:
                realtime.broadcast_to_user(run.tenant_id, user_id, event, raise_on_error=True)  # retried
            plan["pushed"] = True
            AutomationRun.objects.filter(pk=run.pk).update(consultants_notified=plan)
        return {"mode": "online", "consultants": len(plan["user_ids"])}
    consultants = list(
        User.objects.filter(tenant_id=run.tenant_id, role=User.Role.CONSULTANT, is_active=True).values_list(
            "id", flat=True
        )
    )
    backend = backend_for(config.notification_backend, url=config.push_gateway_url, secret=config.push_gateway_secret)
    failures: list[str] = []
    created_count = 0
    for user_id in consultants:
        notification, created = notification_create(
            tenant_id=run.tenant_id,
            user_id=user_id,
            kind="new_customer",
            title=PUSH_TITLE,
            body=PUSH_BODY,
            payload=event,
            backend=backend.name,
            dedupe_key=f"new_customer:{run.customer_id}:{user_id}",
        )
        created_count += int(created)
        try:
            notification_send(notification=notification, backend=backend)
        except Exception as exc:  # noqa: BLE001 - any backend's failure: finish the others, then retry
            # the backend's own reasons (a category, a status) are shown; anything else only logged
            failures.append(f"{user_id}: {exc if isinstance(exc, NotificationBackendError) else 'send failed'}")
            logger.warning(
                "consultant notification failed",
                extra={"tenant_id": run.tenant_id, "user_id": user_id, "detail": f"{type(exc).__name__}: {exc}"[:300]},
            )
    if failures:
        raise NotificationBackendError("; ".join(failures)[:400])
    return {"mode": "offline", "notifications": len(consultants), "created": created_count, "backend": backend.name}


STEP_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "create_default_conversation": create_default_conversation,
    "generate_welcome": generate_welcome,
    "deliver_welcome": deliver_welcome,
    "notify_consultants": notify_consultants,
}
# The fifth step, record_metrics, is the run's end: the orchestrator (automation_step_execute) owns
# it, so this module never calls back into the services that call it.
