"""The request-intake flow on Prefect's test server, sending through the loopback SMTP server."""

from __future__ import annotations

import threading
import time
from datetime import date

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from flows.intake import request_intake
from mairie.schemas import RequestForm
from mairie.services.intake import list_requests
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)


def _form(identifier: str, email: str = "maire@exemple.fr", **items: int) -> RequestForm:
    return RequestForm(
        collectivity=identifier,
        siret=mairie_siret(identifier),
        items=[{"code": c.replace("_", "-"), "quantity": q} for c, q in items.items()],
        signatory_name="Jeanne Dupont",
        signatory_email=email,
    )


def _artifacts(flow_run_id):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def test_small_commune_gets_two_quotes_and_one_email(stack, mail_server):
    state = request_intake(_form("62700", messagerie_5go=3, page_internet=1), channel="ui", on=DAY, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["quotes"] == ["LFN-DEV-2026-00001", "CDG62-DEV-2026-00001"]
    (mail,) = mail_server.messages()
    assert mail.to == ("maire@exemple.fr",)
    assert sorted(mail.attachments) == [
        "CDG62-DEV-2026-00001.pdf",
        "LFN-CONV-2026-00001-projet.pdf",
        "LFN-DEV-2026-00001.pdf",
    ]
    assert result["approval_url"] in mail.message().get_body(("plain",)).get_content()
    # the process-request subflow publishes the operators' summary table and the documents
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    keys = {a.key for run in runs for a in _artifacts(run.id)}
    assert {"devis", "dossier"} <= keys
    names = {run.name for run in runs}
    assert any(n.startswith("demande-62700-") for n in names)


def test_refusal_is_recorded_and_polite(stack, mail_server):
    # Amiens (80021) is in the Somme: refused with its reason, recorded, and a polite email.
    state = request_intake(_form("80021", "maire@amiens.example", antivirus=1), on=DAY, return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["status"] == "refused"
    [row] = list_requests(stack)
    assert (row["collectivity"], row["status"], row["quotes"]) == ("Amiens", "refused", [])
    (mail,) = mail_server.messages()
    assert mail.to == ("maire@amiens.example",) and mail.attachments == ()
    body = " ".join(mail.message().get_body(("plain",)).get_content().split())
    assert "réservée aux collectivités du Nord (59) et du Pas-de-Calais (62)" in body
    assert "relève du département 80" in body


def test_unknown_commune_is_a_clear_error_and_nothing_is_stored(stack, mail_server):
    state = request_intake(_form("99999", antivirus=1), on=DAY, return_state=True)
    assert state.is_failed() and "aucune commune de code INSEE 99999" in state.message
    assert list_requests(stack) == [] and mail_server.messages() == []


def test_on_quote_request_waits_for_the_operator_then_completes(stack, mail_server):
    outcome: dict = {}

    def run() -> None:
        outcome["state"] = request_intake(_form("62041", "maire@arras.example", antivirus=2), on=DAY, return_state=True)

    thread = threading.Thread(target=run)
    thread.start()
    paused = _wait_for_paused()
    # waiting, not failed: the request shows as such
    assert [r["status"] for r in list_requests(stack)] == ["waiting_operator"]
    operator_mail = [m for m in mail_server.messages() if stack.operators_email in m.to]
    assert len(operator_mail) == 1 and "Arras" in operator_mail[0].subject  # it names the collectivity
    resume_flow_run(
        paused.id,
        run_input={"montant_accompagnement": "1 200,00", "commentaire": "strate > 3 500", "operateur": "Alice"},
    )
    thread.join(timeout=60)
    assert outcome["state"].is_completed(), outcome["state"].message
    [row] = list_requests(stack)
    assert row["status"] == "quoted" and row["quotes"] == ["LFN-DEV-2026-00001", "CDG62-DEV-2026-00001"]
    mayor = [m for m in mail_server.messages() if "maire@arras.example" in m.to]
    assert len(mayor) == 1 and len(mayor[0].attachments) == 3


def _wait_for_paused(timeout: float = 60):
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                )
            )
            if runs:
                return runs[0]
            time.sleep(0.5)
    raise AssertionError("no paused flow run")
