"""Fixtures for the security tests (a pytest plugin loaded by conftest)."""

from __future__ import annotations

import os

import pytest

# The fake remote services listen on 127.0.0.1, which the outbound client refuses by default.
# Child processes (workers, sidecars started by tests) inherit this; this process gets the fixture.
os.environ.setdefault("OUTBOUND_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")


@pytest.fixture(autouse=True)
def _outbound_allows_the_fakes(settings):
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
