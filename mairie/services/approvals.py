"""The tripartite signature: collectivity → CDG → syndicat (the order is `models.parties`).

A decision is taken through a signed link (see `mairie.links`) or recorded by an operator on a party's
behalf. Every decision is bound to the SHA-256 of the documents shown, recorded with name, capacity, time,
IP address and user agent, and audited. The state lives in the database: nothing waits in a process, and
the lifecycle resumes from whatever the database says (`mairie.services.signature_deadlines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import select

from mairie.database import unit_of_work
from mairie.links import LinkError, documents_digest, read_approval_token
from mairie.services import paperwork
from mairie.services.conventions import enter_into_force
from mairie.services.links import link_expiry, link_for
from mairie.services.mail import enqueue_message
from mairie.services.signature_deadlines import expire
from mairie.settings import Settings
from models import audit
from models.clock import paris_day
from models.db import UnitOfWork
from models.entities import Approval, Convention, Question
from models.errors import InvalidInput, InvalidTransition
from models.lifecycle import OPEN_CONVENTION, ApprovalStatus, ConventionStatus, RequestStatus, move
from models.parties import PARTY_LABELS, decision_refusal, next_party, question_refusal, status_after_signature
from models.text import clean_text
from models.types import utcnow
from notifications.contexts import team_contact

# Kept for the web page, which names a convention's open states.
OPEN_STATUSES = tuple(OPEN_CONVENTION)


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
    convention_id: int | None = None


DECIDED = (ApprovalStatus.SIGNED, ApprovalStatus.DECLINED)


def _claim_approval(
    uow: UnitOfWork, settings: Settings, token: str, *, lock: bool = False
) -> tuple[Convention, Approval]:
    """The convention and approval a token names, or LinkError (nothing is changed). `lock` takes the
    convention's row for the transaction (PostgreSQL), so that two decisions on it never interleave."""
    claim = read_approval_token(settings, token)
    query = select(Convention).where(Convention.id == claim.convention_id)
    convention = uow.session.exec(query.with_for_update() if lock else query).first()
    approval = uow.session.get(Approval, claim.approval_id)
    if approval is None or convention is None or approval.convention_id != convention.id:
        raise LinkError("Ce lien ne correspond à aucune convention.", status=404)
    if convention.status == ConventionStatus.SUPERSEDED:
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


def view(settings: Settings, token: str) -> ApprovalView:
    """What a link shows; LinkError for a link that names nothing valid."""
    with unit_of_work(settings) as uow:
        convention, approval = _claim_approval(uow, settings, token)
        return _view(uow, convention, approval)


