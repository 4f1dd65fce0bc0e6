"""Operator rights, third pass: one rule (User.is_operator) everywhere, and the database keeps
role operator ⇔ no tenant."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from anmei.accounts.models import User
from anmei.common.errors import ApplicationError
from anmei.stats.selectors import stats_scope

pytestmark = pytest.mark.django_db

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_database_refuses_a_tenant_account_with_the_operator_role(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=alice.pk).update(role=User.Role.OPERATOR)
    alice.refresh_from_db()
    assert alice.role == User.Role.ADMIN


def test_the_database_refuses_a_tenantless_non_operator(olga):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=olga.pk).update(role=User.Role.ADMIN)
    olga.refresh_from_db()
    assert (olga.role, olga.is_operator) == (User.Role.OPERATOR, True)


def test_stats_scope_gives_a_tenant_account_saying_operator_no_platform_view(tenant_a):
    # a row like this cannot be stored any more; an object built in memory must not pass either
    claimant = User(username="mallory", tenant=tenant_a, role=User.Role.OPERATOR)
    with pytest.raises(ApplicationError) as caught:
        stats_scope(user=claimant, tenant=None, consultant_id=None)
    assert caught.value.code == "permission_denied"


def test_stats_scope_gives_the_operator_every_tenant(olga):
    assert stats_scope(user=olga, tenant=None, consultant_id=None) == (None, None)


def test_no_door_compares_the_role_string_with_operator():
    """The rule a machine checks: only User.is_operator (accounts/models.py) reads role == operator."""
    pattern = re.compile(r"""role\s*[!=]=\s*(["']operator["']|User\.Role\.OPERATOR|self\.Role\.OPERATOR)""")
    allowed = {ROOT / "anmei/accounts/models.py", ROOT / "anmei/common/permissions.py"}
    found = []
    for base in ("anmei", "mcp_server", "workers"):
        for path in (ROOT / base).rglob("*.py"):
            if path in allowed or "migrations" in path.parts or "management" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
    for path in (ROOT / "anmei").rglob("*.html"):
        if "role == " in path.read_text() and "operator" in path.read_text():
            found.append(str(path.relative_to(ROOT)))
    assert found == []


def test_the_migration_deactivates_tenant_accounts_that_claimed_the_operator_role(alice, carol):
    migration = importlib.import_module("anmei.accounts.migrations.0002_user_operator_iff_no_tenant")
    constraint = next(c for c in User._meta.constraints if c.name == "user_operator_iff_no_tenant")
    # given a database from before the constraint, holding a tenant account with role operator
    with connection.cursor() as cursor:  # the fixtures' deferred FK checks would block ALTER TABLE
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:  # DDL in the test's transaction: rolled back after
        editor.remove_constraint(User, constraint)
    User.objects.filter(pk=carol.pk).update(role=User.Role.OPERATOR)

    # when the migration's data step runs
    migration.disable_tenant_operators(apps, None)

    # then that account is a deactivated customer, the others untouched, and the constraint holds
    carol.refresh_from_db()
    alice.refresh_from_db()
    assert (carol.role, carol.is_active, carol.is_staff, carol.is_superuser) == ("customer", False, False, False)
    assert (alice.role, alice.is_active) == ("admin", True)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        editor.add_constraint(User, constraint)
