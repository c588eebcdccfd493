"""Every month of service is billed once (DOMAIN.md "Billing periods"), on the stored invoice lines: live on
1 December 2026, the first invoices bill December (1/12 of the yearly items and of the support fee, the
one-off and the pack in full), the 2027 campaign bills 2027 — or, with `full_first_year`, the first
invoices bill 12 months and the campaign only December 2027."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, paperwork, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.catalog import load_grid_file
from models.periods import miscounted, overlaps, spans_of
from models.reference_data import DATA_DIR
from tests.conftest import mairie_siret, make_settings

GO_LIVE = date(2026, 12, 1)
GRID = load_grid_file(DATA_DIR / "grids" / "2025-07-10.json")
RENEWS_AS = {i.code: i.renews_as for i in GRID.items if i.renews_as}


def _live(settings):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[
            {"code": "messagerie-5go", "quantity": 2},
            {"code": "nom-de-domaine", "quantity": 1},
            {"code": "pack-antivirus-mdp", "quantity": 1},
            {"code": "sauvegarde-mes-n1", "quantity": 1},
        ],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=date(2026, 11, 20))
    quotes = quoting.issue_quotes(settings, outcome.request_id, date(2026, 11, 20))
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Alice Opératrice", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    return provisioning.deliver(settings, order.number, "Technicien", GO_LIVE, today=GO_LIVE)


def _lines(settings):
    """Every stored invoice line, as priced lines, with the invoice it belongs to."""
    with unit_of_work(settings) as uow:
        from sqlmodel import select

        from models.entities import Invoice

        invoices = uow.session.exec(select(Invoice).order_by(Invoice.id)).all()
        return {
            invoice.number: paperwork.priced_lines(uow.invoices.lines(invoice.id))  # type: ignore[arg-type]
            for invoice in invoices
        }


@pytest.mark.parametrize("full_first_year", [False, True])
def test_first_invoices_then_the_campaign_bill_every_month_once(tmp_path, db_url, full_first_year):
    from mairie.services.setup import initialise

    settings = make_settings(tmp_path, db_url, full_first_year=full_first_year)
    initialise(settings)
    delivered = _live(settings)
    first = {i.issuer: i for i in delivered.invoices}
    campaign = renewal.issue(settings, 2027, today=date(2027, 1, 15))
    renewed = {i.issuer: i for i in campaign.issued}

    m = 12 if full_first_year else 1  # months of the first invoice
    cent = Decimal("0.01")
    yearly_first = (Decimal("16.80") * 2 * m / 12).quantize(cent) + (Decimal("15.60") * m / 12).quantize(cent)
    assert first["LFN"].total_ttc == yearly_first + Decimal("31.20") + Decimal("110.40")
    assert first["CDG62"].total_ttc == (Decimal("50.00") * m / 12).quantize(cent)
    left = 12 - (m - 1)  # months of 2027 not billed by the first invoice
    pack = Decimal("16.80") + Decimal("42.05")  # from the second year, each licence at its own price
    yearly_2027 = sum(
        ((price * left / 12).quantize(cent) for price in (Decimal("16.80") * 2, Decimal("15.60"))), Decimal(0)
    )
    # the pack's first-year price covers the first invoice's period; its licences renew for the months left
    pack_2027 = sum(((p * left / 12).quantize(cent) for p in (Decimal("16.80"), Decimal("42.05"))), Decimal(0))
    assert renewed["CDG62"].total_ttc == (Decimal("50.00") * left / 12).quantize(cent)
    assert renewed["LFN"].total_ttc == yearly_2027 + pack_2027
    if not full_first_year:
        assert pack_2027 == pack  # the first invoice covered December only: a full year of licences

    lines = _lines(settings)
    spans = [s for number, priced in lines.items() for s in spans_of(priced, where=number, renews_as=RENEWS_AS)]
    assert overlaps(spans) == []
    assert miscounted(spans) == []
    december = next(li for li in lines[first["LFN"].number] if li.code == "messagerie-5go")
    assert (december.period_start, december.months) == (GO_LIVE, m)


def test_each_invoice_cites_the_deliberation_that_fixed_its_prices(tmp_path, db_url):
    """Quoted on 20 November 2026 at the grid of 10 July 2025; a new deliberation takes effect on 25 November,
    before the go-live: the first invoice (and its credit note) is at the quoted prices and cites the
    deliberation of the quote's grid; the 2027 campaign, at the grid in force then, cites the new one."""
    from sqlmodel import select

    from mairie.services import credit_notes, invoicing
    from mairie.services.setup import initialise
    from models.entities import CreditNote, Invoice

    quoted, later = "Délibération n° 2025-31 du 26 juin 2025", "Délibération n° 2026-40 du 20 novembre 2026"
    base = make_settings(tmp_path, db_url)
    deliberations = {date(2025, 7, 10): quoted, date(2026, 11, 25): later}
    settings = base.model_copy(
        update={"syndicat": base.syndicat.model_copy(update={"tariff_deliberations": deliberations})}
    )
    initialise(settings)
    first = next(i for i in _live(settings).invoices if i.issuer == "LFN")
    renewed = next(i for i in renewal.issue(settings, 2027, today=date(2027, 1, 15)).issued if i.issuer == "LFN")
    credit_notes.credit_invoice(settings, first.number, "Facture émise en double", date(2027, 2, 1), actor="Alice")

    with unit_of_work(settings) as uow:
        invoices = {i.number: i for i in uow.session.exec(select(Invoice))}
        cited = {
            n: invoicing.invoice_document(uow, invoices[n]).tariff_deliberation for n in (first.number, renewed.number)
        }
        note = uow.session.exec(select(CreditNote.document_sha256)).one()
        assert invoicing.tariff_date(uow, invoices[first.number]) == date(2025, 7, 10)
        assert invoicing.tariff_date(uow, invoices[renewed.number]) is None  # the issue date's grid
    assert cited == {first.number: quoted, renewed.number: later}
    text = _pdf_text(settings, note)  # « Tarifs fixés par délibération n° 2025-31 … »
    assert "délibération n° 2025-31 du 26 juin 2025" in text and "2026-40" not in text


def _pdf_text(settings, sha256):
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(paperwork.load(settings, sha256)))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
