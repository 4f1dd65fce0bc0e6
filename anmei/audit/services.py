"""Record configuration changes: every service that writes tenant configuration calls `audit_record`.

The door (API, admin, management command) and, where the service is not told, the acting user come
from `audit_context`, which each door sets around its work. `audit_record` refuses to run outside a
transaction so that the change and its row commit together or not at all (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction

from anmei.audit.models import AuditEntry

SECRET = "***"

_door: contextvars.ContextVar[str] = contextvars.ContextVar("audit_door", default=AuditEntry.Door.SYSTEM)
_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("audit_actor", default=None)


@contextlib.contextmanager
def audit_context(*, door: str, actor: Any = None) -> Iterator[None]:
    """Attribute the configuration changes made inside to this door and (optionally) this user.

    `actor` may be a user or a zero-argument callable returning one, read at write time (a request
    whose user is only known once authentication ran).
    """
    door_token = _door.set(door)
    actor_token = _actor.set(actor)
    try:
        yield
    finally:
        _door.reset(door_token)
        _actor.reset(actor_token)


def audit_snapshot(instance: Any, fields: Iterable[str]) -> dict[str, Any]:
    """Return the given fields of a model instance as JSON-able values (for before/after)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(instance, name, None)
        if value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
            value = str(value)
        out[name] = value
    return out


def audit_changes(
    before: dict[str, Any], after: dict[str, Any], *, secrets: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """Return `{field: [old, new]}` for the fields that differ; secret fields show as `***`."""
    secret = set(secrets)
    changed: dict[str, list[Any]] = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name in secret:
            old, new = (SECRET if old else None), (SECRET if new else None)
        changed[name] = [old, new]
    return changed


def _current_actor(actor: Any) -> Any:
    if actor is None:
        actor = _actor.get()
    if callable(actor):
        actor = actor()
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    return actor


def audit_record(
    *,
    tenant_id: int | None,
    action: str,
    object_type: str,
    object_id: Any = "",
    changes: dict[str, list[Any]] | None = None,
    actor: Any = None,
) -> AuditEntry:
    """Write one audit row inside the caller's transaction (raise if there is none)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    user = _current_actor(actor)
    return AuditEntry.objects.create(
        tenant_id=tenant_id,
        actor=user,
        actor_username=getattr(user, "username", "") if user else "",
        door=_door.get(),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=changes or {},
    )
