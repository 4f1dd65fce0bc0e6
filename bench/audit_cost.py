"""The cost an audit row adds to a configuration write, against the same write without it, in one run.

Both paths update one tenant's automation settings in one transaction with the row locked; the
audited path is the service (`automation_settings_update`, which also writes the audit row), the
bare path is the same lock + validate + save without `audit_record`. Alternating rounds, median and
p95 per write.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_<name> DEBUG=true \\
        .venv/bin/python bench/audit_cost.py --writes 300
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")


def main() -> None:
    import django

    django.setup()
    from django.db import transaction

    from anmei.automation.models import AutomationSettings
    from anmei.automation.services import automation_settings_get_or_create, automation_settings_update
    from anmei.tenants.models import Tenant

    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=300)
    args = parser.parse_args()

    tenant, _ = Tenant.objects.get_or_create(slug="bench-audit", defaults={"name": "Bench audit", "status": "approved"})
    automation_settings_get_or_create(tenant_id=tenant.id)

    def bare(value: int) -> None:
        with transaction.atomic():
            config = AutomationSettings.objects.select_for_update().get(tenant_id=tenant.id)
            config.max_retries = value
            config.full_clean(exclude=["tenant"])
            config.save()

    def audited(value: int) -> None:
        automation_settings_update(tenant_id=tenant.id, max_retries=value)

    timings: dict[str, list[float]] = {"bare": [], "audited": []}
    for i in range(args.writes):
        for name, write in (("bare", bare), ("audited", audited)) if i % 2 else (("audited", audited), ("bare", bare)):
            start = time.perf_counter()
            write(1 + (i % 5))
            timings[name].append((time.perf_counter() - start) * 1000)
    for name, values in timings.items():
        values.sort()
        p95 = values[int(len(values) * 0.95) - 1]
        print(f"{name:8s} writes={len(values)} median_ms={statistics.median(values):.3f} p95_ms={p95:.3f}")
    added = statistics.median(timings["audited"]) - statistics.median(timings["bare"])
    print(f"audit row adds median {added:.3f} ms per write")
    tenant.delete()


if __name__ == "__main__":
    main()
