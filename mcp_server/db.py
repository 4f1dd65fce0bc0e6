"""ORM work off the event loop: a bounded thread pool whose threads keep their database connection.

Each job checks its thread's connection before and after (`close_old_connections`), which drops
broken or over-age connections (CONN_MAX_AGE) without paying a reconnect on every call.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections

T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=settings.MCP_DB_THREADS, thread_name_prefix="mcp-db")
    return _executor


def _job(fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    close_old_connections()
    try:
        return fn(**kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run `fn(**kwargs)` in the ORM pool; cancelling the awaiting task abandons (not kills) the job."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_job, fn, kwargs))


def shutdown() -> None:
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False, cancel_futures=True)
        _executor = None
