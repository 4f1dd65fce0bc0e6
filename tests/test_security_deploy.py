"""Production settings pass `check --deploy` with zero warnings; compose is locked down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY"))}
    env.update(
        DEBUG="false",
        SECRET_KEY="x7Qm2pL9vR4tY8wK1zN6bH3jF5dS0aG-cE_uI!oP@rT#yU$wQ^zX&vB*nM(kL)jH",
        ALLOWED_HOSTS="clinic.example",
        FLOWER_BASIC_AUTH="ops:long-random-password",
        FIELD_ENCRYPTION_KEY="x",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_compose_keeps_flower_metrics_private_and_configures_mcp_host_checks():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    mcp_env = services["mcp"]["environment"]
    assert (mcp_env["MCP_HOST"], mcp_env["MCP_ALLOWED_HOSTS"].split(",")[0]) == ("0.0.0.0", "mcp:8765")
    nginx = compose["configs"]["nginx"]["content"]
    assert nginx.count("proxy_set_header X-Forwarded-Proto $$scheme;") == 2
