# ruff: noqa: E501 - long SQL and report lines read better whole
"""Statistics at scale: rollups and the overview against the same figures computed on read.

A synthetic tenant with 100,000 conversations and 1,000,000 messages over 90 days (loaded with
COPY, not the API), with the state changes (claims, ends) and ratings the services would have
stored, then:

* backfill of the 90 days (reporting events derived from those tables, hourly + daily rows,
  customers, registrations; hot words timed apart),
* one day re-rolled (with hot words), one busy hour (50,000 messages) rolled alone, and the
  incremental run with that hour as "now" (late hours + touched conversations' start hours),
* `overview` for 90 days from the rollups (p50/p95 of 30 calls) vs the same figures computed on
  read from the raw tables in the same run (its median of 3 calls), and a check that both agree.

Targets: overview p95 ≤ 100 ms and ≥ 20× faster than on-read; busy hour ≤ 5 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_stats_bench REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/stats.py            # --regenerate to reload the data
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")

import harness  # noqa: E402

SLUG = "bench-stats"
ZONE = ZoneInfo("Asia/Shanghai")
DAYS = 90
CONVERSATIONS = 100_000
BUSY_CONVERSATIONS = 5_000  # x 10 messages = the 50,000-message busy hour
CUSTOMERS = 40_000
CONSULTANTS = 10
TEXTS = [
    "玻尿酸多少钱？", "水光针价格", "热玛吉做一次多久", "双眼皮恢复期多久？", "超声刀效果怎么样？",
    "光子嫩肤有副作用吗", "皮秒祛斑要几次", "可以预约周六面诊吗", "术后能洗脸吗", "好的谢谢",
    "肉毒素瘦脸能维持多久", "隆鼻假体安全吗", "脱毛疼不疼", "有没有优惠", "在吗",
]  # fmt: skip


def last_day() -> date:
    return datetime.now(ZONE).date() - timedelta(days=1)


def generate(tenant_id: int) -> None:
    """COPY users, conversations, their messages and state changes, and ratings for the bench tenant."""
    from django.db import connection

    rng = random.Random(14)
    end_day = last_day()
    first_day = end_day - timedelta(days=DAYS - 1)
    busy_day = first_day + timedelta(days=45)
    t0 = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
        uid = cursor.fetchone()[0] + 1
        cursor.execute("SELECT coalesce(max(id), 0) FROM conversations_conversation")
        cid0 = cursor.fetchone()[0] + 1
        cursor.execute("SELECT coalesce(max(id), 0) FROM conversations_message")
        mid = cursor.fetchone()[0] + 1
    raw = connection.connection  # psycopg 3
    consultants = list(range(uid, uid + CONSULTANTS))
    customers = list(range(uid + CONSULTANTS, uid + CONSULTANTS + CUSTOMERS))
    joined = {c: datetime.combine(first_day, datetime.min.time(), ZONE) for c in customers}
    pw = "!unusable"
    with raw.cursor() as cur:
        cols = (
            "id, password, is_superuser, first_name, last_name, email, is_staff, is_active, date_joined, username, "
            "role, nickname, phone, source, platform_user_id, created_at, tenant_id"
        )
        with cur.copy(f"COPY accounts_user ({cols}) FROM STDIN") as copy:
            for i, u in enumerate(consultants):
                at = joined[customers[0]] - timedelta(days=1)
                copy.write_row(
                    (
                        u,
                        pw,
                        False,
                        "",
                        "",
                        "",
                        True,
                        True,
                        at,
                        f"c{i}",
                        "consultant",
                        f"顾问{i}",
                        "",
                        "web",
                        "",
                        at,
                        tenant_id,
                    )
                )
            for u in customers:
                copy.write_row(
                    (
                        u,
                        pw,
                        False,
                        "",
                        "",
                        "",
                        False,
                        True,
                        joined[u],
                        f"u{u}",
                        "customer",
                        "",
                        "",
                        "web",
                        "",
                        joined[u],
                        tenant_id,
                    )
                )
    print(f"  users: {time.monotonic() - t0:.1f} s")

    # conversations: spread over 90 days on a daily curve, plus one busy hour
    weights = [1, 1, 1, 1, 1, 1, 2, 4, 6, 8, 10, 10, 9, 9, 10, 10, 9, 8, 8, 9, 10, 9, 6, 3]
    starts = []
    for _ in range(CONVERSATIONS - BUSY_CONVERSATIONS):
        day = first_day + timedelta(days=rng.randrange(DAYS))
        hour = rng.choices(range(24), weights)[0]
        starts.append(
            datetime.combine(day, datetime.min.time(), ZONE) + timedelta(hours=hour, seconds=rng.randrange(3600))
        )
    busy_start = datetime.combine(busy_day, datetime.min.time(), ZONE) + timedelta(hours=14)
    starts += [busy_start + timedelta(seconds=rng.randrange(3000)) for _ in range(BUSY_CONVERSATIONS)]
    starts.sort()
    seen: set[int] = set()
    conv_rows, msg_rows, ev_rows, rating_rows = [], [], [], []
    for n, start in enumerate(starts):
        cid = cid0 + n
        customer = rng.choice(customers)
        is_default = customer not in seen
        seen.add(customer)
        channel = "web" if rng.random() < 0.6 else "wechat"
        kind = rng.choices(["bot", "handoff", "human"], [3, 3, 4])[0]
        consultant = None if kind == "bot" else rng.choice(consultants)
        claim_at = start + timedelta(seconds=90 + rng.randrange(120)) if consultant else None
        ended = start + timedelta(seconds=600 + rng.randrange(1200))
        senders = {
            "bot": ["customer", "bot"] * 5,
            "handoff": ["customer", "bot", "customer"] + ["consultant", "customer"] * 3 + ["consultant"],
            "human": ["customer", "consultant"] * 5,
        }[kind]
        conv_rows.append(
            (
                cid,
                "",
                channel,
                "ended",
                is_default,
                start,
                ended,
                start + timedelta(seconds=540),
                ended,
                consultant,
                customer,
                tenant_id,
            )
        )
        for i, sender in enumerate(senders):
            at = start + timedelta(seconds=60 * i + rng.randrange(50))
            if sender == "consultant" and claim_at and at < claim_at:
                at = claim_at + timedelta(seconds=5 + i)
            text = rng.choice(TEXTS) if sender == "customer" else "您好，这边为您解答"
            payload = '{"auto_reply": true, "source": "rule", "keyword": "价格"}' if sender == "bot" else "{}"
            msg_rows.append(
                (
                    mid,
                    sender,
                    "text",
                    text,
                    payload,
                    "",
                    at,
                    cid,
                    consultant if sender == "consultant" else (customer if sender == "customer" else None),
                    tenant_id,
                    False,
                )
            )
            mid += 1
        # what the conversation app stores: its state changes (the rollups derive the reporting events)
        if consultant:
            ev_rows.append((cid, consultant, "claim", "waiting", "active", "{}", claim_at))
        ev_rows.append((cid, consultant, "end" if consultant else "timeout", "active" if consultant else "waiting",
                        "ended", '{"reason": "consultant"}' if consultant else '{"reason": "inactivity"}', ended))  # fmt: skip
        if consultant and rng.random() < 0.3:
            score = rng.choice([3, 4, 4, 5, 5, 5])
            rating_rows.append((tenant_id, cid, customer, score, "", ended + timedelta(minutes=5)))
    with raw.cursor() as cur:
        cols = "id, bot_name, channel, status, is_default, created_at, updated_at, last_message_at, ended_at, consultant_id, customer_id, tenant_id"
        with cur.copy(f"COPY conversations_conversation ({cols}) FROM STDIN") as copy:
            for row in conv_rows:
                copy.write_row(row)
        print(f"  conversations: {len(conv_rows):,} ({time.monotonic() - t0:.1f} s)")
        cols = "id, sender_type, type, content, payload, external_id, created_at, conversation_id, sender_id, tenant_id, is_blocked"
        with cur.copy(f"COPY conversations_message ({cols}) FROM STDIN") as copy:
            for row in msg_rows:
                copy.write_row(row)
        print(f"  messages: {len(msg_rows):,} ({time.monotonic() - t0:.1f} s)")
        cols = "conversation_id, actor_id, action, from_status, to_status, details, created_at, tenant_id"
        with cur.copy(f"COPY conversations_conversationevent ({cols}) FROM STDIN") as copy:
            for row in ev_rows:
                copy.write_row((*row, tenant_id))
        print(f"  conversation events: {len(ev_rows):,} ({time.monotonic() - t0:.1f} s)")
        with cur.copy(
            "COPY stats_rating (tenant_id, conversation_id, customer_id, score, comment, created_at) FROM STDIN"
        ) as copy:
            for row in rating_rows:
                copy.write_row(row)
        for table in ("accounts_user", "conversations_conversation", "conversations_message"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        for table in (
            "accounts_user",
            "conversations_conversation",
            "conversations_message",
            "conversations_conversationevent",
            "stats_rating",
        ):
            cur.execute(f"ANALYZE {table}")
    raw.commit()
    print(f"  loaded in {time.monotonic() - t0:.1f} s; busy hour: {busy_start.isoformat()}")


ON_READ_SQL = {
    # conversation cohort figures, as the rollups define them
    "conversations": """
        WITH c AS (SELECT id, customer_id, consultant_id, channel, created_at, ended_at, status
                   FROM conversations_conversation WHERE tenant_id = %(t)s AND created_at >= %(a)s AND created_at < %(b)s),
             m AS (SELECT conversation_id, count(*) FILTER (WHERE sender_type = 'customer') AS cust,
                          count(*) FILTER (WHERE sender_type = 'bot') AS bot
                   FROM conversations_message WHERE conversation_id IN (SELECT id FROM c) AND NOT is_blocked
                   GROUP BY conversation_id),
             e AS (SELECT conversation_id, bool_or(kind = 'claim') AS claimed, bool_or(kind = 'handoff') AS handoff
                   FROM stats_reportingevent WHERE tenant_id = %(t)s AND conversation_id IN (SELECT id FROM c)
                   AND kind IN ('claim', 'handoff') GROUP BY conversation_id)
        SELECT count(*), count(*) FILTER (WHERE m.cust > 0),
               count(*) FILTER (WHERE c.status = 'ended' AND m.bot > 0 AND NOT coalesce(e.claimed, false)),
               count(*) FILTER (WHERE e.handoff), count(*) FILTER (WHERE c.status = 'ended'),
               avg(extract(epoch FROM c.ended_at - c.created_at)) FILTER (WHERE c.status = 'ended')
        FROM c LEFT JOIN m ON m.conversation_id = c.id LEFT JOIN e ON e.conversation_id = c.id""",
    "resolved_once": """
        SELECT count(*) FROM conversations_conversation c
        WHERE c.tenant_id = %(t)s AND c.created_at >= %(a)s AND c.created_at < %(b)s AND c.status = 'ended'
          AND NOT EXISTS (SELECT 1 FROM conversations_conversation n WHERE n.tenant_id = c.tenant_id
                          AND n.customer_id = c.customer_id AND n.created_at > c.ended_at
                          AND n.created_at <= c.ended_at + interval '48 hours')""",
    "first_response": """
        SELECT avg(e.value_s), percentile_disc(0.5) WITHIN GROUP (ORDER BY e.value_s),
               percentile_disc(0.9) WITHIN GROUP (ORDER BY e.value_s)
        FROM stats_reportingevent e JOIN conversations_conversation c ON c.id = e.conversation_id
        WHERE e.tenant_id = %(t)s AND e.kind = 'first_response' AND c.created_at >= %(a)s AND c.created_at < %(b)s""",
    "handle": """
        SELECT avg(e.value_s), percentile_disc(0.5) WITHIN GROUP (ORDER BY e.value_s)
        FROM stats_reportingevent e JOIN conversations_conversation c ON c.id = e.conversation_id
        WHERE e.tenant_id = %(t)s AND e.kind = 'resolution' AND e.value_s IS NOT NULL
          AND c.created_at >= %(a)s AND c.created_at < %(b)s""",
    "consultants": """
        SELECT c.consultant_id, count(*), avg(r.score) FROM conversations_conversation c
        LEFT JOIN stats_rating r ON r.conversation_id = c.id
        WHERE c.tenant_id = %(t)s AND c.created_at >= %(a)s AND c.created_at < %(b)s AND c.consultant_id IS NOT NULL
        GROUP BY c.consultant_id""",
    "customers": """
        WITH w AS (SELECT DISTINCT c.customer_id FROM conversations_message m
                   JOIN conversations_conversation c ON c.id = m.conversation_id
                   WHERE m.tenant_id = %(t)s AND m.created_at >= %(a)s AND m.created_at < %(b)s
                   AND m.sender_type = 'customer' AND NOT m.is_blocked)
        SELECT count(*), count(*) FILTER (WHERE f.first >= %(a)s AND f.first < %(b)s) FROM w
        JOIN (SELECT customer_id, min(created_at) AS first FROM conversations_conversation
              WHERE tenant_id = %(t)s GROUP BY customer_id) f USING (customer_id)""",
    "messages": """
        SELECT extract(hour FROM m.created_at AT TIME ZONE 'Asia/Shanghai')::int AS h,
               count(*) FILTER (WHERE sender_type = 'customer'), count(*) FILTER (WHERE sender_type = 'bot')
        FROM conversations_message m WHERE m.tenant_id = %(t)s AND m.created_at >= %(a)s AND m.created_at < %(b)s
          AND NOT m.is_blocked GROUP BY h""",
    "channels": """
        SELECT channel, count(*) FROM conversations_conversation
        WHERE tenant_id = %(t)s AND created_at >= %(a)s AND created_at < %(b)s GROUP BY channel""",
    "csat": """
        SELECT avg(r.score), count(*) FROM stats_rating r JOIN conversations_conversation c ON c.id = r.conversation_id
        WHERE c.tenant_id = %(t)s AND c.created_at >= %(a)s AND c.created_at < %(b)s""",
    "keywords": """
        SELECT data->>'keyword', count(*) FROM stats_reportingevent WHERE tenant_id = %(t)s AND kind = 'bot_reply'
          AND occurred_at >= %(a)s AND occurred_at < %(b)s AND data->>'keyword' <> '' GROUP BY 1""",
}


def overview_on_read(tenant_id: int, a: datetime, b: datetime) -> dict:
    """The overview's figures straight from the raw tables (the baseline a rollup must beat)."""
    from django.db import connection

    out = {}
    with connection.cursor() as cursor:
        for name, sql in ON_READ_SQL.items():
            cursor.execute(sql, {"t": tenant_id, "a": a, "b": b})
            out[name] = cursor.fetchall()
    return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--skip-backfill", action="store_true", help="reuse the rollups of an earlier run")
    args = parser.parse_args()
    if not harness.django_on_postgres_with_redis("bench/stats"):
        return
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from anmei.stats.models import StatsHourly, StatsSettings
    from anmei.stats.selectors import stats_overview
    from anmei.stats.services.rollup import local_day_bounds, rollup_hour
    from anmei.stats.services.terms import rollup_terms
    from anmei.stats.services.windows import rollup_days, rollup_recent
    from anmei.tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is not None and args.regenerate:
        with connection.cursor() as cursor:
            for table in ("stats_statshourly", "stats_statsdaily", "stats_statscustomerday", "stats_statstermdaily",
                          "stats_statstenantdaily", "stats_reportingevent", "stats_rating", "conversations_conversationevent", "conversations_message",
                          "conversations_conversation"):  # fmt: skip
                cursor.execute(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant.id])
            cursor.execute("DELETE FROM accounts_user WHERE tenant_id = %s", [tenant.id])
        tenant.delete()
        tenant = None
    if tenant is None:
        tenant = Tenant.objects.create(name="Bench", slug=SLUG, contact_email="b@bench.test", status="approved")
        StatsSettings.objects.create(tenant=tenant, time_zone="Asia/Shanghai")
        print("generating (COPY) …")
        generate(tenant.id)
    tid = tenant.id
    end_day = last_day()
    first_day = end_day - timedelta(days=DAYS - 1)
    busy_day = first_day + timedelta(days=45)
    busy_hour = datetime.combine(busy_day, datetime.min.time(), ZONE).replace(hour=14).astimezone(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversations_message WHERE tenant_id = %s", [tid])
        messages = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM conversations_conversation WHERE tenant_id = %s", [tid])
        conversations = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM conversations_message WHERE tenant_id = %s AND created_at >= %s AND created_at < %s",
            [tid, busy_hour, busy_hour + timedelta(hours=1)],
        )
        busy_messages = cursor.fetchone()[0]
    print(
        f"data: {conversations:,} conversations, {messages:,} messages; busy hour {busy_hour.isoformat()}: {busy_messages:,} messages"
    )

    days = [first_day + timedelta(days=i) for i in range(DAYS)]
    if args.skip_backfill:
        backfill_s = float("nan")
    else:
        backfill_s, _ = timed(lambda: [rollup_days(tenant_id=tid, days=[d], terms=False) for d in days])
    print(
        f"backfill {DAYS} days (hourly+daily+customers, no words): {backfill_s:.1f} s ({backfill_s / DAYS * 1000:.0f} ms/day)"
    )
    with connection.cursor() as cursor:  # what autovacuum does after a backfill in production
        for table in ("stats_statshourly", "stats_statsdaily", "stats_statscustomerday", "stats_statstermdaily",
                      "stats_reportingevent"):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")
    words_s, _ = timed(
        rollup_terms,
        tenant_id=tid,
        day=busy_day,
        start=local_day_bounds(busy_day, ZONE)[0],
        end=local_day_bounds(busy_day, ZONE)[1],
    )
    print(f"hot words + questions of the busy day (jieba): {words_s:.2f} s")
    day_s, _ = timed(rollup_days, tenant_id=tid, days=[busy_day], terms=True)
    print(f"one day re-rolled (24 hours + day + words): {day_s:.2f} s")
    before = sorted(
        StatsHourly.objects.filter(tenant_id=tid, hour=busy_hour).values_list(
            "consultant_id", "channel", "conversations", "customer_messages"
        )
    )
    hour_runs = [timed(rollup_hour, tenant_id=tid, hour=busy_hour, zone=ZONE)[0] for _ in range(3)]
    after = sorted(
        StatsHourly.objects.filter(tenant_id=tid, hour=busy_hour).values_list(
            "consultant_id", "channel", "conversations", "customer_messages"
        )
    )
    assert before == after, "re-rolling the busy hour changed its rows"
    print(
        f"busy hour rolled alone ({busy_messages:,} messages): median {statistics.median(hour_runs):.2f} s (runs {', '.join(f'{r:.2f}' for r in hour_runs)}) — target ≤ 5 s"
    )
    StatsSettings.objects.filter(tenant_id=tid).update(rolled_until=busy_hour + timedelta(minutes=55))
    incr_s, result = timed(rollup_recent, tenant_id=tid, now=busy_hour + timedelta(minutes=59))
    print(f"incremental run at the end of the busy hour: {incr_s:.2f} s ({result['hours']} hours re-rolled)")

    a, b = local_day_bounds(first_day, ZONE)[0], local_day_bounds(end_day, ZONE)[1]
    rollup_times = []
    for _ in range(args.calls):
        t, rolled = timed(stats_overview, tenant_ids=[tid], day_from=first_day, day_to=end_day)
        rollup_times.append(t * 1000)
    read_times = []
    for _ in range(3):
        t, raw = timed(overview_on_read, tid, a, b)
        read_times.append(t * 1000)
    # the two paths agree
    total, valid, bot_only, transferred, ended, avg_duration = raw["conversations"][0]
    assert rolled["conversations"]["total"] == total and rolled["conversations"]["valid"] == valid
    assert (
        rolled["conversations"]["bot_only"] == bot_only
        and rolled["conversations"]["transferred_to_human"] == transferred
    )
    assert rolled["one_time_resolution_rate"] == round(raw["resolved_once"][0][0] / ended, 4)
    assert rolled["first_response"]["avg_s"] == round(raw["first_response"][0][0], 1)
    assert (
        rolled["customers"]["total"] == raw["customers"][0][0] and rolled["customers"]["new"] == raw["customers"][0][1]
    )
    assert rolled["csat"]["count"] == raw["csat"][0][1]
    assert sum(h["count"] for h in rolled["busy_hours"]) == sum(r[1] for r in raw["messages"])
    p50, p95 = harness.pct(rollup_times, 0.5), harness.pct(rollup_times, 0.95)
    on_read = statistics.median(read_times)
    print(
        f"overview {DAYS} days from rollups: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({args.calls} calls) — target p95 ≤ 100 ms"
    )
    print(
        f"same figures on read from raw tables: median {on_read:.0f} ms (runs {', '.join(f'{r:.0f}' for r in read_times)})"
    )
    print(f"ratio on-read / rollup p95: {on_read / p95:.1f}x — target ≥ 20x; figures agree: yes")


if __name__ == "__main__":
    main()
