"""Quotes: number and render both quotes (services by the syndicat, support by the CDG) and the draft
convention, create the three approvals and email the first signatory — one transaction; and a new
version of all of them when an operator corrects an amount before signature (`requote`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from mairie.database import unit_of_work
from mairie.links import ApprovalClaim, approval_url, documents_digest
from mairie.presenters import population_json
from mairie.schemas import OperatorAmounts
from mairie.services import paperwork
from mairie.services.assessment import Assessment, preview
from mairie.services.intake import assess_request, basket_of
from mairie.services.links import link_expiry
from mairie.services.mail import enqueue_message
from mairie.settings import IssuerIdentity, Settings
from models import audit
from models.db import UnitOfWork
from models.entities import Approval, Collectivity, Convention, PriceGrid, Quote, QuoteLine, ServiceRequest
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import (
    OPEN_CONVENTION,
    QUOTED_REQUEST,
    ApprovalStatus,
    ConventionStatus,
    QuoteStatus,
    RequestStatus,
    move,
)
from models.numbering import next_number
from models.parties import SIGNING_ORDER, Party
from models.pricing import PricedDocument
from models.types import utcnow
from notifications.contexts import team_contact


@dataclass(frozen=True)
class IssuedQuote:
    number: str
    issuer: str
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    sha256: str


@dataclass(frozen=True)
class QuotesOutcome:
    request_id: int
    reference: str
    collectivity: str
    population: dict[str, Any] | None
    band: str | None
    quotes: tuple[IssuedQuote, ...]
    convention: str
    convention_sha256: str
    approval_url: str
    message_ids: tuple[int, ...] = field(default_factory=tuple)


def _store_quote(
    session: Session,
    request: ServiceRequest,
    priced: PricedDocument,
    *,
    number: str,
    on: date,
    validity: int,
    grid_id: int,
    verdict: Any,
    version: int = 1,
) -> Quote:
    assert request.id is not None  # a stored request
    population = verdict.population if verdict else None
    quote = Quote(
        number=number,
        issuer_code=priced.issuer,
        request_id=request.id,
        version=version,
        issued_on=on,
        valid_until=on + timedelta(days=validity),
        grid_id=grid_id,
        population=population.value if population else None,
        population_kind=population.kind if population else None,
        population_vintage=population.vintage if population else None,
        band_label=verdict.band.label if verdict and verdict.band else None,
        total_ht=priced.total_ht,
        total_vat=priced.total_vat,
        total_ttc=priced.total_ttc,
        notes=list(priced.notes),
    )
    session.add(quote)
    session.flush()
    assert quote.id is not None
    for line in priced.lines:
        session.add(QuoteLine(quote_id=quote.id, **paperwork.line_columns(line)))
    return quote


def issue_quotes(settings: Settings, request_id: int, on: date) -> QuotesOutcome:
    """Number and render both quotes and the draft convention, create the three approvals and queue the
    email to the signatory — one transaction. Issuing again returns what was issued."""
    with unit_of_work(settings) as uow:
        request = uow.requests.get(request_id, for_update=True)
        if request.status in QUOTED_REQUEST:
            return _issued(uow, settings, request)
        if request.status != RequestStatus.ELIGIBLE:
            raise InvalidTransition(
                f"la demande {request.reference} ne peut pas recevoir de devis (état : {request.status})"
            )
        collectivity, lines, assessment = assess_request(uow, settings, request, on)
        cdg = settings.cdg_for_department(assessment.eligibility.department)
        if not assessment.eligibility.eligible or cdg is None:
            raise InvalidTransition(f"la demande {request.reference} n'est plus éligible")
        priced = preview(settings, assessment, basket_of(lines), request.support_amount)
        if priced.pending:
            raise InvalidTransition(f"montants manquants pour {', '.join(priced.pending)}")
        job = _Issuing(uow, settings, request, collectivity, assessment, cdg, uow.quotes.next_version(request_id), on)
        issued = _number_quotes(job, priced.quotes)
        convention, draft = _draft_convention(job, issued)
        url, message_id = _invite_first_signatory(job, issued, convention)
        audit.record(
            uow.session,
            actor="système",
            action="quotes.issued",
            entity_type="servicerequest",
            entity_id=request.id,
            details={
                "quotes": [q.number for q, _ in issued],
                "convention": convention.reference,
                "documents": convention.document_hashes,
            },
        )
        uow.commit()
        return QuotesOutcome(
            request_id=request_id,
            reference=request.reference,
            collectivity=collectivity.name,
            population=population_json(assessment.eligibility.population),
            band=assessment.eligibility.band.label if assessment.eligibility.band else None,
            quotes=tuple(
                IssuedQuote(q.number, q.issuer_code, q.total_ht, q.total_vat, q.total_ttc, s.sha256) for q, s in issued
            ),
            convention=convention.reference,
            convention_sha256=draft.sha256,
            approval_url=url,
            message_ids=(message_id,) if message_id else (),
        )


IssuedPair = tuple[Quote, paperwork.Stored]


@dataclass(frozen=True)
class _Issuing:
    """What every step of `issue_quotes` works on: one request, assessed on the day of its quotes."""

    uow: UnitOfWork
    settings: Settings
    request: ServiceRequest
    collectivity: Collectivity
    assessment: Assessment
    cdg: IssuerIdentity
    version: int
    on: date


def _number_quotes(job: _Issuing, quotes: tuple[PricedDocument, ...]) -> list[IssuedPair]:
    """Number, store and render each issuer's quote (the support quote carries the population and band)."""
    uow, settings, request, assessment, cdg, on = job.uow, job.settings, job.request, job.assessment, job.cdg, job.on
    verdict = assessment.eligibility
    grid_id = _grid_id(uow.session, assessment.grid.code)
    coll_doc = paperwork.collectivity_doc(job.collectivity, request)
    issued: list[IssuedPair] = []
    for priced in quotes:
        identity = uow.issuers.get(priced.issuer)
        is_support = priced.issuer == cdg.code
        number = next_number(uow.session, priced.issuer, "DEV", on.year)
        quote = _store_quote(
            uow.session,
            request,
            priced,
            number=number,
            on=on,
            validity=settings.quote_validity_days,
            grid_id=grid_id,
            verdict=verdict if is_support else None,
            version=job.version,
        )
        pdf = paperwork.render_devis(
            number=number,
            issued_on=on,
            issuer=identity,
            collectivity=coll_doc,
            priced=priced,
            validity_days=settings.quote_validity_days,
            grid=assessment.grid,
            population=verdict.population if is_support else None,
            band_label=verdict.band.label if is_support and verdict.band else None,
        )
        stored = paperwork.keep(uow.session, settings, pdf, kind="devis", filename=f"{number}.pdf")
        quote.document_sha256 = stored.sha256
        uow.session.add(quote)
        issued.append((quote, stored))
    return issued


