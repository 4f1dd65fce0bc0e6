"""Bot gateway writes: instances and credentials, inbound messages and events, outbound deliveries.

`bot_message_deliver(message_id=…)` is the contract other apps (registration automation) use to
send a stored message to an IM customer through their bot.
"""

from anmei.bots.services.inactivity import conversation_end_inactive  # noqa: F401
from anmei.bots.services.inbound import bot_event_record, bot_message_receive, im_customer_get_or_create  # noqa: F401
from anmei.bots.services.instances import (  # noqa: F401
    bot_create,
    bot_credentials_rotate,
    bot_heartbeat,
    bot_secret,
    gateway_settings_get_or_create,
    signed_post,
)
from anmei.bots.services.outbound import (  # noqa: F401
    auto_reply_create,
    auto_reply_if_unanswered,
    auto_reply_job_failed,
    auto_reply_schedule,
    bot_delivery_attempt,
    bot_delivery_job_failed,
    bot_message_deliver,
)
