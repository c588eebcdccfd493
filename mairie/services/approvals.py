"""The tripartite signature: collectivity → CDG → syndicat.

A decision is taken through a signed link (see `mairie.links`) or recorded by an operator on a party's
behalf. Every decision is bound to the SHA-256 of the documents shown, recorded with name, capacity, time,
IP address and user agent, and audited. The state lives in the database: nothing waits in a process, and
the lifecycle resumes from whatever the database says (see `signature_housekeeping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlmodel import Session, select

from mairie.database import unit_of_work
from mairie.links import ApprovalClaim, LinkError, approval_url, documents_digest, read_approval_token
from mairie.services import paperwork
from mairie.services.mail import enqueue_message
from mairie.settings import IssuerIdentity, Settings
from models import audit
from models.db import reachable
from models.entities import (
    Approval,
    Collectivity,
    Convention,
    Question,
    Quote,
    QuoteLine,
    ServiceRequest,
)
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import CONVENTION_MOVES, REQUEST_MOVES, move
from models.repository import grid_on
from models.types import utcnow

PARTIES = ("collectivity", "cdg", "syndicat")
PARTY_LABELS = {"collectivity": "la collectivité", "cdg": "le Centre de gestion", "syndicat": "le syndicat"}
NEXT_STATUS = {"collectivity": "awaiting_cdg", "cdg": "awaiting_syndicat", "syndicat": "in_force"}
OPEN_STATUSES = ("awaiting_collectivity", "awaiting_cdg", "awaiting_syndicat")


@dataclass(frozen=True)
class QuoteView:
    number: str
    issuer: str
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    filename: str
    sha256: str


@dataclass(frozen=True)
class ApprovalView:
    """What the approval page shows for a valid link."""

    convention_id: int
    convention: str
    convention_status: str
    collectivity: str
    party: str
    signatory_name: str
    approval_status: str  # pending | signed | declined | waiting | expired
    decided_at: datetime | None
    decided_name: str | None
    quotes: tuple[QuoteView, ...]
    documents: dict[str, str]  # filename → sha256
    population: int | None
    band: str | None
    final_sha256: str | None


@dataclass(frozen=True)
class Decision:
    name: str
    capacity: str
    certified: bool
    deliberation_ref: str | None = None


@dataclass(frozen=True)
class Evidence:
    ip_address: str | None
    user_agent: str | None


@dataclass(frozen=True)
class DecisionOutcome:
    convention: str
    status: str
    party: str
    already_decided: bool = False
    in_force: bool = False


# ------------------------------------------------------------------------------------------------
# Links
# ------------------------------------------------------------------------------------------------


def _claim_approval(session: Session, settings: Settings, token: str) -> tuple[Convention, Approval]:
    """The convention and approval a token names, or LinkError (nothing is changed)."""
    claim = read_approval_token(settings, token)
    approval = session.get(Approval, claim.approval_id)
    convention = session.get(Convention, claim.convention_id)
    if approval is None or convention is None or approval.convention_id != convention.id:
        raise LinkError("Ce lien ne correspond à aucune convention.", status=404)
    if convention.status == "superseded":
        raise LinkError(
            "Ce lien concerne une version remplacée des documents : il ne permet plus de signer. "
            "Utilisez le lien du dernier courriel reçu.",
            status=409,
        )
    if approval.link_nonce != claim.nonce or documents_digest(convention.document_hashes) != claim.digest:
        raise LinkError(
            "Ce lien n'est plus valable : les documents ont changé depuis son envoi. "
            "Utilisez le lien du dernier courriel reçu.",
            status=409,
        )
    return convention, approval


def link_for(settings: Settings, convention: Convention, approval: Approval) -> str:
    return approval_url(
        settings,
        ApprovalClaim(
            convention.id,
            approval.id,
            approval.link_nonce,  # type: ignore[arg-type]
            documents_digest(convention.document_hashes),
        ),
    )


def view(settings: Settings, token: str) -> ApprovalView:
    """What a link shows; LinkError for a link that names nothing valid."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        convention, approval = _claim_approval(uow.session, settings, token)
        return _view(uow.session, convention, approval)