def _view(uow: UnitOfWork, convention: Convention, approval: Approval) -> ApprovalView:
    collectivity = uow.collectivities.get(convention.collectivity_id)
    quotes = uow.quotes.current(convention.request_id)
    support = next((q for q in quotes if q.population is not None or q.band_label), None)
    assert convention.id is not None
    return ApprovalView(
        convention_id=convention.id,
        convention=convention.reference,
        convention_status=convention.status,
        collectivity=collectivity.name,
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
    with unit_of_work(settings) as uow:
        convention, _approval = _claim_approval(uow, settings, token)
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


def _check_decidable(uow: UnitOfWork, settings: Settings, convention: Convention, approval: Approval) -> None:
    """Refuse a decision its party may not take now (`models.parties.decision_refusal`). A convention found
    past its deadline is expired here and now, in this transaction, as the scheduled run would have."""
    now = utcnow()
    reason = decision_refusal(
        convention_status=convention.status,
        approval_status=approval.status,
        expires_at=convention.expires_at,
        now=now,
        reference=convention.reference,
    )
    if reason is None:
        return
    if convention.status in OPEN_CONVENTION and convention.expires_at is not None and now >= convention.expires_at:
        expire(uow, settings, convention, now)
        uow.commit()
    raise InvalidTransition(reason)


def _validate_decision(decision: Decision) -> None:
    clean_text(decision.name, "Nom")  # the text policy, whoever calls: the page, the CLI, a flow
    clean_text(decision.capacity, "Qualité")
    clean_text(decision.deliberation_ref or "", "Délibération ou délégation")
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
    with unit_of_work(settings) as uow:
        convention, approval = _claim_approval(uow, settings, token, lock=True)
        if approval.status in DECIDED:
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(uow, settings, convention, approval)
        outcome = _record_signature(uow, settings, convention, approval, decision, evidence, operator=None)
        uow.commit()
        return outcome


def countersign_as_operator(
    settings: Settings,
    convention_reference: str,
    party: str,
    operator: str,
    decision: Decision,
) -> DecisionOutcome:
    """An operator records a party's signature on its behalf (from the Prefect UI), recorded as such."""
    _validate_decision(decision)
    operator = clean_text(operator, "l'opérateur")
    if len(operator.strip()) < 2:
        raise InvalidInput("Indiquez le nom de l'opérateur qui enregistre la signature.")
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(convention_reference)
        assert convention.id is not None
        approval = uow.approvals.of_party(convention.id, party)
        if approval.status in DECIDED:
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(uow, settings, convention, approval)
        outcome = _record_signature(
            uow,
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
    reason = clean_text(reason, "Motif", multiline=True).strip()
    name = clean_text(name, "Nom")
    if not reason:
        raise InvalidInput("Indiquez le motif du refus.")
    if len(reason) > 4000:
        raise InvalidInput("Le motif est trop long (4 000 caractères au plus).")
    with unit_of_work(settings) as uow:
        session = uow.session
        convention, approval = _claim_approval(uow, settings, token, lock=True)
        if approval.status in DECIDED:
            return DecisionOutcome(convention.reference, approval.status, approval.party, already_decided=True)
        _check_decidable(uow, settings, convention, approval)
        now = utcnow()
        move(approval, ApprovalStatus.DECLINED)
        approval.decided_at = now
        approval.decided_name = name.strip()[:200] or approval.signatory_name
        approval.decline_reason = reason
        approval.ip_address = evidence.ip_address
        approval.user_agent = (evidence.user_agent or "")[:500]
        approval.document_hashes = dict(convention.document_hashes)
        session.add(approval)
        move(convention, ConventionStatus.DECLINED)
        convention.ended_reason = reason or "déclinée sans motif"
        convention.updated_at = now
        session.add(convention)
        request = uow.requests.get(convention.request_id)
        move(request, RequestStatus.DECLINED)
        session.add(request)
        collectivity = uow.collectivities.get(convention.collectivity_id)
        syndicat, cdg = uow.issuers.get(convention.syndicat_code), uow.issuers.get(convention.cdg_code)
        enqueue_message(
            session,
            settings,
            "convention_declined",
            {
                "collectivity_name": collectivity.name,
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
    message = clean_text(message, "Question", multiline=True).strip()
    if not message:
        raise InvalidInput("Écrivez votre question.")
    if len(message) > 4000:
        raise InvalidInput("La question est trop longue (4 000 caractères au plus).")
    with unit_of_work(settings) as uow:
        session = uow.session
        convention, approval = _claim_approval(uow, settings, token)
        assert convention.id is not None
        refusal = question_refusal(
            convention_status=convention.status,
            approval_status=approval.status,
            expires_at=convention.expires_at,
            now=utcnow(),
        )
        if refusal is not None:
            raise InvalidTransition(refusal)
        question = Question(
            convention_id=convention.id, party=approval.party, message=message, ip_address=evidence.ip_address
        )
        session.add(question)
        session.flush()
        collectivity = uow.collectivities.get(convention.collectivity_id)
        enqueue_message(
            session,
            settings,
            "question_forwarded",
            {
                "collectivity_name": collectivity.name,
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
    uow: UnitOfWork,
    settings: Settings,
    convention: Convention,
    approval: Approval,
    decision: Decision,
    evidence: Evidence,
    operator: str | None,
) -> DecisionOutcome:
    session = uow.session
    now = utcnow()
    move(approval, ApprovalStatus.SIGNED)
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
    move(convention, status_after_signature(approval.party))
    convention.updated_at = now
    session.add(convention)
    request = uow.requests.get(convention.request_id)
    if request.status == RequestStatus.QUOTED:
        move(request, RequestStatus.SIGNING)
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
    assert convention.id is not None
    if convention.status == ConventionStatus.IN_FORCE:
        move(request, RequestStatus.IN_FORCE)
        session.add(request)
        enter_into_force(uow, settings, convention, request)
        return DecisionOutcome(
            convention.reference, "signed", approval.party, in_force=True, convention_id=convention.id
        )
    session.add(request)
    following_party = next_party(approval.party)
    assert following_party is not None
    following = uow.approvals.of_party(convention.id, following_party)
    move(following, ApprovalStatus.PENDING)
    following.link_sent_at = now
    session.add(following)
    _send_signature_request(uow, settings, convention, following)
    return DecisionOutcome(convention.reference, "signed", approval.party, convention_id=convention.id)


def _send_signature_request(uow: UnitOfWork, settings: Settings, convention: Convention, approval: Approval) -> None:
    assert convention.id is not None
    collectivity = uow.collectivities.get(convention.collectivity_id)
    issuer = uow.issuers.get(convention.cdg_code if approval.party == "cdg" else convention.syndicat_code)
    signed = [a for a in uow.approvals.of(convention.id) if a.status == ApprovalStatus.SIGNED]
    enqueue_message(
        uow.session,
        settings,
        "signature_request",
        {
            "signatory_name": approval.signatory_name,
            "issuer_name": issuer.name,
            "collectivity_name": collectivity.name,
            "convention_number": convention.reference,
            "signed_by": [f"{a.decided_name} ({PARTY_LABELS[a.party]}), le {_day(a.decided_at)}" for a in signed],
            "sign_url": link_for(settings, convention, approval),
            "link_expires_on": link_expiry(settings, convention),
            "contact": team_contact(settings.operators_email),
        },
        to=[approval.signatory_email],
        dedup_key=f"signature-request:{convention.reference}:v{convention.version}:{approval.party}",
        related=("convention", convention.id),
    )


def _day(moment: datetime | None) -> str:
    return "" if moment is None else paris_day(moment).strftime("%d/%m/%Y")
