"""The EN 16931 CII XML (UN/CEFACT CrossIndustryInvoice D16B, Factur-X profile EN 16931) of an invoice
or a credit note, built with lxml from the same values the PDF prints.

Element order follows the Factur-X XSD; business terms are named in comments (`BT-…`) so that a reader
can map every element to the standard. Amounts come from `PricedDocument` as they are: the line nets
already add up to the VAT basis, BT-112 is nets + VAT, and the amount due (BT-115) is the deliberated
total, the rounding amount (BT-114) closing the gap.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from documents.data import Avoir, Collectivity, Facture, Issuer
from models.pricing import PricedDocument, PricedLine

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
TYPE_INVOICE = "380"
TYPE_CREDIT_NOTE = "381"
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET (Chorus Pro identifies parties by SIRET)
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the SIREN, when the buyer has not given its SIRET
VATEX_OUTSIDE_SCOPE = "VATEX-EU-O"
UNIT_CODES = {"stockage-go": "E34"}  # UN/ECE Rec 20: gigabyte; everything else is counted in units
DEFAULT_UNIT = "C62"


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, _, name = tag.partition(":")
    node = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _price(value: Decimal) -> str:
    # A unit net price may carry 4 decimals (14,00 € TTC → 11,6667 € HT); BT-146 allows it.
    return format(value.normalize(), "f") if value != value.to_integral() else f"{value:.2f}"


def _rate(value: Decimal) -> str:
    return format((value * 100).normalize(), "f")


def _date(parent: etree._Element, tag: str, value: date, qualified: bool = False) -> None:
    holder = _el(parent, tag)
    _el(holder, "qdt:DateTimeString" if qualified else "udt:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _party(parent: etree._Element, tag: str, name: str, siret: str, address: str, postcode: str, city: str,
           email: str | None, vat_number: str | None, siren: str | None = None) -> None:
    party = _el(parent, tag)
    _el(party, "ram:Name", name)  # BT-27 / BT-44
    legal = _el(party, "ram:SpecifiedLegalOrganization")
    if siret or not siren:
        _el(legal, "ram:ID", siret, schemeID=SIRET_SCHEME)  # BT-30 / BT-47
    else:
        _el(legal, "ram:ID", siren, schemeID=SIREN_SCHEME)  # no SIRET given: the SIREN, never a made-up SIRET
    postal = _el(party, "ram:PostalTradeAddress")  # BG-5 / BG-8
    _el(postal, "ram:PostcodeCode", postcode)
    _el(postal, "ram:LineOne", address)
    _el(postal, "ram:CityName", city)
    _el(postal, "ram:CountryID", "FR")
    if email:
        uri = _el(party, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", email, schemeID="EM")  # BT-34 / BT-49
    if vat_number:
        reg = _el(party, "ram:SpecifiedTaxRegistration")
        _el(reg, "ram:ID", vat_number, schemeID="VA")  # BT-31


def _seller(parent: etree._Element, issuer: Issuer, priced: PricedDocument) -> None:
    # BR-O-02: no seller VAT identifier on an invoice outside the scope of VAT.
    vat_number = issuer.vat_number if priced.vat.category == "S" else None
    _party(parent, "ram:SellerTradeParty", issuer.name, issuer.siret, issuer.address, issuer.postcode,
           issuer.city, issuer.email, vat_number)


def _buyer(parent: etree._Element, buyer: Collectivity) -> None:
    _party(parent, "ram:BuyerTradeParty", buyer.name, buyer.siret, buyer.address, buyer.postcode, buyer.city,
           buyer.email, None, siren=buyer.siren)


def _line_tax(parent: etree._Element, priced: PricedDocument) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", priced.vat.category)  # BT-151
    if priced.vat.category == "S":
        _el(tax, "ram:RateApplicablePercent", _rate(priced.vat.rate))  # BT-152 (BR-O-05: none for O)


def _line(parent: etree._Element, line: PricedLine, priced: PricedDocument) -> None:
    item = _el(parent, "ram:IncludedSupplyChainTradeLineItem")  # BG-25
    doc = _el(item, "ram:AssociatedDocumentLineDocument")
    _el(doc, "ram:LineID", str(line.position))  # BT-126
    if line.note:
        note = _el(doc, "ram:IncludedNote")
        _el(note, "ram:Content", line.note)  # BT-127
    product = _el(item, "ram:SpecifiedTradeProduct")
    _el(product, "ram:SellerAssignedID", line.code)  # BT-155
    _el(product, "ram:Name", line.label)  # BT-153
    _el(product, "ram:Description", f"{line.family} — {line.unit} ({line.kind_label})")  # BT-154
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    net = _el(agreement, "ram:NetPriceProductTradePrice")
    _el(net, "ram:ChargeAmount", _price(line.unit_price_ht))  # BT-146
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", str(line.quantity), unitCode=UNIT_CODES.get(line.code, DEFAULT_UNIT))
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _line_tax(settlement, priced)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.total_ht))  # BT-131


def _vat_breakdown(parent: etree._Element, priced: PricedDocument) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")  # BG-23
    _el(tax, "ram:CalculatedAmount", _amount(priced.total_vat))  # BT-117
    _el(tax, "ram:TypeCode", "VAT")
    if priced.vat.category == "O":
        _el(tax, "ram:ExemptionReason", priced.vat.exemption_reason or "Non soumis à la TVA")  # BT-120
    _el(tax, "ram:BasisAmount", _amount(priced.total_ht))  # BT-116
    _el(tax, "ram:CategoryCode", priced.vat.category)  # BT-118
    if priced.vat.category == "O":
        _el(tax, "ram:ExemptionReasonCode", VATEX_OUTSIDE_SCOPE)  # BT-121
    else:
        _el(tax, "ram:RateApplicablePercent", _rate(priced.vat.rate))  # BT-119


def _payment_means(parent: etree._Element, issuer: Issuer) -> None:
    if not issuer.iban:
        return
    means = _el(parent, "ram:SpecifiedTradeSettlementPaymentMeans")  # BG-16
    _el(means, "ram:TypeCode", "30")  # BT-81: credit transfer
    _el(means, "ram:Information", "Virement au comptable public")  # BT-82
    account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
    _el(account, "ram:IBANID", issuer.iban.replace(" ", ""))  # BT-84
    if issuer.bic:
        bank = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
        _el(bank, "ram:BICID", issuer.bic)  # BT-86


def _totals(parent: etree._Element, priced: PricedDocument) -> None:
    sums = _el(parent, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")  # BG-22
    _el(sums, "ram:LineTotalAmount", _amount(sum((li.total_ht for li in priced.lines), Decimal("0.00"))))
    _el(sums, "ram:ChargeTotalAmount", "0.00")  # BT-108
    _el(sums, "ram:AllowanceTotalAmount", "0.00")  # BT-107
    _el(sums, "ram:TaxBasisTotalAmount", _amount(priced.total_ht))  # BT-109
    _el(sums, "ram:TaxTotalAmount", _amount(priced.total_vat), currencyID="EUR")  # BT-110
    if priced.rounding_amount:
        _el(sums, "ram:RoundingAmount", _amount(priced.rounding_amount))  # BT-114: to the deliberated total
    _el(sums, "ram:GrandTotalAmount", _amount(priced.grand_total))  # BT-112
    _el(sums, "ram:TotalPrepaidAmount", "0.00")  # BT-113
    _el(sums, "ram:DuePayableAmount", _amount(priced.total_ttc))  # BT-115


def build_cii(doc: Facture | Avoir) -> bytes:
    """The CII XML (UTF-8 bytes) of an invoice (type 380) or a credit note (type 381)."""
    is_credit = isinstance(doc, Avoir)
    priced = doc.priced
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    guideline = _el(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _el(guideline, "ram:ID", GUIDELINE_EN16931)  # BT-24

    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)  # BT-1
    _el(header, "ram:TypeCode", TYPE_CREDIT_NOTE if is_credit else TYPE_INVOICE)  # BT-3
    _date(header, "ram:IssueDateTime", doc.issue_date)  # BT-2
    for text in _notes(doc):
        note = _el(header, "ram:IncludedNote")
        _el(note, "ram:Content", text)  # BT-22

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in priced.lines:
        _line(transaction, line, priced)

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if doc.collectivity.chorus_service_code:
        _el(agreement, "ram:BuyerReference", doc.collectivity.chorus_service_code)  # BT-10
    _seller(agreement, doc.issuer, priced)
    _buyer(agreement, doc.collectivity)
    if doc.commitment_number:
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", doc.commitment_number)  # BT-13
    if doc.contract_reference:
        contract = _el(agreement, "ram:ContractReferencedDocument")
        _el(contract, "ram:IssuerAssignedID", doc.contract_reference)  # BT-12

    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
    _date(event, "ram:OccurrenceDateTime", doc.delivery_date)  # BT-72

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", doc.number)  # BT-83
    _el(settlement, "ram:InvoiceCurrencyCode", "EUR")  # BT-5
    _payment_means(settlement, doc.issuer)
    _vat_breakdown(settlement, priced)
    if isinstance(doc, Facture) and doc.period_start and doc.period_end:
        period = _el(settlement, "ram:BillingSpecifiedPeriod")  # BG-14
        _date(period, "ram:StartDateTime", doc.period_start)
        _date(period, "ram:EndDateTime", doc.period_end)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    _el(terms, "ram:Description", _payment_terms(doc))  # BT-20
    _date(terms, "ram:DueDateDateTime", doc.due_date)  # BT-9
    _totals(settlement, priced)
    if isinstance(doc, Avoir):
        ref = _el(settlement, "ram:InvoiceReferencedDocument")  # BG-3
        _el(ref, "ram:IssuerAssignedID", doc.invoice_number)  # BT-25
        _date(ref, "ram:FormattedIssueDateTime", doc.invoice_date, qualified=True)  # BT-26
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _notes(doc: Facture | Avoir) -> list[str]:
    notes = [doc.subject]
    if isinstance(doc, Avoir):
        notes.append(f"Avoir sur la facture {doc.invoice_number} : {doc.reason}")
    elif doc.note:
        notes.append(doc.note)
    if doc.priced.vat.category == "O" and doc.priced.vat.exemption_reason:
        notes.append(doc.priced.vat.exemption_reason)
    return notes


def _payment_terms(doc: Facture | Avoir) -> str:
    days = doc.issuer.payment_term_days
    if isinstance(doc, Avoir):
        return f"Avoir imputable sur les sommes dues ou remboursé par le comptable public sous {days} jours."
    return f"Délai global de paiement de {days} jours ; virement au comptable public."
