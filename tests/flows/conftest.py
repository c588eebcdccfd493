"""The session's Prefect test server for every flow test, a loopback SMTP server, and the
MAIRIE_* environment the flows read their settings from."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server(prefect_harness: None) -> None:
    """Every flow test runs against the session's Prefect test server (tests/conftest.py)."""


@pytest.fixture
def mail_server(tmp_path: Path):
    from notifications.mailserver import LoopbackMailServer

    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mail_server):
    """Settings for the flows (through the environment, as in production), initialised."""
    from mairie.services.setup import initialise
    from mairie.settings import get_settings

    monkeypatch.setenv("MAIRIE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAIRIE_SMTP_PORT", str(mail_server.port))
    get_settings.cache_clear()
    settings = get_settings()
    initialise(settings)
    return settings
