from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models

from anmei.conversations.business_hours import business_hours_error


class Conversation(models.Model):
    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        ACTIVE = "active", "Active"
        TRANSFERRING = "transferring", "Transferring"
        ENDED = "ended", "Ended"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="conversations")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    consultant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    transfer_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incoming_transfers",
        help_text="consultant asked to take the conversation while it is transferring",
    )
    bot_name = models.CharField(max_length=64, blank=True)
    channel = models.CharField(max_length=32, default="web", help_text="web, or the IM platform")
    bot_instance_id = models.BigIntegerField(null=True, blank=True, help_text="bot instance for IM conversations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    is_default = models.BooleanField(default=False, help_text="created by registration automation")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "会话"
        verbose_name_plural = "会话"
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-updated_at"]),
            models.Index(fields=["tenant", "customer", "-updated_at"]),
            models.Index(fields=["tenant", "consultant", "-updated_at"]),
        ]
        constraints = [
            # One registration-created conversation per customer, ever (automation idempotency).
            models.UniqueConstraint(
                fields=["customer"], condition=models.Q(is_default=True), name="conversation_one_default_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer} ({self.status})"

    HELD_STATUSES = (Status.ACTIVE, Status.TRANSFERRING)

    class Answerer(models.TextChoices):
        CONSULTANT = "consultant"  # the consultant holding it: only their console gets the message
        CONSOLE = "console"  # waiting, consultants online: every console sees it, one will claim
        AUTO_REPLY = "auto_reply"  # waiting, nobody online (or presence unknown): the bot answers
        NOBODY = "nobody"  # ended: no message joins it (a new one opens a new conversation)

    @property
    def is_held(self) -> bool:
        """A consultant holds it: claimed (active) or being handed to a colleague (transferring)."""
        return self.status in self.HELD_STATUSES and self.consultant_id is not None

    def answerer(self, *, consultants_online: bool) -> str:
        """Who answers a customer message in this conversation: the one rule every path asks.

        The message route (push to a consultant or the console), the auto-reply hand-off and the
        auto-reply job, speech to text's push and hand-off ask this; the bot webhook's one-statement
        SQL (anmei.bots.services.inbound) writes the auto-reply job under the same condition with
        presence unknown (`consultants_online=False`: the job re-asks when it runs), and
        tests/test_answerer.py runs every status × holder × presence case through both.
        """
        if self.status == self.Status.ENDED:
            return self.Answerer.NOBODY
        if self.is_held:
            return self.Answerer.CONSULTANT
        return self.Answerer.CONSOLE if consultants_online else self.Answerer.AUTO_REPLY


class Message(models.Model):
    class SenderType(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        CONSULTANT = "consultant", "Consultant"
        BOT = "bot", "Bot"
        SYSTEM = "system", "System"

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        VOICE = "voice", "Voice"
        FILE = "file", "File"
        SYSTEM = "system", "System"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender_type = models.CharField(max_length=16, choices=SenderType.choices)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_messages"
    )
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TEXT)
    content = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(
        max_length=128, blank=True, help_text="idempotency key: a bot's message_id, or an automation step key"
    )
    is_blocked = models.BooleanField(
        default=False, help_text="sender was on the blacklist: stored for audit, never routed or answered"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "消息"
        verbose_name_plural = "消息"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"]),
            models.Index(fields=["tenant", "created_at"]),
            # Search pages newest first with a (created_at, id) cursor.
            models.Index(fields=["tenant", "-created_at", "-id"], name="message_search_cursor_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="message_external_id_unique_per_tenant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sender_type}:{self.type} in #{self.conversation_id}"

    @property
    def delivery(self) -> dict | None:
        """`{status: pending|sent|failed, attempts}` of a message to an IM customer, else None.

        Everything the platform says in a bot's conversation (consultant replies, welcomes,
        auto-replies) goes out through the bot (anmei.bots, one BotDelivery row per message, made
        by the first attempt: until then it is pending). A suppressed delivery (the customer is
        blacklisted, the bot is gone) did not reach them: failed. Readers that list many messages
        select_related("conversation", "bot_delivery").
        """
        if self.sender_type == self.SenderType.CUSTOMER or self.type == self.Type.SYSTEM or self.is_blocked:
            return None
        if not self.conversation.bot_instance_id:
            return None
        try:
            row = self.bot_delivery
        except ObjectDoesNotExist:
            return {"status": "pending", "attempts": 0}
        return {"status": row.status if row.status in ("pending", "sent") else "failed", "attempts": row.attempts}


class ConversationEvent(models.Model):
    """Every status change of a conversation: who, from, to, when."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="conversation_events")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # what staff write for each other (a transfer's hand-off note): never shown to the customer
    STAFF_ONLY_DETAILS = ("note",)

    class Meta:
        verbose_name = "会话事件"
        verbose_name_plural = "会话事件"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"])]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.from_status or '∅'}→{self.to_status} ({self.action})"

    def details_for(self, *, staff: bool) -> dict:
        """The details a viewer may see: staff everything, the customer no staff-only entries."""
        details = self.details if isinstance(self.details, dict) else {}
        if staff:
            return details
        return {key: value for key, value in details.items() if key not in self.STAFF_ONLY_DETAILS}


class RoutingSettings(models.Model):
    """How a tenant's waiting conversations reach consultants (docs/routing.md).

    Read at run time; a tenant without a row uses the unsaved defaults (manual routing, no hours).
    """

    class Mode(models.TextChoices):
        MANUAL = "manual", "手动认领"
        ROUND_ROBIN = "round_robin", "轮流分配"
        LEAST_BUSY = "least_busy", "最空闲优先"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="routing_settings")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.MANUAL)
    capacity_per_consultant = models.PositiveIntegerField(
        default=5, help_text="open conversations one consultant may hold before automatic routing skips them"
    )
    business_hours = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"timezone": "Asia/Shanghai", "weekly": {"mon": [["09:00", "12:00"]]}, "holidays": ["YYYY-MM-DD"]}',
    )
    off_hours_message = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "分配设置"
        verbose_name_plural = "分配设置"

    def __str__(self) -> str:
        return f"routing settings of tenant {self.tenant_id}"

    def clean(self) -> None:
        error = business_hours_error(self.business_hours)
        if error:
            raise ValidationError({"business_hours": error})


class ConversationSettings(models.Model):
    """Per-tenant knobs of the conversations themselves, read at run time: change them in admin, no restart.

    They govern web-chat and IM conversations alike (auto-replies, the away message, ending idle
    conversations), so they live here rather than with the bots, which keep only their delivery
    retries (`bots.GatewaySettings`). A row is created with the defaults the first time a tenant
    needs one; reads of a tenant without a row see the unsaved defaults.
    """

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="conversation_settings")
    auto_reply_enabled = models.BooleanField(
        default=True, help_text="answer a customer nobody is online for (keyword rule, AI agent, away message)"
    )
    away_message = models.TextField(
        default="您好，客服暂时不在线，我们会尽快回复您。",
        help_text="sent once per conversation when nobody is online and no rule or agent answers",
    )
    inactivity_timeout_minutes = models.PositiveIntegerField(
        default=30, help_text="an open conversation with no message for this long is ended by the beat task"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "会话设置"
        verbose_name_plural = "会话设置"

    def __str__(self) -> str:
        return f"conversation settings of tenant {self.tenant_id}"
