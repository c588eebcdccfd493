"""The French CIUS rules (BR-FR-Flux2, what factur-x checks for `check_option="fr-ctc"`) and the CEN
EN 16931 rules on every CII this software makes — samples and the awkward data of real runs (no
postcode, no email, no SIRET, a NAS, a rounding amount) —, and no empty element anywhere."""

import dataclasses
from decimal import Decimal
from types import SimpleNamespace

import pytest
from lxml import etree

from documents import facturx_rules, schematron
from documents.cii import NSMAP, billing_frame, build_cii
from documents.data import (
    DEFAULT_DISCOUNT_NOTE,
    DEFAULT_LATE_PAYMENT_NOTE,
    DEFAULT_RECOVERY_FEE_NOTE,
    Avoir,
    Facture,
    Issuer,
)
from documents.samples import sample_avoir, sample_facture, sample_grid, with_rounding
from mairie.settings import Settings
from models.errors import InvalidInput
from models.pricing import BasketLine, VatRegime, first_year_drafts, price_lines

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG62 = Issuer.from_identity(SETTINGS.cdg62)
CDG59 = Issuer.from_identity(SETTINGS.cdg59)
GRID = sample_grid()
SUMS = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
BUYER = "//ram:BuyerTradeParty"
SELLER = "//ram:SellerTradeParty"


def _xpath(xml: bytes, path: str) -> list[str]:
    return [n if isinstance(n, str) else n.text for n in etree.fromstring(xml).xpath(path, namespaces=NSMAP)]


def _buyer(doc, **changes):
    return dataclasses.replace(doc, collectivity=dataclasses.replace(doc.collectivity, **changes))


def _basket(*lines: BasketLine):
    return price_lines(SYNDICAT.code, VatRegime.standard(), first_year_drafts(GRID, list(lines)))


def _documents() -> list[tuple[str, Facture | Avoir]]:
    """Every kind of document the tests make, including the data a real run gives."""
    facture, support, avoir = (
        sample_facture(SYNDICAT, CDG62), sample_facture(SYNDICAT, CDG62, support=True), sample_avoir(SYNDICAT, CDG62)
    )
    no_family = dataclasses.replace(
        facture.priced, lines=tuple(dataclasses.replace(li, family="", note="  ") for li in facture.priced.lines)
    )
    return [
        ("services", facture),
        ("support-62", support),
        ("support-59", sample_facture(SYNDICAT, CDG59, support=True)),
        ("avoir", avoir),
        ("no-postcode", _buyer(facture, postcode="")),
        ("no-email", _buyer(facture, email=None)),
        ("no-siret", _buyer(facture, siret="")),
        ("no-siret-no-email", _buyer(facture, siret="", email=None, chorus_service_code="")),
        ("blank-address", _buyer(support, address=" ", postcode=" ", city="")),
        ("avoir-no-postcode", _buyer(avoir, postcode="", email=None)),
        ("blank-references", dataclasses.replace(facture, commitment_number=" ", contract_reference="", note="")),
        ("no-period", dataclasses.replace(facture, period_start=None, period_end=None, note="Régularisation.")),
        ("no-family-blank-note", dataclasses.replace(facture, priced=no_family)),
        ("no-iban", dataclasses.replace(facture, issuer=dataclasses.replace(SYNDICAT, iban=None, bic=None))),
        ("with-nas", dataclasses.replace(facture, priced=_basket(BasketLine("nas-2-disques", 1),
                                                                  BasketLine("antivirus", 3)))),
        ("nas-only", dataclasses.replace(facture, priced=_basket(BasketLine("nas-2-disques", 2)))),
        ("rounding-down", with_rounding(facture, Decimal("-0.01"))),
        ("rounding-up", with_rounding(facture, Decimal("0.02"))),
        ("avoir-rounding", with_rounding(avoir, Decimal("0.01"))),
    ]


DOCUMENTS = _documents()
IDS = [name for name, _doc in DOCUMENTS]


@pytest.mark.parametrize("doc", [d for _n, d in DOCUMENTS], ids=IDS)
def test_every_document_passes_the_xsd_our_rules_the_cen_and_the_french_schematrons(doc):
    xml = build_cii(doc)
    assert schematron.errors(xml) == []  # CEN EN 16931
    assert schematron.french_errors(xml) == []  # BR-FR, no fatal assert
    assert schematron.check_all(xml) == []  # and the XSD and the in-process rules


@pytest.mark.parametrize("doc", [d for _n, d in DOCUMENTS], ids=IDS)
def test_no_element_is_empty(doc):
    root = etree.fromstring(build_cii(doc))
    empty = [
        root.getroottree().getpath(node)
        for node in root.iter()
        if isinstance(node.tag, str) and len(node) == 0 and not (node.text or "").strip()
    ]
    assert empty == []


