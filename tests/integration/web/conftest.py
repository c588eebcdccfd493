"""The approval app under FastAPI's TestClient, on SQLite and PostgreSQL, with a convention to sign.

Links in emails point at `http://testserver` (the TestClient's host), so a link taken from the outbox
opens as is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services.intake import register_request
from mairie.services.quotes import QuotesOutcome, issue_quotes
from mairie.services.setup import initialise
from mairie.settings import Settings
from mairie.web import create_app
from models.entities import (
    Approval,
    AuditEvent,
    Convention,
    OutboxMessage,
    Question,
    ServiceRequest,
    StoredDocument,
)
from tests.conftest import mairie_siret, make_settings

API_KEY = "cle-api-de-test-0123456789abcdef"
SECRET = "secret-de-test-ne-pas-utiliser-0123456789abcdef"
PUBLIC_URL = "http://testserver"
DAY = date(2026, 11, 24)
BROWSER = "Mozilla/5.0 (Linux; Android 14) Navigateur-de-test/1.0"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # Every request of the TestClient comes from one address ("testclient"): the limit per address is off
    # here so that the attack tests (a thousand forged links) test the links, not the rate limit; the
    # limits have their own tests (test_rate_limits.py).
    settings = make_settings(
        tmp_path, db_url, api_key=API_KEY, secret_key=SECRET, public_url=PUBLIC_URL, rate_ip_per_minute=0
    )
    initialise(settings)
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, in_process=True), headers={"User-Agent": BROWSER}) as client:
        yield client


def new_convention(
    settings: Settings, collectivity: str = "62700", email: str = "maire@regnauville.example"
) -> QuotesOutcome:
    """A request for three 5 GB mailboxes, quoted: both quotes, the draft convention, the mayor's link."""
    form = RequestForm(
        collectivity=collectivity,
        siret=mairie_siret(collectivity),
        items=[{"code": "messagerie-5go", "quantity": 3}],  # type: ignore[list-item]
        signatory_name="Jeanne Dupont",
        signatory_email=email,
    )
    outcome = register_request(settings, form, channel="api", on=DAY)
    return issue_quotes(settings, outcome.request_id, DAY)


@pytest.fixture
def convention(settings: Settings) -> QuotesOutcome:
    return new_convention(settings)


def shown(response: Any) -> str:
    """The text of an HTML response with entities decoded (the page escapes apostrophes)."""
    return html.unescape(response.text)


def path_of(url: str) -> str:
    return urlsplit(url).path


def token_of(url: str) -> str:
    return path_of(url).split("/approbation/")[1].split("/")[0]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def sign_fields(csrf: str, **overrides: str) -> dict[str, str]:
    fields = {"csrf": csrf, "nom": "Jeanne Dupont", "qualite": "Maire", "habilite": "oui", "deliberation": ""}
    fields.update(overrides)
    return fields


def sign_through_page(client: TestClient, url: str, name: str = "Jeanne Dupont", capacity: str = "Maire") -> str:
    """View → confirmation page → confirm, as a browser would; returns the page shown afterwards."""
    page = client.get(path_of(url))
    assert page.status_code == 200, page.text
    csrf = csrf_of(page.text)
    confirm = client.post(f"{path_of(url)}/signer", data=sign_fields(csrf, nom=name, qualite=capacity))
    assert confirm.status_code == 200, confirm.text
    done = client.post(
        f"{path_of(url)}/signer/confirmer",
        data=sign_fields(csrf, nom=name, qualite=capacity, documents=hidden(confirm.text, "documents")),
    )
    assert done.status_code == 200, done.text
    return done.text


def outbox(settings: Settings, kind: str | None = None) -> list[OutboxMessage]:
    with unit_of_work(settings) as uow:
        query = select(OutboxMessage).order_by(OutboxMessage.id)  # type: ignore[arg-type]
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        rows = list(uow.session.exec(query).all())
        uow.session.expunge_all()  # keep the loaded values after the unit of work rolls back
        return rows


def link_in(message: OutboxMessage) -> str:
    match = re.search(r"https?://\S+/approbation/[^\s>\"']+", message.body_text)
    assert match, f"no approval link in {message.subject}"
    return match.group(0)


def approvals_of(settings: Settings) -> dict[str, Approval]:
    with unit_of_work(settings) as uow:
        rows = {a.party: a for a in uow.session.exec(select(Approval).order_by(Approval.id)).all()}  # type: ignore[arg-type]
        uow.session.expunge_all()
        return rows


def snapshot(settings: Settings) -> dict[str, Any]:
    """Everything a link could change: approvals, conventions, requests, audit trail, outbox, questions."""
    with unit_of_work(settings) as uow:
        session = uow.session

        def count(model: Any) -> int:
            return int(session.exec(select(func.count()).select_from(model)).one())

        return {
            "approvals": [
                (a.id, a.status, a.decided_at, a.decided_name, a.ip_address, a.link_nonce, a.decline_reason)
                for a in session.exec(select(Approval).order_by(Approval.id)).all()  # type: ignore[arg-type]
            ],
            "conventions": [
                (c.id, c.status, c.final_sha256, c.ended_reason)
                for c in session.exec(select(Convention).order_by(Convention.id)).all()  # type: ignore[arg-type]
            ],
            "requests": [(r.id, r.status) for r in session.exec(select(ServiceRequest)).all()],
            "audit": count(AuditEvent),
            "outbox": count(OutboxMessage),
            "questions": count(Question),
            "documents": count(StoredDocument),
        }
