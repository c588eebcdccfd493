"""Every printed line is arithmetically true, and the amount due is the deliberated total (DOMAIN.md,
"VAT and rounding"), on random baskets of the real 10 July 2025 grid, any VAT regime, any period."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.catalog import GRIDS_DIR, load_grid_file
from models.eligibility import CollectivityProfile, Population, assess
from models.money import CENT, to_money
from models.periods import BilledPeriod
from models.pricing import (
    BasketLine,
    PricedDocument,
    VatRegime,
    first_invoice_document,
    first_year_drafts,
    price_lines,
    quote_preview,
    renewal_drafts,
    support_draft,
)

GRID = load_grid_file(GRIDS_DIR / "2025-07-10.json")
ZERO = Decimal("0.00")

regimes = st.sampled_from(
    [
        VatRegime.standard(),
        VatRegime.standard(Decimal("0.10")),
        VatRegime.standard(Decimal("0.055")),
        VatRegime.standard(Decimal("0.021")),
        VatRegime.outside_scope(),
    ]
)


@st.composite
def basket_lines(draw: st.DrawFn, max_quantity: int = 500) -> list[BasketLine]:
    """Distinct codes of the grid with quantities; above an item's limit, an operator's amount."""
    size = draw(st.integers(min_value=1, max_value=8))
    codes = draw(st.permutations([i.code for i in GRID.items]))[:size]
    lines = []
    for code in codes:
        quantity = draw(st.integers(min_value=1, max_value=max_quantity))
        limit = GRID.item(code).max_quantity
        amount = None
        if limit is not None and quantity > limit:
            amount = Decimal(draw(st.integers(min_value=0, max_value=10_000_000))) / 100
        lines.append(BasketLine(code, quantity, amount))
    return lines


go_lives = st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31))


def deliberated_full(line: BasketLine) -> Decimal:
    """The deliberated TTC of a basket line for a whole year: price × quantity, or the operator's amount."""
    if line.amount_ttc is not None:
        return to_money(line.amount_ttc)
    return GRID.item(line.code).price_ttc * line.quantity


def rounding_bound(doc: PricedDocument) -> Decimal:
    """The most the rounding amount can be, line by line: the unit price's fifth decimal times the
    quantity, the net's and the deliberated amount's rounding to the cent, plus the VAT's rounding."""
    bound = Decimal("0.005")
    for line in doc.lines:
        bound += (1 + line.vat_rate) * (line.quantity * Decimal("0.00005") + Decimal("0.005")) + Decimal("0.005")
    return bound


def assert_true_document(doc: PricedDocument) -> None:
    """The arithmetic of DOMAIN.md, checked from the printed values alone."""
    for line in doc.lines:
        # the unit net price carries four decimals at most; the net is quantity × unit price, to the cent
        assert line.unit_price_ht == line.unit_price_ht.quantize(Decimal("0.0001"))
        assert line.total_ht == to_money(line.quantity * line.unit_price_ht)
        assert line.total_ht + line.total_vat == line.total_ttc
        assert line.total_ttc == line.total_ttc.quantize(CENT)
    nets = sum((line.total_ht for line in doc.lines), ZERO)
    assert doc.total_ht == nets
    by_rate: dict[Decimal, Decimal] = {}
    for line in doc.lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, ZERO) + line.total_ht
    assert [(b.rate, b.basis, b.vat) for b in doc.vat_breakdown] == [
        (rate, basis, to_money(basis * rate)) for rate, basis in by_rate.items()
    ]
    assert doc.total_vat == sum((to_money(b * r) for r, b in by_rate.items()), ZERO)
    # BT-112 = nets + VAT; BT-115 = BT-112 + BT-114 = the deliberated total, to the cent
    assert doc.grand_total == doc.total_ht + doc.total_vat
    assert doc.amount_due == doc.total_ttc == doc.grand_total + doc.rounding_amount
    assert doc.amount_due == doc.deliberated_total
    assert abs(doc.rounding_amount) <= rounding_bound(doc)


