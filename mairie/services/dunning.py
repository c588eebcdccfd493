"""The daily reminders of unpaid invoices and, after the last one, the hand-over to the public accountant
(the rule is `models.dunning`: which level, who qualifies, when to hand over).

Each reminder is one row per invoice and level (a unique constraint), so a level is sent once even when
two runs meet; payments are read in the same transaction, so a paid invoice is never reminded. Neither is
an invoice rejected by Chorus Pro (not payable) or in payment there (`channels.chorus.dunned`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlmodel import col, select

from mairie.adapters.files import FileDrop
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.services.channels import chorus
from mairie.services.channels.folder import drop_for
from mairie.services.mail import enqueue_message
from mairie.services.payments import amount_due
from mairie.settings import Settings
from models import audit
from models.db import UnitOfWork
from models.dunning import next_step, qualifies
from models.entities import Invoice, Reminder
from models.lifecycle import OPEN_INVOICE
from models.types import utcnow
from notifications.contexts import contact_block, payment_block

ACCOUNTANT_EXPORT_HEADER = (
    "numero_facture",
    "date_facture",
    "echeance",
    "debiteur",
    "siren",
    "siret",
    "montant_ttc",
    "reste_a_payer",
    "transmis_le",
)


@dataclass
class ReminderReport:
    sent: list[str] = field(default_factory=list)
    handed_over: list[str] = field(default_factory=list)


def run_reminders(settings: Settings, today: date, drop: FileDrop | None = None) -> ReminderReport:
    """Queue the reminders due today (each level once per invoice, checked against payments right now);
    after the last level, hand the invoice over to the public accountant (operator email + export)."""
    report = ReminderReport()
    levels = sorted(settings.reminder_days)
    with unit_of_work(settings) as uow:
        unpaid = uow.session.exec(
            select(Invoice).where(col(Invoice.status).in_(list(OPEN_INVOICE)), Invoice.due_on < today)
        ).all()
        on_chorus = chorus.latest_deposits(uow.session, [i.id for i in unpaid if i.id is not None])
        for invoice in unpaid:
            # rejected on Chorus Pro (not payable) or in payment there: no reminder
            payable = chorus.dunned(on_chorus.get(invoice.id or 0))
            if not qualifies(invoice.status, amount_due(invoice), payable=payable):
                continue
            sent = {r.level for r in uow.session.exec(select(Reminder).where(Reminder.invoice_id == invoice.id))}
            step = next_step(
                due_on=invoice.due_on,
                today=today,
                levels=levels,
                sent=sent,
                handed_over=invoice.handed_to_accountant_at is not None,
            )
            if step is None:
                continue
            if step.hand_over:
                _hand_over(uow, settings, invoice, today, drop or drop_for(settings))
                report.handed_over.append(invoice.number)
            else:
                _queue_reminder(uow, settings, invoice, step.level)
                report.sent.append(f"{invoice.number}:{step.level}")
        uow.commit()
    return report


def _queue_reminder(uow: UnitOfWork, settings: Settings, invoice: Invoice, level: int) -> None:
    assert invoice.id is not None
    identity = uow.issuers.get(invoice.issuer_code)
    collectivity = uow.collectivities.get(invoice.collectivity_id)
    reminder = Reminder(invoice_id=invoice.id, level=level)
    uow.session.add(reminder)
    uow.session.flush()  # the (invoice, level) unique constraint stops a concurrent run sending it twice
    attachment = paperwork.Stored(invoice.document_sha256 or "", f"{invoice.number}.pdf")
    message = enqueue_message(
        uow.session,
        settings,
        "payment_reminder",
        {
            "level": level,
            "collectivity_name": collectivity.name,
            "issuer_name": identity.name,
            "invoice_number": invoice.number,
            "issued_on": invoice.issued_on,
            "due_on": invoice.due_on,
            "amount_due": amount_due(invoice),
            "payment": payment_block(identity.name, identity.iban, identity.bic),
            "contact": contact_block(identity.name, identity.email),
        },
        to=[collectivity.email or settings.operators_email],
        attachments=[attachment] if invoice.document_sha256 else [],
        dedup_key=f"reminder:{invoice.number}:{level}",
        related=("invoice", invoice.id),
    )
    reminder.message_id = message.id
    uow.session.add(reminder)
    audit.record(
        uow.session,
        actor="système",
        action="invoice.reminder",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"level": level, "amount_due": f"{amount_due(invoice):.2f}"},
    )


def _hand_over(uow: UnitOfWork, settings: Settings, invoice: Invoice, today: date, drop: FileDrop) -> None:
    identity = uow.issuers.get(invoice.issuer_code)
    collectivity = uow.collectivities.get(invoice.collectivity_id)
    reminders = uow.session.exec(
        select(Reminder).where(Reminder.invoice_id == invoice.id).order_by(col(Reminder.level))
    ).all()
    invoice.handed_to_accountant_at = utcnow()
    uow.session.add(invoice)
    drop.append_csv_row(
        f"{identity.code}/comptable/impayes-{today.year}.csv",
        ACCOUNTANT_EXPORT_HEADER,
        (
            invoice.number,
            invoice.issued_on.isoformat(),
            invoice.due_on.isoformat(),
            collectivity.name,
            collectivity.siren,
            collectivity.siret or "",
            f"{invoice.total_ttc:.2f}",
            f"{amount_due(invoice):.2f}",
            today.isoformat(),
        ),
    )
    enqueue_message(
        uow.session,
        settings,
        "accountant_handover",
        {
            "collectivity_name": collectivity.name,
            "issuer_name": identity.name,
            "invoice_number": invoice.number,
            "due_on": invoice.due_on,
            "amount_due": amount_due(invoice),
            "reminders": [{"level": r.level, "sent_on": r.created_at.date()} for r in reminders],
        },
        to=[settings.operators_email],
        dedup_key=f"handover:{invoice.number}",
        related=("invoice", invoice.id),
    )
    audit.record(
        uow.session,
        actor="système",
        action="invoice.handed_over",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"amount_due": f"{amount_due(invoice):.2f}"},
    )
