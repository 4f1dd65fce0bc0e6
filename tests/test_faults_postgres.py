"""After a PostgreSQL restart, the next call through each door succeeds on a fresh connection.

Every process keeps database connections across calls: the web and the workers a psycopg pool,
the MCP sidecar persistent per-thread connections (DB_CONN_MAX_AGE). A restart kills them all;
the next request, task or tool call must not fail on a dead one. Each door starts its unit of work
the same way — Django's `close_old_connections` (request_started for the web, the Celery fixup's
task_prerun for workers, `mcp_server.db` around each tool call) — so a child process per kind of
connection runs: a query, a restart of the database, then a new unit of work and its query.

The database is a throwaway PostgreSQL cluster of this test's own (initdb, its own port and
socket directory, owned by the postgres user); the shared cluster is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures_automation import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")

CHILD = """
import sys, django
django.setup()
from django.db import close_old_connections, connection

def unit_of_work():
    close_old_connections()  # what each door does first (request_started, task_prerun, mcp_server.db)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]

print(unit_of_work(), flush=True)  # the connection is warm (kept: pool or persistent)
sys.stdin.readline()  # the test restarts PostgreSQL here
try:
    print(unit_of_work(), flush=True)
except Exception as exc:
    print(type(exc).__name__, flush=True)
"""


def _as_postgres(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def private_postgres():
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL server binaries or runuser not installed")
    base = Path(tempfile.mkdtemp(prefix="anmei-pg-"))
    data, sockets = base / "data", base / "sockets"
    sockets.mkdir()
    shutil.chown(base, "postgres")
    shutil.chown(sockets, "postgres")
    port = free_port()
    init = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    assert init.returncode == 0, init.stderr
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"

    def ctl(*args: str) -> None:
        # -l: the server writes its log there, not to our pipe (which would never reach EOF)
        log = ["-l", str(base / "log")]
        done = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-w", *log, *args)
        assert done.returncode == 0, done.stdout + done.stderr

    ctl("start")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres", ctl
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(
    "door, env",
    [
        ("web and workers (pool)", {"DB_CONN_MAX_AGE": "0"}),
        ("MCP sidecar (persistent)", {"DB_CONN_MAX_AGE": "300", "DB_POOL_MAX_SIZE": "0"}),
    ],
)
def test_the_next_call_after_a_postgres_restart_succeeds(private_postgres, door, env):
    url, ctl = private_postgres
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "ERROR", **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # given a process whose connection is warm
        assert child.stdout.readline().strip() == "1"
        # when PostgreSQL restarts (every server connection is killed) and the next call comes
        ctl("restart", "-m", "fast")
        child.stdin.write("\n")
        child.stdin.flush()
        answer = child.stdout.readline().strip()
    finally:
        child.kill()
        errors = child.communicate(timeout=10)[1]
    if answer != "1":
        print(errors[-3000:])
    # then that call succeeds
    assert answer == "1", door
