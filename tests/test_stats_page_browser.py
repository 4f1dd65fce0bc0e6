"""/admin/stats/ in headless Chromium under a strict CSP (no inline script), with a screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_browser import ARTIFACTS
from tests.fixtures_stats import D

CHROMIUM = "/usr/bin/chromium"

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="apt-get install -y chromium fonts-noto-cjk (.ci/run does)")
def test_stats_page_draws_the_day_in_chromium(stats_day_committed, transactional_db, live_server):
    from django.test import Client
    from playwright.sync_api import sync_playwright

    day = stats_day_committed
    client = Client()
    client.force_login(day.alice)
    session = client.cookies["sessionid"].value
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1800}, locale="zh-CN")
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def with_csp(route):
                response = route.fetch()
                route.fulfill(response=response, headers={**response.headers, "content-security-policy": CSP})

            page.route("**/admin/stats/?*", with_csp)
            page.goto(f"{live_server.url}/admin/stats/?from={D.isoformat()}&to={D.isoformat()}")
            page.wait_for_selector('#stats-root[data-ready="1"]', timeout=20_000)

            assert page.text_content("#customers-total") == "5"
            assert page.text_content("#conversations-total") == "7 / 6"
            assert page.text_content("#resolution-rate") == "85.7%"
            assert page.text_content("#csat") == "3.5 / 5"
            assert page.eval_on_selector_all("canvas", "els => els.map(e => !!Chart.getChart(e))") == [True] * 5
            assert page.eval_on_selector_all("#heatmap td", "els => els.length") == 7 * 24
            assert page.text_content("#questions-table tr:nth-child(2) td") == "双眼皮恢复期多久"
            more = page.eval_on_selector_all("#more-table tr", "rows => rows.map(r => r.innerText)")
            assert "注册→7日内首条消息\t4 / 5（80.0%）" in more
            assert "回复时长 平均（6 次）\t2.3 min" in more
            # the page says when the words update (every incremental run; docs/metrics.md)
            assert page.text_content("#words-note") == "每 5 分钟随统计汇总更新"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "stats-page.png"  # for a person to look at (gitignored)
            page.screenshot(path=str(shot), full_page=True)

            # Filtered to Carol: every card and 更多指标 are hers; clinic-wide panels say they are
            page.goto(
                f"{live_server.url}/admin/stats/?from={D.isoformat()}&to={D.isoformat()}&consultant={day.carol.id}"
            )
            page.wait_for_selector('#stats-root[data-ready="1"]', timeout=20_000)
            assert page.text_content("#conversations-total") == "4 / 4"  # C2-C5: she claimed each
            assert page.text_content("#handle-time") == "12.0 min"  # 717.5 s: C3 only until Dave accepted it
            more = page.eval_on_selector_all("#more-table tr", "rows => rows.map(r => r.innerText)")
            assert "顾问间转接\t1" in more and "已结束会话\t3" in more
            assert "注册→7日内首条消息\t全院指标，不按顾问或渠道区分" in more
            assert page.text_content("#words-note").startswith("全院统计，不按顾问或渠道区分")
            assert page.text_content("#questions-note").startswith("全院统计，不按顾问或渠道区分")
            Path("/tmp/shots-dayc").mkdir(parents=True, exist_ok=True)
            page.screenshot(path="/tmp/shots-dayc/stats-carol.png", full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
