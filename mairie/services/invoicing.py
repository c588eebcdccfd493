"""Invoices: numbered, rendered, stored and emailed — in two steps — and the first invoices of a delivery.

- One invoice per subscription, issuer and billing year (a unique constraint): issuing again returns the
  invoice already issued, so a campaign run twice, resumed after a crash or retried never duplicates.
- Step 1 (`record_invoice`) numbers the invoice and stores its lines under the issuer's sequence lock, in a
  short transaction; step 2 (`complete_invoice`) renders the Factur-X PDF from the stored rows, seals it
  with the issuer's certificate (PAdES, `mairie.services.sealing`), stores the sealed PDF and queues the
  email with it. A crash in between leaves a `numbered` invoice, which any later run completes once.
- An issued invoice is never edited: a correction is a credit note (`mairie.services.credit_notes`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlmodel import Session, col, select

from documents.pool import Rendering, RenderPool, render_sealed_facture
from documents.seal import SealKey
from mairie.database import unit_of_work
from mairie.services import buyers, paperwork, sealing
from mairie.services.channels import chorus
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.buyer import missing_for_invoice
from models.db import UnitOfWork
from models.entities import Invoice, InvoiceLine, PriceGrid, Subscription
from models.lifecycle import InvoiceStatus, move
from models.numbering import next_number
from models.pricing import PricedDocument, first_invoice_document
from models.terms import due_on
from notifications.contexts import contact_block, payment_block


@dataclass(frozen=True)
class IssuedInvoice:
    id: int
    number: str
    issuer: str
    total_ttc: Decimal
    sha256: str
    created: bool  # False when it already existed (idempotent re-run)


@dataclass(frozen=True)
class InvoiceDraft:
    """What step 1 stores for one issuer: the priced lines (each with the period it bills) and the dates."""

    priced: PricedDocument
    kind: str  # first | renewal
    year: int
    issued_on: date
    delivery_date: date  # BT-72


def as_issued(invoice: Invoice, created: bool) -> IssuedInvoice:
    assert invoice.id is not None
    return IssuedInvoice(
        invoice.id, invoice.number, invoice.issuer_code, invoice.total_ttc, invoice.document_sha256 or "", created
    )


def issue_invoice(
    uow: UnitOfWork, settings: Settings, subscription: Subscription, draft: InvoiceDraft
) -> IssuedInvoice:
    """Both steps inside the caller's transaction; returns the existing invoice of that subscription,
    issuer and year if there is one."""
    invoice, created = record_invoice(uow, settings, subscription, draft)
    complete_invoice(uow, settings, invoice)
    return as_issued(invoice, created)


def record_invoice(
    uow: UnitOfWork, settings: Settings, subscription: Subscription, draft: InvoiceDraft
) -> tuple[Invoice, bool]:
    """Step 1, under the issuer's sequence lock: number the invoice and store it with its lines —
    everything its document prints. Returns `(invoice, True)`, or the existing invoice of that
    subscription, issuer and year with False. Keep the transaction short: the number's row stays locked
    for every other numbering of the issuer until it ends."""
    assert subscription.id is not None
    priced = draft.priced
    found = uow.invoices.of_year(subscription.id, priced.issuer, draft.year)
    if found is not None:
        return found, False
    identity = uow.issuers.get(priced.issuer)
    collectivity = uow.collectivities.get(subscription.collectivity_id)
    request = uow.requests.get(uow.conventions.get(subscription.convention_id).request_id)
    number = next_number(uow.session, identity.code, "FAC", draft.issued_on.year)
    invoice = Invoice(
        number=number,
        issuer_code=identity.code,
        collectivity_id=subscription.collectivity_id,
        subscription_id=subscription.id,
        kind=draft.kind,
        billing_year=draft.year,
        issued_on=draft.issued_on,
        due_on=due_on(draft.issued_on, settings.payment_term_days),
        delivery_date=draft.delivery_date,
        total_ht=priced.total_ht,
        total_vat=priced.total_vat,
        total_ttc=priced.total_ttc,
        buyer_siret=collectivity.siret,
        chorus_service_code=request.chorus_service_code or collectivity.chorus_service_code,
        commitment_number=request.commitment_number,
        status=InvoiceStatus.NUMBERED,
    )
    uow.session.add(invoice)
    uow.session.flush()
    assert invoice.id is not None
    for line in priced.lines:
        uow.session.add(InvoiceLine(invoice_id=invoice.id, **paperwork.line_columns(line)))
    audit.record(
        uow.session,
        actor="système",
        action="invoice.numbered",
        entity_type="invoice",
        entity_id=invoice.id,
        details={"number": number, "kind": draft.kind, "year": draft.year, "total_ttc": f"{invoice.total_ttc:.2f}"},
    )
    uow.session.flush()
    return invoice, True


def period_label(invoice: Invoice) -> str:
    """How the email names what the invoice covers."""
    if invoice.kind == "first":
        return f"première année du Pack Mairie Connectée ({invoice.billing_year})"
    return f"renouvellement {invoice.billing_year}"


def invoice_document(uow: UnitOfWork, invoice: Invoice) -> paperwork.doc.Facture:
    """What the invoice's PDF shows, from its stored rows (amounts as stored, never recomputed)."""
    identity = uow.issuers.get(invoice.issuer_code)
    context = uow.invoices.context(invoice)
    assert invoice.id is not None
    lines = uow.invoices.lines(invoice.id)
    priced = paperwork.priced_from_stored(invoice, lines, paperwork.vat_of(identity))
    period = priced.billing_period  # BG-14: from the lines' own periods
    return paperwork.doc.Facture(
        number=invoice.number,
        issue_date=invoice.issued_on,
        delivery_date=invoice.delivery_date,
        issuer=paperwork.issuer_doc(identity),
        collectivity=paperwork.collectivity_doc(context.collectivity, context.request),
        priced=priced,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        commitment_number=invoice.commitment_number,
        contract_reference=context.convention.reference,
        tariff_date=tariff_date(uow, invoice),
    )


