"""Submitting a request from the CLI or the JSON API: validate and register now (clear errors before
anything else), then process it — through the Prefect API when a server is configured (the run shows in
the UI), in this process otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mairie.formatting import PARIS
from mairie.schemas import RequestForm
from mairie.services.requests import RequestOutcome, register_request
from mairie.settings import Settings

PROCESS_DEPLOYMENT = "traitement-demande/traitement-demande"


@dataclass(frozen=True)
class Submission:
    request: RequestOutcome
    flow_run_id: str | None
    flow_run_url: str | None
    result: dict[str, Any] | None  # when processed in this process


def submit(
    settings: Settings, form: RequestForm, *, channel: str, on: date | None = None, in_process: bool | None = None
) -> Submission:
    """Register a request, then start its processing (Prefect deployment or in process)."""
    from mairie.stack import prefect_of_running_stack

    day = on or datetime.now(PARIS).date()
    outcome = register_request(settings, form, channel=channel, on=day)
    with prefect_of_running_stack(settings) as api:
        if api and not in_process:
            run_id, url = start_deployment(outcome.request_id, day)
            return Submission(outcome, run_id, url, None)
    return Submission(outcome, None, None, process_here(settings, outcome, day))


def process_here(settings: Settings, outcome: RequestOutcome, day: date) -> dict[str, Any]:
    """Without Prefect: issue the quotes of an eligible request with these settings and send the emails;
    a request waiting for an amount is announced to the operators (they settle it with a Prefect run or
    `mairie request requote`)."""
    from mairie.services import requests as svc
    from mairie.services.mail import dispatch

    result: dict[str, Any] = {"reference": outcome.reference, "status": outcome.status}
    if outcome.status == "eligible":
        quotes = svc.issue_quotes(settings, outcome.request_id, day)
        result.update(
            status="quoted",
            quotes=[q.number for q in quotes.quotes],
            convention=quotes.convention,
            approval_url=quotes.approval_url,
        )
    elif outcome.status == "waiting_operator":
        svc.notify_operator_task(settings, outcome.request_id, None)
        result["pending"] = list(outcome.pending)
    elif outcome.status == "refused":
        result["reasons"] = list(outcome.refusal_reasons)
    dispatch(settings)
    return result


def start_deployment(request_id: int, day: date) -> tuple[str, str | None]:
    """Start the processing deployment without waiting; returns the run's id and UI link."""
    from prefect.deployments import run_deployment

    run = run_deployment(PROCESS_DEPLOYMENT, parameters={"request_id": request_id, "on": day.isoformat()}, timeout=0)
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return str(run.id), (f"{ui.rstrip('/')}/runs/flow-run/{run.id}" if ui else None)
