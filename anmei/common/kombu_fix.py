"""Work around a kombu 5.7.0 crash of the worker on a Redis restart (issue 10, R5).

When the broker connection drops, Celery closes the consumer's connection; kombu closes its
default channel, whose QoS then tries to put the unacknowledged messages back
(`Channel.close` → `QoS.restore_unacked_once` → `restore_unacked`). By then the transport has
already let go of its connection (`transport.client is None`), so building a Redis client for
the restore fails in `Channel._connparams` with `AttributeError: 'NoneType' object has no
attribute 'hostname'`. That is not a connection error, so Celery reports "Unrecoverable error"
and the worker exits instead of reconnecting. kombu 5.7.0 is the newest release on the index.

The restore cannot work at that moment anyway: the broker has just gone away. So when the
transport has no connection left, skip it: the messages stay in kombu's `unacked` hash (restored
after the visibility timeout), and every task of ours is a durable job whose row the jobs sweep
re-sends. The worker then reconnects as it does for any other connection loss.
Reported upstream as: "redis transport: QoS.restore_unacked after transport.client is None
crashes the worker on broker restart (kombu 5.7.0)".
"""

from __future__ import annotations

import logging

logger = logging.getLogger("anmei.celery")

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked

    def restore_unacked(self, client=None):
        transport = getattr(self.channel, "connection", None)
        if client is None and getattr(transport, "client", None) is None:
            logger.warning(
                "broker connection already closed: unacked messages stay in Redis for redelivery",
                extra={"messages": len(self._delivered)},
            )
            self._delivered.clear()
            return None
        return original(self, client)

    kombu_redis.QoS.restore_unacked = restore_unacked
    _applied = True
