"""The CII XML of invoices and credit notes: XSD, the EN 16931 rules (own checker and the official
schematron), the French CIUS rules (BR-FR schematron), and tampered XML caught by both."""

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from facturx import xml_check_xsd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from documents import facturx_rules, schematron
from documents.cii import NSMAP, build_cii
from documents.data import Facture, Issuer
from documents.facturx_pdf import check_xsd
from documents.samples import sample_avoir, sample_collectivity, sample_facture, sample_grid
from mairie.settings import Settings
from models.pricing import BasketLine, VatRegime, first_year_drafts, price_lines, renewal_drafts, support_draft

SETTINGS = Settings()
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG = Issuer.from_identity(SETTINGS.cdg62)
GRID = sample_grid()


def _xpath(xml: bytes, path: str) -> list[str]:
    return [n if isinstance(n, str) else n.text for n in etree.fromstring(xml).xpath(path, namespaces=NSMAP)]


def _all_samples():
    return [sample_facture(SYNDICAT, CDG), sample_facture(SYNDICAT, CDG, support=True), sample_avoir(SYNDICAT, CDG)]


@pytest.mark.parametrize("doc", _all_samples(), ids=lambda d: d.number)
def test_samples_pass_xsd_rules_and_schematron(doc):
    xml = build_cii(doc)
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert facturx_rules.check(xml) == []
    assert schematron.errors(xml) == []
    assert schematron.french_errors(xml) == []
    assert schematron.check_all(xml) == []


def test_the_pdf_step_checks_each_xml_against_the_libraries_xsd_and_refuses_in_french():
    xml = build_cii(sample_facture(SYNDICAT, CDG))
    check_xsd(xml)  # the schema compiled once, then reused: the same verdict as the library's own check
    check_xsd(xml)
    # an element the XSD does not know, well formed: the library refuses it, and so does the PDF step
    unknown = xml.replace(b"<ram:TypeCode>380</ram:TypeCode>", b"<ram:TypeKode>380</ram:TypeKode>", 1)
    assert unknown != xml
    with pytest.raises(Exception, match="not valid against the official"):
        xml_check_xsd(unknown, flavor="factur-x", level="en16931")
    with pytest.raises(ValueError, match="ne respecte pas le schéma XSD EN 16931"):
        check_xsd(unknown)
    with pytest.raises(ValueError, match="pas un XML bien formé"):
        check_xsd(xml[:-40])


