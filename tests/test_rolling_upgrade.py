"""A rolling upgrade: the next release's migration is applied while the running release keeps answering.

docs/operations.md, "Upgrade": migrations are backward-compatible for one release (add nullable
columns and new tables, build indexes concurrently; drop or rename only a release later), the
migration Job runs first, and the old pods serve meanwhile. Here the running release is this tree's
daphne on a scratch database; the next release is a copy of the tree plus one migration of that kind
on the busiest write path (the jobs table every registration writes). Registrations keep succeeding
before, during and after it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.fixtures_automation import subprocess_env

ROOT = Path(__file__).resolve().parent.parent

NEXT_MIGRATION = """
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("jobs", "{previous}")]

    operations = [
        # Nullable: the running release's INSERTs, which do not name it, still succeed.
        migrations.AddField("job", "release_probe", models.CharField(max_length=32, null=True, blank=True)),
        # Built without locking writes out.
        AddIndexConcurrently("job", models.Index(fields=["kind", "created_at"], name="job_kind_created_idx")),
    ]
"""


def _psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def scratch_database():
    from django.conf import settings

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("rolling upgrades are a PostgreSQL matter")
    auth = db.get("USER") or "postgres"
    server = f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
    name = f"{db['NAME']}_upgrade"
    _psql(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(f"{server}/postgres", f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    _psql(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(tree: Path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(DATABASE_URL=database_url, PYTHONPATH=str(tree), LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )


def _next_release(tmp_path: Path) -> Path:
    """A copy of this tree with one more jobs migration."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    tree = tmp_path / "next"
    for name in files:
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    migrations = sorted(p.stem for p in (tree / "anmei/jobs/migrations").glob("0*.py"))
    number = int(migrations[-1][:4]) + 1
    (tree / f"anmei/jobs/migrations/{number:04d}_release_probe.py").write_text(
        NEXT_MIGRATION.replace("{previous}", migrations[-1])
    )
    return tree


def test_the_next_release_migrates_while_the_running_release_keeps_serving(scratch_database, tmp_path):
    from tests.fixtures_browser import LiveServer

    # Given the running release on its database, with a clinic taking registrations
    migrated = _manage(ROOT, scratch_database, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    created = _manage(
        ROOT,
        scratch_database,
        "shell",
        "-c",
        "from anmei.tenants.models import Tenant; "
        "Tenant.objects.create(name='Up', slug='up', contact_email='ops@up.test', status='approved')",
    )
    assert created.returncode == 0, created.stderr[-2000:]
    server = LiveServer(
        subprocess_env(
            DATABASE_URL=scratch_database, THROTTLE_SIGNUP_RATE="100000/min", THROTTLE_AUTH_RATE="100000/min"
        )
    )
    server.start()
    answers: list[tuple[str, int]] = []
    phase = {"now": "before"}
    stop = threading.Event()

    def register_customers() -> None:
        session = requests.Session()
        index = 0
        while not stop.is_set():
            index += 1
            response = session.post(
                f"{server.url}/api/v1/auth/register",
                json={"tenant": "up", "username": f"c{index}", "password": "correct-horse-battery"},
                timeout=30,
            )
            answers.append((phase["now"], response.status_code))

    def count(when: str) -> int:
        return sum(1 for phase_name, _ in answers if phase_name == when)

    from tests.helpers import poll

    client = threading.Thread(target=register_customers, daemon=True)
    client.start()
    try:
        poll(lambda: count("before") >= 5, timeout=60)
        # When the next release's migration runs (the migration Job)
        tree = _next_release(tmp_path)
        phase["now"] = "during"
        upgraded = _manage(tree, scratch_database, "migrate", "--noinput")
        phase["now"] = "after"
        poll(lambda: count("after") >= 5, timeout=60)
    finally:
        stop.set()
        client.join(timeout=60)
        server.stop()
    # Then it applied, and every registration of the running release succeeded throughout
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    assert "release_probe" in upgraded.stdout
    assert {code for _, code in answers} == {201}, [a for a in answers if a[1] != 201][:5]
    assert count("before") >= 5 and count("after") >= 5
    # The old code's rows after the migration simply leave the new column empty
    jobs_after = _psql(scratch_database, "SELECT count(*) FROM jobs_job WHERE release_probe IS NULL")
    users = _psql(scratch_database, "SELECT count(*) FROM accounts_user WHERE username LIKE 'c%'")
    assert int(users) == len(answers)
    assert int(jobs_after) >= len(answers)
    # And nothing is left for the next release's code to migrate
    plan = _manage(tree, scratch_database, "migrate", "--plan")
    assert "No planned migration operations." in plan.stdout
