"""Invoices, credit notes, payments and reminders.

- One invoice per subscription, issuer and billing year (a unique constraint): issuing again returns the
  invoice already issued, so a campaign run twice, resumed after a crash or retried never duplicates.
- The number is taken in the transaction that stores and renders the invoice: no gap on rollback.
- An issued invoice is never edited: a correction is a credit note (avoir) in the issuer's sequence.
- A payment that settles an invoice cancels the reminders still queued for it, in the same transaction.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from documents.pool import RenderPool
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.services.mail import enqueue_message
from mairie.services.quoting import vat_regime
from mairie.settings import IssuerIdentity, Settings
from models import audit
from models.db import reachable
from models.entities import (
    Collectivity,
    Convention,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    OutboxMessage,
    Payment,
    Reminder,
    ServiceRequest,
    Subscription,
)
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.money import ZERO, parse_amount
from models.numbering import next_number
from models.pricing import PricedDocument
from models.types import utcnow


def issuer_identity(settings: Settings, code: str) -> IssuerIdentity:
    for identity in settings.issuers():
        if identity.code == code:
            return identity
    raise NotFound(f"émetteur inconnu {code}")


@dataclass(frozen=True)
class IssuedInvoice:
    id: int
    number: str
    issuer: str
    total_ttc: Decimal
    sha256: str
    created: bool  # False when it already existed (idempotent re-run)


def existing_invoice(session: Session, subscription_id: int, issuer: str, year: int) -> Invoice | None:
    return session.exec(
        select(Invoice).where(
            Invoice.subscription_id == subscription_id, Invoice.issuer_code == issuer, Invoice.billing_year == year
        )
    ).first()


def issue_invoice(
    session: Session,
    settings: Settings,
    *,
    subscription: Subscription,
    priced: PricedDocument,
    kind: str,
    year: int,
    issued_on: date,
    delivery_date: date,
    period: tuple[date, date],
) -> IssuedInvoice:
    """Number, store, render (Factur-X), file for deposit and queue the email of one invoice — both steps
    inside the caller's transaction. If the invoice of that subscription, issuer and year exists, return it."""
    invoice, created = record_invoice(
        session,
        settings,
        subscription=subscription,
        priced=priced,
        kind=kind,
        year=year,
        issued_on=issued_on,
        delivery_date=delivery_date,
        period=period,
    )
    complete_invoice(session, settings, invoice)
    return as_issued(invoice, created)


def as_issued(invoice: Invoice, created: bool) -> IssuedInvoice:
    return IssuedInvoice(
        invoice.id,  # type: ignore[arg-type]
        invoice.number,
        invoice.issuer_code,
        invoice.total_ttc,
        invoice.document_sha256 or "",
        created=created,
    )


def record_invoice(
    session: Session,
    settings: Settings,
    *,
    subscription: Subscription,
    priced: PricedDocument,
    kind: str,
    year: int,
    issued_on: date,
    delivery_date: date,
    period: tuple[date, date],
) -> tuple[Invoice, bool]:
    """Step 1, under the issuer's sequence lock: number the invoice and store it with its lines —
    everything its document prints. Returns `(invoice, True)`, or the existing invoice of that
    subscription, issuer and year with False. Keep the transaction short: the number's row stays locked
    for every other numbering of the issuer until it ends."""
    assert subscription.id is not None
    found = existing_invoice(session, subscription.id, priced.issuer, year)
    if found is not None:
        return found, False
    identity = issuer_identity(settings, priced.issuer)
    collectivity = session.get(Collectivity, subscription.collectivity_id)
    convention = session.get(Convention, subscription.convention_id)
    assert collectivity is not None and convention is not None
    request = session.get(ServiceRequest, convention.request_id)
    assert request is not None
    number = next_number(session, identity.code, "FAC", issued_on.year)
    invoice = Invoice(
        number=number,
        issuer_code=identity.code,
        collectivity_id=collectivity.id,  # type: ignore[arg-type]
        subscription_id=subscription.id,
        kind=kind,
        billing_year=year,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=identity.payment_term_days),
        delivery_date=delivery_date,
        total_ht=priced.total_ht,
        total_vat=priced.total_vat,
        total_ttc=priced.total_ttc,
        buyer_siret=collectivity.siret,
        chorus_service_code=request.chorus_service_code or collectivity.chorus_service_code,
        commitment_number=request.commitment_number,
        status="numbered",
    )
    session.add(invoice)
    session.flush()
    for line in priced.lines:
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,  # type: ignore[arg-type]
                **paperwork.line_columns(line),
                period_start=period[0],
                period_end=period[1],
            )
        )
    audit.record(
        session,
        actor="système",
        action="invoice.numbered",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"number": number, "kind": kind, "year": year, "total_ttc": f"{invoice.total_ttc:.2f}"},
    )
    session.flush()
    return invoice, True


