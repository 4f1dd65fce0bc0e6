"""Several hosts on one machine: network namespaces joined by veth pairs on a bridge.

`Cluster` makes a `db` host running private PostgreSQL and Redis instances (their own data
directories and ports, never the shared 5432/6379) and app hosts `a`, `b`, … each able to run web
(daphne), a Celery worker, beat and the MCP sidecar of this tree. The caller (pytest, or
bench/multihost.py) stays in the root namespace and reaches every host over the bridge. Needs root
and `ip netns` (docs/operations.md); `Cluster.unavailable()` says why not when it cannot run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
PG_PORT, REDIS_PORT, WEB_PORT, MCP_PORT = 55432, 56379, 8000, 8765


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _wait_port(host: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(1)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not open")


class Cluster:
    def __init__(self, app_hosts: tuple[str, ...] = ("a", "b")):
        tag = f"{os.getpid() % 100000}"
        self.subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
        self.bridge = f"anbr{tag}"
        self.names = {"db": f"an{tag}db", **{host: f"an{tag}{host}" for host in app_hosts}}
        self.addresses = {"db": f"{self.subnet}.1"}
        for index, host in enumerate(app_hosts):
            self.addresses[host] = f"{self.subnet}.{index + 2}"
        self.dir = Path(tempfile.mkdtemp(prefix="anmei-netns-"))
        self.processes: dict[str, subprocess.Popen] = {}
        self.field_key = Fernet.generate_key().decode()  # one key for every host, as one Secret gives
        self.extra_env: dict[str, str] = {}  # settings every app host gets (media store, ASR API)
        self.database_url = f"postgres://postgres@{self.addresses['db']}:{PG_PORT}/anmei"
        self.redis_url = f"redis://{self.addresses['db']}:{REDIS_PORT}/0"

    @property
    def bridge_address(self) -> str:
        """The root namespace's address on the bridge: services the test itself runs listen here."""
        return f"{self.subnet}.254"

    @staticmethod
    def unavailable() -> str | None:
        if os.geteuid() != 0:
            return "needs root (ip netns)"
        if shutil.which("ip") is None or _pg_bin() is None or shutil.which("redis-server") is None:
            return "needs iproute2, PostgreSQL's server binaries and redis-server"
        probe = f"anprobe{os.getpid()}"
        try:
            _run("ip", "netns", "add", probe)
            _run("ip", "netns", "del", probe)
        except (subprocess.CalledProcessError, OSError) as exc:
            return f"ip netns is not available here: {exc}"
        return None

    # --- network ---------------------------------------------------------------------------------

    def start_network(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for host, ns in self.names.items():
            outside, inside = f"{ns}o", f"{ns}i"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            _run("ip", "link", "set", inside, "netns", ns)
            _run("ip", "link", "set", outside, "master", self.bridge)
            _run("ip", "link", "set", outside, "up")
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.addresses[host]}/24", "dev", inside)
            _run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def stop_network(self) -> None:
        for ns in self.names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    # --- processes -------------------------------------------------------------------------------

    def spawn(self, host: str, name: str, args: list[str], env: dict | None = None, user: str | None = None):
        command = ["ip", "netns", "exec", self.names[host]]
        if user:
            command += ["runuser", "-u", user, "--"]
        log = open(self.dir / f"{host}-{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            command + args, cwd=ROOT, env=env or self.app_env(host), stdout=log, stderr=log, start_new_session=True
        )
        self.processes[f"{host}:{name}"] = process
        return process

    def stop(self, host: str, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        process = self.processes.pop(f"{host}:{name}", None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def start_data_host(self) -> None:
        pg = _pg_bin()
        data = self.dir / "pgdata"
        data.mkdir()
        shutil.chown(self.dir, "postgres")
        shutil.chown(data, "postgres")
        _run("runuser", "-u", "postgres", "--", str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")
        env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        self.spawn(
            "db",
            "postgres",
            [str(pg / "postgres"), "-D", str(data), "-p", str(PG_PORT), "-k", str(self.dir)]
            + ["-c", f"listen_addresses={self.addresses['db']}", "-c", "fsync=off", "-c", "max_connections=200"],
            env=env,
            user="postgres",
        )
        self.spawn(
            "db",
            "redis",
            ["redis-server", "--port", str(REDIS_PORT), "--bind", self.addresses["db"], "--save", ""]
            + ["--appendonly", "no", "--protected-mode", "no"],
            env=env,
        )
        _wait_port(self.addresses["db"], PG_PORT)
        _wait_port(self.addresses["db"], REDIS_PORT)
        for _ in range(100):
            ready = subprocess.run(
                ["psql", f"postgres://postgres@{self.addresses['db']}:{PG_PORT}/postgres", "-tAc", "SELECT 1"],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        self.psql("CREATE DATABASE anmei", database="postgres")

    def psql(self, sql: str, database: str = "anmei") -> str:
        url = f"postgres://postgres@{self.addresses['db']}:{PG_PORT}/{database}"
        return subprocess.run(["psql", url, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()

    def app_env(self, host: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "TEST_DB"))}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "PYTHONPATH": str(ROOT),
                "DJANGO_SETTINGS_MODULE": "anmei.settings",
                "SECRET_KEY": "netns-shared-secret-key-of-every-host",
                "FIELD_ENCRYPTION_KEY": self.field_key,
                "ALLOWED_HOSTS": "*",
                # the consoles in these tests are pages of the app hosts themselves
                "WS_ALLOWED_ORIGINS": ",".join(self.addresses.values()),
                "SECURE_SSL_REDIRECT": "false",
                "THROTTLE_AUTH_RATE": "100000/min",
                "THROTTLE_SIGNUP_RATE": "100000/min",
                "LOG_LEVEL": "WARNING",
                "MCP_URL": f"http://{self.addresses['a']}:{MCP_PORT}/mcp",
                "MCP_ALLOWED_HOSTS": f"{self.addresses['a']}:{MCP_PORT}",
                "ANMEI_VAR_DIR": str(self.dir / f"var-{host}"),
                "DB_POOL_MAX_SIZE": "4",
                **self.extra_env,
                **extra,
            }
        )
        return env

    def manage(self, host: str, *args: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.names[host], sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.app_env(host),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} on {host}: {done.stderr[-2000:]}")
        return done.stdout

    def start_web(self, host: str) -> str:
        self.spawn(
            host,
            "web",
            [
                sys.executable,
                "-m",
                "anmei.serve",
                "-b",
                self.addresses[host],
                "-p",
                str(WEB_PORT),
                "anmei.asgi:application",
            ],
        )
        _wait_port(self.addresses[host], WEB_PORT)
        return f"http://{self.addresses[host]}:{WEB_PORT}"

    def start_worker(self, host: str, **extra: str) -> None:
        self.spawn(
            host,
            "worker",
            [sys.executable, "-m", "celery", "-A", "celery_config", "worker", "-Q", "default,asr,replies"]
            + ["--pool", "threads", "--concurrency", "4", "-n", f"host{host}@%h", "--loglevel=WARNING"],
            env=self.app_env(host, **extra),
        )

    def start_mcp(self, host: str) -> None:
        self.spawn(
            host, "mcp", [sys.executable, "-m", "mcp_server", "--host", self.addresses[host], "--port", str(MCP_PORT)]
        )
        _wait_port(self.addresses[host], MCP_PORT)

    def start_beat(self, host: str, **extra: str) -> None:
        self.spawn(
            host,
            "beat",
            [sys.executable, "-m", "celery", "-A", "celery_config", "beat", "-l", "WARNING"]
            + ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
            + ["--pidfile", str(self.dir / f"beat-{host}.pid")],
            env=self.app_env(host, **extra),
        )

    def close(self) -> None:
        for key in reversed(list(self.processes)):  # app processes first, PostgreSQL last
            host, name = key.split(":")
            self.stop(host, name, sig=signal.SIGINT if name == "postgres" else signal.SIGTERM, timeout=15)
        self.stop_network()
        shutil.rmtree(self.dir, ignore_errors=True)