def tariff_date(uow: UnitOfWork, invoice: Invoice) -> date | None:
    """The day whose grid priced the invoice's lines, so that it cites the deliberation fixing those prices:
    a first invoice is at its quote's prices (the quote's grid version, even if a new grid came into force
    before the go-live); a renewal at the grid in force on its issue date (None: the issue date)."""
    if invoice.kind != "first":
        return None
    context = uow.invoices.context(invoice)
    assert context.request.id is not None
    quote = next((q for q in uow.quotes.current(context.request.id) if q.issuer_code == invoice.issuer_code), None)
    if quote is None:
        return None
    grid = uow.session.get(PriceGrid, quote.grid_id)
    return grid.effective_from if grid is not None else quote.issued_on


def complete_invoice(
    uow: UnitOfWork,
    settings: Settings,
    invoice: Invoice,
    sealed_pdf: bytes | None = None,
    seal_key: SealKey | None = None,
) -> bool:
    """Step 2, no sequence lock: store the sealed Factur-X PDF (rendered and sealed here from the stored rows
    unless `sealed_pdf` is given, sealed with `seal_key`), queue the email, mark the invoice issued — once.
    Returns False when it was complete already. The caller holds the invoice's row (locked by
    `complete_unfinished`, or created in its own transaction)."""
    if invoice.status != InvoiceStatus.NUMBERED:
        return False
    identity = uow.issuers.get(invoice.issuer_code)
    if sealed_pdf is None or seal_key is None:
        seal_key = sealing.seal_key_for(settings, identity)
        sealed_pdf = render_sealed_facture(invoice_document(uow, invoice), seal_key)
    context = uow.invoices.context(invoice)
    filename = f"{invoice.number}.pdf"
    stored = paperwork.keep(uow.session, settings, sealed_pdf, kind="facture", filename=filename)
    sealing.record_seal(
        uow.session, seal_key, entity_type="invoice", entity_id=invoice.id, sha256=stored.sha256, filename=filename
    )
    message = enqueue_message(
        uow.session,
        settings,
        "invoice_issued",
        {
            "collectivity_name": context.collectivity.name,
            "issuer_name": identity.name,
            "invoice_number": invoice.number,
            "period_label": period_label(invoice),
            "issued_on": invoice.issued_on,
            "due_on": invoice.due_on,
            "total_ttc": invoice.total_ttc,
            "payment": payment_block(identity.name, identity.iban, identity.bic),
            "billing_channel": identity.billing_channel,
            "service_code": invoice.chorus_service_code,
            "commitment_number": invoice.commitment_number,
            "contact": contact_block(identity.name, identity.email),
        },
        to=[context.collectivity.email or context.request.signatory_email],
        attachments=[stored],
        dedup_key=f"invoice:{invoice.number}",
        related=("invoice", invoice.id),
    )
    # the invoice's row changed once, after the email's flush: one UPDATE (at the commit)
    invoice.document_sha256 = stored.sha256  # filed for deposit after the commit (channels.file_deposits)
    invoice.emailed_message_id = message.id
    move(invoice, InvoiceStatus.ISSUED)
    uow.session.add(invoice)
    chorus.queue_document(uow, settings, invoice)  # deposited through the API when its issuer does so
    audit.record(
        uow.session,
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
    before the lock (by `pool` when given: several cores, recycled processes, each sealing what it renders,
    a few documents in flight at a time) from rows that never change;
    a PDF whose invoice another run completed meanwhile is dropped. Returns each invoice looked at by id,
    `created` when it was completed here."""
    work, seals = _unfinished(settings, invoice_ids, with_documents=pool is not None)
    pdfs = pool.factures((d for _, d in work if d is not None), seals) if pool else None
    return _complete_each(settings, work, seals, pdfs)


@dataclass
class Started:
    """Unfinished invoices whose PDFs a pool renders (`start_unfinished`); `finish_unfinished` stores them."""

    work: list[tuple[int, paperwork.doc.Facture]]
    seals: dict[str, SealKey]
    rendering: Rendering


def start_unfinished(settings: Settings, invoice_ids: Sequence[int], pool: RenderPool) -> Started:
    """The first half of `complete_unfinished` for a bounded batch (a campaign's window): the documents of
    those still `numbered`, all queued in `pool` at once; its workers render them while the caller works."""
    work, seals = _unfinished(settings, invoice_ids, with_documents=True)
    documents = [(invoice_id, document) for invoice_id, document in work if document is not None]
    return Started(documents, seals, pool.submit((d for _, d in documents), seals))


def finish_unfinished(settings: Settings, started: Started) -> dict[int, IssuedInvoice]:
    """The second half: each PDF as it comes, stored with its invoice, as `complete_unfinished` does. On an
    error, what no worker has begun is dropped (its invoice stays `numbered`, completed by the next run)."""
    try:
        return _complete_each(settings, started.work, started.seals, started.rendering.results())
    finally:
        started.rendering.cancel()


def _unfinished(
    settings: Settings, invoice_ids: Sequence[int] | None, *, with_documents: bool
) -> tuple[list[tuple[int, paperwork.doc.Facture | None]], dict[str, SealKey]]:
    with unit_of_work(settings) as uow:
        query = select(Invoice).where(Invoice.status == InvoiceStatus.NUMBERED)
        if invoice_ids is not None:
            query = query.where(col(Invoice.id).in_(list(invoice_ids)))
        pending = uow.session.exec(query.order_by(col(Invoice.id))).all()
        work: list[tuple[int, paperwork.doc.Facture | None]] = []
        for invoice in pending:
            assert invoice.id is not None
            work.append((invoice.id, invoice_document(uow, invoice) if with_documents else None))
        seals = sealing.seal_keys(settings, {invoice.issuer_code for invoice in pending})
    return work, seals


def _complete_each(
    settings: Settings,
    work: Sequence[tuple[int, paperwork.doc.Facture | None]],
    seals: dict[str, SealKey],
    pdfs: Iterator[bytes] | None,
) -> dict[int, IssuedInvoice]:
    done: dict[int, IssuedInvoice] = {}
    for invoice_id, document in work:
        pdf = next(pdfs) if pdfs is not None else None
        with unit_of_work(settings) as uow:
            invoice = uow.invoices.get(invoice_id, for_update=True)
            key = seals[document.issuer.code] if document is not None else None
            completed = complete_invoice(uow, settings, invoice, pdf, key)
            uow.commit()
            done[invoice_id] = as_issued(invoice, completed)
    return done


def first_invoices(uow: UnitOfWork, settings: Settings, subscription: Subscription, today: date) -> list[IssuedInvoice]:
    """The first invoices, at the quoted prices and quantities, from the go-live date (the subscription's
    start, the last delivery): the syndicat's one-off items and pack in full and its yearly items prorated
    by started month to 31 December, the CDG's support fee likewise (`models.pricing.first_invoice_document`;
    12 months from go-live with the setting `full_first_year`). Billing year = the year of go-live.

    Held, with an operator task, while the buyer's identity lacks what Chorus Pro needs (`models.buyer`):
    nothing is numbered, and `buyers.release_held` issues them once it is complete."""
    convention = uow.conventions.get(subscription.convention_id)
    collectivity = uow.collectivities.get(subscription.collectivity_id)
    quotes = uow.quotes.current(convention.request_id)
    missing = missing_for_invoice(buyers.buyer_of(collectivity, uow.requests.get(convention.request_id)))
    if missing:
        buyers.hold(uow, settings, collectivity, [q.issuer_code for q in quotes], "premières factures", missing)
        return []
    go_live = subscription.started_on
    issued = []
    for quote in quotes:
        assert quote.id is not None
        identity = uow.issuers.get(quote.issuer_code)
        quoted = paperwork.priced_from_stored(quote, uow.quotes.lines(quote.id), paperwork.vat_of(identity))
        draft = InvoiceDraft(
            priced=first_invoice_document(quoted, go_live, full_first_year=settings.full_first_year),
            kind="first",
            year=go_live.year,
            issued_on=max(today, go_live),
            delivery_date=go_live,
        )
        issued.append(issue_invoice(uow, settings, subscription, draft))
    return issued


def invoices_of(session: Session, collectivity_id: int) -> list[Invoice]:
    return list(
        session.exec(
            select(Invoice)
            .where(Invoice.collectivity_id == collectivity_id)
            .order_by(col(Invoice.issued_on), col(Invoice.number))
        ).all()
    )
