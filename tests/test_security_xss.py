"""User data is never HTML in the console, and every HTML page carries a strict CSP.

The browser test drives Debian's Chromium (Playwright) against the live server: a customer named
`<img src=x onerror=...>` shows up as text in the consultant console and no script runs.
"""

from __future__ import annotations

import pytest

from anmei.accounts.models import User
from anmei.conversations.models import Conversation
from tests.conftest import PASSWORD, make_user

EVIL = '<img src=x onerror="window.__xss = (window.__xss || 0) + 1">'


def _csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.django_db
def test_every_html_page_has_a_csp_without_inline_script(client, alice):
    client.force_login(alice)
    pages = ["/", "/console/", "/admin/", "/admin/accounts/user/", "/api/docs/", "/admin/registration-automation/"]
    responses = {page: client.get(page) for page in pages}
    assert {page: r.status_code for page, r in responses.items()} == dict.fromkeys(pages, 200)
    for page, response in responses.items():
        policy = _csp(response)
        assert policy["script-src"] == "'self'", page
        assert (policy["object-src"], policy["frame-ancestors"]) == ("'none'", "'none'"), page
        # no inline <script> left to allow: every script tag has a src or is inert JSON data
        html = response.content.decode()
        inline = [
            tag
            for tag in html.split("<script")[1:]
            if "src=" not in tag.split(">", 1)[0] and "application/json" not in tag.split(">", 1)[0]
        ]
        assert inline == [], page


@pytest.fixture
def evil_conversation(tenant_a, carol):
    customer = make_user(tenant_a, "evil", User.Role.CUSTOMER, nickname=EVIL)
    return Conversation.objects.create(tenant=tenant_a, customer=customer, channel="web", bot_name="Anmei")


@pytest.mark.browser
def test_console_renders_a_hostile_nickname_as_text_and_runs_no_script(web_server, browser_context, evil_conversation):
    from playwright.sync_api import expect

    # given a consultant on the console (the real ASGI server: the list arrives over the WebSocket)
    page = browser_context().new_page()
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{web_server.url}/console/")
    page.fill("#login-form [name=tenant]", "alpha")
    page.fill("#login-form [name=username]", "carol")
    page.fill("#login-form [name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")

    # when the waiting conversation of the customer named like markup is listed
    page.click(".tab[data-tab=all]")
    row = page.locator(f'#conv-list li[data-conversation-id="{evil_conversation.id}"]')
    expect(row).to_contain_text(EVIL)

    # then the nickname is literal text, no <img> was created and its handler never ran
    assert page.evaluate("document.querySelectorAll('#conv-list img').length") == 0
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss === undefined") is True
    assert violations == []  # the console's own scripts are static files the CSP allows