def _draft_convention(job: _Issuing, issued: list[IssuedPair]) -> tuple[Convention, paperwork.Stored]:
    """The convention (numbered in the syndicat's sequence), its draft PDF, and the documents it binds."""
    uow, settings, request, collectivity, cdg, on = (
        job.uow,
        job.settings,
        job.request,
        job.collectivity,
        job.cdg,
        job.on,
    )
    assert request.id is not None and collectivity.id is not None
    reference = next_number(uow.session, settings.syndicat.code, "CONV", on.year)
    convention = Convention(
        reference=reference,
        request_id=request.id,
        collectivity_id=collectivity.id,
        syndicat_code=settings.syndicat.code,
        cdg_code=cdg.code,
        grid_id=_grid_id(uow.session, job.assessment.grid.code),
        version=job.version,
        dated_on=on,
        expires_at=utcnow() + timedelta(days=settings.signature_expiry_days),
    )
    uow.session.add(convention)
    uow.session.flush()
    refs = {
        "support" if quote.issuer_code == cdg.code else "services": paperwork.doc.QuoteReference(
            number=quote.number,
            issue_date=on,
            issuer=paperwork.issuer_doc(uow.issuers.get(quote.issuer_code)),
            priced=paperwork.priced_from_stored(
                quote, _lines_of(uow, quote), paperwork.vat_of(uow.issuers.get(quote.issuer_code))
            ),
        )
        for quote, _stored in issued
    }
    pdf = paperwork.documents.render_convention(
        paperwork.doc.Convention(
            number=reference,
            convention_date=on,
            syndicat=paperwork.issuer_doc(settings.syndicat),
            cdg=paperwork.issuer_doc(cdg),
            collectivity=paperwork.collectivity_doc(collectivity, request),
            grid=job.assessment.grid,
            services_quote=refs["services"],
            support_quote=refs["support"],
            payment_term_days=settings.payment_term_days,
        )
    )
    draft = paperwork.keep(uow.session, settings, pdf, kind="convention", filename=f"{reference}-projet.pdf")
    convention.document_hashes = {s.filename: s.sha256 for _q, s in issued} | {draft.filename: draft.sha256}
    convention.draft_sha256 = draft.sha256
    uow.session.add(convention)
    _create_approvals(uow.session, settings, convention, request, cdg)
    move(request, RequestStatus.QUOTED)
    request.updated_at = utcnow()
    uow.session.add(request)
    return convention, draft


