"""The conversation figures of a cohort: the conversations that started in one hour (docs/metrics.md).

Each figure goes to whoever did it (docs/metrics.md "Who is credited"): the conversation, its claim
and a transfer away to the consultant who claimed it, the first response to whoever gave it,
handling time to each holder for the time they held it, the ending and rating to the holder at the
end. One helper per figure family, named after its entry in docs/metrics.md "Definitions".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, QuerySet

from anmei.conversations.models import Conversation, Message
from anmei.stats.models import Rating, ReportingEvent
from anmei.stats.services.figures import hist_add

K = ReportingEvent.Kind
SENDER = Message.SenderType


@dataclass
class _Cohort:
    """What the cohort's figures are computed from, keyed by conversation id (customer id for `later`)."""

    counts: dict[int, dict[str, int]]  # non-blocked messages per sender type, welcomes left out
    events: dict[int, dict[str, dict]]  # the claim, hand-off, first response and resolution events
    handovers: dict[int, list[dict]]  # accepted transfers, in order
    scores: dict[int, int]
    later: dict[int, list[datetime]]  # start of the customer's conversations after the earliest end
    recontact: timedelta


def cohort_figures(tenant_id: int, start: datetime, end: datetime, rows: dict) -> None:
    """Add the conversation figures of the conversations that started in [start, end) to `rows`."""
    started = Conversation.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end)
    conversations = list(
        started.values(
            "id", "customer_id", "consultant_id", "channel", "created_at", "ended_at", "status", "is_default"
        )
    )
    if not conversations:
        return
    ids = started.values("id")
    cohort = _Cohort(
        counts=_message_counts(ids),
        events=_milestones(tenant_id, ids),
        handovers=_handovers(tenant_id, ids),
        scores=dict(Rating.objects.filter(conversation_id__in=ids).values_list("conversation_id", "score")),
        later=_later_starts(tenant_id, conversations),
        recontact=timedelta(hours=settings.STATS_RECONTACT_HOURS),
    )
    for c in conversations:
        _conversation_figures(rows, c, cohort)


def _message_counts(ids: QuerySet) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Message.objects.filter(conversation_id__in=ids, is_blocked=False)
        .exclude(sender_type=SENDER.BOT, payload__has_key="kind", payload__kind="welcome")
        .values("conversation_id", "sender_type")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["conversation_id"]][row["sender_type"]] = row["n"]
    return counts


def _milestones(tenant_id: int, ids: QuerySet) -> dict[int, dict[str, dict]]:
    events: dict[int, dict[str, dict]] = defaultdict(dict)
    for event in ReportingEvent.objects.filter(
        tenant_id=tenant_id,
        conversation_id__in=ids,
        kind__in=[K.CLAIM, K.HANDOFF, K.FIRST_RESPONSE, K.RESOLUTION],
    ).values("conversation_id", "kind", "value_s", "occurred_at", "consultant_id"):
        events[event["conversation_id"]][event["kind"]] = event
    return events


def _handovers(tenant_id: int, ids: QuerySet) -> dict[int, list[dict]]:
    handovers: dict[int, list[dict]] = defaultdict(list)
    for event in (
        ReportingEvent.objects.filter(tenant_id=tenant_id, conversation_id__in=ids, kind=K.TRANSFER)
        .values("conversation_id", "occurred_at", "consultant_id", "data")
        .order_by("occurred_at", "id")
    ):
        handovers[event["conversation_id"]].append(event)
    return handovers


def _later_starts(tenant_id: int, conversations: list[dict]) -> dict[int, list[datetime]]:
    """Starts of the ended conversations' customers' conversations after the earliest end (re-contacts)."""
    ended = [c for c in conversations if c["status"] == Conversation.Status.ENDED and c["ended_at"]]
    later: dict[int, list[datetime]] = defaultdict(list)
    if ended:
        for customer_id, created_at in Conversation.objects.filter(
            tenant_id=tenant_id,
            customer_id__in={c["customer_id"] for c in ended},
            created_at__gt=min(c["ended_at"] for c in ended),
        ).values_list("customer_id", "created_at"):
            later[customer_id].append(created_at)
    return later


