"""Celery tasks: bots (thin: load by id, call a service, retry/alert).

Attempts are counted in the database (BotDelivery.attempts), not in `self.request.retries`, so a
redelivered task (worker killed mid-send) does not reset the 5/15/60 s schedule.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.bots.deliver_message", bind=True, max_retries=None, acks_late=True)
def deliver_message(self, message_id: int) -> str:
    """Send one stored message to its IM customer through the bot callback (idempotent per message)."""
    from anmei.bots.services import bot_delivery_attempt

    outcome, countdown = bot_delivery_attempt(message_id=message_id)
    if outcome == "retry":
        raise self.retry(countdown=countdown)
    return outcome


@shared_task(name="workers.bots.auto_reply", acks_late=True)
def auto_reply(message_id: int) -> int | None:
    """Answer a customer message nobody is online for (rule → AI gateway → away message)."""
    from anmei.bots.services import auto_reply_create

    reply = auto_reply_create(message_id=message_id)
    return reply.id if reply else None


@shared_task(name="workers.bots.resume_deliveries", acks_late=True)
def resume_deliveries() -> int:
    """Beat: re-enqueue deliveries whose first enqueue was lost."""
    from anmei.bots.services import bot_deliveries_resume

    return bot_deliveries_resume()