def _view(session: Session, convention: Convention, approval: Approval) -> ApprovalView:
    collectivity = session.get(Collectivity, convention.collectivity_id)
    quotes = session.exec(
        select(Quote).where(Quote.request_id == convention.request_id, Quote.status != "superseded").order_by(Quote.id)
    ).all()
    support = next((q for q in quotes if q.population is not None or q.band_label), None)
    return ApprovalView(
        convention_id=convention.id,  # type: ignore[arg-type]
        convention=convention.reference,
        convention_status=convention.status,
        collectivity=collectivity.name if collectivity else "",
        party=approval.party,
        signatory_name=approval.signatory_name,
        approval_status=approval.status,
        decided_at=approval.decided_at,
        decided_name=approval.decided_name,
        quotes=tuple(
            QuoteView(
                q.number,
                q.issuer_code,
                q.total_ht,
                q.total_vat,
                q.total_ttc,
                f"{q.number}.pdf",
                q.document_sha256 or "",
            )
            for q in quotes
        ),
        documents=dict(convention.document_hashes),
        population=support.population if support else None,
        band=support.band_label if support else None,
        final_sha256=convention.final_sha256,
    )


def document_for(settings: Settings, token: str, filename: str) -> tuple[str, bytes]:
    """A document shown by a link (only those bound to it, plus the final PDF once in force)."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        convention, _approval = _claim_approval(uow.session, settings, token)
        allowed = dict(convention.document_hashes)
        if convention.final_sha256:
            allowed[f"{convention.reference}.pdf"] = convention.final_sha256
        sha = allowed.get(filename)
        if sha is None:
            raise LinkError("Ce document n'est pas rattaché à ce lien.", status=404)
    return filename, paperwork.load(settings, sha)


# ------------------------------------------------------------------------------------------------
# Decisions
# ------------------------------------------------------------------------------------------------


def _check_decidable(convention: Convention, approval: Approval) -> None:
    if approval.status == "waiting":
        raise InvalidTransition("Ce n'est pas encore à cette partie de signer : la signature précédente est attendue.")
    if convention.status not in OPEN_STATUSES:
        raise InvalidTransition(f"La convention {convention.reference} n'est plus ouverte à la signature.")


def _validate_decision(decision: Decision) -> None:
    if len(decision.name.strip()) < 2:
        raise InvalidInput("Indiquez vos nom et prénom.")
    if len(decision.capacity.strip()) < 2:
        raise InvalidInput("Indiquez votre qualité (maire, président…).")
    if not decision.certified:
        raise InvalidInput("Cochez la case certifiant que vous êtes habilité(e) à signer.")
    if len(decision.name) > 200 or len(decision.capacity) > 100 or len(decision.deliberation_ref or "") > 300:
        raise InvalidInput("Un des champs est trop long.")


def sign(settings: Settings, token: str, decision: Decision, evidence: Evidence) -> DecisionOutcome:
    """Accept and sign through a link. Signing twice shows the decision already taken."""
    _validate_decision(decision)
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        convention, approval = _claim_approval(uow.session, settings, token)
        if approval.status in ("signed", "declined"):
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(convention, approval)
        outcome = _record_signature(uow.session, settings, convention, approval, decision, evidence, operator=None)
        uow.commit()
        return outcome


def countersign_as_operator(
    settings: Settings,
    convention_reference: str,
    party: Literal["collectivity", "cdg", "syndicat"],
    operator: str,
    decision: Decision,
) -> DecisionOutcome:
    """An operator records a party's signature on its behalf (from the Prefect UI), recorded as such."""
    _validate_decision(decision)
    if len(operator.strip()) < 2:
        raise InvalidInput("Indiquez le nom de l'opérateur qui enregistre la signature.")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        convention = _convention(session, convention_reference)
        approval = _approval(session, convention, party)
        if approval.status in ("signed", "declined"):
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(convention, approval)
        outcome = _record_signature(
            session,
            settings,
            convention,
            approval,
            decision,
            Evidence(None, "opérateur (interface Prefect)"),
            operator=operator,
        )
        uow.commit()
        return outcome


