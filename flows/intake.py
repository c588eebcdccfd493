"""Request intake: register → (operator amount when "sur devis") → two quotes → email to the signatory.

Thin orchestration over `mairie.services.intake` and `mairie.services.quotes`; each task passes ids and
plain values. The state lives in the database, so re-running a step never issues twice.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field, create_model

from flows.forms import DemandeDeServices
from flows.waits import wait_for_operator
from mairie.formatting import PARIS, euros
from mairie.schemas import OperatorAmounts, RequestForm
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.mail import dispatch
from mairie.settings import get_settings
from models.errors import DomainError


def _run_name() -> str:
    params = flow_run.parameters or {}
    form = params.get("demande")
    identifier = getattr(form, "collectivity", None) or (form or {}).get("collectivity", "?")
    return f"demande-{identifier}-{datetime.now(PARIS):%Y%m%d-%H%M%S}"


@task(cache_policy=NO_CACHE)
def register(form: RequestForm, channel: str, on: date, run_id: str | None) -> svc.RequestOutcome:
    """Store the request and its eligibility verdict."""
    return svc.register_request(get_settings(), form, channel=channel, on=on, flow_run_id=run_id)


@task(cache_policy=NO_CACHE)
def settle(request_id: int, amounts: OperatorAmounts, on: date) -> svc.RequestOutcome:
    """Record the operator's amounts for the "sur devis" lines."""
    return svc.settle_request(get_settings(), request_id, amounts, on)


@task(cache_policy=NO_CACHE)
def issue(request_id: int, on: date) -> quoting.QuotesOutcome:
    """Number, render and store both quotes and the draft convention; queue the email."""
    return quoting.issue_quotes(get_settings(), request_id, on)


@task(cache_policy=NO_CACHE)
def send_mail() -> dict[str, int]:
    """Send what the outbox holds (after the commits); failures stay queued for the outbox schedule."""
    report = dispatch(get_settings())
    return {"sent": len(report.sent), "retry": len(report.retried), "undelivered": len(report.undelivered)}


@task(cache_policy=NO_CACHE)
def ask_operator(outcome: svc.RequestOutcome) -> None:
    """Tell the operators a request waits for an amount (email with the reasons and the run's link)."""
    svc.notify_operator_task(get_settings(), outcome.request_id, run_url())


def run_url() -> str | None:
    ui = flow_run.ui_url
    return str(ui) if ui else None


def operator_input(outcome: svc.RequestOutcome) -> type[RunInput]:
    """A form with one field per missing amount, described with its reason, for the Prefect UI."""
    reasons = {r.get("item") or "accompagnement": r["message"] for r in outcome.on_quote}
    fields: dict[str, Any] = {}
    for code in outcome.pending:
        label = "accompagnement annuel (CDG)" if code == "accompagnement" else f"article {code}"
        fields[_field(code)] = (
            str,
            Field(
                title=f"Montant TTC (€) — {label}",
                description=f"{reasons.get(code, 'sur devis')} Exemples : 1200 ou 1 200,00",
                max_length=20,
            ),
        )
    fields["commentaire"] = (
        str,
        Field(default="", title="Commentaire", description="Justification du montant (gardée au dossier)"),
    )
    fields["operateur"] = (str, Field(default="opérateur", title="Opérateur", description="Votre nom"))
    return create_model("MontantsSurDevis", __base__=RunInput, **fields)


def _field(code: str) -> str:
    return "montant_" + code.replace("-", "_")


def to_amounts(outcome: svc.RequestOutcome, answer: RunInput) -> OperatorAmounts:
    """The operator's answer as amounts; a malformed amount raises ValueError with a plain message."""
    from models.money import parse_amount

    values = answer.model_dump()
    support = None
    items: dict[str, Decimal] = {}
    for code in outcome.pending:
        raw = str(values.get(_field(code), "")).strip()
        try:
            amount = parse_amount(raw)
        except (ValueError, InvalidOperation) as exc:
            raise ValueError(f"{code} : {exc}") from None
        if code == "accompagnement":
            support = amount
        else:
            items[code] = amount
    return OperatorAmounts(
        support_amount=support,
        item_amounts=items,
        comment=values.get("commentaire", ""),
        operator=values.get("operateur") or "opérateur",
    )


def publish_summary(quotes: quoting.QuotesOutcome) -> None:
    """The operators' view: the collectivity, its population and band, both quotes and the documents.

    The signed approval link is not shown: whoever reads the UI must not be able to sign for the mayor."""
    population = quotes.population or {}
    kind = {"total": "population totale", "municipal": "population municipale"}.get(population.get("kind", ""), "")
    rows = [
        {
            "devis": q.number,
            "émetteur": q.issuer,
            "total HT": euros(q.total_ht),
            "TVA": euros(q.total_vat),
            "total TTC": euros(q.total_ttc),
        }
        for q in quotes.quotes
    ]
    header = (
        f"{quotes.collectivity} — demande {quotes.reference} — "
        f"{population.get('value', '?')} habitants ({kind}, millésime {population.get('vintage', '?')}) — "
        f"strate : {quotes.band or 'sur devis'}"
    )
    create_table_artifact(key="devis", table=rows, description=header)
    lines = [f"# Demande {quotes.reference} — {quotes.collectivity}", "", header, ""]
    for q in quotes.quotes:
        lines.append(
            f"- Devis **{q.number}** ({q.issuer}) : {euros(q.total_ttc)} TTC — `{q.number}.pdf`, "
            f"SHA-256 `{q.sha256[:16]}…`"
        )
    lines.append(
        f"- Projet de convention **{quotes.convention}** — `{quotes.convention}-projet.pdf`, "
        f"SHA-256 `{quotes.convention_sha256[:16]}…`"
    )
    lines.append("- Courriel au signataire envoyé avec les trois PDF et son lien personnel d'approbation.")
    lines.append(
        f"- Dossier complet : `mairie collectivity show {quotes.reference}` ou la commande "
        "`mairie collectivity show <code INSEE>`."
    )
    create_markdown_artifact(key="dossier", markdown="\n".join(lines), description="Documents émis")


