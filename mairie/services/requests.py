"""Request intake: register a request, settle its "sur devis" amounts, issue the two quotes, the draft
convention and the email to the signatory.

Each use case is one transaction. Emails are written to the outbox in that transaction and sent after
the commit (`mairie.services.mail.dispatch`), so a rollback never leaves an email behind and a commit
never loses one.
"""

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
from mairie.schemas import OperatorAmounts, RequestForm
from mairie.services import paperwork
from mairie.services.mail import enqueue_message
from mairie.services.quoting import vat_regime
from mairie.settings import Settings
from models import audit
from models.catalog import Grid
from models.db import reachable
from models.eligibility import Eligibility, assess
from models.entities import (
    Approval,
    Collectivity,
    Contact,
    Convention,
    Quote,
    QuoteLine,
    ServiceRequest,
    ServiceRequestLine,
)
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import REQUEST_MOVES, move
from models.numbering import next_number
from models.pricing import BasketLine, PricedDocument, quote_preview, validate_basket
from models.repository import Found, find, grid_on
from models.types import utcnow

PLATFORM = "MC"  # numbering of requests: MC-DEM-2026-00001


@dataclass(frozen=True)
class RequestOutcome:
    request_id: int
    reference: str
    status: str
    collectivity: str
    on_quote: tuple[dict[str, Any], ...] = ()
    pending: tuple[str, ...] = ()
    refusal_reasons: tuple[str, ...] = ()


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


def _basket(lines: list[ServiceRequestLine]) -> list[BasketLine]:
    return [BasketLine(line.item_code, line.quantity, line.operator_amount) for line in lines]


def _pending(grid: Grid, verdict: Eligibility, basket: list[BasketLine], support_amount: Decimal | None) -> list[str]:
    pending = []
    for line in basket:
        item = grid.item(line.code)
        if item.max_quantity is not None and line.quantity > item.max_quantity and line.amount_ttc is None:
            pending.append(line.code)
    if verdict.support_fee is None and support_amount is None:
        pending.append("accompagnement")
    return pending


def _identifier(row: Collectivity) -> str:
    return row.insee_code or row.siren


def _assess(
    settings: Settings, session: Session, collectivity: Collectivity, basket: list[BasketLine], on: date
) -> tuple[Found, Grid, Eligibility]:
    found = find(session, _identifier(collectivity), on)
    grid = grid_on(session, on)
    verdict = assess(
        found.profile(settings.population_kind),
        grid,
        public_establishment_fee=settings.public_establishment_fee,
        basket=[(b.code, b.quantity) for b in basket],
    )
    return found, grid, verdict


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
    row = session.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
    if row is None:
        row = Collectivity(
            kind=found.kind,
            name=found.name,
            siren=found.siren,
            insee_code=found.insee_code,
            department=found.department,
            city=found.name if found.kind == "commune" else "",
        )
    if form.siret:
        if not form.siret.startswith(found.siren):
            raise InvalidInput(f"le SIRET {form.siret} n'appartient pas à {found.name} (SIREN {found.siren})")
        row.siret = form.siret
    if form.chorus_service_code:
        row.chorus_service_code = form.chorus_service_code
    row.email = str(form.signatory_email)
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
    polite email to the requester; "sur devis" cases leave the request waiting for an operator."""
    basket = [BasketLine(item.code, item.quantity) for item in form.items]
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        found = find(session, form.collectivity, on)
        grid = grid_on(session, on)
        validate_basket(grid, basket)
        verdict = assess(
            found.profile(settings.population_kind),
            grid,
            public_establishment_fee=settings.public_establishment_fee,
            basket=[(b.code, b.quantity) for b in basket],
        )
        collectivity = _upsert_collectivity(session, found, form)
        _upsert_signatory(session, collectivity, form)
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
            flow_run_id=flow_run_id,
        )
        session.add(request)
        session.flush()
        assert request.id is not None
        for item in form.items:
            session.add(ServiceRequestLine(request_id=request.id, item_code=item.code, quantity=item.quantity))
        pending = _pending(grid, verdict, basket, None)
        if not verdict.eligible:
            request.status = move(REQUEST_MOVES, request.status, "refused", "demande")
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
                    "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
                },
                to=[request.signatory_email],
                dedup_key=f"request-refused:{request.reference}",
                related=("servicerequest", request.id),
            )
        elif pending:
            request.status = move(REQUEST_MOVES, request.status, "waiting_operator", "demande")
        else:
            request.status = move(REQUEST_MOVES, request.status, "eligible", "demande")
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
        return RequestOutcome(
            request_id=request.id,
            reference=request.reference,
            status=request.status,
            collectivity=collectivity.name,
            on_quote=tuple(request.eligibility["on_quote"]) if request.eligibility else (),
            pending=tuple(pending),
            refusal_reasons=tuple(request.refusal_reasons),
        )


def settle_request(settings: Settings, request_id: int, amounts: OperatorAmounts, on: date) -> RequestOutcome:
    """Record the operator's amounts for the "sur devis" lines; the request becomes eligible when none is
    missing any more."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        request = _request(session, request_id)
        if request.status != "waiting_operator":
            raise InvalidTransition(f"la demande {request.reference} n'attend pas de montant (état : {request.status})")
        lines = list(session.exec(select(ServiceRequestLine).where(ServiceRequestLine.request_id == request_id)).all())
        by_code = {line.item_code: line for line in lines}
        for code, amount in amounts.item_amounts.items():
            if code not in by_code:
                raise InvalidInput(f"la demande {request.reference} ne contient pas l'article « {code} »")
            if amount < 0:
                raise InvalidInput(f"{code} : le montant ne peut pas être négatif")
            by_code[code].operator_amount = amount
            session.add(by_code[code])
        if amounts.support_amount is not None:
            request.support_amount = amounts.support_amount
        collectivity = session.get(Collectivity, request.collectivity_id)
        assert collectivity is not None
        basket = _basket(lines)
        _found, grid, verdict = _assess(settings, session, collectivity, basket, on)
        pending = _pending(grid, verdict, basket, request.support_amount)
        if pending:
            raise InvalidInput(f"montant manquant pour : {', '.join(pending)}")
        request.status = move(REQUEST_MOVES, request.status, "eligible", "demande")
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
        return RequestOutcome(request.id, request.reference, request.status, collectivity.name)  # type: ignore[arg-type]


