"""Small assertions shared by the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from channels.testing import WebsocketCommunicator


def assert_error(response, status: int, code: str | None = None) -> dict:
    """Assert the API.md error shape, the status, and (optionally) the code; return the error object."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def ws(path: str, ticket: str | None = None) -> WebsocketCommunicator:
    from anmei.asgi import application  # imported late: fixture plugins import this module early

    url = path if ticket is None else f"{path}?ticket={ticket}"
    return WebsocketCommunicator(application, url)


def poll(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Call `predicate` until it returns something truthy or `timeout` passes; return its last value.

    For state a worker, a sidecar or a fake server writes asynchronously: `assert poll(lambda: …)`.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def race(count: int, work: Callable[[int], Any], timeout: float = 30) -> list[Any]:
    """Run `work(0)` … `work(count - 1)` in `count` threads released together; return their results.

    For concurrent writers against a real database (transactional tests): each thread closes its own
    connection when done. Results come in the order the threads finished.
    """
    from django.db import connection

    barrier = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            barrier.wait()
            result = work(index)
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


async def console_open(user) -> WebsocketCommunicator:
    """Open a consultant's console socket with a fresh ticket and wait for `connection.ready`."""
    from asgiref.sync import sync_to_async

    from anmei.accounts.services import ws_ticket_issue

    communicator = ws("/ws/console/", await sync_to_async(ws_ticket_issue)(user=user))
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=3))["type"] == "connection.ready"
    return communicator


async def receive_until(
    communicator: WebsocketCommunicator, predicate: Callable[[dict], bool], limit: int = 50
) -> dict:
    """Return the first event that satisfies `predicate` among the next `limit` events."""
    for _ in range(limit):
        event = await communicator.receive_json_from(timeout=10)
        if predicate(event):
            return event
    raise AssertionError("event not received")
