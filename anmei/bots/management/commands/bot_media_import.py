"""`manage.py bot_media_import [--tenant ID] [--root DIR] [--dry-run]`: round-one uploads into the media service."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from anmei.bots.services.legacy_media import bot_media_import


class Command(BaseCommand):
    help = (
        "Store the plain files the bot webhook wrote before the media service (BOT_MEDIA_ROOT) as encrypted "
        "media, transcribe the voice among them, and delete the plain copies. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", type=int, default=None, help="only this tenant's messages")
        parser.add_argument("--root", default=None, help="the old upload directory (default: BOT_MEDIA_ROOT)")
        parser.add_argument("--dry-run", action="store_true", help="count what would be imported, change nothing")

    def handle(self, *args, tenant, root, dry_run, **options):
        counts = bot_media_import(root=root, tenant_id=tenant, dry_run=dry_run)
        self.stdout.write(" ".join(f"{name}={value}" for name, value in counts.items()))