@settings(max_examples=300)
@given(basket=basket_lines(), vat=regimes)
def test_a_full_year_basket_is_true_line_by_line(basket, vat):
    doc = price_lines("LFN", vat, first_year_drafts(GRID, basket))
    assert_true_document(doc)
    assert doc.amount_due == sum((deliberated_full(line) for line in basket), ZERO)
    for priced, asked in zip(doc.lines, basket, strict=True):
        assert priced.months is None and priced.period_start is None  # a quote prices a full year
        if asked.amount_ttc is None:
            assert priced.unit_price_ttc == GRID.item(asked.code).price_ttc
            assert priced.total_ttc == GRID.item(asked.code).price_ttc * asked.quantity


@settings(max_examples=300)
@given(basket=basket_lines(), vat=regimes, go_live=go_lives, full_first_year=st.booleans())
def test_a_prorated_first_invoice_is_true_line_by_line(basket, vat, go_live, full_first_year):
    doc = price_lines("LFN", vat, first_year_drafts(GRID, basket, go_live=go_live, full_first_year=full_first_year))
    assert_true_document(doc)
    months = 12 if full_first_year else 13 - go_live.month
    expected = ZERO
    for priced, asked in zip(doc.lines, basket, strict=True):
        kind = GRID.item(asked.code).kind
        share = 12 if kind in ("one_off", "first_year") else months
        assert priced.months == (None if kind in ("one_off", "first_year") else months)
        # each prorated line is the deliberated price × quantity × months / 12, rounded half-up on its own
        assert priced.total_ttc == to_money(deliberated_full(asked) * share / 12)
        expected += to_money(deliberated_full(asked) * share / 12)
    assert doc.amount_due == expected


@settings(max_examples=200)
@given(basket=basket_lines(), vat=regimes, start_month=st.integers(1, 12), end_month=st.integers(1, 12))
def test_a_prorated_renewal_is_true_line_by_line(basket, vat, start_month, end_month):
    start_month, end_month = min(start_month, end_month), max(start_month, end_month)
    period = BilledPeriod.between(date(2027, start_month, 1), date(2027, end_month, 28))
    drafts = renewal_drafts(GRID, basket, period=period)
    if not drafts:
        return  # one-off items only: nothing renews
    doc = price_lines("LFN", vat, drafts)
    assert_true_document(doc)
    for line in doc.lines:
        assert line.months == end_month - start_month + 1
        assert (line.period_start, line.period_end) == (period.start, period.end)


@settings(max_examples=100)
@given(fee=st.integers(min_value=0, max_value=500_000).map(lambda c: Decimal(c) / 100), go_live=go_lives)
def test_the_support_fee_is_prorated_like_a_yearly_item(fee, go_live):
    period = BilledPeriod.between(go_live, date(go_live.year, 12, 31))
    for vat in (VatRegime.outside_scope(), VatRegime.standard()):
        doc = price_lines("CDG62", vat, [support_draft(GRID, fee, period=period)])
        assert_true_document(doc)
        assert doc.amount_due == to_money(fee * (13 - go_live.month) / 12)


def profile(population: int) -> CollectivityProfile:
    return CollectivityProfile(
        kind="commune", name="Test", department="62", population=Population(population, "total", 2023, "INSEE")
    )


@settings(max_examples=100)
@given(
    basket=basket_lines(max_quantity=100),
    population=st.integers(0, 3499),
    go_live=go_lives,
    full_first_year=st.booleans(),
)
def test_the_first_invoice_from_the_quote_equals_the_first_year_drafts(basket, population, go_live, full_first_year):
    # the services build the first invoice from the stored quote: same lines as pricing the basket directly
    basket = [b for b in basket if b.amount_ttc is None]
    if not basket:
        return
    verdict = assess(profile(population), GRID, basket=[(b.code, b.quantity) for b in basket])
    preview = quote_preview(
        GRID, basket, verdict, syndicat="LFN", syndicat_vat=VatRegime.standard(), cdg_vat=VatRegime.outside_scope()
    )
    services, support = preview.quotes
    invoice = first_invoice_document(services, go_live, full_first_year=full_first_year)
    direct = price_lines(
        "LFN",
        VatRegime.standard(),
        first_year_drafts(GRID, basket, go_live=go_live, full_first_year=full_first_year),
        services.notes,
    )
    assert invoice == direct
    assert_true_document(invoice)
    support_invoice = first_invoice_document(support, go_live, full_first_year=full_first_year)
    assert_true_document(support_invoice)
    months = 12 if full_first_year else 13 - go_live.month
    assert verdict.support_fee is not None
    assert support_invoice.amount_due == to_money(verdict.support_fee * months / 12)
    # the preview at go-live prices both documents as the first invoices will
    at_go_live = quote_preview(
        GRID,
        basket,
        verdict,
        syndicat="LFN",
        syndicat_vat=VatRegime.standard(),
        cdg_vat=VatRegime.outside_scope(),
        go_live=go_live,
        full_first_year=full_first_year,
    )
    assert at_go_live.quotes == (invoice, support_invoice)