@task(cache_policy=NO_CACHE)
def load_state(request_id: int) -> svc.RequestOutcome:
    """The request's current state (status, "sur devis" reasons, missing amounts)."""
    return svc.request_state(get_settings(), request_id)


def _process_run_name() -> str:
    params = flow_run.parameters or {}
    request_id = params.get("request_id")
    label = str(request_id)
    with contextlib.suppress(Exception):  # a name is cosmetic: never fail a run for it
        if request_id is not None:
            label = svc.request_label(get_settings(), int(request_id))
    return f"traitement-{label}-{datetime.now(PARIS):%Y%m%d-%H%M%S}"


def quote_and_send(request_id: int, day: date) -> dict[str, Any]:
    """Issue both quotes of a request whose amounts are all known, send the email, show the summary."""
    quotes = issue(request_id, day)
    sent = send_mail()
    publish_summary(quotes)
    get_run_logger().info("Devis %s émis ; courriel : %s", ", ".join(q.number for q in quotes.quotes), sent)
    return {
        "reference": quotes.reference,
        "status": "quoted",
        "quotes": [q.number for q in quotes.quotes],
        "convention": quotes.convention,
        "approval_url": quotes.approval_url,
    }


# Served by a long-lived task worker (`mairie quote-worker`, started by `mairie up`): an eligible request
# submitted through the CLI or the API gets its quotes in about a second, without the start of a new
# process that a flow run of a served deployment costs. The state lives in the database: issuing twice
# returns what was issued, and the `suivi-conventions` schedule quotes any eligible request this path
# missed (worker stopped). `refresh_cache`: a task worker caches results by their inputs unless told
# otherwise, and request ids repeat across databases.
@task(name="emission-devis", task_run_name="devis-demande-{request_id}", refresh_cache=True)
def quote_request(request_id: int, on: date) -> dict[str, Any]:
    """An eligible request: number, render and store both quotes and the draft convention, email them."""
    return quote_and_send(request_id, on)


QUOTE_TASKS = (quote_request,)


@flow(name="traitement-demande", flow_run_name=_process_run_name, log_prints=False)
def process_request(request_id: int, on: date | None = None, operator_timeout_s: int = 7 * 86400) -> dict[str, Any]:
    """A registered request: ask an operator for the "sur devis" amounts, then issue both quotes and send them.

    Args:
        request_id: Numéro interne de la demande (affiché par « mairie requests list »)
        on: Date des devis (vide : aujourd'hui)
        operator_timeout_s: Attente maximale d'un montant « sur devis », en secondes (604800 : 7 jours)
    """
    return process(request_id, on or datetime.now(PARIS).date(), operator_timeout_s)


def process(request_id: int, day: date, operator_timeout_s: int) -> dict[str, Any]:
    """The body of both flows. A "sur devis" request suspends the run until an operator gives the amounts
    (`flows.waits`): no process waits, and a resumed run runs this again from the start — reading the state,
    telling the operators (once: the email has a dedup key) — before the stored answer is settled."""
    logger = get_run_logger()
    outcome = load_state(request_id)
    if outcome.status == "refused":
        send_mail()
        reasons = "\n".join(f"- {r}" for r in outcome.refusal_reasons)
        create_markdown_artifact(key="refus", markdown=f"# Demande {outcome.reference} refusée\n\n{reasons}")
        return {"reference": outcome.reference, "status": "refused", "reasons": list(outcome.refusal_reasons)}
    if outcome.status == "waiting_operator":
        ask_operator(outcome)
        send_mail()
        attempt = 1
        while True:
            answer = wait_for_operator(operator_input(outcome), operator_timeout_s, key=f"montants-{attempt}")
            try:
                settle(outcome.request_id, to_amounts(outcome, answer), day)
                break
            except (ValueError, DomainError) as exc:
                logger.warning("Montant refusé : %s — saisissez-le à nouveau.", exc)
                attempt += 1
    return quote_and_send(outcome.request_id, day)


@flow(name="demande-de-services", flow_run_name=_run_name, log_prints=False)
def request_intake(
    demande: DemandeDeServices, channel: str = "ui", on: date | None = None, operator_timeout_s: int = 7 * 86400
) -> dict[str, Any]:
    """A collectivity's request, from the operator's form to the email carrying both quotes and the link.

    The processing runs in this run (not a subflow: a subflow cannot be suspended), so a "sur devis" request
    waits for its amounts without holding a process; registering again on resume returns the same request.

    Args:
        demande: La demande : collectivité, articles et quantités, signataire, identité de facturation
        channel: Canal d'arrivée, gardé au dossier (ui : ce formulaire)
        on: Date de la demande (vide : aujourd'hui)
        operator_timeout_s: Attente maximale d'un montant « sur devis », en secondes (604800 : 7 jours)
    """
    day = on or datetime.now(PARIS).date()
    form = demande.to_request_form()
    outcome = register(form, channel, day, str(flow_run.id) if flow_run.id else None)
    get_run_logger().info("Demande %s (%s) : %s", outcome.reference, outcome.collectivity, outcome.status)
    return process(outcome.request_id, day, operator_timeout_s)
