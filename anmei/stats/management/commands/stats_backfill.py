"""`python manage.py stats_backfill --from YYYY-MM-DD --to YYYY-MM-DD [--tenant <slug>]`."""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from anmei.stats.services.windows import rollup_days
from anmei.tenants.models import Tenant


class Command(BaseCommand):
    help = "Re-roll statistics (hourly, daily, customers, hot words) for a range of local days."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", required=True, type=date.fromisoformat)
        parser.add_argument("--to", dest="date_to", required=True, type=date.fromisoformat)
        parser.add_argument("--tenant", help="a tenant slug (default: every approved tenant)")
        parser.add_argument("--no-words", action="store_true", help="skip hot words/questions (faster)")
        parser.add_argument(
            "--events",
            action="store_true",
            help="report the reporting events derived from the raw tables (every re-roll derives the missing ones)",
        )

    def handle(
        self, *args, date_from: date, date_to: date, tenant: str | None, no_words: bool, events: bool, **options
    ):
        if date_from > date_to:
            raise CommandError("--from must not be after --to")
        tenants = Tenant.objects.order_by("id")
        tenants = tenants.filter(slug=tenant) if tenant else tenants.filter(status=Tenant.Status.APPROVED)
        tenant_ids = list(tenants.values_list("id", flat=True))
        if tenant and not tenant_ids:
            raise CommandError(f"no tenant with slug {tenant!r}")
        days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
        began, added = time.monotonic(), 0
        bar = tqdm(total=len(days) * len(tenant_ids), unit="day", file=sys.stderr, disable=None)
        for tenant_id in tenant_ids:
            for day in days:
                bar.set_postfix_str(f"tenant {tenant_id} {day}")
                added += rollup_days(tenant_id=tenant_id, days=[day], terms=not no_words)
                bar.update(1)
        bar.close()
        self.stdout.write(
            f"rolled {len(days)} day(s) x {len(tenant_ids)} tenant(s) in {time.monotonic() - began:.1f} s"
            + (f"; {added} missing reporting event(s) rebuilt" if events else "")
        )
