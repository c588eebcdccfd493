"""Recurring billing: the yearly renewal campaign (review, operator approval, issue), the daily
reminders, and the outbox that sends every email."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from flows.campaign import issue_in_slices, publish_summary
from flows.pes import pes_export
from flows.waits import wait_for_operator
from mairie.formatting import PARIS, euros
from mairie.services import dunning, invoicing, renewal
from mairie.services.channels import folder
from mairie.services.mail import dispatch
from mairie.settings import get_settings
from models.money import ZERO


class CampaignApproval(RunInput):
    """The operator's decision on a renewal campaign's review."""

    approve: bool = Field(description="Cocher pour émettre les factures de la campagne")
    exclude: list[str] = Field(
        default_factory=list, description="SIREN ou codes INSEE des collectivités à exclure de la campagne"
    )
    operator: str = Field(default="opérateur", description="Votre nom")


@task(cache_policy=NO_CACHE)
def review(year: int) -> renewal.CampaignReview:
    """Compute every renewal invoice of the year without issuing anything."""
    return renewal.review(get_settings(), year)


class CampaignIncomplete(Exception):
    """Some slices of an approved campaign failed after their retries: the run fails (operators alerted)."""


@task(cache_policy=NO_CACHE)
def send_mail() -> dict[str, int]:
    report = dispatch(get_settings())
    return {"sent": len(report.sent), "retry": len(report.retried), "undelivered": len(report.undelivered)}


def _once_per_run(context: Any, parameters: dict[str, Any]) -> str:
    """One review published per campaign run: a run resumed after its approval does not publish it again
    (its result is persisted, so the cache outlives the process)."""
    return f"revue-publiee-{context.task_run.flow_run_id}-{parameters['result'].year}"


@task(cache_key_fn=_once_per_run, persist_result=True)
def publish_review(result: renewal.CampaignReview) -> None:
    """The dry run as the operator reads it: per collectivity and issuer, last year, this year, why."""
    rows = []
    for line in result.lines:
        for issuer in sorted(set(line.this_year) | {k for k, v in line.last_year.items() if v is not None}):
            before = line.last_year.get(issuer)
            after = line.this_year.get(issuer)
            rows.append(
                {
                    "collectivité": line.collectivity,
                    "SIREN": line.siren,
                    "émetteur": issuer,
                    f"{result.year - 1}": euros(before) if before is not None else "—",
                    f"{result.year}": euros(after) if after is not None else "—",
                    "écart": euros(after - before) if before is not None and after is not None else "—",
                    "raisons": " ; ".join(line.reasons) or "—",
                    "à saisir": ", ".join(line.pending) or "",
                    "déjà émise": "oui" if issuer in line.already_issued else "",
                }
            )
    create_table_artifact(
        key=f"revue-renouvellement-{result.year}",
        table=rows,
        description=f"Revue de la campagne {result.year} (rien n'est encore émis)",
    )
    totals = result.totals()
    last = result.last_totals()
    lines = [
        f"# Campagne de renouvellement {result.year}",
        "",
        f"Date de renouvellement : {result.renewal_date:%d/%m/%Y} · grille {result.grid} · "
        f"{len(result.lines)} abonnements",
        "",
        "| émetteur | année précédente | cette année |",
        "|---|---|---|",
    ]
    for issuer in sorted(set(totals) | set(last)):
        lines.append(f"| {issuer} | {euros(last.get(issuer, ZERO))} | {euros(totals.get(issuer, ZERO))} |")
    create_markdown_artifact(
        key=f"totaux-renouvellement-{result.year}",
        markdown="\n".join(lines),
        description=f"Totaux par émetteur de la campagne {result.year}",
    )


def _stamp() -> str:
    return datetime.now(PARIS).strftime("%Y%m%d-%H%M")


@flow(name="campagne-renouvellement", flow_run_name="campagne-{year}", log_prints=False, persist_result=True)
def renewal_campaign(
    year: int | None = None, approval_timeout_s: int = 7 * 86400, today: date | None = None
) -> dict[str, Any]:
    """Yearly: publish the review, wait for an operator's approval in the UI (the run is suspended: no
    process waits), then issue — one child run of `renouvellement-lot` per slice of subscriptions, on the
    campaign's work pool (`flows.campaign`) — and email."""
    logger = get_run_logger()
    year = year or datetime.now(PARIS).year
    result = review(year)
    publish_review(result)
    if not result.lines:
        return {"year": year, "issued": [], "note": "aucun abonnement à renouveler"}
    # Suspended, not paused: no process waits for the operator, and a restart of every process loses
    # nothing (`flows.waits`). The resumed run reviews again (nothing issued yet), then issues.
    decision = wait_for_operator(CampaignApproval, approval_timeout_s, key="approbation")
    if not decision.approve:
        logger.warning("Campagne %s refusée par %s : rien n'est émis.", year, decision.operator)
        return {"year": year, "issued": [], "refused_by": decision.operator}
    expected = sum(len(line.this_year) - len(line.already_issued) for line in result.lines)
    sliced = issue_in_slices(year, decision.exclude, today, expected=expected)
    publish_summary(sliced, decision.operator)
    outcome: dict[str, Any] = {
        "issued": sliced.issued,
        "existing": sliced.existing,
        "excluded": sorted(set(sliced.merged("excluded"))),
        "pending": sliced.merged("pending"),
        "held": sliced.merged("held"),
        "slices": len(sliced.slices),
        "failed_slices": [f"{s.slice.first_id}-{s.slice.last_id}" for s in sliced.failed],
    }
    outcome["mail"] = send_mail()  # whatever the slices left due
    outcome["pes"] = pes_export(today)  # the titres of the issuers on pes_asap, at once
    if sliced.failed:
        raise CampaignIncomplete(
            f"campagne {year} incomplète : {len(sliced.failed)} lot(s) en échec après leurs relances "
            f"({', '.join(outcome['failed_slices'])}) ; relancez le run une fois la cause corrigée "
            "(seuls les lots en échec sont repris)"
        )
    return {"year": year, **outcome}


