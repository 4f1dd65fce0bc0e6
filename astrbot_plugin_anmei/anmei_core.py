"""The plugin's pure parts: signature checks, the blacklist cache, the outbox, the session map.

Standard library only (no AstrBot import), so the project's own test suite checks them without an
AstrBot installation. Everything durable lives in one SQLite file under the plugin's data dir; see
the README ("Connect WeChat through AstrBot") for how the parts fit together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SIGNATURE_WINDOW_SECONDS = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the header Anmei signs its pushes with."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SignatureVerifier:
    """Check `X-Anmei-Timestamp` / `X-Anmei-Signature` before a push changes anything.

    A signature is good once: it must match, its timestamp must be within the window of now, and
    a signature already seen inside the window is a replay. Seen signatures are forgotten once
    their timestamp has left the window (a replay that old fails the timestamp check anyway).
    """

    def __init__(
        self, secret: str, *, window: float = SIGNATURE_WINDOW_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.window = window
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> str:
        """Return "" when the request is authentic and fresh, else why not (never the expected value)."""
        if not self.secret:
            return "plugin has no bot_secret configured"
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            ts = float(timestamp)
        except ValueError:
            return "bad timestamp"
        now = self.clock()
        if abs(now - ts) > self.window:
            return "stale timestamp"
        if not hmac.compare_digest(signature.strip(), sign(self.secret, timestamp, body)):
            return "bad signature"
        with self._lock:
            for key, seen_ts in list(self._seen.items()):
                if abs(now - seen_ts) > self.window:
                    del self._seen[key]
            if signature in self._seen:
                return "replayed signature"
            self._seen[signature] = ts
        return ""


def parse_time(value: Any) -> float | None:
    """An ISO-8601 date-time (Anmei's `expires_at`) as a UNIX timestamp; None for none/garbage."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS blacklist (
    platform TEXT NOT NULL, user_id TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', expires_at REAL,
    PRIMARY KEY (platform, user_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL,
    file BLOB, filename TEXT, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    platform TEXT NOT NULL, user_id TEXT NOT NULL, origin TEXT NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
);
CREATE TABLE IF NOT EXISTS delivered (message_id TEXT PRIMARY KEY, at REAL NOT NULL);
"""


class Store:
    """The plugin's SQLite file; one connection shared under a lock (calls are short)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a queued forward survives a power cut
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def meta_get(self, key: str, default: str = "") -> str:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def meta_set(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


class Blacklist:
    """The cached blacklist: a memory dict backed by the store, versioned like Anmei's.

    `replace` installs a full pull; `apply` takes one signed push and answers
    - "applied": it was the next version,
    - "duplicate": already applied (a retried push): nothing changes, acknowledge it,
    - "gap": a version is missing: the caller does a full pull (which also covers this one).
    """

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.entries: dict[tuple[str, str], float | None] = {}
        self.version = 0
        self.load()

    def load(self) -> None:
        with self.store.lock:
            rows = self.store.db.execute("SELECT platform, user_id, expires_at FROM blacklist").fetchall()
            self.version = int(self.store.meta_get("blacklist_version", "0"))
        self.entries = {(p, u): e for p, u, e in rows}

    def is_blocked(self, platform: str, user_id: str) -> bool:
        if (platform, user_id) not in self.entries:
            return False
        expires_at = self.entries[(platform, user_id)]
        return expires_at is None or expires_at > self.clock()

    def replace(self, version: int, entries: Iterable[dict[str, Any]]) -> None:
        rows = [
            (str(e["platform"]), str(e["user_id"]), str(e.get("reason") or ""), parse_time(e.get("expires_at")))
            for e in entries
        ]
        with self.store.lock:
            self.store.db.execute("BEGIN IMMEDIATE")
            try:
                self.store.db.execute("DELETE FROM blacklist")
                self.store.db.executemany("INSERT OR REPLACE INTO blacklist VALUES (?, ?, ?, ?)", rows)
                self.store.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('blacklist_version', ?)", (str(int(version)),)
                )
                self.store.db.execute("COMMIT")
            except BaseException:
                self.store.db.execute("ROLLBACK")
                raise
        self.entries = {(p, u): e for p, u, _, e in rows}
        self.version = int(version)

    def apply(self, version: int, action: str, entries: Iterable[dict[str, Any]]) -> str:
        version = int(version)
        if version <= self.version:
            return "duplicate"
        if version != self.version + 1:
            return "gap"
        entries = list(entries)
        with self.store.lock:
            self.store.db.execute("BEGIN IMMEDIATE")
            try:
                for e in entries:
                    key = (str(e["platform"]), str(e["user_id"]))
                    if action == "add":
                        self.store.db.execute(
                            "INSERT OR REPLACE INTO blacklist VALUES (?, ?, ?, ?)",
                            (*key, str(e.get("reason") or ""), parse_time(e.get("expires_at"))),
                        )
                    elif action == "remove":
                        self.store.db.execute("DELETE FROM blacklist WHERE platform = ? AND user_id = ?", key)
                    else:
                        raise ValueError(f"unknown action {action!r}")
                self.store.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('blacklist_version', ?)", (str(version),)
                )
                self.store.db.execute("COMMIT")
            except BaseException:
                self.store.db.execute("ROLLBACK")
                raise
        for e in entries:
            key = (str(e["platform"]), str(e["user_id"]))
            if action == "add":
                self.entries[key] = parse_time(e.get("expires_at"))
            else:
                self.entries.pop(key, None)
        self.version = version
        return "applied"


