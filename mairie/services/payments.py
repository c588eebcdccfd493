"""Payments of invoices: recorded by an operator, or imported from a bank or DGFiP export (CSV).

Partial payments are allowed; more than what is due is refused. A payment that settles an invoice
cancels the reminders still queued for it, in the same transaction. An import is checked whole, then
recorded in one transaction — all or nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlmodel import Session, col, select

from mairie.database import unit_of_work
from mairie.settings import Settings
from models import audit
from models.clock import paris_today
from models.db import UnitOfWork
from models.entities import Invoice, OutboxMessage, Payment, Reminder
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import InvoiceStatus, OutboxStatus, move
from models.money import parse_amount
from models.text import clean_text


def amount_due(invoice: Invoice) -> Decimal:
    """What remains to be paid: the amount to pay less payments and credit notes."""
    return invoice.total_ttc - invoice.amount_paid - invoice.amount_credited


def payable_invoice(uow: UnitOfWork, number: str) -> Invoice:
    """An invoice by number that can take a payment or a credit note (its document is issued)."""
    invoice = uow.invoices.by_number(number)
    if invoice.status == InvoiceStatus.NUMBERED:  # between its two steps: never sent, nothing to pay yet
        raise InvalidTransition(
            f"la facture {invoice.number} est numérotée mais son document n'est pas encore émis : "
            "réessayez dans quelques minutes (la tâche « envoi-courriels » la termine)"
        )
    return invoice


@dataclass(frozen=True)
class PaymentOutcome:
    invoice: str
    status: str
    amount_due: Decimal

    def as_json(self) -> dict[str, str]:
        return {"invoice": self.invoice, "status": str(self.status), "amount_due": f"{self.amount_due:.2f}"}


def check_paid_on(invoice: Invoice, paid_on: date, today: date) -> None:
    """A payment is dated between the invoice's issue and today (a typo, 0001-01-01 or 9999-12-31, never)."""
    if paid_on < invoice.issued_on:
        raise InvalidInput(
            f"{invoice.number} : un paiement du {paid_on:%d/%m/%Y} précède la facture (émise le "
            f"{invoice.issued_on:%d/%m/%Y}) ; vérifiez la date"
        )
    if paid_on > today:
        raise InvalidInput(f"{invoice.number} : la date de paiement {paid_on:%d/%m/%Y} est dans le futur")


def apply_payment(
    session: Session,
    invoice: Invoice,
    amount: Decimal,
    paid_on: date,
    reference: str | None,
    source: str,
    recorded_by: str,
    today: date | None = None,
) -> Payment:
    """Record one payment on an invoice, inside the caller's transaction."""
    if amount <= 0:
        raise InvalidInput("le montant d'un paiement doit être positif")
    check_paid_on(invoice, paid_on, today or paris_today())
    due = amount_due(invoice)
    if amount > due:
        raise InvalidInput(
            f"{invoice.number} : {amount:.2f} € dépasse le reste à payer ({due:.2f} €) ; rien n'est enregistré"
        )
    assert invoice.id is not None
    payment = Payment(
        invoice_id=invoice.id,
        amount=amount,
        paid_on=paid_on,
        reference=reference,
        source=source,
        recorded_by=recorded_by,
    )
    session.add(payment)
    invoice.amount_paid += amount
    move(invoice, InvoiceStatus.PAID if amount_due(invoice) == 0 else InvoiceStatus.PARTIALLY_PAID)
    session.add(invoice)
    if invoice.status == InvoiceStatus.PAID:
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
    cancelled = 0
    waiting = select(OutboxMessage).where(col(OutboxMessage.id).in_(ids), OutboxMessage.status == OutboxStatus.PENDING)
    for message in session.exec(waiting).all():
        move(message, OutboxStatus.CANCELLED)
        message.last_error = "facture réglée avant l'envoi"
        session.add(message)
        cancelled += 1
    return cancelled


