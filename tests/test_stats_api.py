"""CSAT ratings, reporting-event idempotency, hot-word cutting, backfill, the page's doors and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command

from anmei.conversations.models import Conversation, Message
from anmei.stats.models import Rating, ReportingEvent, StatsDaily, StatsHourly
from anmei.stats.services.events import reporting_event_record
from anmei.stats.services.terms import question_of, words_of
from tests.fixtures_stats import D, at
from tests.helpers import assert_error


def _conversation(customer, status=Conversation.Status.ENDED, **extra) -> Conversation:
    return Conversation.objects.create(tenant_id=customer.tenant_id, customer=customer, status=status, **extra)


def test_the_customer_rates_an_ended_conversation_once(as_user, cathy, carol, django_capture_on_commit_callbacks):
    conversation = _conversation(cathy, consultant=carol)
    client = as_user(cathy)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/conversations/{conversation.id}/rating", {"score": 4, "comment": "好"})
    assert response.status_code == 201
    assert response.json()["score"] == 4 and response.json()["comment"] == "好"
    event = ReportingEvent.objects.get()
    assert (event.kind, event.key, event.value_s, event.consultant_id) == (
        "rating",
        f"rating:{conversation.id}",
        4.0,
        carol.id,
    )
    # again: 409, and the first rating stands
    again = client.post(f"/api/v1/conversations/{conversation.id}/rating", {"score": 1}, format="json")
    assert_error(again, 409, "already_rated")
    assert list(Rating.objects.values_list("score", "comment")) == [(4, "好")]
    assert ReportingEvent.objects.count() == 1


@pytest.mark.parametrize(
    "who, status, body, code, http",
    [
        ("cathy", Conversation.Status.ACTIVE, {"score": 5}, "conversation_not_ended", 409),
        ("cathy", Conversation.Status.ENDED, {"score": 6}, "validation_error", 400),
        ("cathy", Conversation.Status.ENDED, {"score": 0}, "validation_error", 400),
        ("cathy", Conversation.Status.ENDED, {}, "validation_error", 400),
        ("carol", Conversation.Status.ENDED, {"score": 5}, "permission_denied", 403),
        ("bill", Conversation.Status.ENDED, {"score": 5}, "not_found", 404),
        ("other", Conversation.Status.ENDED, {"score": 5}, "not_found", 404),
    ],
)
def test_a_rating_that_is_not_allowed_is_refused_and_stores_nothing(
    as_user, cathy, carol, bill, tenant_a, who, status, body, code, http
):
    from tests.conftest import make_user

    conversation = _conversation(cathy, status=status, consultant=carol)
    user = {"cathy": cathy, "carol": carol, "bill": bill}.get(who) or make_user(tenant_a, "other")
    response = as_user(user).post(f"/api/v1/conversations/{conversation.id}/rating", body, format="json")
    assert_error(response, http, code)
    assert Rating.objects.count() == 0


def test_rating_an_unknown_conversation_is_a_404(as_user, cathy):
    assert_error(as_user(cathy).post("/api/v1/conversations/999999/rating", {"score": 3}), 404)


def test_reporting_events_are_stored_once_per_key(tenant_a, tenant_b):
    when = at("10:00")
    kwargs = {"kind": "reply", "key": "reply:1", "conversation_id": 1, "occurred_at": when, "value_s": 5.0}
    assert reporting_event_record(tenant_id=tenant_a.id, **kwargs) is True
    assert reporting_event_record(tenant_id=tenant_a.id, **{**kwargs, "value_s": 9.0}) is False
    assert reporting_event_record(tenant_id=tenant_b.id, **kwargs) is True  # keys are per tenant
    assert sorted(ReportingEvent.objects.values_list("tenant_id", "value_s")) == [
        (tenant_a.id, 5.0),
        (tenant_b.id, 5.0),
    ]


def test_the_shipped_dictionary_keeps_clinic_terms_whole():
    assert words_of("玻尿酸和水光针哪个好？热玛吉呢") == {"玻尿酸", "水光针", "热玛吉"}
    assert "尿酸" not in words_of("玻尿酸")
    assert words_of("你好，谢谢 123 ！") == set()
    assert question_of("  玻尿酸 多少钱？ ") == "玻尿酸多少钱"
    assert question_of("ＯＫ，好的") is None


def _message_at(when, conversation, sender_type="customer", text="热玛吉多少钱"):
    with time_machine.travel(when, tick=False):
        return Message.objects.create(
            tenant_id=conversation.tenant_id, conversation=conversation, sender_type=sender_type, content=text
        )


def test_backfill_rolls_the_named_tenant_and_range_only(cathy, bill, capsys):
    for customer in (cathy, bill):
        with time_machine.travel(at("10:00"), tick=False):
            conversation = _conversation(customer, status=Conversation.Status.WAITING)
        _message_at(at("10:00"), conversation)
        _message_at(at("10:00", D + timedelta(days=3)), conversation)  # outside the range
    call_command(
        "stats_backfill", "--from", D.isoformat(), "--to", (D + timedelta(days=1)).isoformat(), "--tenant", "alpha"
    )
    assert "rolled 2 day(s) x 1 tenant(s)" in capsys.readouterr().out
    assert list(StatsDaily.objects.values_list("tenant_id", "day", "conversations", "customer_messages")) == [
        (cathy.tenant_id, D, 1, 1)
    ]
    assert StatsHourly.objects.filter(tenant_id=bill.tenant_id).count() == 0
    with pytest.raises(CommandError):
        call_command("stats_backfill", "--from", "2026-11-21", "--to", "2026-11-20")
    with pytest.raises(CommandError):
        call_command("stats_backfill", "--from", "2026-11-20", "--to", "2026-11-20", "--tenant", "nope")


def test_the_stats_page_is_for_admins_and_has_no_inline_script(client, alice, carol):
    client.force_login(alice)
    page = client.get("/admin/stats/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<script") == 2 and html.count("<script src=") == 2  # Chart.js and stats.js only
    assert "automation/vendor/chart.umd.min.js" in html and "stats/stats.js" in html
    assert 'id="heatmap"' in html and 'id="channel-chart"' in html
    client.force_login(carol)
    assert client.get("/admin/stats/").status_code == 302  # to the admin login


def test_page_feed_and_csv_export_follow_the_filters(client, alice, carol, cathy, django_capture_on_commit_callbacks):
    from anmei.stats.services.windows import rollup_days

    carol.nickname = "=HYPERLINK(1)"  # a name a spreadsheet would run as a formula
    carol.save(update_fields=["nickname"])
    with time_machine.travel(at("10:00"), tick=False):
        conversation = _conversation(cathy, consultant=carol, channel="web")
    _message_at(at("10:00"), conversation)
    rollup_days(tenant_id=cathy.tenant_id, days=[D])
    client.force_login(alice)
    feed = client.get("/admin/stats/data.json", {"from": D.isoformat(), "to": D.isoformat()})
    assert feed.status_code == 200
    body = feed.json()
    assert body["overview"]["conversations"]["total"] == 1
    assert body["trends"]["conversations"] == [{"t": D.isoformat(), "value": 1}]
    assert set(body["trends"]) == {
        "conversations",
        "valid_conversations",
        "customers",
        "first_response_avg_s",
        "csat_avg",
    }
    export = client.get("/admin/stats/export.csv", {"from": D.isoformat(), "to": D.isoformat(), "channel": "web"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["day", "tenant_id", "consultant_id", "consultant", "channel"]
    assert rows[1][:7] == [D.isoformat(), str(cathy.tenant_id), str(carol.id), "'=HYPERLINK(1)", "web", "1", "1"]
    assert len(rows) == 2
    bad = client.get("/admin/stats/data.json", {"from": "2026-11-21", "to": "2026-11-20"})
    assert_error(bad, 400)


def test_the_incremental_run_catches_up_from_its_watermark_after_an_outage(cathy):
    from anmei.stats.services.windows import rollup_recent

    with time_machine.travel(at("08:00"), tick=False):
        conversation = _conversation(cathy, status=Conversation.Status.WAITING)
    _message_at(at("08:00"), conversation)
    rollup_recent(tenant_id=cathy.tenant_id, now=at("08:30"))  # the last run before the outage
    _message_at(at("09:15"), conversation)  # the beat was down from 08:30 to 16:30
    _message_at(at("10:40"), conversation)

    result = rollup_recent(tenant_id=cathy.tenant_id, now=at("16:30"))

    assert result["hours"] == 12  # 05:00 (08:30 - 3 h) to 16:00
    rolled = dict(StatsHourly.objects.filter(tenant_id=cathy.tenant_id).values_list("local_hour", "customer_messages"))
    assert rolled == {8: 1, 9: 1, 10: 1}
    # nothing stored since: the next run only moves the watermark
    assert rollup_recent(tenant_id=cathy.tenant_id, now=at("20:30"))["hours"] == 0
    assert StatsHourly.objects.filter(tenant_id=cathy.tenant_id).count() == 3


@pytest.mark.parametrize(
    "fields, bad",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"business_hours_start": 9}, "business_hours_end"),
        ({"business_hours_start": 18, "business_hours_end": 9}, "business_hours_end"),
        ({"business_days": "0189"}, "business_days"),
    ],
)
def test_stats_settings_refuse_bad_zones_and_hours(tenant_a, fields, bad):
    from django.core.exceptions import ValidationError

    from anmei.stats.models import StatsSettings

    with pytest.raises(ValidationError) as caught:
        StatsSettings(tenant=tenant_a, **fields).full_clean()
    assert bad in caught.value.message_dict


def test_a_tenant_whose_rollup_is_running_is_skipped_by_the_next_beat(tenant_a, tenant_b):
    from anmei.common.redis import get_redis, tenant_key
    from anmei.stats.models import StatsSettings
    from anmei.stats.services.windows import stats_rollup_tenants_recent

    held = get_redis().lock(tenant_key(tenant_a.id, "stats", "rollup"), timeout=60)
    assert held.acquire(blocking=False)

    assert stats_rollup_tenants_recent() == 1

    assert list(StatsSettings.objects.values_list("tenant_id", flat=True)) == [tenant_b.id]
    held.release()
    assert stats_rollup_tenants_recent() == 2


def test_hourly_series_follow_the_tenants_zone_across_a_dst_change(as_user, alice):
    from anmei.stats.models import StatsSettings

    StatsSettings.objects.create(tenant_id=alice.tenant_id, time_zone="Europe/Berlin")
    params = {"metric": "conversations", "granularity": "hour", "from": "2026-10-25", "to": "2026-10-25"}
    points = as_user(alice).get("/api/v1/stats/timeseries", params).json()["points"]
    assert len(points) == 25  # the clocks went back: 02:00 twice
    assert [p["t"] for p in points[1:4]] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    assert {p["value"] for p in points} == {0}


def test_an_api_key_with_stats_read_reads_the_figures_and_one_without_cannot(alice, tenant_a):
    from rest_framework.test import APIClient

    from anmei.apikeys.services import api_key_create

    _, stats_key = api_key_create(actor=alice, name="bi", scopes=["stats:read"])
    _, other_key = api_key_create(actor=alice, name="crm", scopes=["conversations:read"])
    params = {"from": D.isoformat(), "to": D.isoformat()}

    with_scope = APIClient(HTTP_AUTHORIZATION=f"Bearer {stats_key}")
    assert with_scope.get("/api/v1/stats/overview", params).json()["conversations"]["total"] == 0
    series = with_scope.get("/api/v1/stats/timeseries", {**params, "metric": "conversations", "granularity": "day"})
    assert series.status_code == 200
    without = APIClient(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    assert_error(without.get("/api/v1/stats/overview", params), 403)
