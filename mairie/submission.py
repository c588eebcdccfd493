"""Submitting a request from the CLI or the JSON API: validate and register now (clear errors before
anything else), then process it — through the Prefect API when a server is configured (the run shows in
the UI), in this process otherwise.

Through Prefect, an eligible request (every amount known) becomes a run of the background task
`emission-devis`, which the long-lived quote worker picks up at once (`mairie quote-worker`, started by
`mairie up`): its quotes leave in about a second. A request that waits for an operator's amount, or is
refused, starts the `traitement-demande` deployment, whose run pauses for the operator's input in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mairie.formatting import PARIS
from mairie.schemas import RequestForm
from mairie.services.intake import RequestOutcome, register_request
from mairie.settings import Settings

PROCESS_DEPLOYMENT = "traitement-demande/traitement-demande"


@dataclass(frozen=True)
class Submission:
    request: RequestOutcome
    run_id: str | None  # the Prefect run processing it: a task run (quotes) or a flow run (operator, refusal)
    run_url: str | None
    result: dict[str, Any] | None  # when processed in this process
    run_kind: str | None = None  # "task-run" | "flow-run"


def submit(
    settings: Settings, form: RequestForm, *, channel: str, on: date | None = None, in_process: bool | None = None
) -> Submission:
    """Register a request, then start its processing (Prefect deployment or in process)."""
    from mairie.stack import prefect_of_running_stack

    day = on or datetime.now(PARIS).date()
    outcome = register_request(settings, form, channel=channel, on=day)
    if outcome.existing:  # the same request again: the one in progress is the answer, nothing starts
        return Submission(outcome, None, None, {"reference": outcome.reference, "status": outcome.status})
    with prefect_of_running_stack(settings) as api:
        if api and not in_process:
            if outcome.status == "eligible":
                run_id, url = start_quote_task(outcome.request_id, day)
                return Submission(outcome, run_id, url, None, "task-run")
            run_id, url = start_deployment(outcome.request_id, day)
            return Submission(outcome, run_id, url, None, "flow-run")
    return Submission(outcome, None, None, process_here(settings, outcome, day))


def process_here(settings: Settings, outcome: RequestOutcome, day: date) -> dict[str, Any]:
    """Without Prefect: issue the quotes of an eligible request with these settings and send the emails;
    a request waiting for an amount is announced to the operators (they settle it with a Prefect run or
    `mairie request requote`)."""
    from mairie.services import intake, quotes
    from mairie.services.mail import dispatch

    result: dict[str, Any] = {"reference": outcome.reference, "status": outcome.status}
    if outcome.status == "eligible":
        issued = quotes.issue_quotes(settings, outcome.request_id, day)
        result.update(
            status="quoted",
            quotes=[q.number for q in issued.quotes],
            convention=issued.convention,
            approval_url=issued.approval_url,
        )
    elif outcome.status == "waiting_operator":
        intake.notify_operator_task(settings, outcome.request_id, None)
        result["pending"] = list(outcome.pending)
    elif outcome.status == "refused":
        result["reasons"] = list(outcome.refusal_reasons)
    dispatch(settings)
    return result


def start_deployment(request_id: int, day: date) -> tuple[str, str | None]:
    """Start the processing deployment without waiting; returns the run's id and UI link."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    run = run_deployment(PROCESS_DEPLOYMENT, parameters={"request_id": request_id, "on": day.isoformat()}, timeout=0)
    assert isinstance(run, FlowRun)  # called from synchronous code: no coroutine
    return str(run.id), _ui_link("flow-run", str(run.id))


def start_quote_task(request_id: int, day: date) -> tuple[str, str | None]:
    """Hand an eligible request to the quote worker without waiting; returns the task run's id and UI link."""
    from flows.intake import quote_request

    future = quote_request.delay(request_id, day)
    return str(future.task_run_id), _ui_link("task-run", str(future.task_run_id))


def _ui_link(kind: str, run_id: str) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/runs/{kind}/{run_id}" if ui else None