def _conversation_figures(rows: dict, c: dict, cohort: _Cohort) -> None:
    n = cohort.counts.get(c["id"], {})
    ev = cohort.events.get(c["id"], {})
    holder = c["consultant_id"] or 0
    claimer = (ev[K.CLAIM]["consultant_id"] or holder) if K.CLAIM in ev else holder
    _conversations_total(rows[(claimer, c["channel"])], c, n, ev)
    _first_response_time(rows, c, ev, claimer)
    f = rows[(holder, c["channel"])]
    _csat(f, c, cohort.scores)
    if c["status"] != Conversation.Status.ENDED or not c["ended_at"]:
        return
    claim = ev.get(K.CLAIM)
    claimed_at = claim["occurred_at"] if claim else None
    _session_duration(f, c, claimed_at)
    if claimed_at:
        _handling_time(rows, c, ev, claimer, holder, claimed_at, cohort.handovers[c["id"]])
    elif n.get(SENDER.BOT) and n.get(SENDER.CUSTOMER):
        f["bot_only"] += 1
    _one_time_resolution(f, c, cohort)


def _conversations_total(f: dict, c: dict, n: dict[str, int], ev: dict[str, dict]) -> None:
    """Conversations total, valid, the claim time (all and new customers) and transferred to human."""
    f["conversations"] += 1
    if n.get(SENDER.CUSTOMER):
        f["valid_conversations"] += 1
    claim = ev.get(K.CLAIM)
    if claim:
        f["claims"] += 1
        f["claim_sum_s"] += claim["value_s"] or 0.0
        if c["is_default"]:
            f["new_customer_claims"] += 1
            f["new_customer_claim_sum_s"] += claim["value_s"] or 0.0
    if K.HANDOFF in ev:
        f["transferred"] += 1


def _first_response_time(rows: dict, c: dict, ev: dict[str, dict], claimer: int) -> None:
    first = ev.get(K.FIRST_RESPONSE)
    if first and first["value_s"] is not None:
        responder = rows[(first["consultant_id"] or claimer, c["channel"])]
        responder["first_response_count"] += 1
        responder["first_response_sum_s"] += first["value_s"]
        hist_add(responder["first_response_hist"], first["value_s"])


def _csat(f: dict, c: dict, scores: dict[int, int]) -> None:
    if c["id"] in scores:
        f["csat_count"] += 1
        f["csat_sum"] += scores[c["id"]]


def _session_duration(f: dict, c: dict, claimed_at: datetime | None) -> None:
    """Duration of an ended conversation, split into bot time and (once claimed) human time."""
    end_at = c["ended_at"]
    f["ended"] += 1
    f["duration_sum_s"] += _seconds(end_at, c["created_at"])
    f["bot_time_sum_s"] += _seconds(claimed_at or end_at, c["created_at"])
    if claimed_at:
        f["human_time_sum_s"] += _seconds(end_at, claimed_at)


def _handling_time(
    rows: dict, c: dict, ev: dict[str, dict], claimer: int, holder: int, claimed_at: datetime, handovers: list
) -> None:
    end_at = c["ended_at"]
    resolution = ev.get(K.RESOLUTION)
    handle = resolution["value_s"] if resolution and resolution["value_s"] is not None else None
    handle = _seconds(end_at, claimed_at) if handle is None else handle
    for stint_holder, seconds in _stints(claimer, holder, claimed_at, end_at, handle, handovers):
        g = rows[(stint_holder, c["channel"])]
        g["handle_count"] += 1
        g["handle_sum_s"] += seconds
        hist_add(g["handle_hist"], seconds)


def _one_time_resolution(f: dict, c: dict, cohort: _Cohort) -> None:
    end_at = c["ended_at"]
    if not any(end_at < t <= end_at + cohort.recontact for t in cohort.later.get(c["customer_id"], [])):
        f["resolved_once"] += 1


def _seconds(later: datetime, earlier: datetime) -> float:
    return max((later - earlier).total_seconds(), 0.0)


def _stints(claimer: int, holder: int, claimed_at: datetime, end_at: datetime, handle: float, handovers: list):
    """Handling time split by holder: (consultant, seconds held) from the claim to the end.

    Each accepted transfer closes the giver's stint and opens the receiver's; without one the
    whole handling time is the one holder's (docs/metrics.md "Handling time").
    """
    if not handovers:
        return [(holder, handle)]
    stints, current, since = [], claimer, claimed_at
    for event in handovers:
        at = min(max(event["occurred_at"], since), end_at)
        stints.append((event["consultant_id"] or current, _seconds(at, since)))
        current, since = (event["data"] or {}).get("to_consultant") or current, at
    stints.append((holder or current, _seconds(end_at, since)))
    return stints
