"""Every process killed while runs wait for an operator (issue 18): nothing is lost, nothing issued twice.

A real `mairie up` (Prefect server and UI, served deployments, quote worker, web app, SMTP) on loopback
ports of a temporary data directory. A "sur devis" request submitted by the CLI and the renewal campaign
both wait for an operator; then the stack's every process — `mairie up` itself (which runs the served
deployments: the worker), the Prefect server, the web app, the quote worker, any flow-run process — is
killed with SIGKILL. `mairie up` starts again on the same data; the operator answers both runs through
the Prefect API exactly as the UI's "Resume" form does (POST /api/flow_runs/{id}/resume with the run
input), and both runs complete: one request, one pair of quotes, one email to the mayor, one operator
email, one invoice per issuer for the campaign's year. Ctrl-C then stops the stack.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bench._pool import descendants
from mairie.database import unit_of_work
from mairie.settings import Settings
from models.entities import Invoice, Quote, ServiceRequest
from tests.conftest import mairie_siret, make_settings, restore_sigint

MAIRIE = [sys.executable, "-c", "from mairie.cli import app; app()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(settings: Settings, prefect_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIRIE_", "PREFECT_"))}
    env.update(
        MAIRIE_DATA_DIR=str(settings.data_dir),
        MAIRIE_PUBLIC_URL=settings.public_url,
        MAIRIE_SMTP_PORT=str(settings.smtp_port),
        MAIRIE_PREFECT_UI_URL=f"http://127.0.0.1:{prefect_port}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [*MAIRIE, "up", "--prefect-port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=restore_sigint,
        )


def _kill_all(up: subprocess.Popen[bytes]) -> None:
    """SIGKILL the stack and everything it started: no process gets to clean up."""
    victims = [up.pid, *descendants(up.pid)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    up.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in victims):
        time.sleep(0.2)


def _wait(check: Callable[[], Any], what: str, log: Path, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what} after {timeout:.0f} s; log of mairie up:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[tuple[Settings, dict[str, str], int, Path]]:
    prefect_port = _free_port()
    settings = make_settings(
        tmp_path, None, smtp_port=_free_port(), public_url=f"http://127.0.0.1:{_free_port()}", smtp_timeout=5.0
    )
    yield settings, _environment(settings, prefect_port), prefect_port, tmp_path / "up.log"


def _deployment_id(api: str, name: str) -> str | None:
    response = httpx.get(f"{api}/deployments/name/{name}/{name}", timeout=5)
    return str(response.json()["id"]) if response.status_code == 200 else None


def _state(api: str, run_id: str) -> str | None:
    response = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5)
    return str(response.json()["state"]["name"]) if response.status_code == 200 else None


def _run_name(api: str, run_id: str) -> str:
    return str(httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["name"])


def _runs_of(api: str, deployment_id: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    response = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=5)
    return list(response.json()) if response.status_code == 200 else []


def _messages_to(settings: Settings, address: str) -> list[Path]:
    """The emails the stack's SMTP server kept whose To: names `address`."""
    found = []
    for path in settings.mail_path.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(message.get("To", "")):
            found.append(path)
    return found


def _resume(api: str, run: str, answer: dict[str, object], seconds: float = 60) -> httpx.Response:
    """The UI's Resume, sent again while the restarted server answers 503 (its services still starting: the
    run was not touched), as an operator would click again."""
    deadline = time.monotonic() + seconds
    while True:
        resumed = httpx.post(f"{api}/flow_runs/{run}/resume", json={"run_input": answer}, timeout=10)
        if resumed.status_code != 503 or time.monotonic() > deadline:
            return resumed
        time.sleep(1)


