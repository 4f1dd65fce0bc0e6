"""Give the demo tenant a handful of canned responses, so `/` and the template suggestions work at once."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from anmei.ai.models import CannedResponse
from anmei.ai.services.canned_responses import canned_response_create
from anmei.tenants.models import Tenant

DEMO_CANNED_RESPONSES = [
    ("price", "具体价格要根据您的情况由医生面诊后确定，我可以先为您预约一次免费面诊。", ["价格", "多少钱", "费用"]),
    ("book", "请告诉我您方便到院的日期和时间，我来为您预约面诊。", ["预约", "面诊", "什么时候"]),
    ("address", "门店地址和交通路线我稍后发给您，到院前请提前联系我们，我们安排顾问接待。", ["地址", "在哪", "怎么走"]),
    ("recovery", "恢复期因项目和个人体质而异，医生面诊时会为您详细说明术后注意事项。", ["恢复期", "恢复", "疼"]),
    ("hyaluronic", "玻尿酸填充一般可维持 6 到 12 个月，具体效果与部位和产品有关。", ["玻尿酸"]),
    ("thermage", "热玛吉通常建议一年左右做一次，面诊评估后再确定适合您的方案。", ["热玛吉"]),
    ("thanks", "感谢您的咨询，有任何问题随时联系我们！", []),
]


class Command(BaseCommand):
    help = "Seed the demo tenant's canned responses (only missing shortcodes: edits are kept); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo", help="tenant slug (default: demo)")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}: run seed_demo first")
        existing = set(CannedResponse.objects.filter(tenant=tenant).values_list("shortcode", flat=True))
        added = 0
        for shortcode, text, keywords in DEMO_CANNED_RESPONSES:
            if shortcode not in existing:
                canned_response_create(tenant_id=tenant.id, shortcode=shortcode, text=text, keywords=keywords)
                added += 1
        self.stdout.write(f"Canned responses for {tenant.slug}: {added} added, {len(existing)} kept")