def period_label(invoice: Invoice) -> str:
    """How the email names what the invoice covers."""
    if invoice.kind == "first":
        return f"première année du Pack Mairie Connectée ({invoice.billing_year})"
    return f"renouvellement {invoice.billing_year}"


def invoice_document(session: Session, settings: Settings, invoice: Invoice) -> paperwork.doc.Facture:
    """What the invoice's PDF shows, from its stored rows (amounts as stored, never recomputed)."""
    identity = issuer_identity(settings, invoice.issuer_code)
    collectivity = session.get(Collectivity, invoice.collectivity_id)
    subscription = session.get(Subscription, invoice.subscription_id)
    assert collectivity is not None and subscription is not None
    convention = session.get(Convention, subscription.convention_id)
    assert convention is not None
    request = session.get(ServiceRequest, convention.request_id)
    assert request is not None
    lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
    priced = PricedDocument(
        issuer=invoice.issuer_code,
        vat=vat_regime(identity),
        lines=paperwork.priced_lines(lines),
        total_ht=invoice.total_ht,
        total_vat=invoice.total_vat,
        total_ttc=invoice.total_ttc,
    )
    return paperwork.doc.Facture(
        number=invoice.number,
        issue_date=invoice.issued_on,
        delivery_date=invoice.delivery_date,
        issuer=paperwork.issuer_doc(identity),
        collectivity=paperwork.collectivity_doc(collectivity, request),
        priced=priced,
        period_start=lines[0].period_start if lines else None,
        period_end=lines[0].period_end if lines else None,
        commitment_number=invoice.commitment_number,
        contract_reference=convention.reference,
    )


def complete_invoice(session: Session, settings: Settings, invoice: Invoice, pdf: bytes | None = None) -> bool:
    """Step 2, no sequence lock: store the Factur-X PDF (rendered here from the stored rows unless given),
    queue the email, mark the invoice issued — once. Returns False when it was complete already. The
    caller holds the invoice's row (locked by `complete_unfinished`, or created in its own transaction)."""
    if invoice.status != "numbered":
        return False
    identity = issuer_identity(settings, invoice.issuer_code)
    if pdf is None:
        pdf = paperwork.documents.render_facture(invoice_document(session, settings, invoice))
    collectivity = session.get(Collectivity, invoice.collectivity_id)
    assert collectivity is not None
    stored = paperwork.keep(session, settings, pdf, kind="facture", filename=f"{invoice.number}.pdf")
    invoice.document_sha256 = stored.sha256  # filed for deposit after the commit (file_deposits)
    message = enqueue_message(
        session,
        settings,
        "invoice_issued",
        {
            "collectivity_name": collectivity.name,
            "issuer_name": identity.name,
            "invoice_number": invoice.number,
            "period_label": period_label(invoice),
            "issued_on": invoice.issued_on,
            "due_on": invoice.due_on,
            "total_ttc": invoice.total_ttc,
            "payment": {
                "payee": f"{identity.name} — comptable public",
                "iban": identity.iban or "",
                "bic": identity.bic or "",
            },
            "billing_channel": identity.billing_channel,
            "service_code": invoice.chorus_service_code,
            "commitment_number": invoice.commitment_number,
            "contact": {"name": identity.name, "email": identity.email},
        },
        to=[collectivity.email or _signatory_email(session, invoice)],
        attachments=[stored],
        dedup_key=f"invoice:{invoice.number}",
        related=("invoice", invoice.id),
    )
    invoice.emailed_message_id = message.id
    invoice.status = "issued"
    session.add(invoice)
    audit.record(
        session,
        actor="système",
        action="invoice.issued",
        entity_type="invoice",
        entity_id=invoice.id,
        details={
            "number": invoice.number,
            "kind": invoice.kind,
            "year": invoice.billing_year,
            "total_ttc": f"{invoice.total_ttc:.2f}",
            "sha256": stored.sha256,
        },
    )
    return True