def _lines_of(uow: UnitOfWork, quote: Quote) -> list[QuoteLine]:
    uow.session.flush()
    assert quote.id is not None
    return uow.quotes.lines(quote.id)


def _invite_first_signatory(job: _Issuing, issued: list[IssuedPair], convention: Convention) -> tuple[str, int | None]:
    """The collectivity's link, and the email carrying both quotes and the draft convention."""
    uow, settings, request, collectivity = job.uow, job.settings, job.request, job.collectivity
    assert convention.id is not None
    first = uow.approvals.of_party(convention.id, Party.COLLECTIVITY)
    assert first.id is not None
    url = approval_url(
        settings,
        ApprovalClaim(convention.id, first.id, first.link_nonce, documents_digest(convention.document_hashes)),
    )
    first.link_sent_at = utcnow()
    uow.session.add(first)
    services = next(q for q, _ in issued if q.issuer_code == settings.syndicat.code)
    support = next(q for q, _ in issued if q.issuer_code == convention.cdg_code)
    verdict = job.assessment.eligibility
    population = verdict.population
    message = enqueue_message(
        uow.session,
        settings,
        "quotes_to_signatory",
        {
            "signatory_name": request.signatory_name,
            "collectivity_name": collectivity.name,
            "request_reference": request.reference,
            "services_quote": {
                "number": services.number,
                "issuer_name": settings.syndicat.name,
                "total_ttc": services.total_ttc,
            },
            "support_quote": {
                "number": support.number,
                "issuer_name": uow.issuers.get(support.issuer_code).name,
                "total_ttc": support.total_ttc,
            },
            "population": population.value if population else 0,
            "population_kind": population.kind_label if population else "population déclarée",
            "population_vintage": population.vintage if population and population.vintage else convention.dated_on.year,
            "band_label": verdict.band.label if verdict.band else "sur devis",
            "convention_number": convention.reference,
            "approval_url": url,
            "link_expires_on": link_expiry(settings, convention),
            "contact": team_contact(settings.operators_email),
        },
        to=[request.signatory_email],
        attachments=[s for _q, s in issued]
        + [paperwork.Stored(convention.draft_sha256 or "", f"{convention.reference}-projet.pdf")],
        dedup_key=f"quotes:{request.reference}:v{convention.version}",
        related=("convention", convention.id),
    )
    return url, message.id


