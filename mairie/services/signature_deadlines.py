"""Waiting for signatures, driven by a schedule over the database: reminders to the party whose turn it
is (default 7 and 14 days after its link) and expiry of unanswered conventions (default 30 days), telling
operators and the collectivity. Safe to run as often as wanted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from mairie.database import unit_of_work
from mairie.services.links import link_for
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.db import UnitOfWork
from models.entities import Approval, Convention
from models.lifecycle import OPEN_CONVENTION, ApprovalStatus, ConventionStatus, RequestStatus, move
from models.parties import PARTY_LABELS
from models.types import utcnow
from notifications.contexts import team_contact


@dataclass
class HousekeepingReport:
    reminders: list[str]
    expired: list[str]


def signature_housekeeping(settings: Settings, now: datetime | None = None) -> HousekeepingReport:
    """Send the due signature reminders (default 7 and 14 days) and expire unanswered conventions
    (default 30 days), telling operators and the collectivity. Safe to run as often as wanted."""
    now = now or utcnow()
    report = HousekeepingReport([], [])
    with unit_of_work(settings) as uow:
        session = uow.session
        conventions = session.exec(select(Convention).where(col(Convention.status).in_(list(OPEN_CONVENTION)))).all()
        for convention in conventions:
            pending = session.exec(
                select(Approval).where(
                    Approval.convention_id == convention.id, Approval.status == ApprovalStatus.PENDING
                )
            ).first()
            if convention.expires_at is not None and now >= convention.expires_at:
                expire(uow, settings, convention, now)
                report.expired.append(convention.reference)
                continue
            if pending is None or pending.link_sent_at is None:
                continue
            waited = now - pending.link_sent_at
            due_levels = [d for d in settings.signature_reminder_days if waited >= timedelta(days=d)]
            if len(due_levels) > pending.reminders_sent:
                level = len(due_levels)
                _remind(uow, settings, convention, pending, level)
                pending.reminders_sent = level
                pending.last_reminder_at = now
                session.add(pending)
                report.reminders.append(f"{convention.reference}:{pending.party}:{level}")
        uow.commit()
    return report


def _remind(uow: UnitOfWork, settings: Settings, convention: Convention, approval: Approval, level: int) -> None:
    collectivity = uow.collectivities.get(convention.collectivity_id)
    assert approval.link_sent_at is not None and convention.expires_at is not None
    enqueue_message(
        uow.session,
        settings,
        "signature_reminder",
        {
            "signatory_name": approval.signatory_name,
            "collectivity_name": collectivity.name,
            "convention_number": convention.reference,
            "level": level,
            "sent_on": approval.link_sent_at.date(),
            "sign_url": link_for(settings, convention, approval),
            "expires_on": convention.expires_at.date(),
            "contact": team_contact(settings.operators_email),
        },
        to=[approval.signatory_email],
        dedup_key=f"signature-reminder:{convention.reference}:v{convention.version}:{approval.party}:{level}",
        related=("convention", convention.id),
    )
    audit.record(
        uow.session,
        actor="système",
        action="convention.reminder",
        entity_type="convention",
        entity_id=convention.id,
        details={"party": approval.party, "level": level},
    )


def expire(uow: UnitOfWork, settings: Settings, convention: Convention, now: datetime) -> None:
    """Expire an open convention past its deadline (inside the caller's transaction): the request too, the
    operators and the collectivity are told which parties had not signed."""
    assert convention.id is not None
    pending = next((a for a in uow.approvals.of(convention.id) if a.status == ApprovalStatus.PENDING), None)
    session = uow.session
    move(convention, ConventionStatus.EXPIRED)
    convention.ended_reason = "aucune décision dans le délai"
    convention.updated_at = now
    session.add(convention)
    if pending is not None:
        move(pending, ApprovalStatus.EXPIRED)
        session.add(pending)
    request = uow.requests.get(convention.request_id)
    move(request, RequestStatus.EXPIRED)
    session.add(request)
    collectivity = uow.collectivities.get(convention.collectivity_id)
    assert convention.id is not None
    awaiting = [PARTY_LABELS[a.party] for a in uow.approvals.of(convention.id) if a.status != ApprovalStatus.SIGNED]
    enqueue_message(
        session,
        settings,
        "signature_expired",
        {
            "collectivity_name": collectivity.name,
            "convention_number": convention.reference,
            "request_reference": request.reference,
            "sent_on": convention.created_at.date(),
            "expired_on": now.date(),
            "awaiting": awaiting,
            "contact": team_contact(settings.operators_email),
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