def _signatory_email(session: Session, invoice: Invoice) -> str:
    subscription = session.get(Subscription, invoice.subscription_id)
    convention = session.get(Convention, subscription.convention_id) if subscription else None
    request = session.get(ServiceRequest, convention.request_id) if convention else None
    assert request is not None
    return request.signatory_email


def render_processes(settings: Settings, invoices: int) -> int:
    """How many rendering processes a job of `invoices` gets (settings `render_processes`,
    `render_pool_from`)."""
    if settings.render_processes is not None:
        return settings.render_processes
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 and invoices >= settings.render_pool_from else 0


def complete_unfinished(
    settings: Settings, invoice_ids: Sequence[int] | None = None, pool: RenderPool | None = None
) -> dict[int, IssuedInvoice]:
    """Complete the invoices still `numbered` (all of them, or those of `invoice_ids`), one transaction
    each, the invoice's row locked: two runs never store or email one twice. The PDFs are rendered
    before the lock (by `pool` when given: several cores, recycled processes) from rows that never change;
    a PDF whose invoice another run completed meanwhile is dropped. Returns each invoice looked at by id,
    `created` when it was completed here."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        query = select(Invoice).where(Invoice.status == "numbered")
        if invoice_ids is not None:
            query = query.where(Invoice.id.in_(list(invoice_ids)))  # type: ignore[union-attr]
        pending = uow.session.exec(query.order_by(Invoice.id)).all()  # type: ignore[arg-type]
        work = [(invoice.id, invoice_document(uow.session, settings, invoice) if pool else None) for invoice in pending]
    pdfs = pool.factures(d for _, d in work) if pool else None  # type: ignore[misc]
    done: dict[int, IssuedInvoice] = {}
    for invoice_id, _document in work:
        pdf = next(pdfs) if pdfs is not None else None
        with unit_of_work(settings) as uow:
            invoice = uow.session.exec(select(Invoice).where(Invoice.id == invoice_id).with_for_update()).one()
            completed = complete_invoice(uow.session, settings, invoice, pdf)
            uow.commit()
            done[invoice_id] = as_issued(invoice, completed)  # type: ignore[index]
    return done


def deposit(settings: Settings, identity: IssuerIdentity, filename: str, content: bytes) -> Path:
    """File a committed document in the issuer's deposit folder for its billing channel (Chorus Pro, PES
    ASAP, email), atomically. Called after the commit only: the database is the authority, so a leftover
    file of the same name (from a transaction that rolled back after writing it) is replaced."""
    folder = settings.deposit_path / identity.code / identity.billing_channel
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    if target.exists() and target.read_bytes() == content:
        return target
    # A temporary file of its own: two processes filing the same invoice at once both succeed.
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{filename}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, target)
    return target


def file_deposits(settings: Settings, batch: int = 500) -> list[str]:
    """File every committed invoice and credit note not yet in its deposit folder (after their commit,
    and again by any later run after a crash), a batch per transaction. Returns the numbers filed."""
    filed: list[str] = []
    for table in (Invoice, CreditNote):
        while True:
            with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
                session = uow.session
                rows = session.exec(
                    select(table)
                    .where(table.deposited_path.is_(None), table.document_sha256.is_not(None))  # type: ignore[attr-defined]
                    .order_by(table.id)  # type: ignore[arg-type]
                    .limit(batch)
                ).all()
                for row in rows:
                    identity = issuer_identity(settings, row.issuer_code)
                    content = paperwork.load(settings, row.document_sha256 or "")
                    row.deposited_path = str(deposit(settings, identity, f"{row.number}.pdf", content))
                    session.add(row)
                    filed.append(row.number)
                uow.commit()
            if len(rows) < batch:
                break
    return filed


# ------------------------------------------------------------------------------------------------
# Payments
# ------------------------------------------------------------------------------------------------


def amount_due(invoice: Invoice) -> Decimal:
    return invoice.total_ttc - invoice.amount_paid - invoice.amount_credited


def _invoice_by_number(session: Session, number: str) -> Invoice:
    invoice = session.exec(select(Invoice).where(Invoice.number == number.strip())).first()
    if invoice is None:
        raise NotFound(f"aucune facture n° « {number} »")
    if invoice.status == "numbered":  # between its two steps: never sent, nothing to pay or credit yet
        raise InvalidTransition(
            f"la facture {invoice.number} est numérotée mais son document n'est pas encore émis : "
            "réessayez dans quelques minutes (la tâche « envoi-courriels » la termine)"
        )
    return invoice


def _apply_payment(
    session: Session,
    invoice: Invoice,
    amount: Decimal,
    paid_on: date,
    reference: str | None,
    source: str,
    recorded_by: str,
) -> Payment:
    if amount <= 0:
        raise InvalidInput("le montant d'un paiement doit être positif")
    due = amount_due(invoice)
    if amount > due:
        raise InvalidInput(
            f"{invoice.number} : {amount:.2f} € dépasse le reste à payer ({due:.2f} €) ; rien n'est enregistré"
        )
    payment = Payment(
        invoice_id=invoice.id,
        amount=amount,
        paid_on=paid_on,
        reference=reference,  # type: ignore[arg-type]
        source=source,
        recorded_by=recorded_by,
    )
    session.add(payment)
    invoice.amount_paid += amount
    invoice.status = "paid" if amount_due(invoice) == 0 else "partially_paid"
    session.add(invoice)
    if invoice.status == "paid":
        cancel_queued_reminders(session, invoice)
    audit.record(
        session,
        actor=recorded_by,
        action="payment.recorded",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"amount": f"{amount:.2f}", "paid_on": paid_on.isoformat(), "source": source, "reference": reference},
    )
    return payment


def cancel_queued_reminders(session: Session, invoice: Invoice) -> int:
    """A settled invoice gets no more reminders: cancel those still waiting in the outbox."""
    ids = [
        r.message_id
        for r in session.exec(select(Reminder).where(Reminder.invoice_id == invoice.id)).all()
        if r.message_id is not None
    ]
    if not ids:
        return 0
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table)
        .where(table.c.id.in_(ids), table.c.status == "pending")
        .values(status="cancelled", last_error="facture réglée avant l'envoi")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def record_payment(
    settings: Settings,
    number: str,
    amount: Decimal,
    paid_on: date,
    *,
    reference: str | None = None,
    recorded_by: str = "opérateur",
) -> dict[str, Any]:
    """Record a payment (partial payments allowed; more than what is due is refused)."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        invoice = _invoice_by_number(uow.session, number)
        _apply_payment(uow.session, invoice, amount, paid_on, reference, "manual", recorded_by)
        uow.commit()
        return {"invoice": invoice.number, "status": invoice.status, "amount_due": f"{amount_due(invoice):.2f}"}


