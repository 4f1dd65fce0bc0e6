from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from anmei.accounts.bootstrap import tenant_bootstrap
from anmei.audit.services import audit_context


def _credentials(value: str) -> tuple[str, str]:
    username, sep, password = value.partition(":")
    if not sep or not username or not password:
        raise CommandError(f"expected <user>:<password>, got {value!r}")
    return username, password


class Command(BaseCommand):
    help = "Create or update an approved tenant with its admin and consultants (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", required=True, action="append", metavar="USER:PASSWORD")
        parser.add_argument("--consultant", action="append", default=[], metavar="USER:PASSWORD")

    def handle(self, *args, slug, name, admin, consultant, **options):
        with audit_context(door="command"):
            tenant, changes = tenant_bootstrap(
                slug=slug,
                name=name,
                admins=[_credentials(a) for a in admin],
                consultants=[_credentials(c) for c in consultant],
            )
        if not changes:
            self.stdout.write(f"tenant {tenant.slug} (id {tenant.id}): nothing to change")
        for change in changes:
            self.stdout.write(change)