def requote(
    settings: Settings, request_id: int, on: date, operator: str, amounts: OperatorAmounts | None = None
) -> QuotesOutcome:
    """Issue a new version of both quotes and the convention (e.g. an amount corrected before signature).
    The previous quotes and convention are superseded: their links no longer sign anything."""
    if len(operator.strip()) < 2:
        raise InvalidInput("indiquez le nom de l'opérateur")
    with unit_of_work(settings) as uow:
        session = uow.session
        request = uow.requests.get(request_id)
        convention = uow.conventions.latest(request_id)
        if convention is None or convention.status not in OPEN_CONVENTION:
            raise InvalidTransition(
                f"la demande {request.reference} n'a pas de convention en cours de signature : rien à remplacer"
            )
        move(convention, ConventionStatus.SUPERSEDED)
        convention.updated_at = utcnow()
        session.add(convention)
        for quote in session.exec(
            select(Quote).where(Quote.request_id == request_id, Quote.status == QuoteStatus.ISSUED)
        ).all():
            move(quote, QuoteStatus.SUPERSEDED)
            session.add(quote)
        if amounts is not None:
            lines = {li.item_code: li for li in uow.requests.lines(request_id)}
            for code, amount in amounts.item_amounts.items():
                if code not in lines:
                    raise InvalidInput(f"la demande {request.reference} ne contient pas l'article « {code} »")
                lines[code].operator_amount = amount
                session.add(lines[code])
            if amounts.support_amount is not None:
                request.support_amount = amounts.support_amount
        move(request, RequestStatus.ELIGIBLE)
        session.add(request)
        audit.record(
            session,
            actor=operator.strip(),
            action="quotes.superseded",
            entity_type="servicerequest",
            entity_id=request.id,
            details={"convention": convention.reference},
        )
        uow.commit()
    return issue_quotes(settings, request_id, on)


def _grid_id(session: Session, code: str) -> int:
    row = session.exec(select(PriceGrid).where(PriceGrid.code == code)).one()
    assert row.id is not None
    return row.id


def _create_approvals(
    session: Session,
    settings: Settings,
    convention: Convention,
    request: ServiceRequest,
    cdg: IssuerIdentity,
) -> list[Approval]:
    """The three approvals in signing order; the first party's is pending, the others wait their turn."""
    assert convention.id is not None
    signatories = {
        Party.COLLECTIVITY: (request.signatory_name, request.signatory_email),
        Party.CDG: (cdg.signatory_name, cdg.signatory_email or cdg.email),
        Party.SYNDICAT: (
            settings.syndicat.signatory_name,
            settings.syndicat.signatory_email or settings.syndicat.email,
        ),
    }
    approvals = []
    for position, party in enumerate(SIGNING_ORDER, start=1):
        name, email = signatories[party]
        approval = Approval(
            convention_id=convention.id,
            party=party,
            position=position,
            status=ApprovalStatus.PENDING if position == 1 else ApprovalStatus.WAITING,
            signatory_name=name,
            signatory_email=email,
            link_nonce=secrets.token_urlsafe(16),
        )
        session.add(approval)
        approvals.append(approval)
    session.flush()
    return approvals


def _issued(uow: UnitOfWork, settings: Settings, request: ServiceRequest) -> QuotesOutcome:
    """What was issued for a request already quoted (idempotent re-run)."""
    assert request.id is not None
    quotes = uow.quotes.current(request.id)
    convention = uow.conventions.latest(request.id)
    if convention is None or convention.id is None:
        raise NotFound(f"la demande {request.reference} n'a pas de convention")
    first = uow.approvals.of_party(convention.id, Party.COLLECTIVITY)
    assert first.id is not None
    url = approval_url(
        settings,
        ApprovalClaim(convention.id, first.id, first.link_nonce, documents_digest(convention.document_hashes)),
    )
    support = next((q for q in quotes if q.issuer_code != settings.syndicat.code), None)
    return QuotesOutcome(
        request_id=request.id,
        reference=request.reference,
        collectivity=uow.collectivities.get(request.collectivity_id).name,
        population=None
        if support is None or support.population is None
        else {"value": support.population, "kind": support.population_kind, "vintage": support.population_vintage},
        band=support.band_label if support else None,
        quotes=tuple(
            IssuedQuote(q.number, q.issuer_code, q.total_ht, q.total_vat, q.total_ttc, q.document_sha256 or "")
            for q in quotes
        ),
        convention=convention.reference,
        convention_sha256=convention.draft_sha256 or "",
        approval_url=url,
    )
