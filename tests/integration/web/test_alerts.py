"""The Prefect automation's webhook (issue 18): a failed run of a deployment becomes one email to the
operators, through the outbox, only for a caller holding the alert token."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.services.alerts import ALERT_HEADER, alert_token
from mairie.settings import Settings
from models.entities import OutboxMessage

URL = "/alertes/run-en-echec"


def _body(run_id: str, state: str = "Failed") -> dict[str, str]:
    return {
        "flow_run_id": run_id,
        "flow_run_name": "paiement-20270301-101500",
        "deployment": "enregistrement-paiement",
        "state": state,
        "message": "Flow run encountered an exception: NotFound: aucune facture LFN-FAC-2027-99999",
    }


def _alerts(settings: Settings) -> list[tuple[list[str], str]]:
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "run_failed")).all()
        return [(list(r.recipients), r.subject) for r in rows]


def test_a_failed_run_emails_the_operators_once_with_its_link(client: TestClient, settings: Settings) -> None:
    run_id = str(uuid.uuid4())
    headers = {ALERT_HEADER: alert_token(settings)}
    answer = client.post(URL, json=_body(run_id), headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["run_url"] == f"{settings.prefect_ui_url}/runs/flow-run/{run_id}"
    again = client.post(URL, json=_body(run_id), headers=headers)  # the automation fired twice
    assert again.status_code == 202
    [(recipients, subject)] = _alerts(settings)
    assert recipients == [settings.operators_email]
    assert subject == "[Prefect] Run en échec – enregistrement-paiement (paiement-20270301-101500)"
    crashed = client.post(URL, json=_body(run_id, "Crashed"), headers=headers)
    assert crashed.status_code == 202 and len(_alerts(settings)) == 2  # another state, another email


def test_without_the_token_nothing_is_sent(client: TestClient, settings: Settings) -> None:
    run_id = str(uuid.uuid4())
    assert client.post(URL, json=_body(run_id)).status_code == 403
    assert client.post(URL, json=_body(run_id), headers={ALERT_HEADER: "0" * 64}).status_code == 403
    bad = client.post(
        URL, json={**_body(run_id), "flow_run_id": "../../etc"}, headers={ALERT_HEADER: alert_token(settings)}
    )
    assert bad.status_code == 400
    assert client.post(URL, content=b"pas du json", headers={ALERT_HEADER: alert_token(settings)}).status_code == 400
    assert _alerts(settings) == []


def test_the_endpoint_is_not_in_the_public_schema(client: TestClient) -> None:
    assert URL not in client.get("/openapi.json").json()["paths"]