def test_a_blank_postcode_is_left_out_not_written_empty():
    xml = build_cii(_buyer(sample_facture(SYNDICAT, CDG62), postcode=""))
    assert _xpath(xml, f"{BUYER}/ram:PostalTradeAddress/ram:PostcodeCode") == []
    assert _xpath(xml, f"{BUYER}/ram:PostalTradeAddress/ram:CityName") == ["Rebreuve-Ranchicourt"]
    assert _xpath(xml, f"{SELLER}/ram:PostalTradeAddress/ram:PostcodeCode") == ["59555"]


# --- BR-FR-05/06: the PMD, PMT and AAB notes ------------------------------------------------------


@pytest.mark.parametrize("doc", [sample_facture(SYNDICAT, CDG62), sample_avoir(SYNDICAT, CDG62)], ids=["380", "381"])
def test_the_three_legal_notes_are_there_once_each(doc):
    xml = build_cii(doc)
    notes = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IncludedNote"
    assert _xpath(xml, f"{notes}[ram:SubjectCode='PMD']/ram:Content") == [DEFAULT_LATE_PAYMENT_NOTE]
    assert _xpath(xml, f"{notes}[ram:SubjectCode='PMT']/ram:Content") == [DEFAULT_RECOVERY_FEE_NOTE]
    assert _xpath(xml, f"{notes}[ram:SubjectCode='AAB']/ram:Content") == [DEFAULT_DISCOUNT_NOTE]
    assert "40 €" in DEFAULT_RECOVERY_FEE_NOTE and "commande publique" in DEFAULT_RECOVERY_FEE_NOTE
    assert _xpath(xml, f"{notes}[1]/ram:Content") == [doc.subject]  # the free notes stay, without subject


def test_the_notes_are_issuer_settings():
    issuer = dataclasses.replace(SYNDICAT, discount_note="Escompte de 1 % pour paiement sous 8 jours.")
    xml = build_cii(dataclasses.replace(sample_facture(SYNDICAT, CDG62), issuer=issuer))
    assert _xpath(xml, "//ram:IncludedNote[ram:SubjectCode='AAB']/ram:Content") == [issuer.discount_note]
    assert schematron.french_errors(xml) == []
    with pytest.raises(InvalidInput, match="BR-FR-05"):
        dataclasses.replace(SYNDICAT, recovery_fee_note="  ")


# --- BR-FR-08: BT-23 ------------------------------------------------------------------------------


def test_billing_frame_follows_the_nature_of_the_lines():
    facture = sample_facture(SYNDICAT, CDG62)
    assert billing_frame(facture) == "S1"  # services only: mail, backup, licences
    assert billing_frame(sample_facture(SYNDICAT, CDG62, support=True)) == "S1"
    mixed = dataclasses.replace(facture, priced=_basket(BasketLine("nas-2-disques", 1), BasketLine("antivirus", 1)))
    assert billing_frame(mixed) == "M1"
    goods = dataclasses.replace(facture, priced=_basket(BasketLine("nas-2-disques", 1)))
    assert billing_frame(goods) == "B1"
    assert _xpath(build_cii(goods), "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID") == ["B1"]
    subcontractor = dataclasses.replace(mixed, issuer=dataclasses.replace(SYNDICAT, billing_frame="S5"))
    assert billing_frame(subcontractor) == "S5"  # no "M5": the frame is kept as set


def test_an_unknown_billing_frame_is_refused():
    with pytest.raises(InvalidInput, match="BT-23"):
        dataclasses.replace(SYNDICAT, billing_frame="A1")


def test_from_identity_reads_the_french_settings_when_the_identity_has_them():
    identity = SimpleNamespace(**SETTINGS.syndicat.model_dump(), billing_frame="S4", discount_note="Sans escompte.")
    issuer = Issuer.from_identity(identity)
    assert (issuer.billing_frame, issuer.discount_note) == ("S4", "Sans escompte.")
    assert issuer.late_payment_note == DEFAULT_LATE_PAYMENT_NOTE  # not in the identity: the default
    assert Issuer.from_identity(SETTINGS.syndicat).billing_frame == "S1"


# --- SIREN and SIRET of both parties (BR-FR-09, 10, 12, 13, 32) -----------------------------------


def test_identifiers_of_a_buyer_without_siret_or_email():
    facture = sample_facture(SYNDICAT, CDG62)
    no_email = build_cii(_buyer(facture, email=None))
    assert _xpath(no_email, f"{BUYER}/ram:URIUniversalCommunication/ram:URIID[@schemeID='0009']") == [
        facture.collectivity.siret
    ]
    bare = build_cii(_buyer(facture, siret="", email=None))
    assert _xpath(bare, f"{BUYER}/ram:GlobalID") == []  # no SIRET: none written, never a made-up one
    assert _xpath(bare, f"{BUYER}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']") == [
        facture.collectivity.siren
    ]
    assert _xpath(bare, f"{BUYER}/ram:URIUniversalCommunication/ram:URIID[@schemeID='0002']") == [
        facture.collectivity.siren
    ]