CSV_COLUMNS = ("invoice_number", "amount", "paid_on", "reference")


@dataclass(frozen=True)
class CsvPayment:
    line: int
    invoice_number: str
    amount: Decimal
    paid_on: date
    reference: str | None


def parse_payments_csv(text: str) -> list[CsvPayment]:
    """Read a payments file (columns invoice_number, amount, paid_on (YYYY-MM-DD or DD/MM/YYYY),
    reference; `,` or `;` separated). Every line is checked; the first bad one is named by its number."""
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    missing = [c for c in CSV_COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"colonnes manquantes : {', '.join(missing)} (attendues : {', '.join(CSV_COLUMNS)})")
    rows = []
    records = iter(reader)
    while True:
        try:
            raw = next(records)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InvalidInput(f"ligne {reader.line_num + 1} : fichier CSV mal formé ({exc})") from None
        line = reader.line_num
        try:
            number = (raw.get("invoice_number") or "").strip()
            if not number:
                raise ValueError("numéro de facture vide")
            amount = parse_amount(raw.get("amount") or "")
            paid_on = _parse_date(raw.get("paid_on") or "")
        except ValueError as exc:
            raise InvalidInput(f"ligne {line} : {exc}") from None
        rows.append(CsvPayment(line, number, amount, paid_on, (raw.get("reference") or "").strip() or None))
    if not rows:
        raise InvalidInput("le fichier ne contient aucun paiement")
    return rows


def _parse_date(text: str) -> date:
    text = text.strip()
    try:
        if "/" in text:
            day, month, year = text.split("/")
            return date(int(year), int(month), int(day))
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date « {text} » invalide (AAAA-MM-JJ ou JJ/MM/AAAA)") from None


def import_payments(settings: Settings, text: str, *, recorded_by: str = "import") -> list[dict[str, Any]]:
    """Check the whole file, then record every payment in one transaction — all or nothing."""
    rows = parse_payments_csv(text)
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        results = []
        for row in rows:
            try:
                invoice = _invoice_by_number(uow.session, row.invoice_number)
                _apply_payment(uow.session, invoice, row.amount, row.paid_on, row.reference, "import", recorded_by)
            except (InvalidInput, NotFound) as exc:
                raise InvalidInput(f"ligne {row.line} : {exc} ; aucun paiement du fichier n'est enregistré") from None
            results.append({"line": row.line, "invoice": invoice.number, "status": invoice.status})
        uow.commit()
        return results


