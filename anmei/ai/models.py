"""AI gateway configuration and call records, one agent configuration per tenant."""

from __future__ import annotations

from django.db import models

from anmei.common.crypto import decrypt, encrypt

DEFAULT_AGENT_WELCOME_TEMPLATE = (
    "{nickname}，您好！欢迎来到安美智享！🌟\n"
    "我是您的专属AI咨询助手，很高兴为您服务。\n"
    "您可以随时向我咨询医美相关问题，获得个性化的美容建议。"
)


class AgentConfig(models.Model):
    """Which agent writes a tenant's AI texts; read on every call, so admin edits apply at once.

    Secrets (the provider key and the MCP group key the agent uses) are stored Fernet-encrypted
    and never shown back in full.
    """

    class Provider(models.TextChoices):
        LOCAL = "local", "Built-in local agent (template + MCP profile)"
        DIFY = "dify", "Dify app"
        OPENAI = "openai", "OpenAI-compatible chat completions"
        ASTRBOT = "astrbot", "The bot instance's own LLM (AstrBot llm/infer)"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="agent_config")
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.LOCAL)
    enabled = models.BooleanField(default=True)
    base_url = models.URLField(blank=True, help_text="Dify or OpenAI-compatible API root, e.g. https://api.dify.ai")
    app_id = models.CharField(max_length=128, blank=True, help_text="Dify app id (sent to MCP as the caller app id)")
    api_key_encrypted = models.TextField(blank=True, editable=False)
    model = models.CharField(max_length=128, blank=True, help_text="model name for OpenAI-compatible providers")
    timeout_seconds = models.FloatField(default=8.0, help_text="whole agent call, tool loop included")
    welcome_template = models.TextField(
        default=DEFAULT_AGENT_WELCOME_TEMPLATE,
        help_text="local agent's personalised template; {nickname} and {username} come from the MCP profile",
    )
    mcp_group_key_encrypted = models.TextField(blank=True, editable=False)
    breaker_threshold = models.PositiveIntegerField(default=5, help_text="consecutive failures that open the breaker")
    breaker_cooldown_seconds = models.PositiveIntegerField(default=30)
    # Session intelligence: summaries, suggestions, auto-replies (docs/architecture.md)
    context_token_budget = models.PositiveIntegerField(
        default=0, help_text="prompt tokens the context builder may use; 0 = the provider's default from settings"
    )
    stream = models.BooleanField(default=False, help_text="stream suggestions as suggestion.delta (OpenAI-compatible)")
    monthly_token_quota = models.PositiveBigIntegerField(
        default=0, help_text="tokens per calendar month (UTC); 0 = unlimited. 80 % alerts, 100 % falls back"
    )
    price_prompt_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    price_completion_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "智能体配置"
        verbose_name_plural = "智能体配置"

    def __str__(self) -> str:
        return f"{self.tenant} → {self.provider}{'' if self.enabled else ' (disabled)'}"

    @property
    def api_key(self) -> str:
        return decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = encrypt(value) if value else ""

    @property
    def mcp_group_key(self) -> str:
        return decrypt(self.mcp_group_key_encrypted) if self.mcp_group_key_encrypted else ""

    @mcp_group_key.setter
    def mcp_group_key(self, value: str) -> None:
        self.mcp_group_key_encrypted = encrypt(value) if value else ""


class AgentCall(models.Model):
    """One call to an agent — the LLM usage row: outcome, latency, tokens (the provider's figures, else
    counted with our offline tokenizer), cost (the provider's, else priced from the agent config)."""

    class Purpose(models.TextChoices):
        WELCOME = "welcome", "Welcome"
        REPLY = "reply", "Reply"
        SUMMARY = "summary", "Conversation summary"
        SUGGESTION = "suggestion", "Reply suggestions"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="agent_calls")
    provider = models.CharField(max_length=16)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    customer_id = models.BigIntegerField(null=True, blank=True)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    success = models.BooleanField()
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.FloatField(default=0)
    model = models.CharField(max_length=128, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    tool_calls = models.PositiveIntegerField(default=0)
    tokens_counted_locally = models.BooleanField(
        default=False, help_text="the provider reported no usage: counted with our offline tokenizer"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "智能体调用"
        verbose_name_plural = "智能体调用"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "provider", "-created_at"]),
            models.Index(fields=["tenant", "created_at"], name="agentcall_tenant_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.purpose} {'ok' if self.success else 'failed'}"


class ConversationContext(models.Model):
    """The rolling summary of a conversation's older turns, refreshed incrementally by the context builder.

    Turns up to `summarized_through_id` are folded into `summary`; newer turns are read verbatim.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="ai_context"
    )
    summary = models.TextField(blank=True)
    summarized_through_id = models.BigIntegerField(default=0)
    folded_messages = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"context of #{self.conversation_id} through {self.summarized_through_id}"


class ConversationSummary(models.Model):
    """One summary per conversation, written after the conversation ends."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    conversation = models.OneToOneField(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="ai_summary"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    main_issues = models.TextField(blank=True)
    solution = models.TextField(blank=True)
    evaluation = models.TextField(blank=True)
    follow_up = models.TextField(blank=True)
    keywords = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=128, blank=True, help_text='the model that wrote it, or "local-extractive"')
    error = models.CharField(max_length=500, blank=True)
    generation = models.PositiveIntegerField(default=1, help_text="bumped by a regenerate")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "会话小结"
        verbose_name_plural = "会话小结"

    def __str__(self) -> str:
        return f"summary of #{self.conversation_id} ({self.status})"

    def as_dict(self) -> dict:
        return {
            "main_issues": self.main_issues,
            "solution": self.solution,
            "evaluation": self.evaluation,
            "follow_up": self.follow_up,
        }


class CannedResponse(models.Model):
    """A tenant's standard reply (标准话术): typed by shortcode, suggested when its keywords match."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="canned_responses")
    shortcode = models.SlugField(max_length=64, allow_unicode=True)
    text = models.TextField()
    keywords = models.JSONField(default=list, blank=True, help_text="words that make it a suggestion")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "快捷回复"
        verbose_name_plural = "快捷回复"
        ordering = ["shortcode", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "shortcode"], name="canned_response_shortcode_per_tenant")
        ]

    def __str__(self) -> str:
        return f"/{self.shortcode}"
