"""One Prefect test server for the whole session (≈11 s to start), a loopback SMTP server, and the
MAIRIE_* environment the flows read their settings from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    """Prefect's test server; flow heartbeats off (each would cost about a second)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=60),
    ):
        yield


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
