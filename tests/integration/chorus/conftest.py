"""The local Chorus Pro sandbox on a free loopback port, and settings pointing at it (issuers LFN and
CDG62 with technical accounts), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from mairie.chorus_sandbox import ChorusSandbox, SandboxState
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, provisioning
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.setup import initialise
from mairie.settings import Settings
from notifications.mailserver import LoopbackMailServer
from tests.conftest import mairie_siret, make_settings

CLIENT_ID = "mairie-test-client"
CLIENT_SECRET = "s3cr3t-for-the-sandbox"
ACCOUNTS = {"TECH_LFN@cpro.fr": "mot-de-passe-lfn", "TECH_CDG62@cpro.fr": "mot-de-passe-cdg62"}
DAY = date(2026, 11, 24)


@pytest.fixture
def sandbox() -> Iterator[ChorusSandbox]:
    state = SandboxState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, accounts=ACCOUNTS)
    with ChorusSandbox(state) as server:
        yield server


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[LoopbackMailServer]:
    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server


def chorus_settings(tmp_path: Path, db_url: str, sandbox: ChorusSandbox, smtp_port: int, **chorus: object) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        smtp_port=smtp_port,
        chorus={
            "api_url": sandbox.url,
            "oauth_url": sandbox.oauth_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "deposits_per_minute": 0,
            "backoff_seconds": 0.01,
            "max_backoff_seconds": 0.05,
            **chorus,
        },
        syndicat={"chorus_login": "TECH_LFN@cpro.fr", "chorus_password": "mot-de-passe-lfn"},
        cdg62={"chorus_login": "TECH_CDG62@cpro.fr", "chorus_password": "mot-de-passe-cdg62"},
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str, sandbox: ChorusSandbox, mail_server: LoopbackMailServer) -> Settings:
    settings = chorus_settings(tmp_path, db_url, sandbox, mail_server.port)
    initialise(settings)
    return settings


def live(settings: Settings, code: str, items: dict[str, int], **form: object) -> list[str]:
    """A request of commune `code` carried to delivery: its first invoices' numbers (queued for Chorus Pro)."""
    values: dict[str, object] = {
        "collectivity": code,
        "siret": mairie_siret(code),
        "items": [{"code": c, "quantity": q} for c, q in items.items()],
        "signatory_name": "Signataire",
        "signatory_email": f"maire.{code}@exemple.fr",
        **form,
    }
    outcome = svc.register_request(settings, RequestForm.model_validate(values), channel="cli", on=DAY)
    issued = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, issued.convention, party, "Opérateur", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    result = provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)
    return [i.number for i in result.invoices]


def command(sandbox: ChorusSandbox, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    """A command of the sandbox (`/sandbox/…`): statuses on command, faults on demand."""
    response = httpx.post(f"{sandbox.url}{path}", json=body or {}, timeout=10)
    response.raise_for_status()
    data = response.json()
    assert isinstance(data, dict)
    return data
