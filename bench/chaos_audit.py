"""The chaos suite's audit: what each experiment's accepted work became, read from the database.

`audit` covers registrations and IM messages; `audit_welcomes` the MCP outage's welcome figures
(personalised share, seconds from the request to the stored welcome); `audit_voices` the voice
messages (transcribed once, answered once); `audit_ends` the summaries of ended conversations;
`audit_blacklist` the bots' cursors and what each bot received (every version exactly once).
"""

from __future__ import annotations

from collections import Counter

from bench.harness import pct


def audit(tenant, consultant, driven: dict, fake_bot) -> dict:
    from django.db import connections

    from anmei.automation.models import AutomationRun
    from anmei.bots.models import BotDelivery
    from anmei.conversations.models import Conversation, Message
    from anmei.notifications.models import Notification

    connections.close_all()
    ids = driven["registered"]
    runs = Counter(AutomationRun.objects.filter(customer_id__in=ids).values_list("status", flat=True))
    default_conversations = Counter(
        Conversation.objects.filter(customer_id__in=ids, is_default=True).values_list("customer_id", flat=True)
    )
    welcomes = Counter(
        Message.objects.filter(conversation__customer_id__in=ids, external_id__startswith="welcome:").values_list(
            "conversation__customer_id", flat=True
        )
    )
    notified = Counter(
        Notification.objects.filter(
            user=consultant, dedupe_key__in=[f"new_customer:{i}:{consultant.id}" for i in ids]
        ).values_list("dedupe_key", flat=True)
    )
    inbound = driven["inbound"]
    stored = Counter(Message.objects.filter(pk__in=inbound).values_list("id", flat=True))
    replies = Counter(
        Message.objects.filter(tenant=tenant, external_id__in=[f"autoreply:{i}" for i in inbound]).values_list(
            "external_id", flat=True
        )
    )
    reply_ids = list(
        Message.objects.filter(tenant=tenant, external_id__startswith="autoreply:").values_list("id", flat=True)
    )
    sent = BotDelivery.objects.filter(message_id__in=reply_ids, status="sent").count()
    bot_sends = Counter(
        r.headers.get("X-Anmei-Message-Id") for r in fake_bot.requests() if r.headers.get("X-Anmei-Message-Id")
    )
    im_runs = Counter(
        AutomationRun.objects.filter(tenant=tenant, customer__source="wecom").values_list("status", flat=True)
    )
    lost = (
        sum(1 for i in ids if default_conversations[i] == 0 or welcomes[i] == 0)
        + sum(1 for i in ids if notified[f"new_customer:{i}:{consultant.id}"] == 0)
        + sum(1 for i in inbound if stored[i] == 0)
    )
    dup = (
        sum(1 for n in default_conversations.values() if n > 1)
        + sum(1 for n in welcomes.values() if n > 1)
        + sum(1 for n in notified.values() if n > 1)
    )
    return {
        "registrations": len(ids),
        "succeeded": runs.get("succeeded", 0),
        "stuck": len(ids) - runs.get("succeeded", 0),
        "lost": lost,
        "dup": dup,
        "messages": len(inbound),
        # the away message is sent once per conversation: a conversation is answered by any of its replies
        "unanswered": _unanswered_conversations(inbound, replies) + (len(reply_ids) - sent),
        "dup_replies": sum(1 for n in replies.values() if n > 1),
        "im_runs_stuck": sum(n for status, n in im_runs.items() if status != "succeeded"),
        "bot_dup_sends": sum(n - 1 for key, n in bot_sends.items() if int(key) in set(reply_ids) and n > 1),
    }


def _unanswered_conversations(inbound: list[int], replies: Counter) -> int:
    from anmei.conversations.models import Message

    answered: dict[int, bool] = {}
    for message_id, conversation_id in Message.objects.filter(pk__in=inbound).values_list("id", "conversation_id"):
        answered[conversation_id] = answered.get(conversation_id, False) or replies[f"autoreply:{message_id}"] > 0
    return sum(1 for ok in answered.values() if not ok)


def resends(tenant) -> dict:
    """The sweep's re-sends and the messages it found lost, over the experiment's jobs."""
    from django.db.models import Count, Sum

    from anmei.jobs.models import Job

    totals = Job.objects.filter(tenant=tenant).aggregate(jobs=Count("id"), resent=Sum("resent"), lost=Sum("lost"))
    return {"jobs": totals["jobs"], "resent": totals["resent"] or 0, "lost_msgs": totals["lost"] or 0}


