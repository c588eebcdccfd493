"""Request intake: register a request with its eligibility verdict, settle its "sur devis" amounts, tell
the operators what waits for them, and find the requests the quote worker missed.

Each use case is one transaction. Emails are written to the outbox in that transaction and sent after
the commit (`mairie.services.mail.dispatch`), so a rollback never leaves an email behind and a commit
never loses one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from mairie.database import unit_of_work
from mairie.presenters import population_json
from mairie.schemas import OperatorAmounts, RequestForm
from mairie.services.assessment import Assessment, assess_collectivity, identifier_of
from mairie.services.buyers import BillingUpdate, apply_billing
from mairie.services.channels import chorus
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.buyer import check_siret, default_address
from models.db import UnitOfWork
from models.directory import Found
from models.eligibility import Eligibility
from models.entities import Collectivity, Contact, Convention, Quote, ServiceRequest, ServiceRequestLine
from models.errors import InvalidInput, InvalidTransition
from models.lifecycle import STATUS_LABELS, RequestStatus, move
from models.numbering import next_number
from models.pricing import BasketLine, pending_amounts, validate_basket
from models.types import utcnow
from notifications.contexts import team_contact

PLATFORM = "MC"  # numbering of requests: MC-DEM-2026-00001


class OnQuoteReason(TypedDict):
    """Why an amount is "sur devis", as the eligibility snapshot of a request stores it."""

    code: str
    message: str
    item: str | None


@dataclass(frozen=True)
class RequestOutcome:
    request_id: int
    reference: str
    status: str
    collectivity: str
    on_quote: tuple[OnQuoteReason, ...] = ()
    pending: tuple[str, ...] = ()
    refusal_reasons: tuple[str, ...] = ()
    existing: bool = False  # an identical request was already open: this is that one, nothing was created


def basket_of(lines: list[ServiceRequestLine]) -> list[BasketLine]:
    """The requested items of a request, with the operator's amounts once settled."""
    return [BasketLine(line.item_code, line.quantity, line.operator_amount) for line in lines]


def pending_of(assessment: Assessment, basket: list[BasketLine], support_amount: Decimal | None) -> tuple[str, ...]:
    """What still waits for an operator's amount (`models.pricing.pending_amounts`)."""
    return pending_amounts(
        assessment.grid, basket, support_fee=assessment.eligibility.support_fee, support_amount=support_amount
    )


def assess_request(
    uow: UnitOfWork, settings: Settings, request: ServiceRequest, on: date
) -> tuple[Collectivity, list[ServiceRequestLine], Assessment]:
    """A stored request assessed again on a date: its collectivity, its lines and the verdict."""
    assert request.id is not None
    collectivity = uow.collectivities.get(request.collectivity_id)
    lines = uow.requests.lines(request.id)
    assessment = assess_collectivity(uow.session, settings, identifier_of(collectivity), on, basket_of(lines))
    return collectivity, lines, assessment


def _snapshot(verdict: Eligibility) -> dict[str, Any]:
    return {
        "eligible": verdict.eligible,
        "department": verdict.department,
        "cdg": verdict.cdg,
        "population": population_json(verdict.population),
        "band": verdict.band.label if verdict.band else None,
        "support_fee": None if verdict.support_fee is None else f"{verdict.support_fee:.2f}",
        "on_quote": [{"code": r.code, "message": r.message, "item": r.item_code} for r in verdict.on_quote],
        "reasons": list(verdict.reasons),
    }


def _upsert_collectivity(session: Session, found: Found, form: RequestForm) -> Collectivity:
    """The collectivity of an eligible request with its billing identity: the SIRET of the establishment
    invoiced (given now, or already on file), the billing address given, else the one on file, else the
    mairie's by default (a commune with a single postcode)."""
    row = session.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
    if row is None:
        row = Collectivity(
            kind=found.kind,
            name=found.name,
            siren=found.siren,
            insee_code=found.insee_code,
            department=found.department,
        )
    given = BillingUpdate(siret=form.siret, address_line=form.address_line, postcode=form.postcode, city=form.city)
    apply_billing(row, given, found.postcodes)
    if not row.siret:
        raise InvalidInput(
            f"indiquez le SIRET de l'établissement facturé de {found.name} (en général la mairie ; SIREN "
            f"{found.siren}) : Chorus Pro l'exige sur chaque facture"
        )
    default = default_address(found.kind, found.name, found.postcodes)
    if default is not None:
        row.address = row.address or default.line
        row.postcode = row.postcode or default.postcode
        row.city = row.city or default.city
    if not (row.address and row.postcode and row.city):
        raise InvalidInput(
            f"indiquez l'adresse de facturation de {found.name} (adresse, code postal"
            + (f" parmi {', '.join(found.postcodes)}" if found.postcodes else "")
            + ", commune)"
        )
    if form.chorus_service_code:
        row.chorus_service_code = form.chorus_service_code
    row.email = str(form.signatory_email)
    session.add(row)
    session.flush()
    return row


