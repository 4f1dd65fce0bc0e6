"""Settings default to production: DEBUG off, SECRET_KEY required unless DEBUG=true is explicit;
the README's commands still need no configuration (anmei/launcher.py sets DEBUG for them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "FLOWER_BASIC_AUTH"}


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        args,
        cwd=ROOT,
        env={**clean, "ANMEI_VAR_DIR": str(tmp_path / "var"), **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


IMPORT = [sys.executable, "-c", "import anmei.settings as s; print('DEBUG', s.DEBUG, s.SECRET_KEY[:4])"]


def test_an_unconfigured_environment_is_production_and_needs_a_secret_key(tmp_path):
    result = _run(IMPORT, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set unless DEBUG=true is set explicitly" in result.stderr


def test_the_development_key_needs_debug_switched_on_explicitly(tmp_path):
    result = _run(IMPORT, tmp_path, DEBUG="true")
    assert (result.returncode, result.stdout.strip()) == (0, "DEBUG True dev-"), result.stderr


def test_a_secret_key_alone_still_is_not_debug(tmp_path):
    result = _run(IMPORT, tmp_path, SECRET_KEY="k" * 50)
    # production without FIELD_ENCRYPTION_KEY stops too: DEBUG stayed off
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY must be set when DEBUG is off" in result.stderr


def test_the_readme_test_command_needs_no_configuration(tmp_path):
    # `make test` is `python -m anmei.launcher test`: collecting this file works without any setting
    args = [sys.executable, "-m", "anmei.launcher", "test", "--co", "-q", "tests/test_settings.py"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "test_settings.py::" in result.stdout