def request_state(settings: Settings, request_id: int) -> RequestOutcome:
    """A request's status with its "sur devis" reasons and the amounts still missing."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        request = _request(session, request_id)
        collectivity = session.get(Collectivity, request.collectivity_id)
        assert collectivity is not None
        pending: list[str] = []
        if request.status == "waiting_operator":
            lines = list(
                session.exec(select(ServiceRequestLine).where(ServiceRequestLine.request_id == request_id)).all()
            )
            basket = _basket(lines)
            _found, grid, verdict = _assess(settings, session, collectivity, basket, request.requested_on)
            pending = _pending(grid, verdict, basket, request.support_amount)
        return RequestOutcome(
            request_id=request_id,
            reference=request.reference,
            status=request.status,
            collectivity=collectivity.name,
            on_quote=tuple((request.eligibility or {}).get("on_quote", [])),
            pending=tuple(pending),
            refusal_reasons=tuple(request.refusal_reasons),
        )


def notify_operator_task(settings: Settings, request_id: int, run_url: str | None) -> None:
    """Queue the email telling the operators that a request waits for an amount ("sur devis")."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        request = _request(session, request_id)
        collectivity = session.get(Collectivity, request.collectivity_id)
        assert collectivity is not None
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


def _request(session: Session, request_id: int, *, for_update: bool = False) -> ServiceRequest:
    query = select(ServiceRequest).where(ServiceRequest.id == request_id)
    if for_update:  # PostgreSQL: a second issuer of the same request waits, then finds it quoted
        query = query.with_for_update()
    request = session.exec(query).first()
    if request is None:
        raise NotFound(f"aucune demande n° {request_id}")
    return request


def eligible_unquoted(settings: Settings, older_than: timedelta) -> list[int]:
    """Eligible requests (every amount known) still without quotes after `older_than`: the quote worker
    was stopped, or the Prefect server restarted and forgot its queue of background task runs."""
    limit = utcnow() - older_than
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        rows = uow.session.exec(
            select(ServiceRequest.id)
            .where(ServiceRequest.status == "eligible", ServiceRequest.updated_at < limit)
            .order_by(ServiceRequest.id)  # type: ignore[arg-type]
        ).all()
        return [int(r) for r in rows if r is not None]