def test_a_siren_left_blank_is_read_from_the_siret():
    facture = _buyer(sample_facture(SYNDICAT, CDG62), siren="")
    xml = build_cii(facture)
    assert _xpath(xml, f"{BUYER}/ram:SpecifiedLegalOrganization/ram:ID") == [facture.collectivity.siret[:9]]
    assert schematron.french_errors(xml) == []


# --- BT-114: the rounding amount ------------------------------------------------------------------


def test_rounding_amount_sits_between_the_vat_total_and_the_grand_total():
    facture = with_rounding(sample_facture(SYNDICAT, CDG62), Decimal("-0.01"))
    xml = build_cii(facture)
    sums = etree.fromstring(xml).xpath(SUMS, namespaces=NSMAP)[0]
    names = [etree.QName(child).localname for child in sums]
    assert names.index("TaxTotalAmount") < names.index("RoundingAmount") < names.index("GrandTotalAmount")
    assert _xpath(xml, f"{SUMS}/ram:RoundingAmount") == ["-0.01"]
    grand = Decimal(_xpath(xml, f"{SUMS}/ram:GrandTotalAmount")[0])
    assert grand == facture.priced.grand_total == facture.priced.total_ht + facture.priced.total_vat  # BT-112
    assert _xpath(xml, f"{SUMS}/ram:DuePayableAmount") == [f"{grand - Decimal('0.01'):.2f}"]  # BT-115 = 112 + 114
    assert facture.amount_due == grand - Decimal("0.01")


def test_no_rounding_element_when_the_amount_is_zero():
    xml = build_cii(sample_facture(SYNDICAT, CDG62))
    assert _xpath(xml, f"{SUMS}/ram:RoundingAmount") == []
    assert _xpath(xml, f"{SUMS}/ram:DuePayableAmount") == _xpath(xml, f"{SUMS}/ram:GrandTotalAmount")


def test_a_rounding_amount_is_in_cents():
    facture = sample_facture(SYNDICAT, CDG62)
    with pytest.raises(InvalidInput, match="centime"):
        with_rounding(facture, Decimal("0.005"))
    with pytest.raises(InvalidInput, match="négatif"):
        with_rounding(facture, -facture.priced.total_ttc - Decimal("0.01"))


# --- tampering: each French rule is seen broken by our checker and by the official schematron ------

SERVICES_XML = build_cii(sample_facture(SYNDICAT, CDG62))


def _edit(xml: bytes, path: str, value: str | None) -> bytes:
    root = etree.fromstring(xml)
    node = root.xpath(path, namespaces=NSMAP)[0]
    if value is None:
        node.getparent().remove(node)
    else:
        node.text = value
    return etree.tostring(root)


def _duplicate(xml: bytes, path: str) -> bytes:
    root = etree.fromstring(xml)
    node = root.xpath(path, namespaces=NSMAP)[0]
    node.addnext(etree.fromstring(etree.tostring(node)))
    return etree.tostring(root)


FRENCH_TAMPERINGS = [
    ("BR-FR-05", _edit(SERVICES_XML, "//ram:IncludedNote[ram:SubjectCode='PMT']", None)),
    ("BR-FR-05", _edit(SERVICES_XML, "//ram:IncludedNote[ram:SubjectCode='AAB']", None)),
    ("BR-FR-06", _duplicate(SERVICES_XML, "//ram:IncludedNote[ram:SubjectCode='PMD']")),
    ("BR-FR-08", _edit(SERVICES_XML, "//ram:BusinessProcessSpecifiedDocumentContextParameter", None)),
    ("BR-FR-08", _edit(SERVICES_XML, "//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", "A1")),
    ("BR-FR-10", _edit(SERVICES_XML, f"{SELLER}/ram:SpecifiedLegalOrganization", None)),
]


TAMPERING_IDS = [f"{rule}-{index}" for index, (rule, _bad) in enumerate(FRENCH_TAMPERINGS)]


@pytest.mark.parametrize(("rule", "bad"), FRENCH_TAMPERINGS, ids=TAMPERING_IDS)
def test_tampered_xml_breaks_the_french_rule(rule, bad):
    assert rule in {v.rule for v in facturx_rules.check(bad)}
    assert any(f.rule.startswith(rule) for f in schematron.french_errors(bad))
    with pytest.raises(facturx_rules.RuleViolation, match=rule):
        facturx_rules.ensure_valid(bad)


def test_a_siret_that_does_not_start_with_the_siren_breaks_br_fr_09():
    bad = _edit(SERVICES_XML, f"{BUYER}/ram:GlobalID", "21620700100019")
    assert any(f.rule.startswith("BR-FR-09") for f in schematron.french_errors(bad))


def test_an_empty_element_is_caught_by_our_rules():
    bad = _edit(SERVICES_XML, f"{BUYER}/ram:PostalTradeAddress/ram:PostcodeCode", "")
    assert "MC-03" in {v.rule for v in facturx_rules.check(bad)}