# ------------------------------------------------------------------------------------------------
# Credit notes
# ------------------------------------------------------------------------------------------------


def credit_invoice(settings: Settings, number: str, reason: str, on: date) -> dict[str, Any]:
    """Issue a credit note (avoir) cancelling what remains of an invoice, in the issuer's AVO sequence."""
    if not reason.strip():
        raise InvalidInput("indiquez le motif de l'avoir (--reason)")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        invoice = _invoice_by_number(session, number)
        if invoice.amount_credited > 0:
            raise InvalidTransition(f"la facture {invoice.number} a déjà un avoir")
        if invoice.amount_paid > 0:
            raise InvalidTransition(
                f"la facture {invoice.number} a reçu {invoice.amount_paid:.2f} € : un avoir total n'est pas possible ; "
                "le remboursement passe par le comptable public"
            )
        identity = issuer_identity(settings, invoice.issuer_code)
        lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
        drafts = paperwork.priced_lines(lines)  # the invoice's lines, as its own document printed them
        priced = PricedDocument(
            issuer=invoice.issuer_code,
            vat=vat_regime(identity),
            lines=drafts,
            total_ht=invoice.total_ht,
            total_vat=invoice.total_vat,
            total_ttc=invoice.total_ttc,
        )
        credit_number = next_number(session, identity.code, "AVO", on.year)
        note = CreditNote(
            number=credit_number,
            issuer_code=identity.code,
            invoice_id=invoice.id,  # type: ignore[arg-type]
            issued_on=on,
            reason=reason.strip(),
            total_ht=invoice.total_ht,
            total_vat=invoice.total_vat,
            total_ttc=invoice.total_ttc,
        )
        session.add(note)
        session.flush()
        for li in drafts:
            session.add(
                CreditNoteLine(
                    credit_note_id=note.id,
                    position=li.position,
                    item_code=li.code,  # type: ignore[arg-type]
                    label=li.label,
                    quantity=li.quantity,
                    unit_price_ht=li.unit_price_ht,
                    vat_rate=li.vat_rate,
                    total_ht=li.total_ht,
                    total_vat=li.total_vat,
                    total_ttc=li.total_ttc,
                )
            )
        collectivity = session.get(Collectivity, invoice.collectivity_id)
        subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
        convention = session.get(Convention, subscription.convention_id) if subscription else None
        request = session.get(ServiceRequest, convention.request_id) if convention else None
        assert collectivity is not None and request is not None
        pdf = paperwork.documents.render_avoir(
            paperwork.doc.Avoir(
                number=credit_number,
                issue_date=on,
                delivery_date=invoice.delivery_date,
                issuer=paperwork.issuer_doc(identity),
                collectivity=paperwork.collectivity_doc(collectivity, request),
                priced=priced,
                invoice_number=invoice.number,
                invoice_date=invoice.issued_on,
                reason=reason.strip(),
                commitment_number=invoice.commitment_number,
                contract_reference=convention.reference if convention else None,
            )
        )
        stored = paperwork.keep(session, settings, pdf, kind="avoir", filename=f"{credit_number}.pdf")
        note.document_sha256 = stored.sha256
        invoice.amount_credited = invoice.total_ttc
        invoice.status = "credited"
        session.add_all([note, invoice])
        cancel_queued_reminders(session, invoice)
        audit.record(
            session,
            actor="opérateur",
            action="invoice.credited",
            entity_type="invoice",
            entity_id=invoice.id,
            details={"credit_note": credit_number, "reason": reason.strip()},
        )
        uow.commit()
    file_deposits(settings)
    return {
        "credit_note": credit_number,
        "invoice": invoice.number,
        "total_ttc": f"{note.total_ttc:.2f}",
        "sha256": stored.sha256,
    }


# ------------------------------------------------------------------------------------------------
# Reminders
# ------------------------------------------------------------------------------------------------


@dataclass
class ReminderReport:
    sent: list[str]
    handed_over: list[str]


def due_reminder_level(invoice: Invoice, today: date, levels: Sequence[int]) -> int:
    """The highest reminder level reached by an unpaid invoice on a day (0 when none)."""
    late = (today - invoice.due_on).days
    return sum(1 for days in levels if late >= days)


