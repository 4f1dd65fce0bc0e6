"""The conversation knobs left GatewaySettings for conversations.ConversationSettings.

Backward-compatible for one release (docs/operations.md, "Upgrade"): the running release still
reads and writes these three columns, so they stay in the table. They get database defaults, so the
new release's inserts (which no longer name them) succeed, and they leave only the model state.
The release after this one drops them:
`ALTER TABLE bots_gatewaysettings DROP COLUMN auto_reply_enabled, DROP COLUMN away_message,
DROP COLUMN inactivity_timeout_minutes` (a RunSQL with no state operations).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0002_chinese_verbose_names"),
        ("conversations", "0005_conversation_settings"),  # the values are copied before they leave
    ]

    operations = [
        migrations.AlterField(
            model_name="gatewaysettings",
            name="auto_reply_enabled",
            field=models.BooleanField(default=True, db_default=True),
        ),
        migrations.AlterField(
            model_name="gatewaysettings",
            name="away_message",
            field=models.TextField(
                default="您好，客服暂时不在线，我们会尽快回复您。", db_default="您好，客服暂时不在线，我们会尽快回复您。"
            ),
        ),
        migrations.AlterField(
            model_name="gatewaysettings",
            name="inactivity_timeout_minutes",
            field=models.PositiveIntegerField(default=30, db_default=30),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="gatewaysettings", name="auto_reply_enabled"),
                migrations.RemoveField(model_name="gatewaysettings", name="away_message"),
                migrations.RemoveField(model_name="gatewaysettings", name="inactivity_timeout_minutes"),
            ],
            database_operations=[],
        ),
    ]