def decline(settings: Settings, token: str, reason: str, name: str, evidence: Evidence) -> DecisionOutcome:
    """Decline through a link: the convention ends, operators and both issuers are told why."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Indiquez le motif du refus.")
    if len(reason) > 4000:
        raise InvalidInput("Le motif est trop long (4 000 caractères au plus).")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        convention, approval = _claim_approval(session, settings, token)
        if approval.status in ("signed", "declined"):
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(convention, approval)
        now = utcnow()
        approval.status = "declined"
        approval.decided_at = now
        approval.decided_name = name.strip()[:200] or approval.signatory_name
        approval.decline_reason = reason
        approval.ip_address = evidence.ip_address
        approval.user_agent = (evidence.user_agent or "")[:500]
        approval.document_hashes = dict(convention.document_hashes)
        session.add(approval)
        convention.status = move(CONVENTION_MOVES, convention.status, "declined", "convention")
        convention.ended_reason = reason or "déclinée sans motif"
        convention.updated_at = now
        session.add(convention)
        request = session.get(ServiceRequest, convention.request_id)
        assert request is not None
        request.status = move(REQUEST_MOVES, request.status, "declined", "demande")
        session.add(request)
        collectivity = session.get(Collectivity, convention.collectivity_id)
        syndicat, cdg = _issuers(settings, convention)
        enqueue_message(
            session,
            settings,
            "convention_declined",
            {
                "collectivity_name": collectivity.name if collectivity else "",
                "convention_number": convention.reference,
                "request_reference": request.reference,
                "declined_by": f"{approval.decided_name} ({PARTY_LABELS[approval.party]})",
                "declined_at": now,
                "reason": reason,
            },
            to=[settings.operators_email],
            cc=[syndicat.email, cdg.email],
            dedup_key=f"declined:{convention.reference}",
            related=("convention", convention.id),
        )
        audit.record(
            session,
            actor=approval.decided_name,
            action="convention.declined",
            entity_type="convention",
            entity_id=convention.id,
            details={"party": approval.party, "reason": reason, "documents": convention.document_hashes},
            ip_address=evidence.ip_address,
        )
        uow.commit()
        return DecisionOutcome(convention.reference, "declined", approval.party)


def ask_question(settings: Settings, token: str, message: str, evidence: Evidence) -> None:
    """Forward a question from the approval page to the operators (nothing else changes)."""
    message = message.strip()
    if not message:
        raise InvalidInput("Écrivez votre question.")
    if len(message) > 4000:
        raise InvalidInput("La question est trop longue (4 000 caractères au plus).")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        convention, approval = _claim_approval(session, settings, token)
        question = Question(
            convention_id=convention.id,
            party=approval.party,
            message=message,  # type: ignore[arg-type]
            ip_address=evidence.ip_address,
        )
        session.add(question)
        session.flush()
        collectivity = session.get(Collectivity, convention.collectivity_id)
        enqueue_message(
            session,
            settings,
            "question_forwarded",
            {
                "collectivity_name": collectivity.name if collectivity else "",
                "convention_number": convention.reference,
                "asker_name": approval.signatory_name,
                "asker_email": approval.signatory_email,
                "asked_at": question.asked_at,
                "question": message,
            },
            to=[settings.operators_email],
            dedup_key=f"question:{question.id}",
            related=("convention", convention.id),
        )
        audit.record(
            session,
            actor=approval.signatory_name,
            action="convention.question",
            entity_type="convention",
            entity_id=convention.id,
            details={"question_id": question.id},
            ip_address=evidence.ip_address,
        )
        uow.commit()


def _record_signature(
    session: Session,
    settings: Settings,
    convention: Convention,
    approval: Approval,
    decision: Decision,
    evidence: Evidence,
    operator: str | None,
) -> DecisionOutcome:
    now = utcnow()
    approval.status = "signed"
    approval.decided_at = now
    approval.decided_name = decision.name.strip()
    approval.decided_capacity = decision.capacity.strip()
    approval.certified_authority = decision.certified
    approval.deliberation_ref = (decision.deliberation_ref or "").strip() or None
    approval.ip_address = evidence.ip_address
    approval.user_agent = (evidence.user_agent or "")[:500] or None
    approval.document_hashes = dict(convention.document_hashes)
    approval.recorded_by_operator = operator
    session.add(approval)
    convention.status = move(CONVENTION_MOVES, convention.status, NEXT_STATUS[approval.party], "convention")
    convention.updated_at = now
    session.add(convention)
    request = session.get(ServiceRequest, convention.request_id)
    assert request is not None
    if request.status == "quoted":
        request.status = move(REQUEST_MOVES, request.status, "signing", "demande")
    audit.record(
        session,
        actor=operator or approval.decided_name,
        action="convention.signed" if operator is None else "convention.signed_by_operator",
        entity_type="convention",
        entity_id=convention.id,
        details={
            "party": approval.party,
            "name": approval.decided_name,
            "capacity": approval.decided_capacity,
            "on_behalf_by": operator,
            "documents": convention.document_hashes,
            "deliberation": approval.deliberation_ref,
            "user_agent": approval.user_agent,
        },
        ip_address=evidence.ip_address,
    )
    if convention.status == "in_force":
        request.status = move(REQUEST_MOVES, request.status, "in_force", "demande")
        session.add(request)
        _enter_into_force(session, settings, convention, request)
        return DecisionOutcome(convention.reference, "signed", approval.party, in_force=True)
    session.add(request)
    following = _approval(session, convention, PARTIES[PARTIES.index(approval.party) + 1])
    following.status = "pending"
    following.link_sent_at = now
    session.add(following)
    _send_signature_request(session, settings, convention, following)
    return DecisionOutcome(convention.reference, "signed", approval.party)


def _send_signature_request(session: Session, settings: Settings, convention: Convention, approval: Approval) -> None:
    collectivity = session.get(Collectivity, convention.collectivity_id)
    syndicat, cdg = _issuers(settings, convention)
    issuer = cdg if approval.party == "cdg" else syndicat
    signed = session.exec(
        select(Approval)
        .where(Approval.convention_id == convention.id, Approval.status == "signed")
        .order_by(Approval.position)  # type: ignore[arg-type]
    ).all()
    enqueue_message(
        session,
        settings,
        "signature_request",
        {
            "signatory_name": approval.signatory_name,
            "issuer_name": issuer.name,
            "collectivity_name": collectivity.name if collectivity else "",
            "convention_number": convention.reference,
            "signed_by": [f"{a.decided_name} ({PARTY_LABELS[a.party]}), le {_paris_day(a.decided_at)}" for a in signed],
            "sign_url": link_for(settings, convention, approval),
            "link_expires_on": link_expiry(settings, convention),
            "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
        },
        to=[approval.signatory_email],
        dedup_key=f"signature-request:{convention.reference}:v{convention.version}:{approval.party}",
        related=("convention", convention.id),
    )


def link_expiry(settings: Settings, convention: Convention) -> date:
    """The last day a link works: the earlier of its own expiry and the convention's."""
    link_end = utcnow() + timedelta(days=settings.link_max_age_days)
    end = min(link_end, convention.expires_at) if convention.expires_at else link_end
    return end.date()