def open_jobs(tenant) -> list:
    """What is left of an experiment that did not recover: its jobs not done, and why."""
    from django.db import connection

    from anmei.jobs.models import Job

    jobs = list(
        Job.objects.filter(tenant=tenant)
        .exclude(state="done")
        .values_list("kind", "key", "state", "attempts", "resent", "last_error")[:20]
    )
    with connection.cursor() as cursor:  # anything waiting on a lock, and who holds it
        cursor.execute(
            "SELECT a.pid, a.state, left(a.query, 160), pg_blocking_pids(a.pid), now() - a.xact_start "
            "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND (cardinality(pg_blocking_pids(a.pid)) > 0 OR a.state LIKE 'idle in transaction%')"
        )
        waits = [[str(v) for v in row] for row in cursor.fetchall()]
    return jobs + waits


def audit_welcomes(driven: dict) -> dict:
    """Of the registrations: welcomes that name the customer, and the p95 from request to welcome."""
    from anmei.accounts.models import User
    from anmei.conversations.models import Message

    nicknames = dict(User.objects.filter(pk__in=driven["registered"]).values_list("id", "nickname"))
    welcomes = Message.objects.filter(
        conversation__customer_id__in=driven["registered"], external_id__startswith="welcome:"
    ).values_list("conversation__customer_id", "content", "created_at")
    personal, seconds = 0, []
    for customer_id, content, created_at in welcomes:
        personal += bool(nicknames.get(customer_id)) and nicknames[customer_id] in content
        seconds.append(created_at.timestamp() - driven["sent_at"][customer_id])
    from anmei.ai.models import AgentCall

    calls = AgentCall.objects.filter(customer_id__in=driven["registered"], purpose="welcome")
    return {
        # how the outage showed: welcomes written from the platform's facts, and agent calls that failed
        "from_platform_facts": calls.filter(model__contains="platform-profile").count(),
        "agent_failed": calls.filter(success=False).count(),
        "personalised": f"{personal}/{len(driven['registered'])}",
        "personalised_pct": round(100 * personal / max(len(driven["registered"]), 1), 1),
        "welcome_p95_s": round(pct(seconds, 0.95), 2) if seconds else None,
    }


def audit_voices(tenant, driven: dict) -> dict:
    """Every accepted voice message: transcribed (status success) and answered exactly once."""
    from anmei.asr.models import AsrTask
    from anmei.conversations.models import Message

    voices = driven["voices"]
    done = set(AsrTask.objects.filter(message_id__in=voices, status="success").values_list("message_id", flat=True))
    replies = Counter(
        Message.objects.filter(tenant=tenant, external_id__in=[f"autoreply:{i}" for i in voices]).values_list(
            "external_id", flat=True
        )
    )
    tasks = Counter(AsrTask.objects.filter(message_id__in=voices).values_list("message_id", flat=True))
    return {
        "messages": len(voices),
        "stuck": sum(1 for i in voices if i not in done) + sum(1 for i in voices if not replies[f"autoreply:{i}"]),
        "lost": sum(1 for i in voices if not tasks[i]),
        "dup": sum(1 for n in replies.values() if n > 1),
    }


def audit_ends(driven: dict) -> dict:
    """Every ended conversation: its summary stored (one row per conversation by its unique key)."""
    from anmei.ai.models import ConversationSummary

    ended = driven["ended"]
    states = dict(
        ConversationSummary.objects.filter(conversation_id__in=ended).values_list("conversation_id", "status")
    )
    return {
        "messages": len(ended),
        "stuck": sum(1 for c in ended if states.get(c) not in (None, "ready")),
        "summaries_missing": sum(1 for c in ended if c not in states),
    }


def audit_blacklist(tenant, driven: dict, fake_bot) -> dict:
    """Each bot at the tenant's version, having received every version exactly once (answered 200)."""
    from anmei.blacklist.models import BlacklistBotCursor, BlacklistState

    version = BlacklistState.objects.get(tenant=tenant).version
    cursors = dict(
        BlacklistBotCursor.objects.filter(bot_id__in=driven["bots"]).values_list("bot_id", "acknowledged_version")
    )
    stuck = lost = dup = 0
    for bot_id in driven["bots"]:
        got = Counter(
            (r.body or {}).get("version")
            for r in fake_bot.requests(bot_id=bot_id)
            if r.answered == 200 and isinstance(r.body, dict) and "version" in r.body
        )
        stuck += cursors.get(bot_id, 0) != version
        lost += cursors.get(bot_id) == version and not got[version]  # acknowledged but never received
        dup += sum(n - 1 for n in got.values() if n > 1)
    return {"messages": len(driven["bots"]), "stuck": stuck, "lost": lost, "dup": dup, "version": version}


def done(result: dict) -> bool:
    keys = ("stuck", "lost", "dup", "unanswered", "dup_replies", "im_runs_stuck", "summaries_missing")
    return not any(result.get(k) for k in keys)
