"""Conversation settings move from the bots app to conversations: a new table, filled from the old one.

Backward-compatible for one release (docs/operations.md, "Upgrade"): this only adds a table and
copies into it; `bots.0003_conversation_settings_moved` keeps the old columns (with database
defaults, so the new release's inserts that no longer name them succeed) for the running release,
and the release after this one drops them.
"""

import django.db.models.deletion
from django.db import migrations, models


def copy_from_gateway_settings(apps, schema_editor):
    """One ConversationSettings row per GatewaySettings row, with the same three values (idempotent)."""
    GatewaySettings = apps.get_model("bots", "GatewaySettings")
    ConversationSettings = apps.get_model("conversations", "ConversationSettings")
    for gateway in GatewaySettings.objects.all().iterator():
        ConversationSettings.objects.update_or_create(
            tenant_id=gateway.tenant_id,
            defaults={
                "auto_reply_enabled": gateway.auto_reply_enabled,
                "away_message": gateway.away_message,
                "inactivity_timeout_minutes": gateway.inactivity_timeout_minutes,
            },
        )


def copy_back_to_gateway_settings(apps, schema_editor):
    """Undo: the old release reads the bots columns again, so give them the values edited since."""
    GatewaySettings = apps.get_model("bots", "GatewaySettings")
    ConversationSettings = apps.get_model("conversations", "ConversationSettings")
    for row in ConversationSettings.objects.all().iterator():
        GatewaySettings.objects.update_or_create(
            tenant_id=row.tenant_id,
            defaults={
                "auto_reply_enabled": row.auto_reply_enabled,
                "away_message": row.away_message,
                "inactivity_timeout_minutes": row.inactivity_timeout_minutes,
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0002_chinese_verbose_names"),
        ("conversations", "0004_chinese_verbose_names"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ConversationSettings",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "auto_reply_enabled",
                    models.BooleanField(
                        default=True,
                        help_text="answer a customer nobody is online for (keyword rule, AI agent, away message)",
                    ),
                ),
                (
                    "away_message",
                    models.TextField(
                        default="您好，客服暂时不在线，我们会尽快回复您。",
                        help_text="sent once per conversation when nobody is online and no rule or agent answers",
                    ),
                ),
                (
                    "inactivity_timeout_minutes",
                    models.PositiveIntegerField(
                        default=30,
                        help_text="an open conversation with no message for this long is ended by the beat task",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "tenant",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversation_settings",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={"verbose_name": "会话设置", "verbose_name_plural": "会话设置"},
        ),
        migrations.RunPython(copy_from_gateway_settings, copy_back_to_gateway_settings),
    ]
