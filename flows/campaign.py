"""The approved renewal campaign spread over Prefect child runs (docs/scaling.md).

The parent (`campagne-renouvellement`, flows.billing) cuts the live subscriptions into slices of
`MAIRIE_CAMPAIGN_SLICE_SIZE` ids and starts one run of the `renouvellement-lot` deployment per slice with
`run_deployment(…, timeout=0)`. In production that deployment sits on the process work pool
`MAIRIE_CAMPAIGN_WORK_POOL` (`mairie-campagne`): one worker per machine takes the child runs, at most
`MAIRIE_CAMPAIGN_CONCURRENCY` at once (the deployment's concurrency limit). `mairie up` serves it from its
own process instead (one machine, one child run at a time).

- **Idempotent.** Each child run has the idempotency key (database, year, slice bounds, attempt): a second
  run of the parent — a retry, a rerun, a resumed run — gets the latest attempt of each slice back instead
  of new runs, and a completed slice issues nothing again. A slice whose latest attempt failed or crashed
  in an earlier parent run gets one more attempt.
- **Retried.** A child run that raises (the store unreachable, the database gone) is retried by Prefect
  (`retries=2`); one whose process died (SIGKILL, out of memory, machine lost: Prefect says *Crashed*, and
  does not retry crashes) is followed by a new child run of the same slice, its next *attempt* (`lot-…-essai-2`,
  its own key), up to `CRASH_RETRIES` times. Not the same run scheduled again: Prefect reports a death twice
  (the runner in the worker, then the worker), seconds apart, and the late report would crash the new
  attempt; on the dead run it is refused (already terminal). A retry issues only what is left: its numbered
  invoices without a document are completed, the rest issued.
- **Shared list.** Each subscription is claimed with `SELECT … FOR UPDATE SKIP LOCKED` in its numbering
  transaction (`renewal.issue`), so two runs over the same ids never wait on each other nor issue twice.
- **Waiting.** The parent polls its children's states through the Prefect API every few seconds (and one
  short count query) and keeps a progress artifact up to date; it holds no operator's wait (the approval
  is over by then). It does not suspend itself: a suspended run resumes from its start (the review again,
  for every subscription) and would need the last child to resume it; polling keeps one idle process
  instead, and if it dies its rerun finds the same children by their keys.
- **Without a worker.** When no worker or `mairie up` serves `renouvellement-lot` (the deployment is
  missing or not ready: a flow called in process, tests, a script), the parent runs each slice as a subflow
  in its own process, with the same code and the same summary.

The summary artifact counts from the database (invoices of the year before and after), so it is right
whoever issued what, and lists the children's held subscriptions, pending amounts and failed slices.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.runtime import flow_run
from sqlmodel import col, func, select

from mairie.database import unit_of_work
from mairie.services import renewal
from mairie.services.mail import SendingMeanwhile, dispatch
from mairie.settings import Settings, get_settings
from models.entities import Invoice
from models.lifecycle import InvoiceStatus

SLICE_FLOW = "renouvellement-lot"
SLICE_DEPLOYMENT = f"{SLICE_FLOW}/{SLICE_FLOW}"  # flow name / deployment name
CRASH_RETRIES = 2  # a slice whose child run crashed (its process died) gets at most this many new attempts
POLL_S = 3.0
MAIL_ROUNDS = 20  # a slice sends its emails in at most this many batches of 500


def slice_run_name(year: int, first_id: int, last_id: int, attempt: int = 1) -> str:
    """`lot-2027-1-250`, then `lot-2027-1-250-essai-2` for the slice's second child run."""
    name = f"lot-{year}-{first_id}-{last_id}"
    return name if attempt <= 1 else f"{name}-essai-{attempt}"


def _slice_run_name() -> str:
    params = flow_run.parameters or {}
    return slice_run_name(params["year"], params["first_id"], params["last_id"], int(params.get("attempt") or 1))