def _store_quote(
    session: Session,
    request: ServiceRequest,
    priced: PricedDocument,
    *,
    number: str,
    on: date,
    validity: int,
    grid_id: int,
    verdict: Eligibility | None,
    version: int = 1,
) -> Quote:
    population = verdict.population if verdict else None
    quote = Quote(
        number=number,
        issuer_code=priced.issuer,
        request_id=request.id,  # type: ignore[arg-type]
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
    for line in priced.lines:
        session.add(QuoteLine(quote_id=quote.id, **paperwork.line_columns(line)))  # type: ignore[arg-type]
    return quote


def issue_quotes(settings: Settings, request_id: int, on: date) -> QuotesOutcome:
    from mairie.services.approvals import link_expiry

    """Number and render both quotes and the draft convention, create the three approvals and queue the
    email to the signatory — one transaction. Issuing again returns what was issued."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        request = _request(session, request_id, for_update=True)
        if request.status in ("quoted", "signing", "in_force", "declined", "expired"):
            return _issued(settings, session, request)
        if request.status != "eligible":
            raise InvalidTransition(
                f"la demande {request.reference} ne peut pas recevoir de devis (état : {request.status})"
            )
        collectivity = session.get(Collectivity, request.collectivity_id)
        assert collectivity is not None and request.id is not None
        lines = list(session.exec(select(ServiceRequestLine).where(ServiceRequestLine.request_id == request_id)).all())
        basket = _basket(lines)
        _found, grid, verdict = _assess(settings, session, collectivity, basket, on)
        cdg = settings.cdg_for_department(verdict.department)
        if not verdict.eligible or cdg is None:
            raise InvalidTransition(f"la demande {request.reference} n'est plus éligible")
        preview = quote_preview(
            grid,
            basket,
            verdict,
            syndicat=settings.syndicat.code,
            syndicat_vat=vat_regime(settings.syndicat),
            cdg_vat=vat_regime(cdg),
            support_amount=request.support_amount,
        )
        if preview.pending:
            raise InvalidTransition(f"montants manquants pour {', '.join(preview.pending)}")
        grid_row_id = _grid_id(session, grid.code)
        version = 1 + max(session.exec(select(Quote.version).where(Quote.request_id == request.id)).all(), default=0)
        coll_doc = paperwork.collectivity_doc(collectivity, request)
        issued: list[tuple[Quote, paperwork.Stored]] = []
        quote_refs = {}
        for priced in preview.quotes:
            identity = settings.syndicat if priced.issuer == settings.syndicat.code else cdg
            number = next_number(session, priced.issuer, "DEV", on.year)
            is_support = priced.issuer == cdg.code
            quote = _store_quote(
                session,
                request,
                priced,
                number=number,
                on=on,
                validity=settings.quote_validity_days,
                grid_id=grid_row_id,
                verdict=verdict if is_support else None,
                version=version,
            )
            pdf = paperwork.render_devis(
                number=number,
                issued_on=on,
                issuer=identity,
                collectivity=coll_doc,
                priced=priced,
                validity_days=settings.quote_validity_days,
                grid=grid,
                population=verdict.population if is_support else None,
                band_label=verdict.band.label if is_support and verdict.band else None,
            )
            stored = paperwork.keep(session, settings, pdf, kind="devis", filename=f"{number}.pdf")
            quote.document_sha256 = stored.sha256
            session.add(quote)
            issued.append((quote, stored))
            quote_refs["services" if not is_support else "support"] = paperwork.doc.QuoteReference(
                number=number, issue_date=on, issuer=paperwork.issuer_doc(identity), priced=priced
            )
        reference = next_number(session, settings.syndicat.code, "CONV", on.year)
        convention = Convention(
            reference=reference,
            request_id=request.id,
            collectivity_id=collectivity.id,  # type: ignore[arg-type]
            syndicat_code=settings.syndicat.code,
            cdg_code=cdg.code,
            grid_id=grid_row_id,
            version=version,
            dated_on=on,
            expires_at=utcnow() + timedelta(days=settings.signature_expiry_days),
        )
        session.add(convention)
        session.flush()
        draft = paperwork.documents.render_convention(
            paperwork.doc.Convention(
                number=reference,
                convention_date=on,
                syndicat=paperwork.issuer_doc(settings.syndicat),
                cdg=paperwork.issuer_doc(cdg),
                collectivity=coll_doc,
                grid=grid,
                services_quote=quote_refs["services"],
                support_quote=quote_refs["support"],
                payment_term_days=settings.payment_term_days,
            )
        )
        stored_draft = paperwork.keep(session, settings, draft, kind="convention", filename=f"{reference}-projet.pdf")
        hashes = {s.filename: s.sha256 for _q, s in issued} | {stored_draft.filename: stored_draft.sha256}
        convention.document_hashes = hashes
        convention.draft_sha256 = stored_draft.sha256
        session.add(convention)
        approvals = _create_approvals(session, settings, convention, request, cdg)
        request.status = move(REQUEST_MOVES, request.status, "quoted", "demande")
        request.updated_at = utcnow()
        session.add(request)
        url = approval_url(
            settings,
            ApprovalClaim(
                convention.id,
                approvals[0].id,
                approvals[0].link_nonce,  # type: ignore[arg-type]
                documents_digest(hashes),
            ),
        )
        approvals[0].link_sent_at = utcnow()
        session.add(approvals[0])
        services = next(q for q, _ in issued if q.issuer_code == settings.syndicat.code)
        support = next(q for q, _ in issued if q.issuer_code == cdg.code)
        population = verdict.population
        message = enqueue_message(
            session,
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
                "support_quote": {"number": support.number, "issuer_name": cdg.name, "total_ttc": support.total_ttc},
                "population": population.value if population else 0,
                "population_kind": population.kind_label if population else "population déclarée",
                "population_vintage": population.vintage if population and population.vintage else on.year,
                "band_label": verdict.band.label if verdict.band else "sur devis",
                "convention_number": reference,
                "approval_url": url,
                "link_expires_on": link_expiry(settings, convention),
                "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
            },
            to=[request.signatory_email],
            attachments=[s for _q, s in issued] + [stored_draft],
            dedup_key=f"quotes:{request.reference}:v{convention.version}",
            related=("convention", convention.id),
        )
        audit.record(
            session,
            actor="système",
            action="quotes.issued",
            entity_type="servicerequest",
            entity_id=request.id,
            details={"quotes": [q.number for q, _ in issued], "convention": reference, "documents": hashes},
        )
        uow.commit()
        return QuotesOutcome(
            request_id=request.id,
            reference=request.reference,
            collectivity=collectivity.name,
            population=population_json(population),
            band=verdict.band.label if verdict.band else None,
            quotes=tuple(
                IssuedQuote(q.number, q.issuer_code, q.total_ht, q.total_vat, q.total_ttc, s.sha256) for q, s in issued
            ),
            convention=reference,
            convention_sha256=stored_draft.sha256,
            approval_url=url,
            message_ids=(message.id,) if message.id else (),
        )


def requote(
    settings: Settings, request_id: int, on: date, operator: str, amounts: OperatorAmounts | None = None
) -> QuotesOutcome:
    """Issue a new version of both quotes and the convention (e.g. an amount corrected before signature).
    The previous quotes and convention are superseded: their links no longer sign anything."""
    from models.lifecycle import CONVENTION_MOVES

    if len(operator.strip()) < 2:
        raise InvalidInput("indiquez le nom de l'opérateur")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        request = _request(session, request_id)
        convention = session.exec(
            select(Convention).where(Convention.request_id == request.id).order_by(Convention.version.desc())  # type: ignore[attr-defined]
        ).first()
        if convention is None or convention.status not in (
            "awaiting_collectivity",
            "awaiting_cdg",
            "awaiting_syndicat",
        ):
            raise InvalidTransition(
                f"la demande {request.reference} n'a pas de convention en cours de signature : rien à remplacer"
            )
        convention.status = move(CONVENTION_MOVES, convention.status, "superseded", "convention")
        convention.updated_at = utcnow()
        session.add(convention)
        for quote in session.exec(select(Quote).where(Quote.request_id == request.id, Quote.status == "issued")).all():
            quote.status = "superseded"
            session.add(quote)
        if amounts is not None:
            lines = {
                li.item_code: li
                for li in session.exec(
                    select(ServiceRequestLine).where(ServiceRequestLine.request_id == request.id)
                ).all()
            }
            for code, amount in amounts.item_amounts.items():
                if code not in lines:
                    raise InvalidInput(f"la demande {request.reference} ne contient pas l'article « {code} »")
                lines[code].operator_amount = amount
                session.add(lines[code])
            if amounts.support_amount is not None:
                request.support_amount = amounts.support_amount
        request.status = move(REQUEST_MOVES, request.status, "eligible", "demande")
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
    from models.entities import PriceGrid

    row = session.exec(select(PriceGrid).where(PriceGrid.code == code)).one()
    assert row.id is not None
    return row.id


def _create_approvals(
    session: Session, settings: Settings, convention: Convention, request: ServiceRequest, cdg: Any
) -> list[Approval]:
    parties = [
        ("collectivity", request.signatory_name, request.signatory_email, "pending"),
        ("cdg", cdg.signatory_name, cdg.signatory_email or cdg.email, "waiting"),
        (
            "syndicat",
            settings.syndicat.signatory_name,
            settings.syndicat.signatory_email or settings.syndicat.email,
            "waiting",
        ),
    ]
    approvals = []
    for position, (party, name, email, status) in enumerate(parties, start=1):
        approval = Approval(
            convention_id=convention.id,  # type: ignore[arg-type]
            party=party,
            position=position,
            status=status,
            signatory_name=name,
            signatory_email=email,
            link_nonce=secrets.token_urlsafe(16),
        )
        session.add(approval)
        approvals.append(approval)
    session.flush()
    return approvals


def _issued(settings: Settings, session: Session, request: ServiceRequest) -> QuotesOutcome:
    """What was issued for a request already quoted (idempotent re-run)."""
    quotes = session.exec(
        select(Quote).where(Quote.request_id == request.id, Quote.status != "superseded").order_by(Quote.id)
    ).all()
    convention = session.exec(
        select(Convention).where(Convention.request_id == request.id).order_by(Convention.version.desc())  # type: ignore[attr-defined]
    ).first()
    if convention is None:
        raise NotFound(f"la demande {request.reference} n'a pas de convention")
    collectivity = session.get(Collectivity, request.collectivity_id)
    first = session.exec(
        select(Approval).where(Approval.convention_id == convention.id, Approval.party == "collectivity")
    ).one()
    url = approval_url(
        settings,
        ApprovalClaim(
            convention.id,
            first.id,
            first.link_nonce,  # type: ignore[arg-type]
            documents_digest(convention.document_hashes),
        ),
    )
    support = next((q for q in quotes if q.issuer_code != settings.syndicat.code), None)
    return QuotesOutcome(
        request_id=request.id,  # type: ignore[arg-type]
        reference=request.reference,
        collectivity=collectivity.name if collectivity else "",
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


def request_label(settings: Settings, request_id: int) -> str:
    """`MC-DEM-2026-00003-Regnauville`, for run names."""
    with unit_of_work(settings) as uow:
        request = _request(uow.session, request_id)
        collectivity = uow.session.get(Collectivity, request.collectivity_id)
        return f"{request.reference}-{collectivity.name if collectivity else ''}"


def request_id_of(settings: Settings, reference: str) -> int:
    """The id of a request named by its reference (MC-DEM-2026-00001) or its number."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        text = reference.strip()
        if text.isdigit():
            return _request(uow.session, int(text)).id  # type: ignore[return-value]
        row = uow.session.exec(select(ServiceRequest).where(ServiceRequest.reference == text)).first()
        if row is None or row.id is None:
            raise NotFound(f"aucune demande « {reference} »")
        return row.id


def list_requests(settings: Settings, limit: int = 200) -> list[dict[str, Any]]:
    """The most recent requests with their state, quotes and convention (for `mairie requests list`)."""
    from models.lifecycle import STATUS_LABELS

    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        requests = session.exec(
            select(ServiceRequest).order_by(ServiceRequest.id.desc()).limit(limit)  # type: ignore[union-attr]
        ).all()
        rows = []
        for request in requests:
            collectivity = session.get(Collectivity, request.collectivity_id)
            quotes = session.exec(select(Quote.number).where(Quote.request_id == request.id)).all()
            convention = session.exec(select(Convention).where(Convention.request_id == request.id)).first()
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
