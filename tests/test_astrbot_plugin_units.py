"""The AstrBot plugin's pure parts (astrbot_plugin_anmei/anmei_core.py), without AstrBot.

Signature checks agree with the signer Anmei uses for its pushes; blacklist pushes apply in
version order, idempotently, and survive a restart; the outbox keeps order and drops nothing.
"""

from __future__ import annotations

import asyncio

from anmei.bots.services.instances import sign as anmei_sign
from astrbot_plugin_anmei.anmei_core import (
    Blacklist,
    Delivered,
    Outbox,
    Sessions,
    SignatureVerifier,
    Store,
    drain,
    outcome_of,
    sign,
)

SECRET = "bsec_test"
BODY = b'{"config_type":"blacklist","action":"add","data":{},"version":1}'


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_plugin_signature_matches_anmei_signer():
    assert sign(SECRET, "1800000000", BODY) == anmei_sign(SECRET, "1800000000", BODY)


def test_signature_good_once_then_replay_refused():
    clock = Clock()
    verifier = SignatureVerifier(SECRET, clock=clock)
    ts = str(int(clock.now))
    signature = sign(SECRET, ts, BODY)
    assert verifier.verify(ts, signature, BODY) == ""
    assert verifier.verify(ts, signature, BODY) == "replayed signature"


def test_signature_refusals():
    clock = Clock()
    verifier = SignatureVerifier(SECRET, clock=clock)
    ts = str(int(clock.now))
    assert verifier.verify(ts, sign("other-secret", ts, BODY), BODY) == "bad signature"
    assert verifier.verify(ts, sign(SECRET, ts, BODY), BODY + b" ") == "bad signature"
    old = str(int(clock.now) - 301)
    assert verifier.verify(old, sign(SECRET, old, BODY), BODY) == "stale timestamp"
    future = str(int(clock.now) + 301)
    assert verifier.verify(future, sign(SECRET, future, BODY), BODY) == "stale timestamp"
    assert verifier.verify(None, None, BODY) == "missing signature headers"
    assert verifier.verify("soon", "sha256=00", BODY) == "bad timestamp"
    assert SignatureVerifier("").verify(ts, sign("", ts, BODY), BODY) == "plugin has no bot_secret configured"


def test_signature_within_window_accepted():
    clock = Clock()
    verifier = SignatureVerifier(SECRET, clock=clock)
    ts = str(int(clock.now) - 299)
    assert verifier.verify(ts, sign(SECRET, ts, BODY), BODY) == ""


def entry(user_id: str, expires_at: str | None = None) -> dict:
    return {"platform": "wecom", "user_id": user_id, "reason": "spam", "expires_at": expires_at}


def test_blacklist_versions_in_order_idempotent_gap(tmp_path):
    store = Store(str(tmp_path / "p.sqlite3"))
    blacklist = Blacklist(store)
    blacklist.replace(3, [entry("a")])
    assert blacklist.apply(4, "add", [entry("b")]) == "applied"
    assert blacklist.apply(4, "add", [entry("b")]) == "duplicate"  # a retried push
    assert blacklist.apply(3, "remove", [entry("a")]) == "duplicate"  # an old one changes nothing
    assert blacklist.is_blocked("wecom", "a")
    assert blacklist.apply(6, "remove", [entry("a")]) == "gap"  # v5 missing: the caller pulls
    assert blacklist.version == 4 and blacklist.is_blocked("wecom", "a")
    assert blacklist.apply(5, "remove", [entry("a")]) == "applied"
    assert not blacklist.is_blocked("wecom", "a") and blacklist.is_blocked("wecom", "b")
    assert not blacklist.is_blocked("qq", "b")


def test_blacklist_survives_restart(tmp_path):
    path = str(tmp_path / "p.sqlite3")
    store = Store(path)
    Blacklist(store).replace(7, [entry("a"), entry("b")])
    Blacklist(store).apply(8, "remove", [entry("b")])
    store.close()
    again = Blacklist(Store(path))
    assert again.version == 8
    assert again.is_blocked("wecom", "a") and not again.is_blocked("wecom", "b")


def test_blacklist_expiry_honoured(tmp_path):
    clock = Clock()
    blacklist = Blacklist(Store(str(tmp_path / "p.sqlite3")), clock=clock)
    blacklist.replace(1, [entry("a", "2027-01-15T08:00:00+00:00"), entry("b")])
    clock.now = 1_800_000_000.0  # 2027-01-15T08:00:00Z exactly: expired
    assert not blacklist.is_blocked("wecom", "a")
    clock.now -= 1
    assert blacklist.is_blocked("wecom", "a")
    assert blacklist.is_blocked("wecom", "b")


def test_outbox_drains_in_order_stops_at_failure_and_resumes(tmp_path):
    store = Store(str(tmp_path / "p.sqlite3"))
    outbox = Outbox(store)
    for i in range(5):
        outbox.put("message", {"message_id": f"m{i}"}, file=b"x" if i == 2 else None, filename="v.wav")
    sent: list[str] = []
    up = {"ok": True, "fail_at": "m3"}

    async def send(item):
        if not up["ok"] or item.payload["message_id"] == up["fail_at"]:
            up["ok"], up["fail_at"] = False, None
            return None  # Anmei went away
        sent.append(item.payload["message_id"])
        return 202

    done, emptied = asyncio.run(drain(outbox, send))
    assert (done, emptied) == (3, False) and sent == ["m0", "m1", "m2"]
    assert outbox.count() == 2
    store.close()
    outbox = Outbox(Store(str(tmp_path / "p.sqlite3")))  # the instance restarted meanwhile
    up["ok"] = True
    done, emptied = asyncio.run(drain(outbox, send))
    assert (done, emptied) == (2, True) and sent == ["m0", "m1", "m2", "m3", "m4"]


def test_outbox_keeps_media_bytes(tmp_path):
    outbox = Outbox(Store(str(tmp_path / "p.sqlite3")))
    outbox.put("message", {"type": "voice"}, file=b"RIFF\x00\x01", filename="v.wav")
    (item,) = outbox.head()
    assert item.file == b"RIFF\x00\x01" and item.filename == "v.wav" and item.kind == "message"


def test_outbox_outcomes():
    assert outcome_of(202) == "done"
    assert outcome_of(None) == outcome_of(503) == outcome_of(429) == outcome_of(401) == "keep"
    assert outcome_of(400) == "drop"  # refused for good: would block the queue forever


def test_sessions_and_delivered_persist(tmp_path):
    path = str(tmp_path / "p.sqlite3")
    store = Store(path)
    Sessions(store).remember("wecom", "u1", "webchat:FriendMessage:webchat!u1!s1")
    Delivered(store).mark("42")
    store.close()
    store = Store(path)
    assert Sessions(store).origin("wecom", "u1") == "webchat:FriendMessage:webchat!u1!s1"
    assert Sessions(store).origin("wecom", "u2") is None
    assert Delivered(store).seen("42") and not Delivered(store).seen("43")