@flow(
    name=SLICE_FLOW,
    flow_run_name=_slice_run_name,
    retries=2,
    retry_delay_seconds=10,
    log_prints=False,
)
def renewal_slice(
    year: int,
    first_id: int,
    last_id: int,
    exclude: list[str] | None = None,
    today: date | None = None,
    attempt: int = 1,
) -> dict[str, Any]:
    """Issue the renewal invoices of one slice of live subscriptions (ids `first_id` to `last_id`), then
    send the due emails. A retry, or a second run, issues only what is left.

    Args:
        year: L'année de facturation de la campagne
        first_id: Le premier identifiant d'abonnement du lot
        last_id: Le dernier identifiant d'abonnement du lot
        exclude: SIREN ou codes INSEE des collectivités exclues par l'opérateur
        today: La date d'émission (par défaut la date de renouvellement)
        attempt: L'essai de ce lot (2 et plus : un essai précédent a été interrompu)
    """
    settings = get_settings()
    with SendingMeanwhile(settings) as meanwhile:  # the emails of committed invoices leave while the rest renders
        result = renewal.issue(settings, year, exclude=exclude or [], first_id=first_id, last_id=last_id, today=today)
    sent = meanwhile.sent
    for _round in range(MAIL_ROUNDS):  # the slice's emails leave now, from this machine
        report = dispatch(settings)
        sent += len(report.sent)
        if not report.sent:
            break
    outcome = {
        "first_id": first_id,
        "last_id": last_id,
        "issued": len(result.issued),
        "existing": len(result.existing),
        "taken": len(result.taken),
        "held": result.held,
        "pending": result.pending,
        "excluded": result.excluded,
        "sent": sent,
    }
    create_table_artifact(table=[_row(outcome)], description=f"Lot {first_id}–{last_id} de la campagne {year}")
    get_run_logger().info(
        "Lot %s–%s : %s factures émises, %s déjà émises, %s abonnements retenus, %s courriels envoyés.",
        first_id, last_id, outcome["issued"], outcome["existing"], len(result.held), sent,
    )  # fmt: skip
    return outcome


# The child's artifact is what the parent reads back (results stay on the child's machine; artifacts are in
# Prefect's database): one row, lists joined with SEP.
SEP = " ; "
COLUMNS = {
    "first_id": "premier abonnement",
    "last_id": "dernier abonnement",
    "issued": "factures émises",
    "existing": "déjà émises",
    "taken": "pris par un autre run",
    "held": "retenus (identité incomplète)",
    "pending": "montants à saisir",
    "excluded": "exclus",
    "sent": "courriels envoyés",
}


def _row(outcome: dict[str, Any]) -> dict[str, Any]:
    return {
        label: SEP.join(outcome[key]) if isinstance(outcome[key], list) else outcome[key]
        for key, label in COLUMNS.items()
    }


def _outcome(row: dict[str, Any]) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    for key, label in COLUMNS.items():
        value = row.get(label)
        if key in ("held", "pending", "excluded"):
            outcome[key] = [v for v in str(value or "").split(SEP) if v]
        else:
            outcome[key] = int(value or 0)
    return outcome


@dataclass
class SliceRun:
    """One slice and what became of its child run."""

    slice: renewal.Slice
    run_id: UUID | None = None
    state: str = "Scheduled"
    final: bool = False
    failed: bool = False
    attempt: int = 1  # the slice's child run is its attempt-th (a new one after a crash)
    reruns: int = 0  # attempts started by this parent after a crash, or after a failure in an earlier parent run
    outcome: dict[str, Any] | None = None
    message: str = ""


@dataclass
class SlicedIssue:
    """What the parent reports once every child run has ended."""

    year: int
    slices: list[SliceRun]
    issued: list[str] = field(default_factory=list)  # numbered and issued while this parent ran
    existing: list[str] = field(default_factory=list)  # numbers already there when it started
    unfinished: int = 0  # invoices numbered without their document (completed by the next run)
    through: str = "worker"  # worker | process

    def merged(self, key: str) -> list[str]:
        return [v for s in self.slices if s.outcome for v in s.outcome.get(key, [])]

    @property
    def failed(self) -> list[SliceRun]:
        return [s for s in self.slices if s.failed]


def idempotency_key(settings: Settings, year: int, part: renewal.Slice, attempt: int = 1) -> str:
    """The key of a slice's child run: the same campaign (database, year, bounds) and attempt give the same
    run. The database is in the key so that two installations sharing one Prefect server never share a run."""
    database = hashlib.sha256(settings.sqlalchemy_url.encode()).hexdigest()[:12]
    key = f"renouvellement-{database}-{year}-{part.first_id}-{part.last_id}"
    return key if attempt <= 1 else f"{key}-essai-{attempt}"


def _numbers(settings: Settings, year: int) -> tuple[set[str], set[str]]:
    """(numbers of the year's renewal invoices, those of them issued: not only numbered)."""
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(
            select(Invoice.number, Invoice.status).where(Invoice.billing_year == year, Invoice.kind == "renewal")
        ).all()
    return {n for n, _s in rows}, {n for n, status in rows if status != InvoiceStatus.NUMBERED}


def _issued_count(settings: Settings, year: int) -> int:
    with unit_of_work(settings) as uow:
        query = select(func.count(col(Invoice.id))).where(
            Invoice.billing_year == year, Invoice.kind == "renewal", Invoice.status != InvoiceStatus.NUMBERED
        )
        return int(uow.session.exec(query).one())


