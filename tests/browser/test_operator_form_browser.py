"""An operator's form end to end in the real Prefect UI (issue 18): a Prefect server with its UI, the
`emission-avoir` deployment registered; chromium opens its "Run" page, the operator reads the French form,
types the invoice and the reason, submits; the run the UI created is executed as a worker executes it;
the run's page then shows the artifact saying what was done, and the credit note is in the database.

Drives Debian's chromium with Playwright; skipped without it, except in CI. The pictures go to
test-artifacts/.
"""

from __future__ import annotations

import contextvars
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.services.setup import initialise
from mairie.settings import Settings, get_settings
from models.entities import CreditNote, Invoice
from notifications.mailserver import LoopbackMailServer
from tests.browser.test_approval_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _require_chromium
from tests.conftest import drain_prefect_events, make_settings

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[str]:
    """`prefect server start` (API and UI) on a free loopback port, in its own home."""
    _require_chromium()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_UI_V2_ENABLED="false",
    )
    log = (tmp_path / "prefect-server.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the Prefect server did not start")
        yield url
    finally:
        drain_prefect_events()  # the events of the runs sent to this server, before it stops
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The flows read their settings from the environment, as a worker does."""
    with LoopbackMailServer(tmp_path / "mail") as mail:
        monkeypatch.setenv("MAIRIE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("MAIRIE_SMTP_PORT", str(mail.port))
        get_settings.cache_clear()
        settings = make_settings(tmp_path, None, smtp_port=mail.port)
        initialise(settings)
        yield settings
        get_settings.cache_clear()


def _in_thread(function: Any, *args: Any) -> Any:
    """Playwright's sync API owns this thread's event loop: Prefect and the outbox run beside it."""
    result: list[Any] = []
    errors: list[BaseException] = []
    context = contextvars.copy_context()  # Prefect's settings (the server's URL) go along

    def run() -> None:
        try:
            result.append(context.run(function, *args))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=180)
    assert not errors, errors
    return result[0] if result else None


def _the_run_created(url: str, deployment_id: str) -> str:
    """The one run of the deployment: the one the form's Submit created."""
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    runs = httpx.post(f"{url}/api/flow_runs/filter", json=body, timeout=10).json()
    assert len(runs) == 1, runs
    assert runs[0]["parameters"]["avoir"]["reason"] == "Facture émise en double"
    return str(runs[0]["id"])


def _execute(flow_run_id: str) -> str:
    """What a worker does with the run the UI created: run it, then read its final state."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.operations import credit_invoice

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
        run_flow(credit_invoice, flow_run=run, parameters=run.parameters, return_type="state")
        state = client.read_flow_run(flow_run_id).state  # type: ignore[arg-type]
    assert state is not None
    return str(state.name)


def test_an_operator_issues_a_credit_note_from_the_prefect_form(prefect_server: str, settings: Settings) -> None:
    from playwright.sync_api import sync_playwright
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.operations import credit_invoice
    from tests.flows.test_billing_flows import _live

    _in_thread(_live, settings, "62700")
    with unit_of_work(settings) as uow:
        number = uow.session.exec(select(Invoice.number).where(Invoice.issuer_code == "LFN")).one()

    with temporary_settings(updates={PREFECT_API_URL: f"{prefect_server}/api"}):
        deployment_id = _in_thread(lambda: str(credit_invoice.to_deployment(name="emission-avoir").apply()))
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
            page.goto(f"{prefect_server}/deployments/deployment/{deployment_id}/run", wait_until="networkidle")
            # The form in French: titles, and descriptions with an example
            page.get_by_text("Numéro de facture", exact=True).wait_for(timeout=30_000)
            assert page.get_by_text("Tel qu'imprimé — ex. LFN-FAC-2026-00012").is_visible()
            assert page.get_by_text("Motif", exact=True).is_visible()
            fields = page.locator("textarea")
            fields.nth(0).fill(number)
            fields.nth(1).fill("Facture émise en double")
            page.screenshot(path=str(ARTIFACTS / "prefect-formulaire-avoir.png"), full_page=True)
            page.get_by_role("button", name="Submit").click()
            page.wait_for_url(re.compile(r".*/deployments/deployment/.*tab=Runs"), timeout=30_000)
            run_id = _the_run_created(prefect_server, deployment_id)

            assert _in_thread(_execute, run_id) == "Completed"

            page.goto(f"{prefect_server}/runs/flow-run/{run_id}", wait_until="networkidle")
            page.get_by_text("Completed").first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "prefect-run-avoir.png"), full_page=True)
            with unit_of_work(settings) as uow:
                [credit] = uow.session.exec(select(CreditNote.number)).all()
            page.get_by_text("Artifacts", exact=True).first.click()
            page.get_by_text("avoir", exact=True).first.click()  # the artifact's card, by its key
            page.get_by_text(f"Avoir {credit} émis").first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "prefect-artefact-avoir.png"), full_page=True)
            assert page.get_by_text(f"Annule la facture {number}").first.is_visible()
            browser.close()