def _check_chorus_directory(session: Session, settings: Settings, found: Found, form: RequestForm) -> None:
    """When the Chorus Pro API is configured: the buyer's SIRET is a structure of its directory, and the
    request gives the service code / commitment number that structure requires (`channels.chorus`)."""
    if not chorus.api_issuers(settings):
        return
    row = session.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
    siret = check_siret(form.siret, found.siren, found.name) if form.siret else (row.siret if row else None)
    if siret:  # none: _upsert_collectivity asks for it
        service_code = form.chorus_service_code or (row.chorus_service_code if row else None)
        chorus.check_buyer(settings, siret, service_code, form.commitment_number)


def _known(session: Session, found: Found) -> Collectivity:
    """The collectivity of a refused request, stored without a billing identity (nothing will be invoiced)."""
    row = session.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
    if row is None:
        row = Collectivity(
            kind=found.kind,
            name=found.name,
            siren=found.siren,
            insee_code=found.insee_code,
            department=found.department,
        )
        session.add(row)
        session.flush()
    return row


def _upsert_signatory(session: Session, collectivity: Collectivity, form: RequestForm) -> None:
    email = str(form.signatory_email).lower()
    contacts = session.exec(
        select(Contact).where(Contact.collectivity_id == collectivity.id, Contact.role == "signatory")
    ).all()
    current = next((c for c in contacts if c.email.lower() == email), None)
    for contact in contacts:
        if contact is not current and contact.active:
            contact.active = False
            session.add(contact)
    if current is None:
        assert collectivity.id is not None
        current = Contact(collectivity_id=collectivity.id, role="signatory", name=form.signatory_name, email=email)
    current.name = form.signatory_name
    current.capacity = form.signatory_capacity
    current.active = True
    session.add(current)


def register_request(
    settings: Settings,
    form: RequestForm,
    *,
    channel: str,
    on: date,
    actor: str = "système",
    flow_run_id: str | None = None,
) -> RequestOutcome:
    """Check and store a request with its eligibility verdict. A refusal is recorded with its reasons and a
    polite email to the requester; "sur devis" cases leave the request waiting for an operator.

    A flow run registers once: the same `flow_run_id` again (a run suspended for an operator's amount, then
    resumed, runs from its start) is answered with the request it registered."""
    if flow_run_id is not None and (known := _registered_by(settings, flow_run_id)) is not None:
        return replace(request_state(settings, known), existing=True)
    basket = [BasketLine(item.code, item.quantity) for item in form.items]
    with unit_of_work(settings) as uow:
        session = uow.session
        assessment = assess_collectivity(session, settings, form.collectivity, on, basket)
        validate_basket(assessment.grid, basket)
        found, verdict = assessment.found, assessment.eligibility
        if not form.allow_duplicate and (same := _open_identical(uow, found, form)) is not None:
            return same
        if verdict.eligible:
            _check_chorus_directory(session, settings, found, form)  # before any write: it calls the API
        collectivity = _upsert_collectivity(session, found, form) if verdict.eligible else _known(session, found)
        _upsert_signatory(session, collectivity, form)
        request = _store_request(session, form, collectivity, verdict, channel=channel, on=on, run_id=flow_run_id)
        pending = pending_of(assessment, basket, None)
        if not verdict.eligible:
            _refuse(session, settings, request, collectivity, verdict, on)
        else:
            move(request, RequestStatus.WAITING_OPERATOR if pending else RequestStatus.ELIGIBLE)
        session.add(request)
        audit.record(
            session,
            actor=actor,
            action=f"request.{request.status}",
            entity_type="servicerequest",
            entity_id=request.id,
            details={
                "channel": channel,
                "collectivity": collectivity.siren,
                "items": {i.code: i.quantity for i in form.items},
                "on_quote": [r.code for r in verdict.on_quote],
            },
        )
        uow.commit()
        assert request.id is not None
        return RequestOutcome(
            request_id=request.id,
            reference=request.reference,
            status=request.status,
            collectivity=collectivity.name,
            on_quote=tuple(request.eligibility["on_quote"]) if request.eligibility else (),
            pending=tuple(pending),
            refusal_reasons=tuple(request.refusal_reasons),
        )


def _registered_by(settings: Settings, flow_run_id: str) -> int | None:
    """The request a flow run registered, if any."""
    with unit_of_work(settings) as uow:
        found = uow.session.exec(select(ServiceRequest.id).where(ServiceRequest.flow_run_id == flow_run_id)).first()
        return None if found is None else int(found)


OPEN_REQUEST = (
    RequestStatus.RECEIVED,
    RequestStatus.WAITING_OPERATOR,
    RequestStatus.ELIGIBLE,
    RequestStatus.QUOTED,
    RequestStatus.SIGNING,
)


