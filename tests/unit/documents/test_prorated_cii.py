"""Prorated first invoices and renewals, with their rounding amount (BT-114), pass the CEN EN 16931 rules
(our checker and the official schematron), and the XML carries the amounts `models.pricing` computed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from documents import facturx_rules, schematron
from documents.cii import NSMAP, build_cii
from documents.data import Facture, Issuer
from documents.samples import sample_collectivity, sample_grid
from mairie.settings import Settings
from models.periods import BilledPeriod, first_invoice_period
from models.pricing import BasketLine, VatRegime, first_year_drafts, price_lines, renewal_drafts, support_draft

SETTINGS = Settings()
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG = Issuer.from_identity(SETTINGS.cdg62)
GRID = sample_grid()
SUMS = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"


def _xpath(xml: bytes, path: str) -> list[str]:
    return [n.text for n in etree.fromstring(xml).xpath(path, namespaces=NSMAP)]


def _invoice(priced) -> Facture:
    collectivity, _population = sample_collectivity()
    return Facture(
        number="LFN-FAC-2026-00001",
        issue_date=date(2026, 12, 1),
        delivery_date=date(2026, 12, 1),
        issuer=SYNDICAT if priced.vat.category == "S" else CDG,
        collectivity=collectivity,
        priced=priced,
    )


def _check(priced) -> bytes:
    xml = build_cii(_invoice(priced))
    assert facturx_rules.check(xml) == []
    assert schematron.errors(xml) == []
    assert _xpath(xml, f"{SUMS}/ram:GrandTotalAmount") == [f"{priced.grand_total:.2f}"]
    assert _xpath(xml, f"{SUMS}/ram:DuePayableAmount") == [f"{priced.amount_due:.2f}"]
    expected_rounding = [f"{priced.rounding_amount:.2f}"] if priced.rounding_amount else []
    assert _xpath(xml, f"{SUMS}/ram:RoundingAmount") == expected_rounding
    return xml


codes = st.sampled_from([i.code for i in GRID.items])
baskets = st.dictionaries(codes, st.integers(min_value=1, max_value=100), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    basket=baskets,
    go_live=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
    full_first_year=st.booleans(),
    renewal_months=st.integers(min_value=1, max_value=12),
)
def test_prorated_invoices_pass_the_en16931_rules(basket, go_live, full_first_year, renewal_months):
    lines = [BasketLine(code, quantity) for code, quantity in basket.items()]
    first = price_lines(
        "LFN",
        VatRegime.standard(),
        first_year_drafts(GRID, lines, go_live=go_live, full_first_year=full_first_year),
    )
    _check(first)
    period = BilledPeriod.between(date(2027, 13 - renewal_months, 1), date(2027, 12, 31))
    drafts = renewal_drafts(GRID, lines, period=period)
    if drafts:
        _check(price_lines("LFN", VatRegime.standard(), drafts))
    support = price_lines(
        "CDG62",
        VatRegime.outside_scope(),
        [support_draft(GRID, Decimal("50"), period=first_invoice_period(go_live, full_first_year=full_first_year))],
    )
    _check(support)


def test_a_rounding_amount_is_carried_as_bt_114():
    # 14,00 € × 104: nets 1 213,34 (11,6667 × 104), VAT 242,67, BT-112 1 456,01, deliberated 1 456,00
    priced = price_lines("LFN", VatRegime.standard(), first_year_drafts(GRID, [BasketLine("page-internet", 104)]))
    assert priced.rounding_amount == Decimal("-0.01")
    xml = _check(priced)
    assert _xpath(xml, f"{SUMS}/ram:RoundingAmount") == ["-0.01"]
    assert _xpath(xml, f"{SUMS}/ram:DuePayableAmount") == ["1456.00"]
