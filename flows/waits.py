"""Waiting for an operator without holding a process.

A run started from a deployment (the UI's form, `traitement-demande` started by the CLI or the API, the
scheduled campaign) is *suspended*: Prefect records the form to fill in and the process exits. Nothing
then depends on a process staying alive: the worker, the Prefect server or the whole `mairie up` may stop
and start again. The operator's "Resume" (UI) stores the answer and reschedules the run; the worker (or
the served deployment) runs it again from its start, and each wait already answered returns its stored
answer at once. So every step before a wait must be idempotent: the flows read their state from the
database (registering twice, telling the operators twice, reviewing twice changes nothing).

A run with no deployment (a flow called in process: tests, scripts) cannot be rescheduled by Prefect: it
falls back to a pause that holds its process, with the same form and the same answer.
"""

from __future__ import annotations

from typing import TypeVar

from prefect import pause_flow_run, suspend_flow_run
from prefect.context import FlowRunContext
from prefect.input import RunInput

T = TypeVar("T", bound=RunInput)


def durable() -> bool:
    """Whether the current run can be suspended: started from a deployment, and not a subflow."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return bool(run is not None and run.deployment_id is not None and run.parent_task_run_id is None)


def wait_for_operator(form: type[T], timeout_s: int, key: str) -> T:
    """The operator's answer to `form`: the run is suspended until then (or paused without a deployment).

    `key` names this wait in the run: the same key on a resumed run returns the stored answer, so a loop
    that asks again after a refused answer must give each attempt its own key ("montants-1", "montants-2")."""
    if durable():
        answer = suspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
    else:
        answer = pause_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
    assert answer is not None  # with wait_for_input, both return the answer or raise
    return answer