def _open_identical(uow: UnitOfWork, found: Found, form: RequestForm) -> RequestOutcome | None:
    """An open request of the same collectivity, signatory and items: the same request sent again (a
    retried call, a double click), answered with the existing one instead of new numbers and emails."""
    collectivity = uow.collectivities.by_siren(found.siren)
    if collectivity is None:
        return None
    on_file = [
        (form.siret, collectivity.siret),
        (form.address_line, collectivity.address),
        (form.postcode, collectivity.postcode),
        (form.city, collectivity.city),
    ]
    if any(given is not None and given != stored for given, stored in on_file):
        return None  # a new billing identity: not the same request (it is checked and stored as such)
    wanted = {item.code: item.quantity for item in form.items}
    candidates = uow.session.exec(
        select(ServiceRequest).where(
            ServiceRequest.collectivity_id == collectivity.id, col(ServiceRequest.status).in_(OPEN_REQUEST)
        )
    ).all()
    for request in candidates:
        assert request.id is not None
        if request.signatory_email.lower() != str(form.signatory_email).lower():
            continue
        if {line.item_code: line.quantity for line in uow.requests.lines(request.id)} != wanted:
            continue
        return RequestOutcome(
            request_id=request.id,
            reference=request.reference,
            status=request.status,
            collectivity=collectivity.name,
            on_quote=tuple((request.eligibility or {}).get("on_quote", [])),
            refusal_reasons=tuple(request.refusal_reasons),
            existing=True,
        )
    return None


def _store_request(
    session: Session,
    form: RequestForm,
    collectivity: Collectivity,
    verdict: Eligibility,
    *,
    channel: str,
    on: date,
    run_id: str | None,
) -> ServiceRequest:
    """The request and its lines, numbered in the platform's sequence, with the verdict as a snapshot."""
    assert collectivity.id is not None
    request = ServiceRequest(
        reference=next_number(session, PLATFORM, "DEM", on.year),
        collectivity_id=collectivity.id,
        channel=channel,
        requested_on=on,
        signatory_name=form.signatory_name,
        signatory_email=str(form.signatory_email),
        signatory_capacity=form.signatory_capacity,
        chorus_service_code=form.chorus_service_code,
        commitment_number=form.commitment_number,
        domain_names=form.domain_names,
        mailbox_names=form.mailbox_names,
        eligibility=_snapshot(verdict),
        flow_run_id=run_id,
    )
    session.add(request)
    session.flush()
    assert request.id is not None
    for item in form.items:
        session.add(ServiceRequestLine(request_id=request.id, item_code=item.code, quantity=item.quantity))
    return request


def _refuse(
    session: Session,
    settings: Settings,
    request: ServiceRequest,
    collectivity: Collectivity,
    verdict: Eligibility,
    on: date,
) -> None:
    """A refused request keeps its reasons, and the requester gets a polite email saying them."""
    move(request, RequestStatus.REFUSED)
    request.refusal_reasons = list(verdict.reasons)
    enqueue_message(
        session,
        settings,
        "request_refused",
        {
            "collectivity_name": collectivity.name,
            "request_reference": request.reference,
            "submitted_on": on,
            "reasons": list(verdict.reasons),
            "contact": team_contact(settings.operators_email),
        },
        to=[request.signatory_email],
        dedup_key=f"request-refused:{request.reference}",
        related=("servicerequest", request.id),
    )


def settle_request(settings: Settings, request_id: int, amounts: OperatorAmounts, on: date) -> RequestOutcome:
    """Record the operator's amounts for the "sur devis" lines; the request becomes eligible when none is
    missing any more."""
    with unit_of_work(settings) as uow:
        session = uow.session
        request = uow.requests.get(request_id)
        if request.status != RequestStatus.WAITING_OPERATOR:
            raise InvalidTransition(f"la demande {request.reference} n'attend pas de montant (état : {request.status})")
        by_code = {line.item_code: line for line in uow.requests.lines(request_id)}
        for code, amount in amounts.item_amounts.items():
            if code not in by_code:
                raise InvalidInput(f"la demande {request.reference} ne contient pas l'article « {code} »")
            if amount < 0:
                raise InvalidInput(f"{code} : le montant ne peut pas être négatif")
            by_code[code].operator_amount = amount
            session.add(by_code[code])
        if amounts.support_amount is not None:
            request.support_amount = amounts.support_amount
        collectivity, lines, assessment = assess_request(uow, settings, request, on)
        pending = pending_of(assessment, basket_of(lines), request.support_amount)
        if pending:
            raise InvalidInput(f"montant manquant pour : {', '.join(pending)}")
        move(request, RequestStatus.ELIGIBLE)
        request.operator_comment = amounts.comment or None
        request.updated_at = utcnow()
        session.add(request)
        audit.record(
            session,
            actor=amounts.operator,
            action="request.settled",
            entity_type="servicerequest",
            entity_id=request.id,
            details={
                "support_amount": None if amounts.support_amount is None else f"{amounts.support_amount:.2f}",
                "item_amounts": {k: f"{v:.2f}" for k, v in amounts.item_amounts.items()},
                "comment": amounts.comment,
            },
        )
        uow.commit()
        return RequestOutcome(request_id, request.reference, request.status, collectivity.name)


