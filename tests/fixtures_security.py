"""Fixtures for the security tests (a pytest plugin loaded by conftest)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _outbound_allows_the_fakes(settings):
    """The fake remote services listen on 127.0.0.1, which the outbound client refuses by default."""
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
