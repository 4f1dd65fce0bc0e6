"""Trigram GIN index for message keyword search (PostgreSQL only).

Django's `icontains` compiles to `UPPER("content"::text) LIKE UPPER(%s)` on PostgreSQL, so the index
is on that expression; pg_trgm splits Chinese text into trigrams too, so substrings of three or more
characters use it. SQLite has no such index and simply scans: results are the same.
"""

from django.db import migrations

INDEX = "message_content_upper_trgm"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON conversations_message USING gin (UPPER(content) gin_trgm_ops)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("conversations", "0002_message_blocked_search")]

    operations = [migrations.RunPython(forwards, backwards)]
