"""Bot gateway writes: instances and credentials, inbound messages and events, outbound deliveries.

Other apps send a stored message to an IM customer through its bot by scheduling the delivery
(`conversations.services.handoffs.message_deliver_schedule`); its job runs `bot_delivery_attempt`.
"""

from anmei.bots.services.blacklist_push import blacklist_bot_seen, bot_heartbeat_record  # noqa: F401
from anmei.bots.services.inbound import bot_event_record, bot_message_receive, im_customer_get_or_create  # noqa: F401
from anmei.bots.services.instances import (  # noqa: F401
    bot_create,
    bot_credentials_rotate,
    bot_heartbeat,
    bot_secret,
    bot_stale_sweep,
    gateway_settings_get_or_create,
    gateway_settings_update,
    signed_post,
)
from anmei.bots.services.outbound import (  # noqa: F401
    bot_delivery_attempt,
    bot_delivery_job_failed,
    bot_delivery_retry,
    delivery_changed_push,
)