def test_invoice_header_fields():
    facture = sample_facture(SYNDICAT, CDG)
    xml = build_cii(facture)
    assert _xpath(xml, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == ["urn:cen.eu:en16931:2017"]
    assert _xpath(xml, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert _xpath(xml, "//ram:ActualDeliverySupplyChainEvent//udt:DateTimeString") == ["20261204"]  # BT-72
    assert _xpath(xml, "//ram:BuyerReference") == ["FACTURES"]  # BT-10, Chorus Pro service code
    assert _xpath(xml, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == ["EJ-2026-000318"]
    # Both parties: SIRET as global identifier (0009, BT-29/46), SIREN as legal registration (0002, BT-30/47).
    buyer, seller = "//ram:BuyerTradeParty", "//ram:SellerTradeParty"
    assert _xpath(xml, f"{buyer}/ram:GlobalID[@schemeID='0009']") == [facture.collectivity.siret]
    assert _xpath(xml, f"{buyer}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']") == [
        facture.collectivity.siren
    ]
    assert _xpath(xml, f"{seller}/ram:GlobalID[@schemeID='0009']") == [facture.issuer.siret]
    assert _xpath(xml, f"{seller}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']") == [facture.issuer.siren]
    assert _xpath(xml, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID") == ["S1"]  # BT-23
    assert _xpath(xml, "//ram:DueDateDateTime/udt:DateTimeString") == ["20270106"]  # issue + 30 days
    assert _xpath(xml, "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount") == [
        f"{facture.priced.total_ttc:.2f}"
    ]


def test_cdg_invoice_is_outside_scope_with_vatex():
    xml = build_cii(sample_facture(SYNDICAT, CDG, support=True))
    settlement = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert _xpath(xml, f"{settlement}/ram:CategoryCode") == ["O"]
    assert _xpath(xml, f"{settlement}/ram:ExemptionReasonCode") == ["VATEX-EU-O"]
    assert _xpath(xml, f"{settlement}/ram:ExemptionReason") == ["TVA non applicable — article 256 B du CGI"]
    assert _xpath(xml, f"{settlement}/ram:RateApplicablePercent") == []
    assert _xpath(xml, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration") == []  # BR-O-02


def test_credit_note_references_the_invoice():
    avoir = sample_avoir(SYNDICAT, CDG)
    xml = build_cii(avoir)
    assert _xpath(xml, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert _xpath(xml, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [avoir.invoice_number]
    assert _xpath(xml, "//ram:InvoiceReferencedDocument//qdt:DateTimeString") == ["20261207"]


# --- tampering: each rule is seen broken by our checker and by the official schematron ----------


def _tamper(xml: bytes, path: str, value: str | None) -> bytes:
    root = etree.fromstring(xml)
    node = root.xpath(path, namespaces=NSMAP)[0]
    if value is None:
        node.getparent().remove(node)
    else:
        node.text = value
    return etree.tostring(root)


SERVICES_XML = build_cii(sample_facture(SYNDICAT, CDG))
SUPPORT_XML = build_cii(sample_facture(SYNDICAT, CDG, support=True))
SUMS = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
BREAKDOWN = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
FIRST_LINE_NET = "(//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount)[1]"

TAMPERINGS = [
    ("BR-CO-10", SERVICES_XML, FIRST_LINE_NET, "84.01"),
    ("BR-CO-13", SERVICES_XML, f"{SUMS}/ram:TaxBasisTotalAmount", "698.00"),
    ("BR-CO-14", SERVICES_XML, f"{SUMS}/ram:TaxTotalAmount", "139.00"),
    ("BR-CO-15", SERVICES_XML, f"{SUMS}/ram:GrandTotalAmount", "838.41"),
    ("BR-CO-16", SERVICES_XML, f"{SUMS}/ram:DuePayableAmount", "1000.00"),
    ("BR-S-08", SERVICES_XML, f"{BREAKDOWN}/ram:BasisAmount", "700.00"),
    ("BR-S-09", SERVICES_XML, f"{BREAKDOWN}/ram:CalculatedAmount", "150.00"),
    ("BR-S-02", SERVICES_XML, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration", None),
    ("BR-O-09", SUPPORT_XML, f"{BREAKDOWN}/ram:CalculatedAmount", "30.00"),
    ("BR-O-08", SUPPORT_XML, f"{BREAKDOWN}/ram:BasisAmount", "100.00"),
    ("BR-02", SERVICES_XML, "//rsm:ExchangedDocument/ram:ID", None),
    ("BR-07", SERVICES_XML, "//ram:BuyerTradeParty/ram:Name", None),
    ("BR-DEC-23", SERVICES_XML, FIRST_LINE_NET, "84.001"),
]


@pytest.mark.parametrize(("rule", "xml", "path", "value"), TAMPERINGS, ids=[t[0] for t in TAMPERINGS])
def test_tampered_xml_breaks_the_rule(rule, xml, path, value):
    bad = _tamper(xml, path, value)
    assert rule in {v.rule for v in facturx_rules.check(bad)}
    assert rule in {f.rule for f in schematron.run(bad)}
    with pytest.raises(facturx_rules.RuleViolation, match=rule):
        facturx_rules.ensure_valid(bad)


def test_outside_scope_without_exemption_reason_breaks_br_o_10():
    bad = _tamper(
        _tamper(SUPPORT_XML, f"{BREAKDOWN}/ram:ExemptionReasonCode", None), f"{BREAKDOWN}/ram:ExemptionReason", None
    )
    assert "BR-O-10" in {v.rule for v in facturx_rules.check(bad)}
    assert "BR-O-10" in {f.rule for f in schematron.run(bad)}


def test_outside_scope_line_with_a_rate_breaks_br_o_05():
    root = etree.fromstring(SUPPORT_XML)
    tax = root.xpath("//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax", namespaces=NSMAP)[0]
    etree.SubElement(tax, f"{{{NSMAP['ram']}}}RateApplicablePercent").text = "0"
    bad = etree.tostring(root)
    assert "BR-O-05" in {v.rule for v in facturx_rules.check(bad)}
    assert "BR-O-05" in {f.rule for f in schematron.run(bad)}


def test_credit_note_without_invoice_reference_is_refused_by_our_rules():
    bad = _tamper(build_cii(sample_avoir(SYNDICAT, CDG)), "//ram:InvoiceReferencedDocument", None)
    assert "MC-02" in {v.rule for v in facturx_rules.check(bad)}


# --- property: any basket gives an invoice whose totals satisfy the rules ------------------------

ITEM_CODES = [item.code for item in GRID.items]
baskets = st.dictionaries(
    st.sampled_from(ITEM_CODES), st.integers(min_value=1, max_value=100), min_size=1, max_size=len(ITEM_CODES)
)


def _invoice(priced) -> Facture:
    collectivity, _population = sample_collectivity()
    issuer = SYNDICAT if priced.vat.category == "S" else CDG
    return Facture(
        number="LFN-FAC-2026-00001",
        issue_date=date(2026, 1, 15),
        delivery_date=date(2026, 1, 15),
        issuer=issuer,
        collectivity=collectivity,
        priced=priced,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(basket=baskets, renewal=st.booleans())
def test_random_baskets_satisfy_the_en16931_totals(basket, renewal):
    lines = [BasketLine(code, quantity) for code, quantity in basket.items()]
    drafts = renewal_drafts(GRID, lines) if renewal else first_year_drafts(GRID, lines)
    if not drafts:
        return  # a renewal of one-off items only has nothing to invoice
    priced = price_lines("LFN", VatRegime.standard(), drafts)
    xml = build_cii(_invoice(priced))
    assert facturx_rules.check(xml) == []
    assert schematron.errors(xml) == []
    assert schematron.french_errors(xml) == []
    expected_ttc = sum((d.total_ttc for d in drafts), Decimal("0"))
    # the amount due is the deliberated TTC, to the cent; BT-112 is nets + VAT, BT-114 the gap between them
    assert _xpath(xml, f"{SUMS}/ram:DuePayableAmount") == [f"{expected_ttc:.2f}"]
    line_nets = _xpath(xml, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount")
    nets = sum(Decimal(v) for v in line_nets)
    assert _xpath(xml, f"{BREAKDOWN}/ram:BasisAmount") == [f"{nets:.2f}"]
    vat = Decimal(_xpath(xml, f"{BREAKDOWN}/ram:CalculatedAmount")[0])
    assert _xpath(xml, f"{SUMS}/ram:GrandTotalAmount") == [f"{nets + vat:.2f}"]
    rounding = _xpath(xml, f"{SUMS}/ram:RoundingAmount")
    assert Decimal(rounding[0] if rounding else "0") == expected_ttc - (nets + vat)


@settings(max_examples=25, deadline=None)
@given(fee=st.decimals(min_value=Decimal("1"), max_value=Decimal("5000"), places=2))
def test_any_support_fee_gives_a_valid_outside_scope_invoice(fee):
    priced = price_lines("CDG62", VatRegime.outside_scope(), [support_draft(GRID, fee)])
    xml = build_cii(_invoice(priced))
    assert facturx_rules.check(xml) == []
    assert schematron.errors(xml) == []
    assert schematron.french_errors(xml) == []


def test_negative_total_is_refused():
    priced = price_lines("LFN", VatRegime.standard(), first_year_drafts(GRID, [BasketLine("antivirus", 1)]))
    negative = dataclasses.replace(priced, total_ttc=Decimal("-1.00"))
    with pytest.raises(Exception, match="négatif"):
        _invoice(negative)
