"""A real AstrBot process for the end-to-end tests and the bench (imported, not a pytest plugin).

AstrBot runs from its own Python 3.12 virtualenv built by tests/astrbot/build_env.sh (never the
project's venv), in a fresh data dir, dashboard and plugin listener on 127.0.0.1 only. The plugin
folder is copied into data/plugins/ as a clinic would install it; its config is written where
AstrBot keeps plugin config (data/config/<plugin>_config.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "tests" / "astrbot" / "requirements.txt"
PLUGIN_DIR = ROOT / "astrbot_plugin_anmei"
PLUGIN_NAME = "astrbot_plugin_anmei"


def astrbot_venv() -> Path | None:
    """The built AstrBot venv (ASTRBOT_VENV, else the cache path build_env.sh uses), or None."""
    if os.environ.get("ASTRBOT_VENV"):
        venv = Path(os.environ["ASTRBOT_VENV"])
    else:
        sha = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
        venv = Path(os.environ.get("ASTRBOT_CACHE_DIR", "/work/cache")) / f"astrbot-{sha}"
    return venv if (venv / ".installed").exists() and (venv / "bin" / "astrbot").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class AstrBot:
    """One AstrBot instance: `start()`, `stop()`, `restart()` keep the data dir (and its SQLite files)."""

    def __init__(self, venv: Path, root: Path, *, plugin_config: dict, llm_base_url: str | None = None):
        self.venv = venv
        self.root = root
        self.data = root / "data"
        self.dashboard_port = _free_port()
        self.listen_port = int(plugin_config.get("listen_port") or _free_port())
        self.plugin_config = {**plugin_config, "listen_host": "127.0.0.1", "listen_port": self.listen_port}
        self.llm_base_url = llm_base_url
        self.url = f"http://127.0.0.1:{self.dashboard_port}"
        self.callback_url = f"http://127.0.0.1:{self.listen_port}"
        self.process: subprocess.Popen | None = None
        self.api_key = ""
        self.password = ""
        self.log_path = root / "astrbot.log"

    # ---- process ---------------------------------------------------------------------------
    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        astrbot = str(self.venv / "bin" / "astrbot")
        subprocess.run([astrbot, "init", "-y"], cwd=self.root, check=True, capture_output=True)
        target = self.data / "plugins" / PLUGIN_NAME
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(PLUGIN_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
        self.write_plugin_config()

    def write_plugin_config(self) -> None:
        (self.data / "config").mkdir(parents=True, exist_ok=True)
        path = self.data / "config" / f"{PLUGIN_NAME}_config.json"
        path.write_text(json.dumps(self.plugin_config), encoding="utf-8")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "PYTHON", "VIRTUAL_ENV"))}
        env.update(
            {
                "DASHBOARD_HOST": "127.0.0.1",
                "DASHBOARD_PORT": str(self.dashboard_port),
                "PATH": f"{self.venv / 'bin'}:{env.get('PATH', '')}",
                "NO_PROXY": "*",
                "no_proxy": "*",
            }
        )
        for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            env.pop(proxy, None)
        return env

    def start(self, *, wait_plugin: bool = True) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "astrbot"), "run"],
            cwd=self.root,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait(lambda: self._alive_check() and _listening(self.dashboard_port), 90, "AstrBot's dashboard")
        if wait_plugin:
            _wait(lambda: self._alive_check() and _listening(self.listen_port), 60, "the Anmei plugin's listener")

    def _alive_check(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"AstrBot exited ({self.process.returncode}):\n{self.log_tail()}")
        return True

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        _wait(lambda: not _listening(self.listen_port) and not _listening(self.dashboard_port), 20, "AstrBot to stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    # ---- configuration through the files AstrBot reads at start ----------------------------
    def configure(self) -> None:
        """Point AstrBot's chat provider at `llm_base_url`; keep AstrBot's own STT off."""
        path = self.data / "cmd_config.json"
        config = json.loads(path.read_text(encoding="utf-8-sig"))
        config.setdefault("provider_stt_settings", {})["enable"] = False
        if self.llm_base_url:
            config["provider"] = [
                {
                    "id": "fake-openai",
                    "provider": "openai",
                    "type": "openai_chat_completion",
                    "provider_type": "chat_completion",
                    "enable": True,
                    "key": ["sk-test"],
                    "api_base": self.llm_base_url + "/v1",
                    "model": "fake-gpt",
                    "timeout": 30,
                    "proxy": "",
                    "custom_headers": {},
                }
            ]
            config.setdefault("provider_settings", {})["default_provider_id"] = "fake-openai"
        path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8-sig")

    def first_boot(self) -> None:
        """Install, boot once (writes cmd_config.json and prints the dashboard password), configure, reboot."""
        self.install()
        self.start()
        self.password = _wait(self._initial_password, 30, "the initial dashboard password")
        self.stop()
        self.configure()
        self.start()
        self.api_key = self._create_api_key()

    def _initial_password(self) -> str:
        match = re.search(r"Initial password: (\S+)", self.log_tail(200000))
        return match.group(1) if match else ""

    def _create_api_key(self) -> str:
        login = requests.post(
            f"{self.url}/api/v1/auth/login", json={"username": "astrbot", "password": self.password}, timeout=30
        )
        token = login.json()["data"]["token"]
        answer = requests.post(
            f"{self.url}/api/v1/api-keys",
            json={"name": "tests", "scopes": ["chat", "file", "im"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.jwt = token
        return answer.json()["data"]["api_key"]

    # ---- the webchat Open API --------------------------------------------------------------
    def chat(self, message, *, username: str, session_id: str = "", timeout: float = 60) -> list[dict]:
        """`POST /api/v1/chat` (non-streaming); the `data:` events it answered.

        A webchat session belongs to the username that opened it: each user gets their own here.
        """
        session_id = session_id or f"s-{username}"
        response = requests.post(
            f"{self.url}/api/v1/chat",
            json={"message": message, "username": username, "session_id": session_id, "enable_streaming": False},
            headers={"X-API-Key": self.api_key},
            timeout=timeout,
        )
        assert response.status_code == 200, response.text[:500]
        events = []
        for line in response.text.splitlines():
            if line.startswith("data:"):
                try:
                    events.append(json.loads(line[5:].strip()))
                except ValueError:
                    continue
        if not events:
            try:
                events.append(response.json())
            except ValueError:
                pass
        return events

    def upload(self, data: bytes, filename: str, content_type: str = "application/octet-stream") -> str:
        """`POST /api/v1/file`; AstrBot files an `audio/*` upload as a voice record, `image/*` as an image."""
        response = requests.post(
            f"{self.url}/api/v1/file",
            files={"file": (filename, data, content_type)},
            headers={"X-API-Key": self.api_key},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:500]
        return response.json()["data"]["attachment_id"]

    def history(self, conversation_id: str) -> list[dict]:
        """What AstrBot stored for a webchat conversation (its own SQLite), newest last."""
        import sqlite3

        db = sqlite3.connect(self.data / "data_v4.db")
        try:
            rows = db.execute(
                "SELECT content FROM platform_message_history"
                " WHERE platform_id = 'webchat' AND user_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        finally:
            db.close()
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def health(self) -> dict:
        return requests.get(f"{self.callback_url}/astrbot-api/v1/health", timeout=10).json()