def test_runs_waiting_for_an_operator_survive_a_restart_of_every_process(stack_env) -> None:
    settings, env, port, log = stack_env
    api = f"http://127.0.0.1:{port}/api"
    up = _start(env, port, log)
    try:
        for name in ("traitement-demande", "campagne-renouvellement"):
            _wait(lambda n=name: _deployment_id(api, n), f"deployment {name} not served", log)

        # 1. A live subscription (for the campaign), through the services, on the stack's database.
        from tests.flows.test_billing_flows import _live

        _live(settings, "62700")
        with unit_of_work(settings) as uow:
            (live_request,) = uow.session.exec(select(ServiceRequest.reference)).all()

        # 2. A "sur devis" request (Arras, more than 3 500 inhabitants), submitted as an operator would.
        submitted = subprocess.run(
            [*MAIRIE, "request", "submit", "62041", "antivirus=2", "--signatory-name", "Jeanne Dupont",
             "--signatory-email", "maire@arras.example", "--siret", str(mairie_siret("62041"))],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        process_id = _wait(lambda: _deployment_id(api, "traitement-demande"), "no deployment", log)
        request_run = _wait(lambda: _runs_of(api, process_id), "no run of traitement-demande", log)[0]["id"]

        # 3. The campaign, started as the UI's "Run" does.
        campaign_id = _deployment_id(api, "campagne-renouvellement")
        created = httpx.post(
            f"{api}/deployments/{campaign_id}/create_flow_run",
            json={"parameters": {"year": 2027, "today": "2027-01-15"}},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        campaign_run = created.json()["id"]

        for run in (request_run, campaign_run):
            _wait(lambda r=run: _state(api, r) == "Suspended", f"run {run} not suspended", log)
        operator_mails = len(_messages_to(settings, settings.operators_email))

        # 4. Kill everything, then start the stack again on the same data.
        _kill_all(up)
        assert not descendants(up.pid)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{api}/health", timeout=2)
        up = _start(env, port, log)
        _wait(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, "Prefect not back", log)
        assert _state(api, request_run) == "Suspended" and _state(api, campaign_run) == "Suspended"

        # 5. The operator answers both, through the API the UI's Resume form calls.
        for run, answer in (
            (
                request_run,
                {"montant_accompagnement": "1 200,00", "commentaire": "strate > 3 500", "operateur": "Alice"},
            ),
            (campaign_run, {"approve": True, "exclude": [], "operator": "Alice"}),
        ):
            resumed = _resume(api, run, answer)
            assert resumed.status_code == 201 and resumed.json()["status"] == "ACCEPT", resumed.text
        for run in (request_run, campaign_run):
            _wait(lambda r=run: _state(api, r) == "Completed", f"run {run} not completed after resume", log)

        # 6. Nothing twice.
        with unit_of_work(settings) as uow:
            statuses = uow.session.exec(select(ServiceRequest.reference, ServiceRequest.status)).all()
            quotes = uow.session.exec(select(Quote.number)).all()
            invoices = uow.session.exec(select(Invoice.number).where(Invoice.billing_year == 2027)).all()
        arras = [status for reference, status in statuses if reference != live_request]
        assert arras == ["quoted"], statuses  # Arras's request, registered once, quoted once
        assert len(quotes) == 4  # two per request
        assert sorted(invoices) == ["CDG62-FAC-2027-00001", "LFN-FAC-2027-00001"]
        # issued by a child run of `renouvellement-lot`, which `mairie up` serves (one slice here)
        slice_id = _deployment_id(api, "renouvellement-lot")
        assert slice_id is not None
        assert [r["state"]["name"] for r in _runs_of(api, slice_id)] == ["Completed"]
        _wait(lambda: len(_messages_to(settings, "maire@arras.example")) == 1, "no email to Arras", log, 60)
        assert len(_messages_to(settings, settings.operators_email)) == operator_mails  # not told again
        time.sleep(3)
        assert len(_messages_to(settings, "maire@arras.example")) == 1

        # 7. A run that fails reaches a person: the automation `mairie up` created calls the web app, which
        #    emails the operators with the run's link.
        payment_id = _deployment_id(api, "enregistrement-paiement")
        failing = httpx.post(
            f"{api}/deployments/{payment_id}/create_flow_run",
            json={
                "parameters": {
                    "paiement": {"invoice": "LFN-FAC-2099-99999", "amount": "1,00", "paid_on": "2026-11-30",
                                 "operator": "Alice"}
                }
            },
            timeout=10,
        )  # fmt: skip
        assert failing.status_code == 201, failing.text
        failed_run = failing.json()["id"]
        _wait(lambda: _state(api, failed_run) == "Failed", "the payment run did not fail", log)

        def alert() -> list[str]:
            found = []
            for path in _messages_to(settings, settings.operators_email):
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if "enregistrement-paiement" in str(message["Subject"]) and failed_run in message.as_string():
                    found.append(str(message["Subject"]))
            return found

        assert _wait(alert, "no email to the operators about the failed run", log, 120) == [
            f"[Prefect] Run en échec – enregistrement-paiement ({_run_name(api, failed_run)})"
        ]

        # 8. Ctrl-C stops the whole stack.
        children = descendants(up.pid)
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in children):
            time.sleep(0.2)
        assert not [p for p in children if Path(f"/proc/{p}").exists()]
    finally:
        if up.poll() is None:
            _kill_all(up)
