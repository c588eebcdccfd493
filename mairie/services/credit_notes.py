"""Credit notes (avoirs): an issued invoice is never edited; a correction cancels it with a credit note
in the issuer's own AVO sequence, whose lines are the invoice's lines as the invoice printed them. The
credit note's Factur-X PDF is sealed with the issuer's certificate before it is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from documents.seal import seal_with
from mairie.database import unit_of_work
from mairie.services import invoicing, paperwork, sealing
from mairie.services.channels import chorus
from mairie.services.channels.folder import file_deposits
from mairie.services.payments import cancel_queued_reminders, payable_invoice
from mairie.settings import Settings
from models import audit
from models.db import UnitOfWork
from models.entities import CreditNote, CreditNoteLine, Invoice
from models.errors import InvalidInput, InvalidTransition
from models.lifecycle import InvoiceStatus, move
from models.numbering import next_number
from models.text import clean_text


@dataclass(frozen=True)
class CreditOutcome:
    credit_note: str
    invoice: str
    total_ttc: Decimal
    sha256: str

    def as_json(self) -> dict[str, str]:
        return {
            "credit_note": self.credit_note,
            "invoice": self.invoice,
            "total_ttc": f"{self.total_ttc:.2f}",
            "sha256": self.sha256,
        }


def credit_invoice(
    settings: Settings, number: str, reason: str, on: date, *, actor: str = "opérateur"
) -> CreditOutcome:
    """Issue a credit note (avoir) cancelling what remains of an invoice, in the issuer's AVO sequence."""
    reason = clean_text(reason, "le motif", multiline=True).strip()
    if not reason:
        raise InvalidInput("indiquez le motif de l'avoir (--reason)")
    with unit_of_work(settings) as uow:
        invoice = payable_invoice(uow, number)
        _check_creditable(invoice)
        note = _record_credit_note(uow, invoice, reason, on)
        stored = _render(uow, settings, note, invoice)
        invoice.amount_credited = invoice.total_ttc
        move(invoice, InvoiceStatus.CREDITED)
        uow.session.add_all([note, invoice])
        cancel_queued_reminders(uow.session, invoice)
        assert invoice.id is not None
        if not chorus.rejected_on_chorus(uow.session, invoice.id):  # a rejected invoice is dead there already
            chorus.queue_document(uow, settings, note)
        audit.record(
            uow.session,
            actor=actor,
            action="invoice.credited",
            entity_type="invoice",
            entity_id=invoice.id,
            details={"credit_note": note.number, "reason": reason},
        )
        uow.commit()
    file_deposits(settings)
    return CreditOutcome(note.number, invoice.number, note.total_ttc, stored.sha256)


def _check_creditable(invoice: Invoice) -> None:
    if invoice.amount_credited > 0:
        raise InvalidTransition(f"la facture {invoice.number} a déjà un avoir")
    if invoice.amount_paid > 0:
        raise InvalidTransition(
            f"la facture {invoice.number} a reçu {invoice.amount_paid:.2f} € : un avoir total n'est pas possible ; "
            "le remboursement passe par le comptable public"
        )


def _record_credit_note(uow: UnitOfWork, invoice: Invoice, reason: str, on: date) -> CreditNote:
    """Number the credit note and copy the invoice's lines, every column, as the invoice printed them."""
    assert invoice.id is not None
    note = CreditNote(
        number=next_number(uow.session, invoice.issuer_code, "AVO", on.year),
        issuer_code=invoice.issuer_code,
        invoice_id=invoice.id,
        issued_on=on,
        reason=reason,
        total_ht=invoice.total_ht,
        total_vat=invoice.total_vat,
        total_ttc=invoice.total_ttc,
    )
    uow.session.add(note)
    uow.session.flush()
    assert note.id is not None
    for line in uow.invoices.lines(invoice.id):
        columns = line.model_dump(exclude={"id", "invoice_id"})
        uow.session.add(CreditNoteLine.model_validate({**columns, "credit_note_id": note.id}))
    uow.session.flush()
    return note


def _render(uow: UnitOfWork, settings: Settings, note: CreditNote, invoice: Invoice) -> paperwork.Stored:
    """Render the avoir from its own rows, seal it, store it and record its hash and seal."""
    assert note.id is not None
    identity = uow.issuers.get(note.issuer_code)
    context = uow.invoices.context(invoice)
    priced = paperwork.priced_from_stored(note, uow.credit_notes.lines(note.id), paperwork.vat_of(identity))
    pdf = paperwork.documents.render_avoir(
        paperwork.doc.Avoir(
            number=note.number,
            issue_date=note.issued_on,
            delivery_date=invoice.delivery_date,
            issuer=paperwork.issuer_doc(identity),
            collectivity=paperwork.collectivity_doc(context.collectivity, context.request),
            priced=priced,
            invoice_number=invoice.number,
            invoice_date=invoice.issued_on,
            tariff_date=invoicing.tariff_date(uow, invoice),
            reason=note.reason,
            commitment_number=invoice.commitment_number,
            contract_reference=context.convention.reference,
        )
    )
    key = sealing.seal_key_for(settings, identity)
    filename = f"{note.number}.pdf"
    stored = paperwork.keep(uow.session, settings, seal_with(pdf, key), kind="avoir", filename=filename)
    note.document_sha256 = stored.sha256
    sealing.record_seal(
        uow.session, key, entity_type="credit_note", entity_id=note.id, sha256=stored.sha256, filename=filename
    )
    return stored
