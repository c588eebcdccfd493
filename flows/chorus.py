"""Chorus Pro through its API: every 30 minutes (`suivi-chorus`), deposit what waits (rate-limited), then
follow every deposited flux and invoice; an artifact per deposit batch and per sync."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from mairie.formatting import PARIS
from mairie.services.channels import chorus
from mairie.services.mail import dispatch
from mairie.settings import get_settings
from models.chorus import STATUS_LABELS


def _stamp() -> str:
    return datetime.now(PARIS).strftime("%Y%m%d-%H%M")


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=60)
def deposit_batch(limit: int | None) -> chorus.DepositReport:
    """Deposit the queued documents (the client retries each call; this retries the batch)."""
    return chorus.deposit_pending(get_settings(), limit=limit)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=60)
def follow_statuses() -> chorus.SyncReport:
    """Follow every deposited flux and invoice once."""
    return chorus.sync(get_settings())


@task(cache_policy=NO_CACHE)
def send_mail() -> int:
    return len(dispatch(get_settings()).sent)


def publish_deposits(report: chorus.DepositReport) -> None:
    lines = [
        "# Dépôts sur Chorus Pro",
        "",
        f"- déposées : {len(report.deposited)}",
        f"- retrouvées après un incident (sans second dépôt) : {len(report.recovered)}",
        f"- bloquées (tâche opérateur) : {len(report.blocked)}",
        f"- à réessayer (Chorus Pro indisponible) : {len(report.retry_later)}",
        f"- en attente de recherche : {len(report.waiting)}",
    ]
    lines += [f"  - {number} : {reason}" for number, reason in report.blocked]
    create_markdown_artifact(key="chorus-depots", markdown="\n".join(lines), description="Lot de dépôts Chorus Pro")


def publish_sync(report: chorus.SyncReport) -> None:
    rows = [{"statut": STATUS_LABELS.get(k, k), "code": k, "factures": n} for k, n in sorted(report.statuses.items())]
    if rows:
        create_table_artifact(key="chorus-statuts", table=rows, description="Factures Chorus Pro par statut")
    lines = ["# Suivi Chorus Pro", "", f"- suivies : {report.checked}", f"- changements : {len(report.changes)}"]
    lines.append(f"- rejets : {len(report.rejected)}")
    lines += [f"  - {number} : {reason}" for number, reason in report.rejected]
    lines.append(f"- mises en paiement : {len(report.in_payment)}")
    lines += [f"- erreur {number} : {error}" for number, error in report.errors]
    create_markdown_artifact(key="chorus-suivi", markdown="\n".join(lines), description="Suivi Chorus Pro")


@flow(name="suivi-chorus", flow_run_name=lambda: f"chorus-{_stamp()}", log_prints=False)
def follow_chorus(limit: int | None = None) -> dict[str, Any]:
    """Every 30 minutes: deposit what waits on Chorus Pro, then follow flux states and invoice statuses;
    rejections become operator tasks, invoices in payment get no more reminders."""
    deposits = deposit_batch(limit)
    publish_deposits(deposits)
    followed = follow_statuses()
    publish_sync(followed)
    return {"deposits": deposits.as_json(), "sync": followed.as_json(), "mail_sent": send_mail()}