def test_a_renewal_line_prints_its_own_price():
    # the bug of issue 15: "368,00 € × 1 → 367,99 €", a rounding cent moved onto a line
    basket = [BasketLine("sauvegarde-abo-n1", 1), BasketLine("page-internet", 1), BasketLine("gestionnaire-mdp", 3)]
    doc = price_lines("LFN", VatRegime.standard(), renewal_drafts(GRID, basket))
    backup = doc.lines[0]
    assert (backup.unit_price_ht, backup.quantity, backup.total_ht) == (Decimal("368.00"), 1, Decimal("368.00"))
    assert [line.total_ht for line in doc.lines] == [Decimal("368.00"), Decimal("11.67"), Decimal("105.13")]
    assert doc.total_ht == Decimal("484.80") and doc.total_vat == Decimal("96.96")
    assert doc.grand_total == Decimal("581.76")
    assert doc.rounding_amount == Decimal("-0.01")
    assert doc.amount_due == Decimal("441.60") + Decimal("14.00") + 3 * Decimal("42.05") == Decimal("581.75")


@pytest.mark.parametrize(
    ("go_live", "months", "net", "due"),
    [
        (date(2026, 12, 1), 1, Decimal("1.17"), Decimal("1.40")),  # DOMAIN.md: 16,80 € → 1,40 €
        (date(2026, 12, 31), 1, Decimal("1.17"), Decimal("1.40")),
        (date(2026, 7, 14), 6, Decimal("7.00"), Decimal("8.40")),
        (date(2026, 1, 1), 12, Decimal("14.00"), Decimal("16.80")),  # January: the whole price
        (date(2026, 1, 31), 12, Decimal("14.00"), Decimal("16.80")),
    ],
)
def test_the_domain_example_of_an_account(go_live, months, net, due):
    doc = price_lines(
        "LFN", VatRegime.standard(), first_year_drafts(GRID, [BasketLine("messagerie-5go", 1)], go_live=go_live)
    )
    [line] = doc.lines
    assert (line.months, line.period_start, line.period_end) == (months, go_live, date(go_live.year, 12, 31))
    assert (line.total_ht, line.total_ttc, doc.amount_due, doc.rounding_amount) == (net, due, due, ZERO)
    assert doc.billing_period == (go_live, date(go_live.year, 12, 31))


def test_one_offs_and_the_pack_are_billed_in_full_whatever_the_month():
    basket = [BasketLine("nas-2-disques", 1), BasketLine("pack-antivirus-mdp", 2), BasketLine("antivirus", 1)]
    doc = price_lines("LFN", VatRegime.standard(), first_year_drafts(GRID, basket, go_live=date(2026, 12, 1)))
    nas, pack, antivirus = doc.lines
    assert (nas.total_ttc, nas.months, nas.period_start, nas.period_end) == (
        Decimal("759.00"),
        None,
        date(2026, 12, 1),
        date(2026, 12, 1),
    )
    assert (pack.total_ttc, pack.months, pack.period_end) == (Decimal("62.40"), None, date(2026, 12, 31))
    assert pack.in_full and nas.in_full and not antivirus.in_full
    assert (antivirus.total_ttc, antivirus.months) == (Decimal("1.40"), 1)
    assert doc.amount_due == Decimal("759.00") + Decimal("62.40") + Decimal("1.40")