def record_payment(
    settings: Settings,
    number: str,
    amount: Decimal,
    paid_on: date,
    *,
    reference: str | None = None,
    recorded_by: str = "opérateur",
    today: date | None = None,
) -> PaymentOutcome:
    """Record a payment (partial payments allowed; more than what is due is refused; dated between the
    invoice's issue and `today`, Paris time by default)."""
    reference = clean_text(reference, "la référence").strip() or None if reference else None
    recorded_by = _who(recorded_by)
    with unit_of_work(settings) as uow:
        invoice = payable_invoice(uow, number)
        apply_payment(uow.session, invoice, amount, paid_on, reference, "manual", recorded_by, today)
        uow.commit()
        return PaymentOutcome(invoice.number, invoice.status, amount_due(invoice))


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
            reference = clean_text(raw.get("reference") or "", "la référence").strip() or None
            number = clean_text(number, "le numéro de facture")
        except ValueError as exc:
            raise InvalidInput(f"ligne {line} : {exc}") from None
        rows.append(CsvPayment(line, number, amount, paid_on, reference))
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


@dataclass(frozen=True)
class ImportedPayment:
    line: int
    invoice: str
    status: str
    already_recorded: bool = False  # the same payment (invoice, reference, date, amount) is on file

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.line,
            "invoice": self.invoice,
            "status": str(self.status),
            "already_recorded": self.already_recorded,
        }


def _who(recorded_by: str) -> str:
    who = " ".join(clean_text(recorded_by, "l'auteur").split())
    if not 2 <= len(who) <= 200:
        raise InvalidInput("indiquez qui enregistre le paiement (2 à 200 caractères)")
    return who


def _recorded(session: Session, invoice: Invoice, row: CsvPayment) -> bool:
    """Whether this payment is on file already: same invoice, reference, date and amount."""
    return (
        session.exec(
            select(Payment).where(
                Payment.invoice_id == invoice.id,
                Payment.reference == row.reference,
                Payment.paid_on == row.paid_on,
                Payment.amount == row.amount,
            )
        ).first()
        is not None
    )


def import_payments(
    settings: Settings, text: str, *, recorded_by: str = "import", today: date | None = None
) -> list[ImportedPayment]:
    """Check the whole file, then record every payment in one transaction — all or nothing. Idempotent on
    (invoice, reference, date, amount): importing a file again records nothing twice, and says which lines
    were already recorded."""
    rows = parse_payments_csv(text)
    recorded_by = _who(recorded_by)
    today = today or paris_today()
    with unit_of_work(settings) as uow:
        results = []
        for row in rows:
            try:
                invoice = payable_invoice(uow, row.invoice_number)
                if _recorded(uow.session, invoice, row):
                    results.append(ImportedPayment(row.line, invoice.number, invoice.status, already_recorded=True))
                    continue
                apply_payment(
                    uow.session, invoice, row.amount, row.paid_on, row.reference, "import", recorded_by, today
                )
                uow.session.flush()  # the next line of the same file sees this payment
            except (InvalidInput, NotFound) as exc:
                raise InvalidInput(f"ligne {row.line} : {exc} ; aucun paiement du fichier n'est enregistré") from None
            results.append(ImportedPayment(row.line, invoice.number, invoice.status))
        uow.commit()
        return results


def read_payments_file(path: Path) -> str:
    """The text of a payments file (UTF-8, with or without a BOM), or a plain refusal."""
    if not path.is_file():
        raise InvalidInput(f"fichier introuvable : {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} n'est pas un fichier texte UTF-8") from None


def payments_files(settings: Settings) -> list[str]:
    """The names of the CSV files waiting in the import folder (`MAIRIE_IMPORT_DIR`), sorted."""
    folder = settings.import_path
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")


def import_payments_file(
    settings: Settings, name: str, *, recorded_by: str = "import", today: date | None = None
) -> list[ImportedPayment]:
    """Import a file of the import folder named by its name alone (the Prefect form's choice): a name
    with a folder in it, or one not in the folder, is refused with the names that are there."""
    cleaned = clean_text(name, "le nom du fichier").strip()
    if not cleaned or cleaned != Path(cleaned).name or cleaned.startswith("."):
        raise InvalidInput(f"« {name} » : donnez le nom d'un fichier du dossier d'import, sans chemin")
    if cleaned not in payments_files(settings):
        present = ", ".join(payments_files(settings)) or "aucun fichier .csv"
        raise InvalidInput(f"pas de fichier « {cleaned} » dans {settings.import_path} (présents : {present})")
    return import_payments(
        settings, read_payments_file(settings.import_path / cleaned), recorded_by=recorded_by, today=today
    )
