"""Every figure of docs/metrics.md on the hand-built day (tests/fixtures_stats.py), exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from anmei.conversations.models import Message
from anmei.stats.models import StatsCustomerDay, StatsDaily, StatsHourly, StatsTenantDaily, StatsTermDaily
from tests.fixtures_stats import D, DayBuilder, at, roll_all
from tests.helpers import assert_error

DAY = {"from": D.isoformat(), "to": D.isoformat()}


def busy(counts: dict[int, int]) -> list[dict]:
    return [{"hour": h, "count": counts.get(h, 0)} for h in range(24)]


def heatmap(weekday: int, counts: dict[int, int]) -> list[dict]:
    return [
        {"weekday": d, "hour": h, "count": counts.get(h, 0) if d == weekday else 0} for d in range(7) for h in range(24)
    ]


def overview(client, **params):
    response = client.get("/api/v1/stats/overview", {**DAY, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_overview_of_the_day_for_the_tenant_admin_is_exact(stats_day, as_user):
    # given the day, rolled up (tests/fixtures_stats.py)
    # when the admin asks for it
    body = overview(as_user(stats_day.alice))
    # then every figure is the one docs/metrics.md defines
    carol, dave = stats_day.carol.id, stats_day.dave.id
    assert body == {
        "customers": {"total": 5, "new": 4, "returning": 1},
        "conversations": {"total": 7, "valid": 6, "bot_only": 1, "transferred_to_human": 1, "avg_duration_s": 1457.1},
        "one_time_resolution_rate": 0.8571,
        "first_response": {"avg_s": 248.0, "p50_s": 60.0, "p90_s": 900.0},
        # one figure per stint held (docs/metrics.md "Handling time"): C3 gives Carol 210 s, Dave 1500 s
        "handle_time": {"avg_s": 978.3, "p50_s": 900.0},
        "consultants": [
            {
                "id": carol,
                "name": "Carol",
                "conversations": 4,  # C3 too: she claimed it and answered first (docs/metrics.md)
                "first_response_avg_s": 85.0,
                "handle_time_avg_s": 717.5,  # C2, C4, C5 and C3 until Dave accepted it
                "csat_avg": 5.0,
            },
            {
                "id": dave,
                "name": "Dave",
                "conversations": 1,  # C6; C3's ending, handling and rating stay his (he held it at the end)
                "first_response_avg_s": 900.0,
                "handle_time_avg_s": 1500.0,  # C3 from his accept, C6
                "csat_avg": 2.0,
            },
        ],
        "bot": {"auto_replies": 2, "transfers": 1, "keyword_hits": [{"keyword": "价格", "count": 1}]},
        "hot_words": [
            {"word": "玻尿酸", "count": 3},
            {"word": "价格", "count": 2},
            {"word": "热玛吉", "count": 2},
            {"word": "双眼皮", "count": 1},
            {"word": "恢复期", "count": 1},
            {"word": "水光针", "count": 1},
            {"word": "脸肿", "count": 1},
        ],
        "busy_hours": busy({9: 1, 10: 3, 11: 2, 14: 1, 16: 1, 23: 1}),
        "channels": [{"channel": "web", "count": 4}, {"channel": "wechat", "count": 3}],
        "csat": {"avg": 3.5, "count": 2},
        "as_of": None,
        "hot_questions": [
            {"question": "双眼皮恢复期多久", "count": 1},
            {"question": "打完玻尿酸脸肿怎么办", "count": 1},
            {"question": "热玛吉价格多少", "count": 1},
            {"question": "热玛吉做一次多久", "count": 1},
            {"question": "玻尿酸可以维持多久", "count": 1},
            {"question": "玻尿酸多少钱", "count": 1},
        ],
        "reply_time": {"avg_s": 136.7, "count": 6},
        "session_duration": {"ended": 7, "bot_avg_s": 618.6, "human_avg_s": 838.6},
        "claim_time": {"avg_s": 146.0, "new_customer_avg_s": 210.0},
        "transfers_between_consultants": 1,
        "registration_conversion": {"registered": 5, "converted": 4, "rate": 0.8},
        "busy_heatmap": heatmap(4, {9: 1, 10: 3, 11: 2, 14: 1, 16: 1, 23: 1}),
        "business_hours": None,
    }


def test_the_day_after_midnight_holds_only_its_own_messages_and_customers_count_once(stats_day, as_user):
    client = as_user(stats_day.alice)
    # D+1: no conversation started, but C6's reply and the customer's thanks happened then
    after = overview(client, **{"from": (D + timedelta(days=1)).isoformat(), "to": (D + timedelta(days=1)).isoformat()})
    assert after["customers"] == {"total": 1, "new": 0, "returning": 1}
    assert after["conversations"]["total"] == 0
    assert after["first_response"] == {"avg_s": None, "p50_s": None, "p90_s": None}
    assert after["reply_time"] == {"avg_s": 900.0, "count": 1}
    assert after["busy_hours"] == busy({0: 1})
    assert after["hot_words"] == []
    assert after["registration_conversion"] == {"registered": 0, "converted": 0, "rate": None}
    # D and D+1 together: u5 wrote on both days and is one customer
    both = overview(client, to=(D + timedelta(days=1)).isoformat())
    assert both["customers"] == {"total": 5, "new": 4, "returning": 1}
    assert both["conversations"]["total"] == 7
    assert both["reply_time"] == {"avg_s": 245.7, "count": 7}  # (820 + 900) / 7
    # D-1: u3's first conversation (web, never claimed, no bot reply)
    before = overview(
        client, **{"from": (D - timedelta(days=1)).isoformat(), "to": (D - timedelta(days=1)).isoformat()}
    )
    assert before["customers"] == {"total": 1, "new": 1, "returning": 0}
    assert before["conversations"] == {
        "total": 1,
        "valid": 1,
        "bot_only": 0,
        "transferred_to_human": 0,
        "avg_duration_s": 600.0,
    }
    assert before["one_time_resolution_rate"] == 0.0  # u3 came back 19 h 50 min later (C3): a re-contact
    assert before["registration_conversion"] == {"registered": 1, "converted": 1, "rate": 1.0}


def test_a_consultant_sees_only_their_own_figures(stats_day, as_user):
    client = as_user(stats_day.carol)
    body = overview(client)
    assert body["conversations"] == {
        "total": 4,  # C2-C5: she claimed each, C3 before transferring it to Dave
        "valid": 4,
        "bot_only": 0,
        "transferred_to_human": 1,
        "avg_duration_s": 1000.0,  # the three she ended: (1200 + 600 + 1200) / 3
    }
    assert body["customers"] == {"total": 2, "new": 2, "returning": 0}  # u2 and u4
    assert [c["id"] for c in body["consultants"]] == [stats_day.carol.id]
    assert body["csat"] == {"avg": 5.0, "count": 1}
    assert body["channels"] == [{"channel": "wechat", "count": 3}, {"channel": "web", "count": 1}]
    assert body["hot_words"] == body["hot_questions"] == body["bot"]["keyword_hits"] == []
    assert body["one_time_resolution_rate"] == 0.6667
    # asking for a colleague is refused
    assert_error(client.get("/api/v1/stats/overview", {**DAY, "consultant": stats_day.dave.id}), 403)
    # the admin may filter by consultant and gets the same figures
    assert overview(as_user(stats_day.alice), consultant=stats_day.carol.id) == body


def test_channel_filter(stats_day, as_user):
    body = overview(as_user(stats_day.alice), channel="web")
    assert body["conversations"] == {
        "total": 4,
        "valid": 3,
        "bot_only": 1,
        "transferred_to_human": 0,
        "avg_duration_s": 1800.0,
    }
    assert body["channels"] == [{"channel": "web", "count": 4}]
    assert body["customers"] == {"total": 3, "new": 2, "returning": 1}  # u1, u3, u5
    assert body["bot"] == {"auto_replies": 1, "transfers": 0, "keyword_hits": []}


def test_tenant_isolation_of_every_figure_and_word(stats_day, as_user, olga):
    beta = overview(as_user(stats_day.bob))
    assert beta["customers"] == {"total": 1, "new": 1, "returning": 0}
    assert beta["conversations"]["total"] == 1
    assert beta["consultants"] == [
        {
            "id": stats_day.ben.id,
            "name": "ben",
            "conversations": 1,
            "first_response_avg_s": 120.0,
            "handle_time_avg_s": 1740.0,
            "csat_avg": 1.0,
        }
    ]
    assert beta["hot_words"] == [{"word": "效果", "count": 1}, {"word": "超声刀", "count": 1}]
    assert beta["csat"] == {"avg": 1.0, "count": 1}
    assert beta["registration_conversion"] == {"registered": 1, "converted": 1, "rate": 1.0}
    # an admin naming the other tenant still sees only their own
    assert overview(as_user(stats_day.bob), tenant="alpha") == beta
    # operators name a tenant, or compare all of them
    assert overview(as_user(olga), tenant="beta") == beta
    assert overview(as_user(olga), tenant=str(stats_day.beta.id)) == beta
    everyone = overview(as_user(olga))
    assert everyone["conversations"]["total"] == 8
    assert [(t["slug"], t["conversations"], t["csat_avg"]) for t in everyone["tenants"]] == [
        ("alpha", 7, 3.5),
        ("beta", 1, 1.0),
    ]
    assert_error(as_user(olga).get("/api/v1/stats/overview", {**DAY, "tenant": "nope"}), 404)
    assert_error(as_user(olga).get("/api/v1/stats/overview", {**DAY, "tenant": "9" * 40}), 404)
    # customers and strangers get nothing
    assert_error(as_user(stats_day.u1).get("/api/v1/stats/overview", DAY), 403)
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/stats/overview", DAY).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"from": "2026-11-20"},
        {"from": "2026-11-21", "to": "2026-11-20"},
        {"from": "2026-13-01", "to": "2026-13-02"},
        {"from": "2025-01-01", "to": "2026-11-20"},
        {**DAY, "consultant": "x"},
    ],
)
def test_bad_filters_are_a_400(stats_day, as_user, params):
    assert_error(as_user(stats_day.alice).get("/api/v1/stats/overview", params), 400)


def test_timeseries_by_day_and_by_hour(stats_day, as_user):
    client = as_user(stats_day.alice)
    three = {"from": (D - timedelta(days=1)).isoformat(), "to": (D + timedelta(days=1)).isoformat()}
    body = client.get("/api/v1/stats/timeseries", {"metric": "conversations", "granularity": "day", **three}).json()
    assert body == {
        "metric": "conversations",
        "granularity": "day",
        "points": [
            {"t": "2026-11-19", "value": 1},
            {"t": "2026-11-20", "value": 7},
            {"t": "2026-11-21", "value": 0},
        ],
    }
    body = client.get("/api/v1/stats/timeseries", {"metric": "customers", "granularity": "day", **three}).json()
    assert [p["value"] for p in body["points"]] == [1, 5, 1]
    body = client.get("/api/v1/stats/timeseries", {"metric": "csat_avg", "granularity": "day", **three}).json()
    assert [p["value"] for p in body["points"]] == [None, 3.5, None]
    body = client.get(
        "/api/v1/stats/timeseries", {"metric": "first_response_avg_s", "granularity": "hour", **DAY}
    ).json()
    assert len(body["points"]) == 24
    assert body["points"][0]["t"] == "2026-11-20T00:00:00+08:00"
    assert {p["t"][11:13]: p["value"] for p in body["points"] if p["value"] is not None} == {
        "10": 60.0,
        "11": 180.0,
        "14": 60.0,
        "16": 40.0,
        "23": 900.0,
    }
    assert_error(client.get("/api/v1/stats/timeseries", {"metric": "nope", "granularity": "day", **DAY}), 400)
    assert_error(client.get("/api/v1/stats/timeseries", {"metric": "customers", "granularity": "hour", **DAY}), 400)
    # a consultant's series is their own
    carol = as_user(stats_day.carol).get(
        "/api/v1/stats/timeseries", {"metric": "conversations", "granularity": "day", **DAY}
    )
    assert carol.json()["points"] == [{"t": "2026-11-20", "value": 4}]  # C2-C5: she claimed each


def _snapshot():
    tables = [StatsHourly, StatsDaily, StatsCustomerDay, StatsTenantDaily, StatsTermDaily]
    return {
        model.__name__: sorted(
            tuple(sorted((k, str(v)) for k, v in row.items() if k != "id")) for row in model.objects.values()
        )
        for model in tables
    }


def test_rolling_up_twice_gives_the_same_rows(stats_day):
    roll_all()
    first = _snapshot()
    assert len(first["StatsHourly"]) == 11
    roll_all()
    assert _snapshot() == first
    from anmei.stats.services.windows import rollup_recent

    rollup_recent(tenant_id=stats_day.alpha.id, now=at("12:10"))
    assert _snapshot() == first


def test_todays_hot_words_come_with_the_incremental_run_not_only_the_daily_one(stats_day, as_user):
    from anmei.stats.services.windows import rollup_recent

    # Given a day whose words the daily run has not computed yet (it runs hourly)
    StatsTermDaily.objects.filter(tenant_id=stats_day.alpha.id, day=D).delete()
    assert overview(as_user(stats_day.alice))["hot_words"] == []
    # When the 5-minute incremental run rolls the day's latest hours
    rollup_recent(tenant_id=stats_day.alpha.id, now=at("12:10"))
    # Then the day's hot words and questions are there already
    body = overview(as_user(stats_day.alice))
    assert body["hot_words"][:3] == [
        {"word": "玻尿酸", "count": 3},
        {"word": "价格", "count": 2},
        {"word": "热玛吉", "count": 2},
    ]
    assert {"question": "双眼皮恢复期多久", "count": 1} in body["hot_questions"]
    assert body["bot"]["keyword_hits"] == [{"keyword": "价格", "count": 1}]


def test_late_message_and_late_rating_are_rerolled(stats_day, as_user, django_capture_on_commit_callbacks):
    from anmei.stats.services.windows import rollup_recent

    roll_all()
    b = DayBuilder(django_capture_on_commit_callbacks)  # this test's steps run inside its transaction
    # a message stored late for 11:20 (C3 still open at that time in its history) and rolled at 12:10
    with time_machine.travel(at("11:20"), tick=False):
        Message.objects.create(
            tenant=stats_day.alpha, conversation=stats_day.c3, sender_type="customer", content="术后能洗脸吗"
        )
    rollup_recent(tenant_id=stats_day.alpha.id, now=at("12:10"))
    body = overview(as_user(stats_day.alice))
    assert body["busy_hours"][11] == {"hour": 11, "count": 3}
    # a rating given the next day belongs to C4's cohort (14:00 on D), re-rolled by the next run
    b.rate(at("02:00", D + timedelta(days=1)), stats_day.u4, stats_day.c4, 4)
    rollup_recent(tenant_id=stats_day.alpha.id, now=at("02:10", D + timedelta(days=1)))
    body = overview(as_user(stats_day.alice))
    assert body["csat"] == {"avg": 3.67, "count": 3}
    assert body["as_of"] == "2026-11-20T18:10:00+00:00"  # 02:10 in Shanghai


def test_business_hours_split_conversations_and_first_response(stats_day, as_user):
    from anmei.stats.models import StatsSettings

    StatsSettings.objects.update_or_create(
        tenant=stats_day.alpha, defaults={"business_hours_start": 9, "business_hours_end": 18, "business_days": "01234"}
    )
    body = overview(as_user(stats_day.alice))
    assert body["business_hours"] == {
        "in": {"conversations": 6, "first_response_avg_s": 85.0},  # C1-C5, C7 (09:00-16:00, Friday)
        "out": {"conversations": 1, "first_response_avg_s": 900.0},  # C6 at 23:50
    }


def test_lost_reporting_events_are_rebuilt_from_the_raw_tables_exactly(stats_day, as_user, capsys):
    from django.core.management import call_command

    from anmei.stats.models import ReportingEvent

    fields = (
        "tenant_id",
        "kind",
        "key",
        "conversation_id",
        "consultant_id",
        "channel",
        "value_s",
        "data",
        "occurred_at",
    )
    written = sorted(ReportingEvent.objects.values_list(*fields), key=lambda e: (e[0], e[2]))
    before = overview(as_user(stats_day.alice))
    # given every event lost (a crash between commit and the on-commit callbacks)
    ReportingEvent.objects.all().delete()
    # when the backfill re-derives them
    days = {"from": (D - timedelta(days=1)).isoformat(), "to": (D + timedelta(days=1)).isoformat()}
    call_command("stats_backfill", "--from", days["from"], "--to", days["to"], "--events", "--no-words")
    # then they are the very events the services wrote, and so are the figures
    assert f"; {len(written)} missing reporting event(s) rebuilt" in capsys.readouterr().out
    assert sorted(ReportingEvent.objects.values_list(*fields), key=lambda e: (e[0], e[2])) == written
    after = overview(as_user(stats_day.alice))
    assert {k: v for k, v in after.items() if k not in ("hot_words", "hot_questions")} == {
        k: v for k, v in before.items() if k not in ("hot_words", "hot_questions")
    }
    # and a second run adds nothing
    call_command("stats_backfill", "--from", days["from"], "--to", days["to"], "--events", "--no-words")
    assert "; 0 missing reporting event(s) rebuilt" in capsys.readouterr().out
