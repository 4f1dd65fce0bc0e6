"""The rollups' one write: make a scope's rows exactly a computed set (insert, update, delete)."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def scope_rows_replace(model, objects: list, scope: dict[str, Any], unique: list[str]) -> None:
    """Make the rows of `scope` exactly `objects`: update or insert them, delete any other."""
    key_fields = [name.replace("tenant", "tenant_id") if name == "tenant" else name for name in unique]
    keep = {tuple(getattr(o, name) for name in key_fields) for o in objects}
    update = [f.name for f in model._meta.concrete_fields if f.name not in (*unique, "id")]
    with transaction.atomic():
        stale = [
            row["id"]
            for row in model.objects.filter(**scope).values("id", *key_fields)
            if tuple(row[name] for name in key_fields) not in keep
        ]
        for start in range(0, len(stale), 500):
            model.objects.filter(pk__in=stale[start : start + 500]).delete()
        if objects:
            model.objects.bulk_create(objects, update_conflicts=True, unique_fields=unique, update_fields=update)