def slice_deployment_ready() -> bool:
    """Whether a worker (or `mairie up`) serves `renouvellement-lot`: the deployment exists and was polled
    for runs within the last minute (Prefect's READY status)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(SLICE_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return deployment.status == DeploymentStatus.READY


def issue_in_slices(
    year: int,
    exclude: list[str],
    today: date | None,
    *,
    expected: int,
    timeout_s: float = 24 * 3600,
    poll_s: float = POLL_S,
) -> SlicedIssue:
    """Run the year's campaign as one child run per slice and wait for them (called by the parent flow,
    after the approval). `expected` is how many invoices the review announced (for the progress bar)."""
    settings = get_settings()
    logger = get_run_logger()
    on = renewal.renewal_date(settings, year)
    with unit_of_work(settings) as uow:
        ids = renewal.live_subscription_ids(uow.session, year, on)
    runs = [SliceRun(s) for s in renewal.slices_of(ids, settings.campaign_slice_size)]
    before, issued_before = _numbers(settings, year)
    progress = create_progress_artifact(  # called from sync code: the id, not a coroutine
        progress=0.0,
        key=f"progression-renouvellement-{year}",
        description=f"Campagne {year} : {len(runs)} lots de {settings.campaign_slice_size} abonnements au plus",
    )
    assert isinstance(progress, UUID)
    through = "worker" if slice_deployment_ready() else "process"
    if through == "worker":
        _run_on_workers(settings, year, exclude, today, runs, progress, expected, len(issued_before), timeout_s, poll_s)
    else:
        logger.warning(
            "Aucun worker ne sert « %s » : les %s lots sont émis dans ce processus.", SLICE_DEPLOYMENT, len(runs)
        )
        for done, run in enumerate(runs, start=1):
            _run_here(year, exclude, today, run)
            update_progress_artifact(progress, 100.0 * done / max(1, len(runs)))
    update_progress_artifact(progress, 100.0)
    after, issued_after = _numbers(settings, year)
    return SlicedIssue(
        year=year,
        slices=runs,
        issued=sorted(issued_after - before),
        existing=sorted(before),
        unfinished=len(after - issued_after),
        through=through,
    )


def _run_here(year: int, exclude: list[str], today: date | None, run: SliceRun) -> None:
    """A slice as a subflow of the parent, in its process (no worker serves the deployment)."""
    part = run.slice
    state = renewal_slice(year, part.first_id, part.last_id, exclude, today, return_state=True)
    run.state, run.final = state.name or state.type.value, True
    if state.is_completed():
        run.outcome = state.result()
    else:
        run.failed, run.message = True, state.message or ""


def _run_on_workers(
    settings: Settings,
    year: int,
    exclude: list[str],
    today: date | None,
    runs: list[SliceRun],
    progress: UUID,
    expected: int,
    issued_before: int,
    timeout_s: float,
    poll_s: float,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        latest = _latest_attempts(client, settings, year, runs)
    for run, attempt in zip(runs, latest, strict=True):
        run.attempt = max(1, attempt)
        child = _start(settings, year, exclude, today, run)
        if child.state is not None and child.state.is_final() and not child.state.is_completed():
            # ended badly in an earlier run of the parent: one more attempt
            why = f"{child.state.name} lors d'une exécution précédente"
            logger.warning("Lot %s : %s, essai %s lancé.", child.name, why, run.attempt + 1)
            _next_attempt(settings, year, exclude, today, run)
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            waiting = [r for r in runs if not r.final]
            if not waiting:
                break
            if time.monotonic() > deadline:
                for run in waiting:
                    run.failed, run.final = True, True
                    run.message = f"non terminé après {timeout_s / 3600:.0f} h ({run.state})"
                break
            by_id = {r.run_id: r for r in waiting if r.run_id is not None}
            for child in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(by_id)))):
                run = by_id[child.id]
                state = child.state
                if state is None:
                    continue
                run.state = state.name or state.type.value
                if not state.is_final():
                    continue
                if state.is_crashed() and run.reruns < CRASH_RETRIES:
                    logger.warning(
                        "Lot %s interrompu (%s) : essai %s lancé.", child.name, state.message, run.attempt + 1
                    )
                    _next_attempt(settings, year, exclude, today, run)
                    continue
                run.final = True
                run.failed = not state.is_completed()
                run.message = state.message or ""
            issued = _issued_count(settings, year) - issued_before
            share = min(99.0, 100.0 * issued / expected) if expected else 0.0
            done = sum(1 for r in runs if r.final)
            update_progress_artifact(progress, max(share, 99.0 * done / len(runs)))
            if any(not r.final for r in runs):
                time.sleep(poll_s)
        _read_outcomes(client, runs)


ATTEMPTS_READ = 4  # attempts looked up at once per slice when the parent starts


def _latest_attempts(client: Any, settings: Settings, year: int, runs: list[SliceRun]) -> list[int]:
    """For each slice, its highest attempt that has a child run already (0: none yet), found by their keys."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey

    latest = [0] * len(runs)
    todo, low = list(range(len(runs))), 1
    while todo:
        high = low + ATTEMPTS_READ - 1
        keys = {
            idempotency_key(settings, year, runs[i].slice, attempt): (i, attempt)
            for i in todo
            for attempt in range(low, high + 1)
        }
        listed = list(keys)
        for start in range(0, len(listed), 200):
            chunk = listed[start : start + 200]
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=chunk)),
                limit=len(chunk),
            )
            for child in found:
                if child.idempotency_key in keys:
                    i, attempt = keys[child.idempotency_key]
                    latest[i] = max(latest[i], attempt)
        todo, low = [i for i in todo if latest[i] == high], high + 1
    return latest


