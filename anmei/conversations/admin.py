from django.contrib import admin

from anmei.audit.admin import AuditedAdminMixin
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationSettings,
    Message,
    RoutingSettings,
)


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("created_at", "sender_type", "sender", "type", "content")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class EventInline(admin.TabularInline):
    model = ConversationEvent
    extra = 0
    fields = ("created_at", "action", "from_status", "to_status", "actor")
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    list_display = ("id", "tenant", "customer", "consultant", "channel", "status", "created_at", "last_message_at")
    list_filter = ("status", "channel", "tenant")
    search_fields = ("customer__username", "customer__nickname", "consultant__username")
    raw_id_fields = ("customer", "consultant", "transfer_to")
    date_hierarchy = "created_at"
    inlines = (MessageInline, EventInline)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "tenant", "conversation_number", "sender_type", "type", "short_content", "created_at")
    list_filter = ("sender_type", "type", "tenant")
    search_fields = ("content", "external_id")
    date_hierarchy = "created_at"

    @admin.display(description="会话", ordering="conversation_id")
    def conversation_number(self, obj):
        return f"#{obj.conversation_id}"

    @admin.display(description="内容")
    def short_content(self, obj):
        """Up to 200 characters; the column wraps them as lines (anmei/common/static/common/admin.css)."""
        return obj.content if len(obj.content) <= 200 else obj.content[:200] + "…"


@admin.register(ConversationEvent)
class ConversationEventAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "tenant", "conversation", "action", "from_status", "to_status", "actor", "created_at")
    list_filter = ("action", "to_status", "tenant")
    search_fields = ("conversation__id",)


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(AuditedAdminMixin, TenantScopedAdmin):
    audit_object_type = "routing"
    list_display = ("tenant", "mode", "capacity_per_consultant", "updated_at")


@admin.register(ConversationSettings)
class ConversationSettingsAdmin(TenantScopedAdmin):
    list_display = ("tenant", "auto_reply_enabled", "inactivity_timeout_minutes", "updated_at")
