"""Work around kombu 5.7.0 crashing the worker on a Redis restart.

When the broker connection drops, Celery closes the consumer's connection: kombu disconnects the
channel's Redis pools and the transport lets go of its connection info (`transport.client = None`).
Anything that still talks to Redis through that channel afterwards builds a new pool from
`Channel._connparams`, which reads `self.connection.client.hostname` and raises
`AttributeError: 'NoneType' object has no attribute 'hostname'`. Three paths get there:

- `Channel.close` → `QoS.restore_unacked` (putting unacked messages back),
- a late-ack task that finishes during the outage: `QoS.ack` → `_remove_from_indices`,
- a task rejected or requeued then: `QoS.reject` (→ `restore_by_tag`).

AttributeError is not a connection error, so `Message.ack_log_error`/`reject_log_error` let it
through and Celery reports "Unrecoverable error": the worker exits instead of reconnecting.
kombu 5.7.0 is the newest release on the index, and its `_connparams` has no guard (checked
against the installed source; kombu issues #582 and #970 show the same trace on older releases).

The fix sits at the root, `_connparams`: a channel whose transport has no connection raises
`redis.exceptions.ConnectionError`, which every caller already treats as the broker being away
(ack/reject log it and go on; the consumer reconnects). An unacknowledged message stays in kombu's
`unacked` hash and is restored after the visibility timeout; every task of ours is a durable job
whose lease makes a redelivery harmless, and whose row the jobs sweep re-sends if it was lost.
"""

from __future__ import annotations

import logging

from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger("anmei.celery")

_applied = False


class ChannelConnectionClosed(RedisConnectionError):
    """The channel's transport let go of its connection (the broker went away)."""


def apply() -> None:
    global _applied
    if _applied:
        return
    from kombu.transport import redis as kombu_redis

    original_connparams = kombu_redis.Channel._connparams

    def _connparams(self, asynchronous=False):
        transport = getattr(self, "connection", None)
        if transport is None or getattr(transport, "client", None) is None:
            raise ChannelConnectionClosed("the broker connection of this channel is closed")
        return original_connparams(self, asynchronous=asynchronous)

    original_restore = kombu_redis.QoS.restore_unacked

    def restore_unacked(self, client=None):
        transport = getattr(self.channel, "connection", None)
        if client is None and getattr(transport, "client", None) is None:
            logger.warning(
                "broker connection already closed: unacked messages stay in Redis for redelivery",
                extra={"messages": len(self._delivered)},
            )
            self._delivered.clear()
            return None
        return original_restore(self, client)

    kombu_redis.Channel._connparams = _connparams
    kombu_redis.QoS.restore_unacked = restore_unacked
    _applied = True
