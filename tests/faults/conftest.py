"""Fault tests: crashes, a flaky mail server, concurrent campaigns, fuzzed input.

Each test is bounded in time (a subprocess gets a timeout; loops have a fixed number of rounds) so that
the whole folder runs in CI in a few minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mairie.services.setup import initialise
from mairie.settings import Settings
from notifications.mailserver import LoopbackMailServer
from tests.conftest import make_settings


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[LoopbackMailServer]:
    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server


def campaign_settings(tmp_path: Path, database_url: str, smtp_port: int, **overrides: object) -> Settings:
    """Initialised settings on `database_url` in a temporary data directory, mail to `smtp_port`."""
    settings = make_settings(
        tmp_path, database_url, smtp_port=smtp_port, smtp_timeout=5.0, public_url="http://127.0.0.1:8090", **overrides
    )
    initialise(settings)
    return settings


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mairie.sqlite3'}"
