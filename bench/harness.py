"""What the stack benches share: the preflight (Django on PostgreSQL, Redis reachable), ports, percentiles."""

from __future__ import annotations

import socket
import time


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0 < q < 1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def django_on_postgres_with_redis(name: str) -> bool:
    """Set Django up; print why and return False when the bench cannot give meaningful figures."""
    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print(f"{name}: skipped — set DATABASE_URL to a scratch PostgreSQL database (SQLite serialises writers)")
        return False
    try:
        from anmei.common.redis import get_redis

        get_redis().ping()
    except Exception as exc:  # noqa: BLE001 - without the broker there is nothing to measure
        print(f"{name}: skipped — Redis at REDIS_URL is unreachable ({type(exc).__name__})")
        return False
    return True


def http_load(
    port: int,
    path: str,
    *,
    token: str,
    concurrency: int,
    total: int,
    body=None,
    expect: int = 200,
) -> dict:
    """Send `total` requests over `concurrency` keep-alive HTTP/1.1 connections; throughput and latency.

    A minimal asyncio client on raw sockets: a `requests` thread per connection spent as much CPU as
    the server on this 2-core machine and capped what could be measured. A connection the server
    closes (`Connection: close`) is reopened for the next request, inside that request's time.
    `body(i)` gives request i's JSON body (POST); without it the requests are GETs.
    """
    import asyncio
    import json

    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def read_response(reader) -> tuple[int, bool]:
        """Read one response; return its status and whether the server keeps the connection open."""
        status = int((await reader.readline()).split()[1])
        length, chunked, keep = 0, False, True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep = False
        if not chunked:
            await reader.readexactly(length)
            return status, keep
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
        return status, keep

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        try:
            while (i := next(counter, None)) is not None:
                if body is None:
                    request = f"GET {path} HTTP/1.1\r\n{head}\r\n".encode()
                else:
                    data = json.dumps(body(i)).encode()
                    request = (
                        f"POST {path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n"
                    ).encode() + data
                start = time.perf_counter()
                if writer is None:  # the server closed the last one (no keep-alive): reconnect, timed
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status, keep = await read_response(reader)
                latencies.append((time.perf_counter() - start) * 1000)
                errors += status != expect
                if not keep:
                    writer.close()
                    writer = None
        finally:
            if writer is not None:
                writer.close()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(concurrency)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    return {"rps": total / elapsed, "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95), "errors": errors}
