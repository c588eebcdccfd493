"""Waits that no process holds (issue 18): a run started from a deployment is *suspended* while it waits
for an operator, its process exits, and the resumed run starts again from the top — as a worker runs it
after a restart — issuing nothing twice.

Each run is executed in this process the way a worker executes a run it picked up (`run_flow` on the
flow run the deployment created), so "the process exits" is `run_flow` returning with the run suspended.
The same with real processes killed and restarted: tests/faults/test_restart_while_waiting.py.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow
from prefect.flow_runs import resume_flow_run
from sqlmodel import select

from flows.billing import renewal_campaign
from flows.forms import DemandeDeServices
from flows.intake import request_intake
from mairie.database import unit_of_work
from mairie.services.intake import list_requests
from models.entities import Invoice, Quote, ServiceRequest
from tests.flows.test_billing_flows import _live
from tests.flows.test_intake_flow import DAY, _artifacts, _form


def _start(flow: Any, name: str, parameters: dict[str, Any]) -> Any:
    deployment_id = flow.to_deployment(name=name).apply()
    with get_client(sync_client=True) as client:
        return client.create_flow_run_from_deployment(deployment_id, parameters=parameters)


def _work(flow: Any, run_id: Any) -> Any:
    """Run a flow run as a worker does; the state it ends in (Suspended when it waits)."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        with contextlib.suppress(Pause):  # raised when the run is suspended: a worker's process exits there
            run_flow(flow, flow_run=run, parameters=run.parameters, return_type="state")
        return client.read_flow_run(run_id).state


def test_a_sur_devis_request_waits_suspended_and_resumes_without_issuing_twice(stack, mail_server):
    form = DemandeDeServices.model_validate(_form("62041", "maire@arras.example", antivirus=2)).model_dump(mode="json")
    run = _start(request_intake, "demande-de-services", {"demande": form, "on": DAY.isoformat()})

    state = _work(request_intake, run.id)
    assert state.name == "Suspended" and state.is_paused()  # no process holds it
    assert [r["status"] for r in list_requests(stack)] == ["waiting_operator"]
    assert len([m for m in mail_server.messages() if stack.operators_email in m.to]) == 1

    # A malformed amount: the resumed run registers nothing new, refuses it and suspends again.
    resume_flow_run(run.id, run_input={"montant_accompagnement": "douze", "operateur": "Alice"})
    state = _work(request_intake, run.id)
    assert state.name == "Suspended"
    assert [r["status"] for r in list_requests(stack)] == ["waiting_operator"]

    resume_flow_run(run.id, run_input={"montant_accompagnement": "1 200,00", "operateur": "Alice"})
    state = _work(request_intake, run.id)
    assert state.is_completed(), state.message
    with unit_of_work(stack) as uow:
        statuses = uow.session.exec(select(ServiceRequest.status)).all()
        quotes = uow.session.exec(select(Quote.number)).all()
    assert statuses == ["quoted"]
    assert sorted(quotes) == ["CDG62-DEV-2026-00001", "LFN-DEV-2026-00001"]
    assert len([m for m in mail_server.messages() if stack.operators_email in m.to]) == 1  # told once
    mayor = [m for m in mail_server.messages() if "maire@arras.example" in m.to]
    assert len(mayor) == 1 and len(mayor[0].attachments) == 3


def test_the_campaign_waits_suspended_and_issues_once_resumed(stack, mail_server):
    _live(stack, "62700")
    run = _start(renewal_campaign, "campagne-renouvellement", {"year": 2027, "today": "2027-01-15"})

    state = _work(renewal_campaign, run.id)
    assert state.name == "Suspended"
    with unit_of_work(stack) as uow:
        assert uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all() == []

    resume_flow_run(run.id, run_input={"approve": True, "operator": "Alice"})
    state = _work(renewal_campaign, run.id)
    assert state.is_completed(), state.message
    assert sorted(state.result()["issued"]) == ["CDG62-FAC-2027-00001", "LFN-FAC-2027-00001"]
    keys = [a.key for a in _artifacts(run.id)]
    assert keys.count("revue-renouvellement-2027") == 1  # the resumed run did not publish the review again
    assert keys.count("emission-renouvellement-2027") == 1
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all()) == 2


def test_a_flow_called_without_a_deployment_still_waits_in_its_process(stack, mail_server):
    """No deployment, nothing to reschedule: `flows.waits` pauses in process (tests/flows/test_intake_flow.py
    drives that path end to end); here only the choice is checked."""
    from prefect import flow

    from flows.waits import durable

    @flow
    def probe() -> bool:
        return durable()

    assert probe() is False
    run = _start(probe, "sonde", {})
    with get_client(sync_client=True) as client:
        fresh = client.read_flow_run(run.id)
    assert run_flow(probe, flow_run=fresh, parameters={}) is True