@dataclass
class OutboxItem:
    id: int
    kind: str  # "message" (POST /api/v1/bot/messages) or "event" (POST /api/v1/bot/events)
    payload: dict[str, Any]
    file: bytes | None
    filename: str | None


class Outbox:
    """Forwards and reports Anmei has not acknowledged yet, on disk, sent in the order they were put.

    An item is deleted only after Anmei's 2xx; a crash between the two sends it again, which the
    `message_id` (forwards) makes harmless. A refusal (a 4xx other than 401/403/408/425/429) is
    dropped too: sending it again would be refused again and would block everything behind it.
    401/403 are kept: a rotated token is fixed in the plugin's config, and nothing is lost meanwhile.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._drain_lock = threading.Lock()

    def put(self, kind: str, payload: dict[str, Any], file: bytes | None = None, filename: str | None = None) -> int:
        with self.store.lock:
            cursor = self.store.db.execute(
                "INSERT INTO outbox (kind, payload, file, filename, created_at) VALUES (?, ?, ?, ?, ?)",
                (kind, json.dumps(payload, ensure_ascii=False), file, filename, time.time()),
            )
            return int(cursor.lastrowid)

    def count(self) -> int:
        with self.store.lock:
            return int(self.store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def head(self, limit: int = 50) -> list[OutboxItem]:
        with self.store.lock:
            rows = self.store.db.execute(
                "SELECT id, kind, payload, file, filename FROM outbox ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [OutboxItem(i, k, json.loads(p), f, n) for i, k, p, f, n in rows]

    def delete(self, item_id: int) -> None:
        with self.store.lock:
            self.store.db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))


def outcome_of(status: int | None) -> str:
    """What a send's HTTP status means for the outbox: "done", "drop" (refused for good) or "keep"."""
    if status is None:
        return "keep"
    if 200 <= status < 300:
        return "done"
    if status in (408, 425, 429) or status >= 500 or status in (401, 403):
        return "keep"  # down, busy, or credentials being rotated: try again later
    return "drop"


async def drain(outbox: Outbox, send: Callable[[OutboxItem], Any], *, batch: int = 50) -> tuple[int, bool]:
    """Send queued items oldest first until the outbox is empty or a send fails.

    `send(item)` is awaited and returns an HTTP status (None for a network error). Stops at the
    first "keep" so that order is preserved. Returns (items sent or dropped, whether it emptied).
    """
    done = 0
    while True:
        items = outbox.head(batch)
        if not items:
            return done, True
        for item in items:
            status = await send(item)
            if outcome_of(status) == "keep":
                return done, False
            outbox.delete(item.id)
            done += 1


class Sessions:
    """Anmei's `(platform, user_id)` → AstrBot's unified message origin, so replies find the chat."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str], str] = {}

    def remember(self, platform: str, user_id: str, origin: str) -> None:
        if self._cache.get((platform, user_id)) == origin:
            return
        with self.store.lock:
            self.store.db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)", (platform, user_id, origin, time.time())
            )
        self._cache[(platform, user_id)] = origin

    def origin(self, platform: str, user_id: str) -> str | None:
        if (platform, user_id) in self._cache:
            return self._cache[(platform, user_id)]
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT origin FROM sessions WHERE platform = ? AND user_id = ?", (platform, user_id)
            ).fetchone()
        if row:
            self._cache[(platform, user_id)] = row[0]
        return row[0] if row else None


class Delivered:
    """Anmei message ids already handed to AstrBot: a retried `message/send` is acknowledged, not resent."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def seen(self, message_id: str) -> bool:
        with self.store.lock:
            row = self.store.db.execute("SELECT 1 FROM delivered WHERE message_id = ?", (message_id,)).fetchone()
        return row is not None

    def mark(self, message_id: str) -> None:
        with self.store.lock:
            self.store.db.execute("INSERT OR IGNORE INTO delivered VALUES (?, ?)", (message_id, time.time()))
