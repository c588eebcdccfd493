"""A real loopback SMTP server and settings pointing at it, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mairie.services.setup import initialise
from mairie.settings import Settings
from notifications.mailserver import LoopbackMailServer, ReceivedMail
from tests.conftest import make_settings


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[LoopbackMailServer]:
    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, db_url: str, mail_server: LoopbackMailServer) -> Settings:
    settings = make_settings(tmp_path, db_url, smtp_port=mail_server.port, public_url="http://127.0.0.1:8090")
    initialise(settings)
    return settings


def link_in(mail: ReceivedMail, path: str) -> str:
    """The first link of a received email whose path starts with `path` (e.g. "/approbation/")."""
    body = mail.message().get_body(("plain",))
    assert body is not None
    match = re.search(r"https?://\S+" + re.escape(path) + r"[^\s>\"']+", body.get_content())
    assert match, f"no {path} link in {mail.subject}"
    return match.group(0)


def token_of(url: str) -> str:
    return url.split("/approbation/")[1].split("/")[0]


def mails_to(server: LoopbackMailServer, address: str) -> list[ReceivedMail]:
    return [m for m in server.messages() if address in m.to or address in m.envelope_to]
