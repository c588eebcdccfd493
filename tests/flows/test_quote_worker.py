"""The quote worker (`mairie quote-worker`, a Prefect task worker) and the schedule that quotes what it
missed, on Prefect's test server with the loopback SMTP server."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterTaskRunId
from prefect.settings import PREFECT_API_URL, PREFECT_RESULTS_LOCAL_STORAGE_PATH

from flows.lifecycle import follow_conventions
from mairie.schemas import RequestForm
from mairie.services.intake import list_requests, register_request
from mairie.stack import start_quote_worker, stop
from mairie.submission import submit
from tests.conftest import mairie_siret

DAY = date(2026, 11, 25)


def _form(identifier: str) -> RequestForm:
    return RequestForm(
        collectivity=identifier,
        siret=mairie_siret(identifier),
        items=[{"code": "messagerie-5go", "quantity": 2}, {"code": "nom-de-domaine", "quantity": 1}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@exemple.fr",
    )


def _wait_for(check, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: nothing after {timeout:.0f} s")


@pytest.fixture
def quote_worker(stack, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`mairie quote-worker` as `mairie up` starts it, against the test server and the test's settings."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(PREFECT_RESULTS_LOCAL_STORAGE_PATH.value()),
    }
    process = start_quote_worker(env, tmp_path / "quote-worker.log")
    try:
        _wait_for(
            lambda: (
                process.poll() is not None or b"Subscribing to runs" in (tmp_path / "quote-worker.log").read_bytes()
            ),
            "quote worker start",
        )
        assert process.poll() is None, (tmp_path / "quote-worker.log").read_text()
        yield process
    finally:
        stop(process)


def test_eligible_request_is_quoted_by_the_quote_worker(stack, mail_server, quote_worker):
    done = submit(stack, _form("62700"), channel="api", on=DAY)
    assert done.run_kind == "task-run" and done.run_id
    assert done.run_url is None or done.run_url.endswith(f"/runs/task-run/{done.run_id}")

    (mail,) = _wait_for(mail_server.messages, "quotes email")
    assert sorted(mail.attachments) == [
        "CDG62-DEV-2026-00001.pdf",
        "LFN-CONV-2026-00001-projet.pdf",
        "LFN-DEV-2026-00001.pdf",
    ]
    (row,) = list_requests(stack)
    assert row["status"] == "quoted" and row["quotes"] == ["LFN-DEV-2026-00001", "CDG62-DEV-2026-00001"]

    def finished():
        with get_client(sync_client=True) as client:
            run = client.read_task_run(done.run_id)  # type: ignore[arg-type]
            return run if run.state and run.state.is_final() else None

    run = _wait_for(finished, "task run final state")
    assert run.state.is_completed(), run.state.message
    assert run.name == f"devis-demande-{done.request.request_id}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(task_run_id=ArtifactFilterTaskRunId(any_=[run.id]))
        )
    assert {"devis", "dossier"} <= {a.key for a in artifacts}


def test_request_waiting_for_an_amount_starts_the_processing_flow(stack, mail_server):
    """Not the worker's: a request waiting for an operator's amount starts a run of `traitement-demande`,
    which pauses for the operator's input in the UI (the deployment is registered here, not served)."""
    from flows.intake import process_request

    process_request.to_deployment(name="traitement-demande").apply()
    done = submit(
        stack,
        RequestForm(**{**_form("62041").model_dump(), "signatory_email": "maire@arras.example"}),
        channel="api",
        on=DAY,
    )
    assert done.request.status == "waiting_operator"
    assert done.run_kind == "flow-run"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(done.run_id)  # type: ignore[arg-type]
    assert run.parameters == {"request_id": done.request.request_id, "on": DAY.isoformat()}
    assert mail_server.messages() == []  # nothing leaves before the run asks the operator


def test_the_schedule_quotes_an_eligible_request_the_worker_missed(stack, mail_server):
    """No quote worker (stopped, or the Prefect server restarted and forgot its queue): the request stays
    eligible in the database, and `suivi-conventions` quotes it once the grace delay has passed."""
    outcome = register_request(stack, _form("62700"), channel="api", on=DAY)
    assert outcome.status == "eligible"
    assert follow_conventions(quote_grace_s=3600)["quoted"] == []  # within the grace delay: the worker's
    assert mail_server.messages() == []

    first = follow_conventions(quote_grace_s=0)
    assert first["quoted"] == [outcome.reference]
    (mail,) = mail_server.messages()
    assert "LFN-DEV-2026-00001.pdf" in mail.attachments and "CDG62-DEV-2026-00001.pdf" in mail.attachments
    assert follow_conventions(quote_grace_s=0)["quoted"] == []  # quoted once
    assert len(mail_server.messages()) == 1
