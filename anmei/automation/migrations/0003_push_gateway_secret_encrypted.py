"""Issue 8 §12: the push gateway secret is stored encrypted (anmei.common.crypto), like the others."""

from django.db import migrations, models


def encrypt_existing(apps, schema_editor):
    from anmei.common.crypto import encrypt

    AutomationSettings = apps.get_model("automation", "AutomationSettings")
    for row in AutomationSettings.objects.exclude(push_gateway_secret=""):
        row.push_gateway_secret_encrypted = encrypt(row.push_gateway_secret)
        row.save(update_fields=["push_gateway_secret_encrypted"])


def decrypt_existing(apps, schema_editor):
    from anmei.common.crypto import decrypt

    AutomationSettings = apps.get_model("automation", "AutomationSettings")
    for row in AutomationSettings.objects.exclude(push_gateway_secret_encrypted=""):
        row.push_gateway_secret = decrypt(row.push_gateway_secret_encrypted)[:128]
        row.save(update_fields=["push_gateway_secret"])


class Migration(migrations.Migration):
    dependencies = [("automation", "0002_notification_backend_registry")]

    operations = [
        migrations.AddField(
            model_name="automationsettings",
            name="push_gateway_secret_encrypted",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.RemoveField(model_name="automationsettings", name="push_gateway_secret"),
    ]