def _paris_day(moment: datetime | None) -> str:
    from mairie.formatting import PARIS

    return "" if moment is None else moment.astimezone(PARIS).strftime("%d/%m/%Y")


def _enter_into_force(session: Session, settings: Settings, convention: Convention, request: ServiceRequest) -> None:
    """All three have signed: render the final convention with its evidence page and send it to all."""
    today = utcnow().date()
    convention.in_force_on = today
    approvals = list(session.exec(select(Approval).where(Approval.convention_id == convention.id)).all())
    pdf = render_convention_pdf(session, settings, convention, request, approvals)
    stored = paperwork.keep(session, settings, pdf, kind="convention", filename=f"{convention.reference}.pdf")
    convention.final_sha256 = stored.sha256
    session.add(convention)
    collectivity = session.get(Collectivity, convention.collectivity_id)
    recipients = [a.signatory_email for a in sorted(approvals, key=lambda a: a.position)]
    enqueue_message(
        session,
        settings,
        "convention_in_force",
        {
            "collectivity_name": collectivity.name if collectivity else "",
            "convention_number": convention.reference,
            "effective_on": today,
            "signatures": [
                {"party": PARTY_LABELS[a.party], "name": a.decided_name, "signed_at": a.decided_at}
                for a in sorted(approvals, key=lambda a: a.position)
            ],
            "document_sha256": stored.sha256,
            "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
        },
        to=recipients,
        cc=[settings.operators_email],
        attachments=[stored],
        dedup_key=f"in-force:{convention.reference}",
        related=("convention", convention.id),
    )
    audit.record(
        session,
        actor="système",
        action="convention.in_force",
        entity_type="convention",
        entity_id=convention.id,
        details={"final_sha256": stored.sha256},
    )


