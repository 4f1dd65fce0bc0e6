"""Chromium plays the Ogg/Opus rendition AMR/SILK voice gets (its own module: Playwright's sync API
and the async tests of test_media_play.py cannot share a module's event loop)."""

from __future__ import annotations

import pytest
from django.test import Client

from anmei.asr.audio import decode_to_16k_mono, pcm_to_ogg_opus
from anmei.media.links import media_url
from anmei.media.services import media_store, media_store_rendition

pytestmark = pytest.mark.django_db


def test_chromium_plays_the_rendition_of_silk_voice_through_its_signed_link(
    browser_context, tenant_a, media_dir, speech_silk
):
    # given a WeChat SILK voice message stored with its rendition, as the asr worker leaves it
    stored = media_store(tenant_id=tenant_a.id, kind="voice", upload=speech_silk)
    samples = decode_to_16k_mono(speech_silk, ext="silk")
    key = media_store_rendition(tenant_id=tenant_a.id, key=stored.key, suffix="play.ogg", data=pcm_to_ogg_opus(samples))
    link = media_url(tenant_id=tenant_a.id, key=key, mime="audio/ogg")

    # and the page's requests answered by the real media view (Range requests included)
    statuses = []

    def serve(route):
        path = route.request.url.removeprefix("http://anmei.test")
        if not path.startswith("/media/"):
            return route.fulfill(status=200, body="<!doctype html><title>play</title>", content_type="text/html")
        headers = {"HTTP_RANGE": route.request.headers["range"]} if "range" in route.request.headers else {}
        response = Client().get(path, **headers)
        statuses.append(response.status_code)
        return route.fulfill(
            status=response.status_code,
            body=response.getvalue(),
            headers={k: v for k, v in response.items() if k.lower() != "content-length"},
        )

    page = browser_context().new_page()
    page.route("http://anmei.test/**", serve)
    page.goto("http://anmei.test/")

    # when an <audio> element loads the link and Web Audio decodes its bytes
    played = page.evaluate(
        """async (url) => {
            const audio = new Audio();
            const loaded = new Promise((ok, fail) => {
                audio.onloadedmetadata = () => ok(audio.duration);
                audio.onerror = () => fail(new Error("audio error " + (audio.error && audio.error.code)));
            });
            const support = audio.canPlayType('audio/ogg; codecs="opus"');
            audio.src = url;
            const duration = await loaded;
            const bytes = await (await fetch(url)).arrayBuffer();
            const decoded = await new OfflineAudioContext(1, 1, 48000).decodeAudioData(bytes);
            return {support, duration, decoded: decoded.duration};
        }""",
        f"http://anmei.test{link}",
    )

    # then Chromium plays the type and both agree with the voice's length (~4.4 s)
    seconds = len(samples) / 16000
    assert played["support"] == "probably" and 206 in statuses  # it seeks with Range requests
    assert abs(played["duration"] - seconds) < 0.1 and abs(played["decoded"] - seconds) < 0.1, (played, seconds)