def request_state(settings: Settings, request_id: int) -> RequestOutcome:
    """A request's status with its "sur devis" reasons and the amounts still missing."""
    with unit_of_work(settings) as uow:
        request = uow.requests.get(request_id)
        collectivity = uow.collectivities.get(request.collectivity_id)
        pending: tuple[str, ...] = ()
        if request.status == RequestStatus.WAITING_OPERATOR:
            collectivity, lines, assessment = assess_request(uow, settings, request, request.requested_on)
            pending = pending_of(assessment, basket_of(lines), request.support_amount)
        return RequestOutcome(
            request_id=request_id,
            reference=request.reference,
            status=request.status,
            collectivity=collectivity.name,
            on_quote=tuple((request.eligibility or {}).get("on_quote", [])),
            pending=pending,
            refusal_reasons=tuple(request.refusal_reasons),
        )


def notify_operator_task(settings: Settings, request_id: int, run_url: str | None) -> None:
    """Queue the email telling the operators that a request waits for an amount ("sur devis")."""
    with unit_of_work(settings) as uow:
        session = uow.session
        request = uow.requests.get(request_id)
        collectivity = uow.collectivities.get(request.collectivity_id)
        reasons = [r["message"] for r in (request.eligibility or {}).get("on_quote", [])] or ["montant sur devis"]
        enqueue_message(
            session,
            settings,
            "operator_task",
            {
                "collectivity_name": collectivity.name,
                "request_reference": request.reference,
                "reasons": reasons,
                "run_url": run_url or f"{settings.prefect_ui_url.rstrip('/')}/runs",
            },
            to=[settings.operators_email],
            dedup_key=f"operator-task:{request.reference}",
            related=("servicerequest", request.id),
        )
        uow.commit()


def eligible_unquoted(settings: Settings, older_than: timedelta) -> list[int]:
    """Eligible requests (every amount known) still without quotes after `older_than`: the quote worker
    was stopped, or the Prefect server restarted and forgot its queue of background task runs."""
    limit = utcnow() - older_than
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(
            select(ServiceRequest.id)
            .where(ServiceRequest.status == RequestStatus.ELIGIBLE, col(ServiceRequest.updated_at) < limit)
            .order_by(col(ServiceRequest.id))
        ).all()
        return [int(r) for r in rows if r is not None]


def request_label(settings: Settings, request_id: int) -> str:
    """`MC-DEM-2026-00003-Regnauville`, for run names."""
    with unit_of_work(settings) as uow:
        request = uow.requests.get(request_id)
        return f"{request.reference}-{uow.collectivities.get(request.collectivity_id).name}"


def request_id_of(settings: Settings, reference: str) -> int:
    """The id of a request named by its reference (MC-DEM-2026-00001) or its number."""
    with unit_of_work(settings) as uow:
        row = uow.requests.by_reference(reference)
        assert row.id is not None
        return row.id


class RequestRow(TypedDict):
    """One line of `mairie requests list` (and of its JSON)."""

    id: int
    reference: str
    collectivity: str
    siren: str | None
    requested_on: str
    status: str
    status_label: str
    quotes: list[str]
    convention: str | None
    convention_status: str | None


def list_requests(settings: Settings, limit: int = 200) -> list[RequestRow]:
    """The most recent requests with their state, quotes and convention (for `mairie requests list`)."""
    with unit_of_work(settings) as uow:
        session = uow.session
        requests = session.exec(select(ServiceRequest).order_by(col(ServiceRequest.id).desc()).limit(limit)).all()
        rows: list[RequestRow] = []
        for request in requests:
            collectivity = session.get(Collectivity, request.collectivity_id)
            quotes = session.exec(select(Quote.number).where(Quote.request_id == request.id)).all()
            convention = session.exec(select(Convention).where(Convention.request_id == request.id)).first()
            assert request.id is not None
            rows.append(
                {
                    "id": request.id,
                    "reference": request.reference,
                    "collectivity": collectivity.name if collectivity else "",
                    "siren": collectivity.siren if collectivity else None,
                    "requested_on": request.requested_on.isoformat(),
                    "status": request.status,
                    "status_label": STATUS_LABELS.get(request.status, request.status),
                    "quotes": list(quotes),
                    "convention": convention.reference if convention else None,
                    "convention_status": convention.status if convention else None,
                }
            )
        return rows
