"""Call-log writing off the critical path: the pipeline enqueues a row, a writer thread inserts batches.

A tool call costs one `queue.put` instead of an INSERT round trip; the writer wakes every
`MCP_LOG_FLUSH_SECONDS` and inserts what queued up in batches of `MCP_LOG_BATCH_SIZE`; `stop()`
(called on SIGTERM/stdio EOF) drains the queue so no row is lost on a normal shutdown. Rows that
fail to insert (database briefly down) are kept and retried on the next flush, up to a bounded
backlog; a row that can never be inserted (its tenant or group deleted since) is dropped alone.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection

logger = logging.getLogger("mcp_server.calllog")

_MAX_BACKLOG = 50_000


class CallLogWriter:
    def __init__(self, *, batch_size: int | None = None, flush_seconds: float | None = None) -> None:
        self.batch_size = batch_size or settings.MCP_LOG_BATCH_SIZE
        self.flush_seconds = flush_seconds if flush_seconds is not None else settings.MCP_LOG_FLUSH_SECONDS
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._backlog: list[dict[str, Any]] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="mcp-calllog-writer", daemon=True)
                self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        """Queue one MCPCallLog row (a dict of model fields); never blocks, never touches the database."""
        if self._thread is None:
            self.start()
        self._queue.put(row)

    def stop(self, timeout: float = 10.0) -> None:
        """Flush everything queued and stop the thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        # Sleep a whole interval, then drain: a call's `record` never wakes this thread, so the
        # writer costs the serving threads no GIL hand-offs between flushes.
        try:
            while True:
                stopping = self._stopping.wait(self.flush_seconds)
                while True:
                    try:
                        self._backlog.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                    if len(self._backlog) >= self.batch_size and not self._flush():
                        break  # database unavailable: keep the rest queued for the next round
                if self._backlog:
                    self._flush()
                if stopping:
                    return
        finally:
            connection.close()

    def _flush(self) -> bool:
        from anmei.mcp_admin.models import MCPCallLog

        close_old_connections()
        batch, self._backlog = self._backlog, []
        try:
            MCPCallLog.objects.bulk_create([MCPCallLog(**row) for row in batch], batch_size=self.batch_size)
            return True
        except IntegrityError:
            # A row whose tenant or group was deleted since the call can never be stored; retrying
            # the batch would keep every other row out with it. Store the others one by one.
            connection.close()
            self._flush_one_by_one(batch)
            return True
        except Exception:
            logger.exception("mcp call log flush failed", extra={"rows": len(batch)})
            connection.close()
            self._backlog = (batch + self._backlog)[-_MAX_BACKLOG:]
            return False

    def _flush_one_by_one(self, batch: list[dict[str, Any]]) -> None:
        from anmei.mcp_admin.models import MCPCallLog

        dropped = 0
        for row in batch:
            try:
                MCPCallLog.objects.create(**row)
            except IntegrityError:
                dropped += 1
        logger.warning("mcp call log rows dropped", extra={"rows": dropped, "stored": len(batch) - dropped})


writer = CallLogWriter()
