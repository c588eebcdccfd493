"""The mayor's path in a real browser: the email from the loopback SMTP server's folder, the link, the
page on a phone-sized screen, the form filled with the keyboard, the confirmation, and the CDG's email.

Drives Debian's chromium (`apt-get install -y chromium`) with Playwright. Skipped when it is absent,
except in CI (`CI=true`), where it must run. The screenshot is written to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services.intake import register_request
from mairie.services.mail import dispatch
from mairie.services.quotes import issue_quotes
from mairie.services.setup import initialise
from mairie.settings import Settings
from mairie.web import create_app
from models.entities import Approval
from notifications.mailserver import LoopbackMailServer, ReceivedMail
from tests.conftest import mairie_siret, make_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE_WIDTH, PHONE_HEIGHT = 390, 844
MAYOR = "maire@regnauville.example"
CDG_SIGNATORY = "president@cdg62.example"

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required in CI (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} absent (apt-get install -y chromium)")


@dataclass
class Stack:
    settings: Settings
    mail: LoopbackMailServer
    base_url: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Loopback SMTP server, database, and the app served by uvicorn in a thread on a free port."""
    _require_chromium()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    with LoopbackMailServer(tmp_path / "mail") as mail:
        settings = make_settings(
            tmp_path,
            f"sqlite:///{tmp_path / 'mairie.sqlite3'}",
            smtp_port=mail.port,
            public_url=base_url,
            secret_key="secret-du-test-navigateur-0123456789abcdef",
        )
        initialise(settings)
        config = uvicorn.Config(create_app(settings), log_level="warning", proxy_headers=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        try:
            _wait_until(lambda: server.started, "uvicorn did not start")
            yield Stack(settings, mail, base_url)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()


def _wait_until(condition: object, message: str, timeout: float = 10.0) -> None:
    event = threading.Event()
    waited = 0.0
    while not condition():  # type: ignore[operator]
        if waited >= timeout:
            raise AssertionError(message)
        event.wait(0.05)
        waited += 0.05


def _dispatch(settings: Settings) -> None:
    """Send the outbox from another thread: Playwright's sync API owns this thread's event loop."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dispatch(settings)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=60)
    assert not errors, errors


def _mails_to(mail: LoopbackMailServer, address: str) -> list[ReceivedMail]:
    return [m for m in mail.messages() if address in m.to or address in m.envelope_to]


def _link_in(received: ReceivedMail, base_url: str) -> str:
    body = received.message().get_body(("plain",))
    assert body is not None
    match = re.search(re.escape(base_url) + r"/approbation/[^\s>\"']+", body.get_content())
    assert match, f"no approval link in « {received.subject} »"
    return match.group(0)


def _active_id(page: object) -> str:
    return str(page.evaluate("document.activeElement.id"))  # type: ignore[attr-defined]


def test_mayor_signs_from_the_email_link_on_a_phone(stack: Stack) -> None:
    from playwright.sync_api import sync_playwright

    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 3}],  # type: ignore[list-item]
        signatory_name="Jeanne Dupont",
        signatory_email=MAYOR,
    )
    outcome = register_request(stack.settings, form, channel="api", on=date(2026, 11, 24))
    quotes = issue_quotes(stack.settings, outcome.request_id, date(2026, 11, 24))
    _dispatch(stack.settings)
    link = _link_in(_mails_to(stack.mail, MAYOR)[-1], stack.base_url)
    assert link == quotes.approval_url

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT}, locale="fr-FR", device_scale_factor=1
            )
            page = context.new_page()
            response = page.goto(link)
            assert response is not None and response.status == 200
            assert page.locator("html").get_attribute("lang") == "fr"
            assert page.evaluate("getComputedStyle(document.body).fontSize") == "18px", "stylesheet applied"
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, "no sideways scroll"
            page.screenshot(path=str(ARTIFACTS / "approval-page.png"), full_page=True)
            pdf = page.request.get(
                page.get_by_role("link", name=re.compile(r"Ouvrir le devis LFN-DEV")).get_attribute("href") or ""
            )
            assert pdf.headers["content-type"] == "application/pdf"

            page.locator("#nom").focus()
            page.keyboard.type("Jeanne Dupont")
            page.keyboard.press("Tab")
            assert _active_id(page) == "qualite"
            page.keyboard.type("Maire")
            page.keyboard.press("Tab")
            assert _active_id(page) == "deliberation"
            page.keyboard.type("Délibération n° 2026-14 du 12 mars 2026")
            page.keyboard.press("Tab")
            assert _active_id(page) == "habilite"
            page.keyboard.press("Space")
            assert page.locator("#habilite").is_checked()
            page.keyboard.press("Tab")
            page.keyboard.press("Enter")

            page.wait_for_url(re.compile(r"/signer$"))
            page.get_by_role("heading", name=re.compile("Confirmez votre signature")).wait_for()
            for sha in [q.sha256 for q in quotes.quotes] + [quotes.convention_sha256]:
                assert sha in page.content()
            page.screenshot(path=str(ARTIFACTS / "approval-confirm.png"), full_page=True)
            page.get_by_role("button", name="Signer la convention").focus()
            page.keyboard.press("Enter")

            page.get_by_text("Merci : votre signature est enregistrée.").wait_for()
            assert page.get_by_role("heading", name="Convention déjà signée").is_visible()
            page.screenshot(path=str(ARTIFACTS / "approval-signed.png"), full_page=True)
        finally:
            browser.close()

    with unit_of_work(stack.settings) as uow:
        mayor = uow.session.exec(select(Approval).where(Approval.party == "collectivity")).one()
        assert mayor.status == "signed" and mayor.decided_name == "Jeanne Dupont"
        assert mayor.ip_address == "127.0.0.1" and "Chrome" in (mayor.user_agent or "")
        assert mayor.deliberation_ref == "Délibération n° 2026-14 du 12 mars 2026"

    _dispatch(stack.settings)
    to_cdg = _mails_to(stack.mail, CDG_SIGNATORY)
    assert len(to_cdg) == 1, [m.subject for m in stack.mail.messages()]
    cdg_link = _link_in(to_cdg[0], stack.base_url)
    assert cdg_link != link