@flow(name="relances-impayes", flow_run_name=lambda: f"relances-{_stamp()}", log_prints=False)
def payment_reminders(today: date | None = None) -> dict[str, Any]:
    """Daily: one email per reminder level of each unpaid invoice (7, 21, 45 days after due), then the
    hand-over to the public accountant."""
    day = today or datetime.now(PARIS).date()
    report = dunning.run_reminders(get_settings(), day)
    mail = send_mail()
    if report.handed_over:
        create_markdown_artifact(
            key="transmis-comptable",
            markdown="# Factures transmises au comptable public\n\n" + "\n".join(f"- {n}" for n in report.handed_over),
        )
    return {"reminders": report.sent, "handed_over": report.handed_over, "mail": mail}


@flow(name="envoi-courriels", flow_run_name=lambda: f"courriels-{_stamp()}", log_prints=False)
def outbox() -> dict[str, int]:
    """Every five minutes: complete the invoices a crash left numbered without their document, send the due
    emails of the outbox (retries with backoff; 5xx left undelivered) and file for deposit what a crash left
    unfiled. Each use case also does all three right after its own commits; this run catches leftovers."""
    completed = complete_invoices()
    result = send_mail()
    result["completed"] = len(completed)
    result["filed"] = len(file_deposits())
    return result


@task(cache_policy=NO_CACHE)
def complete_invoices() -> list[str]:
    """Render, store and email the invoices numbered by a run that stopped before doing so."""
    done = invoicing.complete_unfinished(get_settings())
    return [i.number for i in done.values() if i.created]


@task(cache_policy=NO_CACHE)
def file_deposits() -> list[str]:
    """File committed invoices and credit notes missing from their deposit folder."""
    return folder.file_deposits(get_settings())