def _start(settings: Settings, year: int, exclude: list[str], today: date | None, run: SliceRun) -> Any:
    """The child run of the slice's current attempt: created, or the existing one with its key."""
    from prefect.deployments import run_deployment

    part = run.slice
    child = run_deployment(
        SLICE_DEPLOYMENT,
        parameters={
            "year": year,
            "first_id": part.first_id,
            "last_id": part.last_id,
            "exclude": exclude,
            "today": today.isoformat() if today else None,
            "attempt": run.attempt,
        },
        idempotency_key=idempotency_key(settings, year, part, run.attempt),
        flow_run_name=slice_run_name(year, part.first_id, part.last_id, run.attempt),
        timeout=0,
    )
    assert not inspect.isawaitable(child)  # called from sync code
    run.run_id = child.id
    run.state = (child.state.name or child.state.type.value) if child.state is not None else "Scheduled"
    return child


def _next_attempt(settings: Settings, year: int, exclude: list[str], today: date | None, run: SliceRun) -> None:
    """A new child run for the slice (its next attempt), which completes what the last one left."""
    run.attempt += 1
    run.reruns += 1
    _start(settings, year, exclude, today, run)


def _read_outcomes(client: Any, runs: list[SliceRun]) -> None:
    """Each completed child's counts, from the table artifact it created (its latest one)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterType,
        FlowRunFilter,
        FlowRunFilterId,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    ids = [r.run_id for r in runs if r.run_id is not None and not r.failed]
    by_id = {r.run_id: r for r in runs}
    for start in range(0, len(ids), 200):
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[start : start + 200])),
            artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["table"])),
            sort=ArtifactSort.CREATED_DESC,
        )
        for artifact in artifacts:
            run = by_id.get(artifact.flow_run_id)
            if run is None or run.outcome is not None:
                continue  # the latest artifact of that run was read already
            data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
            if isinstance(data, list) and data and isinstance(data[0], dict):
                run.outcome = _outcome(data[0])


def publish_summary(result: SlicedIssue, operator: str) -> None:
    """The campaign's summary in French: issued, already there, held, pending, failed slices; and one row
    per slice."""
    year = result.year
    held, pending, excluded = result.merged("held"), result.merged("pending"), result.merged("excluded")
    lines = [
        f"# Campagne {year} émise par {operator}",
        "",
        f"- lots : {len(result.slices)} ({'workers du pool' if result.through == 'worker' else 'dans ce processus'})",
        f"- factures émises : {len(result.issued)}",
        f"- déjà émises : {len(result.existing)}",
        f"- numérotées sans document (complétées au prochain passage) : {result.unfinished}",
        f"- exclues : {', '.join(sorted(set(excluded))) or '—'}",
        f"- retenues (identité de facturation incomplète) : {len(held)}",
        *[f"  - {h}" for h in held],
        f"- montants à saisir : {'; '.join(pending) or '—'}",
        f"- lots en échec : {len(result.failed)}",
        *[f"  - {s.slice.first_id}–{s.slice.last_id} : {s.state} {s.message}".rstrip() for s in result.failed],
    ]
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key=f"emission-renouvellement-{year}", markdown="\n".join(lines), description=f"Émission de la campagne {year}"
    )
    rows = []
    for run in result.slices:
        outcome = run.outcome or {}
        rows.append(
            {
                "lot": f"{run.slice.first_id}–{run.slice.last_id}",
                "abonnements": run.slice.subscriptions,
                "état": run.state,
                "relances": run.reruns,
                "émises": outcome.get("issued", "—"),
                "déjà émises": outcome.get("existing", "—"),
                "retenus": len(outcome.get("held", [])) if outcome else "—",
                "courriels": outcome.get("sent", "—"),
            }
        )
    create_table_artifact(key=f"lots-renouvellement-{year}", table=rows, description=f"Lots de la campagne {year}")