def render_convention_pdf(
    session: Session, settings: Settings, convention: Convention, request: ServiceRequest, approvals: list[Approval]
) -> bytes:
    """The convention as signed so far (all three signatures → the final document with its evidence page)."""
    from mairie.services.quoting import vat_regime

    collectivity = session.get(Collectivity, convention.collectivity_id)
    assert collectivity is not None
    syndicat, cdg = _issuers(settings, convention)
    grid = grid_on(session, convention.dated_on)
    refs = {}
    for quote in session.exec(select(Quote).where(Quote.request_id == request.id, Quote.status != "superseded")).all():
        identity = syndicat if quote.issuer_code == syndicat.code else cdg
        lines = list(session.exec(select(QuoteLine).where(QuoteLine.quote_id == quote.id)).all())
        priced = paperwork.priced_from_rows(quote, lines, vat_regime(identity))
        refs["services" if identity is syndicat else "support"] = paperwork.doc.QuoteReference(
            number=quote.number, issue_date=quote.issued_on, issuer=paperwork.issuer_doc(identity), priced=priced
        )
    shown = tuple(
        paperwork.doc.ShownDocument(label=_doc_label(name), filename=name, sha256=sha)
        for name, sha in sorted(convention.document_hashes.items())
    )
    return paperwork.documents.render_convention(
        paperwork.doc.Convention(
            number=convention.reference,
            convention_date=convention.dated_on,
            syndicat=paperwork.issuer_doc(syndicat),
            cdg=paperwork.issuer_doc(cdg),
            collectivity=paperwork.collectivity_doc(collectivity, request),
            grid=grid,
            services_quote=refs["services"],
            support_quote=refs["support"],
            payment_term_days=settings.payment_term_days,
            signatures=paperwork.signatures_of(approvals),
            documents=shown,
        )
    )


def _doc_label(filename: str) -> str:
    if "-DEV-" in filename:
        return f"Devis {filename.removesuffix('.pdf')}"
    return "Projet de convention"


def _issuers(settings: Settings, convention: Convention) -> tuple[IssuerIdentity, IssuerIdentity]:
    cdg = next(i for i in settings.issuers() if i.code == convention.cdg_code)
    return settings.syndicat, cdg


def _convention(session: Session, reference: str) -> Convention:
    convention = session.exec(select(Convention).where(Convention.reference == reference.strip())).first()
    if convention is None:
        raise NotFound(f"aucune convention {reference}")
    return convention


def _approval(session: Session, convention: Convention, party: str) -> Approval:
    if party not in PARTIES:
        raise InvalidInput(f"partie inconnue « {party} » ({', '.join(PARTIES)})")
    return session.exec(select(Approval).where(Approval.convention_id == convention.id, Approval.party == party)).one()


# ------------------------------------------------------------------------------------------------
# Waiting: reminders and expiry, driven by a schedule over the database
# ------------------------------------------------------------------------------------------------


@dataclass
class HousekeepingReport:
    reminders: list[str]
    expired: list[str]


def signature_housekeeping(settings: Settings, now: datetime | None = None) -> HousekeepingReport:
    """Send the due signature reminders (default 7 and 14 days) and expire unanswered conventions
    (default 30 days), telling operators and the collectivity. Safe to run as often as wanted."""
    now = now or utcnow()
    report = HousekeepingReport([], [])
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        conventions = session.exec(select(Convention).where(Convention.status.in_(OPEN_STATUSES))).all()  # type: ignore[attr-defined]
        for convention in conventions:
            pending = session.exec(
                select(Approval).where(Approval.convention_id == convention.id, Approval.status == "pending")
            ).first()
            if convention.expires_at is not None and now >= convention.expires_at:
                _expire(session, settings, convention, pending, now)
                report.expired.append(convention.reference)
                continue
            if pending is None or pending.link_sent_at is None:
                continue
            waited = now - pending.link_sent_at
            due_levels = [d for d in settings.signature_reminder_days if waited >= timedelta(days=d)]
            if len(due_levels) > pending.reminders_sent:
                level = len(due_levels)
                _remind(session, settings, convention, pending, level)
                pending.reminders_sent = level
                pending.last_reminder_at = now
                session.add(pending)
                report.reminders.append(f"{convention.reference}:{pending.party}:{level}")
        uow.commit()
    return report


