from __future__ import annotations

from django.core.management.base import BaseCommand

from anmei.accounts.bootstrap import tenant_bootstrap
from anmei.accounts.models import User
from anmei.accounts.services import user_create

DEMO = {
    "admin": ("admin", "demo-admin-pass"),
    "consultant": ("consultant", "demo-consultant-pass"),
    "customer": ("customer", "demo-customer-pass"),
    "operator": ("operator", "demo-operator-pass"),
}


class Command(BaseCommand):
    help = "Seed the demo tenant `demo` (admin, consultant, customer) and a platform operator; idempotent."

    def handle(self, *args, **options):
        tenant, _ = tenant_bootstrap(
            slug="demo", name="Demo Clinic", admins=[DEMO["admin"]], consultants=[DEMO["consultant"]]
        )
        # display names, so the console (transfer picker, timeline) shows people rather than logins
        for role, nickname in (("admin", "机构管理员"), ("consultant", "王顾问")):
            User.objects.filter(tenant=tenant, username=DEMO[role][0], nickname="").update(nickname=nickname)
        username, password = DEMO["customer"]
        if not User.objects.filter(tenant=tenant, username=username).exists():
            user_create(tenant=tenant, username=username, password=password, nickname="Demo Customer")
        op_user, op_password = DEMO["operator"]
        if not User.objects.filter(tenant__isnull=True, username=op_user).exists():
            User.objects.create_superuser(op_user, "", op_password)
        self.stdout.write("Demo accounts (tenant slug: demo):")
        for role, (user, password) in DEMO.items():
            where = "no tenant (platform operator)" if role == "operator" else "tenant demo"
            self.stdout.write(f"  {role:<10} {user} / {password}   [{where}]")
        self.stdout.write("  Django admin login: demo/admin for the tenant admin, operator for the operator")
