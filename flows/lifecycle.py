"""The lifecycle after the quotes: signatures (reminders, expiry, operator countersignature), the
provisioning handoff when a convention comes into force, delivery and the first invoices.

Nothing here holds a process while a mayor thinks it over: the state lives in the database, and the
scheduled `suivi-conventions` run picks up whatever changed (a decision taken on the approval page while
Prefect was down included).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.intake import quote_and_send
from mairie.formatting import PARIS, euros
from mairie.services import approvals, buyers, conventions, followup, intake, provisioning, signature_deadlines
from mairie.services.mail import dispatch
from mairie.settings import get_settings
from models.errors import DomainError

# An eligible request is quoted within a second or two by the quote worker; one still unquoted after this
# delay was missed (worker stopped, Prefect server restarted) and the schedule quotes it.
QUOTE_GRACE_S = 120


@task(cache_policy=NO_CACHE)
def housekeeping() -> signature_deadlines.HousekeepingReport:
    """Signature reminders (7 and 14 days by default) and expiry (30 days)."""
    return signature_deadlines.signature_housekeeping(get_settings())


@task(cache_policy=NO_CACHE)
def unquoted_requests(grace_s: int) -> list[int]:
    """Eligible requests whose quotes did not leave (the quote worker missed them)."""
    return intake.eligible_unquoted(get_settings(), timedelta(seconds=grace_s))


@task(cache_policy=NO_CACHE)
def pending_handoffs() -> list[int]:
    """Conventions in force whose provisioning order is not issued yet."""
    return conventions.conventions_in_force_without_order(get_settings())


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def handoff(convention_id: int) -> provisioning.OrderOutcome:
    """Issue the provisioning order of a convention in force, and post it to the syndicat's webhook when
    new (idempotent; the same follow-up as a decision's, `mairie.services.followup.hand_off`)."""
    return followup.hand_off(get_settings(), convention_id)


@task(cache_policy=NO_CACHE)
def release_held_invoices() -> list[str]:
    """First invoices held for an incomplete buyer identity, now complete: issue them."""
    return buyers.release_held(get_settings(), datetime.now(PARIS).date())


@task(cache_policy=NO_CACHE)
def send_mail() -> int:
    """Send what the outbox holds; failures stay queued with their backoff."""
    return len(dispatch(get_settings()).sent)


def publish_order(order: provisioning.OrderOutcome) -> None:
    payload = order.payload
    rows = [
        {
            "bon": order.number,
            "convention": payload["convention"],
            "collectivité": payload["collectivity"]["name"],
            "article": i["label"],
            "code": i["code"],
            "quantité": i["quantity"],
            "état": order.status,
        }
        for i in payload["items"]
    ]
    create_table_artifact(key="bon-de-commande", table=rows, description=f"Bon de commande {order.number}")


def _stamp() -> str:
    return datetime.now(PARIS).strftime("%Y%m%d-%H%M")


@flow(name="suivi-conventions", flow_run_name=lambda: f"suivi-{_stamp()}", log_prints=False)
def follow_conventions(quote_grace_s: int = QUOTE_GRACE_S) -> dict[str, Any]:
    """Scheduled: quotes the quote worker missed, signature reminders and expiry, then the handoff of every
    convention that came into force."""
    logger = get_run_logger()
    quoted = []
    for request_id in unquoted_requests(quote_grace_s):
        try:
            quoted.append(quote_and_send(request_id, datetime.now(PARIS).date())["reference"])
        except DomainError as exc:
            logger.warning("Demande n° %s restée sans devis : %s", request_id, exc)
    report = housekeeping()
    orders = []
    for convention_id in pending_handoffs():
        order = handoff(convention_id)
        if order.created:
            publish_order(order)
        orders.append(order.number)
    released = release_held_invoices()
    sent = send_mail()
    logger.info(
        "Devis %s, relances %s, expirées %s, bons %s, factures libérées %s, courriels %s",
        quoted,
        report.reminders,
        report.expired,
        orders,
        released,
        sent,
    )
    return {
        "quoted": quoted,
        "reminders": report.reminders,
        "expired": report.expired,
        "orders": orders,
        "released": released,
        "sent": sent,
    }


@flow(name="contre-signature-operateur", flow_run_name="contre-signature-{convention}-{party}", log_prints=False)
def operator_countersign(
    convention: str,
    party: Literal["cdg", "syndicat", "collectivity"],
    signatory_name: str,
    signatory_capacity: str,
    operator: str,
    certified: bool = False,
) -> dict[str, Any]:
    """An operator records a party's signature on its behalf (recorded as such in the evidence)."""
    settings = get_settings()
    outcome = approvals.countersign_as_operator(
        settings, convention, party, operator, approvals.Decision(signatory_name, signatory_capacity, certified)
    )
    followup.after_decision(settings, outcome.in_force)
    return {
        "convention": outcome.convention,
        "party": outcome.party,
        "status": outcome.status,
        "already_decided": outcome.already_decided,
        "in_force": outcome.in_force,
    }


@flow(name="accuse-reception-commande", flow_run_name="accuse-reception-{order}", log_prints=False)
def acknowledge_order(order: str, by: str) -> dict[str, Any]:
    """The syndicat (or an operator for it) acknowledges a provisioning order."""
    result = provisioning.acknowledge(get_settings(), order, by)
    return {"order": result.number, "status": result.status, "changed": result.created}


@flow(name="livraison-commande", flow_run_name="livraison-{order}", log_prints=False)
def deliver_order(
    order: str, by: str, delivered_on: date | None = None, items: list[str] | None = None
) -> dict[str, Any]:
    """Mark an order's items (or all) delivered; when complete, the subscription starts and the first
    invoices of both issuers are issued, emailed and filed for deposit."""
    day = delivered_on or datetime.now(PARIS).date()
    result = provisioning.deliver(get_settings(), order, by, day, items)
    sent = send_mail()
    if result.invoices:
        create_table_artifact(
            key="premieres-factures",
            table=[
                {"facture": i.number, "émetteur": i.issuer, "total TTC": euros(i.total_ttc), "nouvelle": i.created}
                for i in result.invoices
            ],
            description=f"Premières factures du bon {result.order}",
        )
    create_markdown_artifact(
        key="livraison",
        markdown=f"# Bon {result.order} : {result.status}\n\nLivrés : {', '.join(result.delivered) or 'aucun'}"
        f"\n\nCourriels envoyés : {sent}",
    )
    return {
        "order": result.order,
        "status": result.status,
        "delivered": result.delivered,
        "invoices": [i.number for i in result.invoices],
    }
