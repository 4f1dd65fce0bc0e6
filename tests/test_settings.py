"""Settings fail loudly: bad booleans and a missing production key stop start-up; secrets survive a key rotation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from anmei.common.crypto import decrypt, encrypt

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "s" * 50, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def _import_settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Import anmei.settings in a fresh interpreter with this environment (var dir in tmp_path)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import anmei.settings as s; print('DEBUG', s.DEBUG)"],
        cwd=ROOT,
        env={**clean, "ANMEI_VAR_DIR": str(tmp_path / "var"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("spelling", ["ture", "nope", "2x", ""])
def test_a_boolean_that_is_not_one_stops_start_up(tmp_path, spelling):
    # given DEBUG set to something that is not a boolean
    # when the settings load
    result = _import_settings(tmp_path, DEBUG=spelling)
    # then start-up fails naming the variable, instead of reading it as False
    assert result.returncode == 1
    assert f"DEBUG={spelling!r} is not a boolean" in result.stderr


@pytest.mark.parametrize("spelling, expected", [("FALSE", "False"), ("off", "False"), ("True", "True"), ("1", "True")])
def test_true_and_false_spellings_are_read(tmp_path, spelling, expected):
    # given a production environment whose DEBUG is spelled one of the accepted ways
    # when the settings load
    result = _import_settings(tmp_path, **{**PRODUCTION, "DEBUG": spelling})
    # then DEBUG has that value, and importing settings created no directory
    assert (result.returncode, result.stdout.strip()) == (0, f"DEBUG {expected}"), result.stderr
    assert not (tmp_path / "var").exists()


def test_production_without_a_field_encryption_key_stops_start_up(tmp_path):
    # given DEBUG off and a SECRET_KEY, but no FIELD_ENCRYPTION_KEY
    env = {**PRODUCTION, "FIELD_ENCRYPTION_KEY": ""}
    # when the settings load
    result = _import_settings(tmp_path, **env)
    # then start-up fails: a key derived from SECRET_KEY would be lost with the next SECRET_KEY rotation
    assert result.returncode == 1
    assert "FIELD_ENCRYPTION_KEY must be set when DEBUG is off" in result.stderr


def test_secrets_stay_readable_after_a_key_rotation(settings):
    # given a secret stored under key A
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY, settings.FIELD_ENCRYPTION_OLD_KEYS = key_a, []
    stored = encrypt("agent-api-key")

    # when the key is rotated to B with A listed as an old key
    settings.FIELD_ENCRYPTION_KEY, settings.FIELD_ENCRYPTION_OLD_KEYS = key_b, [key_a]

    # then the old secret still decrypts and a new one is written under B alone
    assert decrypt(stored) == "agent-api-key"
    fresh = encrypt("new-secret")
    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    assert decrypt(fresh) == "new-secret"
    with pytest.raises(ValueError, match="cannot decrypt secret"):
        decrypt(stored)


def test_every_setting_the_code_reads_is_defined():
    # given every `settings.NAME` the application code reads
    sources = [*ROOT.glob("anmei/**/*.py"), *ROOT.glob("workers/*.py"), *ROOT.glob("mcp_server/**/*.py")]
    sources.append(ROOT / "celery_config.py")
    names = {
        name
        for path in sources
        if "migrations" not in path.parts
        for name in re.findall(r"\bsettings\.([A-Z][A-Z0-9_]+)\b", path.read_text())
    }
    # when they are looked up in the loaded settings
    missing = sorted(name for name in names if not hasattr(django_settings, name))
    # then none is missing, and none is read with a fallback (that hides a setting never defined)
    assert len(names) > 40
    assert missing == []
    assert [p.name for p in sources if "getattr(settings" in p.read_text()] == []