def _remind(session: Session, settings: Settings, convention: Convention, approval: Approval, level: int) -> None:
    collectivity = session.get(Collectivity, convention.collectivity_id)
    assert approval.link_sent_at is not None and convention.expires_at is not None
    enqueue_message(
        session,
        settings,
        "signature_reminder",
        {
            "signatory_name": approval.signatory_name,
            "collectivity_name": collectivity.name if collectivity else "",
            "convention_number": convention.reference,
            "level": level,
            "sent_on": approval.link_sent_at.date(),
            "sign_url": link_for(settings, convention, approval),
            "expires_on": convention.expires_at.date(),
            "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
        },
        to=[approval.signatory_email],
        dedup_key=f"signature-reminder:{convention.reference}:v{convention.version}:{approval.party}:{level}",
        related=("convention", convention.id),
    )
    audit.record(
        session,
        actor="système",
        action="convention.reminder",
        entity_type="convention",
        entity_id=convention.id,
        details={"party": approval.party, "level": level},
    )


def _expire(
    session: Session, settings: Settings, convention: Convention, pending: Approval | None, now: datetime
) -> None:
    convention.status = move(CONVENTION_MOVES, convention.status, "expired", "convention")
    convention.ended_reason = "aucune décision dans le délai"
    convention.updated_at = now
    session.add(convention)
    if pending is not None:
        pending.status = "expired"
        session.add(pending)
    request = session.get(ServiceRequest, convention.request_id)
    assert request is not None
    request.status = move(REQUEST_MOVES, request.status, "expired", "demande")
    session.add(request)
    collectivity = session.get(Collectivity, convention.collectivity_id)
    awaiting = [
        PARTY_LABELS[a.party]
        for a in session.exec(
            select(Approval).where(Approval.convention_id == convention.id, Approval.status != "signed")
        ).all()
    ]
    enqueue_message(
        session,
        settings,
        "signature_expired",
        {
            "collectivity_name": collectivity.name if collectivity else "",
            "convention_number": convention.reference,
            "request_reference": request.reference,
            "sent_on": convention.created_at.date(),
            "expired_on": now.date(),
            "awaiting": awaiting,
            "contact": {"name": "L'équipe Mairie Connectée", "email": settings.operators_email},
        },
        to=[settings.operators_email, request.signatory_email],
        dedup_key=f"expired:{convention.reference}",
        related=("convention", convention.id),
    )
    audit.record(
        session,
        actor="système",
        action="convention.expired",
        entity_type="convention",
        entity_id=convention.id,
        details={"awaiting": awaiting},
    )


def conventions_in_force_without_order(settings: Settings) -> list[int]:
    """Conventions in force whose provisioning order is not issued yet (picked up by the lifecycle)."""
    from models.entities import ProvisioningOrder

    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        rows = uow.session.exec(select(Convention.id).where(Convention.status == "in_force")).all()
        ordered = set(uow.session.exec(select(ProvisioningOrder.convention_id)).all())
        return [r for r in rows if r is not None and r not in ordered]


def convention_status(settings: Settings, reference: str) -> dict[str, Any]:
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        convention = _convention(uow.session, reference)
        approvals = uow.session.exec(
            select(Approval).where(Approval.convention_id == convention.id).order_by(Approval.position)  # type: ignore[arg-type]
        ).all()
        return {
            "convention": convention.reference,
            "status": convention.status,
            "approvals": [
                {
                    "party": a.party,
                    "status": a.status,
                    "name": a.decided_name,
                    "at": a.decided_at,
                    "operator": a.recorded_by_operator,
                }
                for a in approvals
            ],
        }