def run_reminders(settings: Settings, today: date) -> ReminderReport:
    """Queue the reminders due today (each level once per invoice, checked against payments right now);
    after the last level, hand the invoice over to the public accountant (operator email + export)."""
    report = ReminderReport([], [])
    levels = sorted(settings.reminder_days)
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        unpaid = session.exec(
            select(Invoice).where(Invoice.status.in_(("issued", "partially_paid")), Invoice.due_on < today)  # type: ignore[attr-defined]
        ).all()
        for invoice in unpaid:
            if amount_due(invoice) <= ZERO:
                continue
            level = due_reminder_level(invoice, today, levels)
            if level == 0:
                continue
            done = {r.level for r in session.exec(select(Reminder).where(Reminder.invoice_id == invoice.id)).all()}
            if level not in done:
                # Only the highest level reached: a missed day never sends a burst of reminders.
                _queue_reminder(session, settings, invoice, level)
                report.sent.append(f"{invoice.number}:{level}")
            elif level == len(levels) and invoice.handed_to_accountant_at is None:
                _hand_over(session, settings, invoice, today)
                report.handed_over.append(invoice.number)
        uow.commit()
    return report


def _queue_reminder(session: Session, settings: Settings, invoice: Invoice, level: int) -> None:
    identity = issuer_identity(settings, invoice.issuer_code)
    collectivity = session.get(Collectivity, invoice.collectivity_id)
    assert collectivity is not None
    reminder = Reminder(invoice_id=invoice.id, level=level)  # type: ignore[arg-type]
    session.add(reminder)
    session.flush()  # the (invoice, level) unique constraint stops a concurrent run sending it twice
    attachment = paperwork.Stored(invoice.document_sha256 or "", f"{invoice.number}.pdf")
    message = enqueue_message(
        session,
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
            "payment": {
                "payee": f"{identity.name} — comptable public",
                "iban": identity.iban or "",
                "bic": identity.bic or "",
            },
            "contact": {"name": identity.name, "email": identity.email},
        },
        to=[collectivity.email or settings.operators_email],
        attachments=[attachment] if invoice.document_sha256 else [],
        dedup_key=f"reminder:{invoice.number}:{level}",
        related=("invoice", invoice.id),
    )
    reminder.message_id = message.id
    session.add(reminder)
    audit.record(
        session,
        actor="système",
        action="invoice.reminder",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"level": level, "amount_due": f"{amount_due(invoice):.2f}"},
    )


def _hand_over(session: Session, settings: Settings, invoice: Invoice, today: date) -> None:
    identity = issuer_identity(settings, invoice.issuer_code)
    collectivity = session.get(Collectivity, invoice.collectivity_id)
    assert collectivity is not None
    reminders = session.exec(select(Reminder).where(Reminder.invoice_id == invoice.id).order_by(Reminder.level)).all()
    invoice.handed_to_accountant_at = utcnow()
    session.add(invoice)
    export_for_accountant(settings, identity, invoice, collectivity, today)
    enqueue_message(
        session,
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
        session,
        actor="système",
        action="invoice.handed_over",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"amount_due": f"{amount_due(invoice):.2f}"},
    )


def export_for_accountant(
    settings: Settings, identity: IssuerIdentity, invoice: Invoice, collectivity: Collectivity, today: date
) -> Path:
    """Append the unpaid invoice to the issuer's recovery export (CSV) for the public accountant."""
    folder = settings.deposit_path / identity.code / "comptable"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"impayes-{today.year}.csv"
    new = not path.exists()
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        if new:
            writer.writerow(
                [
                    "numero_facture",
                    "date_facture",
                    "echeance",
                    "debiteur",
                    "siren",
                    "siret",
                    "montant_ttc",
                    "reste_a_payer",
                    "transmis_le",
                ]
            )
        writer.writerow(
            [
                invoice.number,
                invoice.issued_on.isoformat(),
                invoice.due_on.isoformat(),
                collectivity.name,
                collectivity.siren,
                collectivity.siret or "",
                f"{invoice.total_ttc:.2f}",
                f"{amount_due(invoice):.2f}",
                today.isoformat(),
            ]
        )
    return path


def invoices_of(session: Session, collectivity_id: int) -> list[Invoice]:
    return list(
        session.exec(
            select(Invoice)
            .where(Invoice.collectivity_id == collectivity_id)
            .order_by(Invoice.issued_on, Invoice.number)
        ).all()
    )  # type: ignore[arg-type]
