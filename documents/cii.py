"""The EN 16931 CII XML (UN/CEFACT CrossIndustryInvoice D16B, Factur-X profile EN 16931) of an invoice
or a credit note, built with lxml from the same values the PDF prints.

Element order follows the Factur-X XSD; business terms are named in comments (`BT-…`) so that a reader
can map every element to the standard. Amounts come from `PricedDocument` as they are: the line nets
already add up to the VAT basis, BT-112 is nets + VAT, and the amount due (BT-115) is the deliberated
total, the rounding amount (BT-114) closing the gap.

The XML also passes the French CIUS rules (BR-FR, the BR-FR-Flux2 schematron shipped with factur-x for
`check_option="fr-ctc"`); each rule met is named where it is met. No element is ever written empty: an
optional value that is blank is left out (`_opt`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from documents.data import BILLING_FRAMES, GOODS_CODES, Avoir, Collectivity, Facture, Issuer, ordonnateur_line
from documents.formatting import in_sentence
from models.pricing import PricedDocument, PricedLine

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
TYPE_INVOICE = "380"
TYPE_CREDIT_NOTE = "381"
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET: the party's global identifier (BT-29 / BT-46)
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the SIREN: the party's legal registration (BT-30 / BT-47)
EMAIL_SCHEME = "EM"  # EAS code of an electronic address that is an email (BT-34 / BT-49)
VATEX_OUTSIDE_SCOPE = "VATEX-EU-O"
UNIT_CODES = {"stockage-go": "E34"}  # UN/ECE Rec 20: gigabyte; everything else is counted in units
DEFAULT_UNIT = "C62"
__all__ = ["GOODS_CODES", "billing_frame", "build_cii"]  # GOODS_CODES: the items delivered as goods (the NAS)
# BR-FR-05: the notes of every invoice and credit note carry these three subjects (UNTDID 4451), once each
# (BR-FR-06).
NOTE_LATE_PAYMENT = "PMD"  # pénalités de retard
NOTE_RECOVERY_FEE = "PMT"  # indemnité forfaitaire pour frais de recouvrement
NOTE_DISCOUNT = "AAB"  # escompte (or its absence)


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, _, name = tag.partition(":")
    node = etree.SubElement(parent, f"{{{NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        node.text = text
    return node


def _opt(parent: etree._Element, tag: str, text: str | None, **attrs: str) -> None:
    """An optional element, written only when its value is not blank: never an empty element."""
    if text is not None and text.strip():
        _el(parent, tag, text.strip(), **attrs)


def _siren(siren: str | None, siret: str | None) -> str:
    """The SIREN of a party: the one given, else the first nine digits of its SIRET."""
    siren, siret = (siren or "").strip(), (siret or "").strip()
    return siren or siret[:9]


def billing_frame(doc: Facture | Avoir) -> str:
    """BT-23 (BR-FR-08): the issuer's billing frame, its letter following what the lines sell.

    The setting says the process (the digit: 1 an invoice to pay, …); the letter is S for services, B for
    goods, M for both — the NAS is goods, every other item a service. A frame that has no variant for the
    nature found (e.g. S5) is kept as set.
    """
    frame = doc.issuer.billing_frame
    goods = {line.code in GOODS_CODES for line in doc.priced.lines}
    letter = "M" if len(goods) == 2 else ("B" if goods == {True} else "S")
    candidate = letter + frame[1:]
    return candidate if candidate in BILLING_FRAMES else frame


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


def _party(parent: etree._Element, tag: str, party: Issuer | Collectivity, vat_number: str | None) -> None:
    node = _el(parent, tag)
    siret, siren = party.siret.strip(), _siren(party.siren, party.siret)
    # BT-29 / BT-46: the SIRET as the party's global identifier in scheme 0009, where BR-FR-09 reads it
    # (14 digits starting with the SIREN); no SIRET given, none written — never a made-up one.
    _opt(node, "ram:GlobalID", siret, schemeID=SIRET_SCHEME)
    _el(node, "ram:Name", party.name)  # BT-27 / BT-44
    if siren:
        # BT-30 / BT-47: the SIREN as legal registration in scheme 0002 (BR-FR-10 for the seller, BR-FR-32).
        legal = _el(node, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", siren, schemeID=SIREN_SCHEME)
    postal = _el(node, "ram:PostalTradeAddress")  # BG-5 / BG-8; a blank postcode is left out, not written empty
    _opt(postal, "ram:PostcodeCode", party.postcode)
    _opt(postal, "ram:LineOne", party.address)
    _opt(postal, "ram:CityName", party.city)
    _el(postal, "ram:CountryID", "FR")
    endpoint = _endpoint(party.email, siret, siren)
    if endpoint is not None:
        uri = _el(node, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", endpoint[0], schemeID=endpoint[1])  # BT-34 / BT-49
    if vat_number and vat_number.strip():
        reg = _el(node, "ram:SpecifiedTaxRegistration")
        _el(reg, "ram:ID", vat_number.strip(), schemeID="VA")  # BT-31


def _endpoint(email: str | None, siret: str, siren: str) -> tuple[str, str] | None:
    """The electronic address BR-FR-12 (buyer) and BR-FR-13 (seller) require, with its EAS scheme: the
    email, else the SIRET, else the SIREN. BR-FR-21/22 ask for scheme 0225 only for B2B, which these are not."""
    for value, scheme in ((email, EMAIL_SCHEME), (siret, SIRET_SCHEME), (siren, SIREN_SCHEME)):
        if value and value.strip():
            return value.strip(), scheme
    return None


def _seller(parent: etree._Element, issuer: Issuer, priced: PricedDocument) -> None:
    # BR-O-02: no seller VAT identifier on an invoice outside the scope of VAT.
    vat_number = issuer.vat_number if priced.vat.category == "S" else None
    _party(parent, "ram:SellerTradeParty", issuer, vat_number)


def _buyer(parent: etree._Element, buyer: Collectivity) -> None:
    _party(parent, "ram:BuyerTradeParty", buyer, None)


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
    if line.note and line.note.strip():
        note = _el(doc, "ram:IncludedNote")
        _el(note, "ram:Content", line.note.strip())  # BT-127
    product = _el(item, "ram:SpecifiedTradeProduct")
    _opt(product, "ram:SellerAssignedID", line.code)  # BT-155
    _el(product, "ram:Name", line.label)  # BT-153
    _opt(product, "ram:Description", _line_description(line))  # BT-154
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    net = _el(agreement, "ram:NetPriceProductTradePrice")
    _el(net, "ram:ChargeAmount", _price(line.unit_price_ht))  # BT-146
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", str(line.quantity), unitCode=UNIT_CODES.get(line.code, DEFAULT_UNIT))
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _line_tax(settlement, priced)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.total_ht))  # BT-131


def _line_description(line: PricedLine) -> str:
    """`family — unit (kind)`, leaving out the parts that are blank."""
    what = " — ".join(part.strip() for part in (line.family, line.unit) if part and part.strip())
    kind = line.kind_label.strip()
    return f"{what} ({kind})" if what and kind else what or kind


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
    iban = "".join(issuer.iban.split())
    if not iban:
        return
    means = _el(parent, "ram:SpecifiedTradeSettlementPaymentMeans")  # BG-16
    _el(means, "ram:TypeCode", "30")  # BT-81: credit transfer
    _el(means, "ram:Information", "Virement au comptable public")  # BT-82
    account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
    _el(account, "ram:IBANID", iban)  # BT-84
    if issuer.bic and issuer.bic.strip():
        bank = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
        _el(bank, "ram:BICID", issuer.bic.strip())  # BT-86


def _totals(parent: etree._Element, doc: Facture | Avoir) -> None:
    priced = doc.priced
    sums = _el(parent, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")  # BG-22
    _el(sums, "ram:LineTotalAmount", _amount(sum((li.total_ht for li in priced.lines), Decimal("0.00"))))
    _el(sums, "ram:ChargeTotalAmount", "0.00")  # BT-108
    _el(sums, "ram:AllowanceTotalAmount", "0.00")  # BT-107
    _el(sums, "ram:TaxBasisTotalAmount", _amount(priced.total_ht))  # BT-109
    _el(sums, "ram:TaxTotalAmount", _amount(priced.total_vat), currencyID="EUR")  # BT-110
    if priced.rounding_amount:
        _el(sums, "ram:RoundingAmount", _amount(priced.rounding_amount))  # BT-114, between BT-110 and BT-112
    _el(sums, "ram:GrandTotalAmount", _amount(priced.grand_total))  # BT-112
    _el(sums, "ram:TotalPrepaidAmount", "0.00")  # BT-113
    _el(sums, "ram:DuePayableAmount", _amount(doc.amount_due))  # BT-115 = BT-112 − BT-113 + BT-114 (BR-CO-16)


def build_cii(doc: Facture | Avoir) -> bytes:
    """The CII XML (UTF-8 bytes) of an invoice (type 380) or a credit note (type 381)."""
    is_credit = isinstance(doc, Avoir)
    priced = doc.priced
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    process = _el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter")
    _el(process, "ram:ID", billing_frame(doc))  # BT-23, the billing frame (BR-FR-08)
    guideline = _el(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _el(guideline, "ram:ID", GUIDELINE_EN16931)  # BT-24

    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", doc.number)  # BT-1 (BR-FR-01/02: at most 35 characters, letters, digits, + - _ /)
    _el(header, "ram:TypeCode", TYPE_CREDIT_NOTE if is_credit else TYPE_INVOICE)  # BT-3 (BR-FR-04)
    _date(header, "ram:IssueDateTime", doc.issue_date)  # BT-2
    for text, subject in _notes(doc):
        note = _el(header, "ram:IncludedNote")
        _el(note, "ram:Content", text)  # BT-22
        _opt(note, "ram:SubjectCode", subject)  # BT-21

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in priced.lines:
        _line(transaction, line, priced)

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _opt(agreement, "ram:BuyerReference", doc.collectivity.chorus_service_code)  # BT-10
    _seller(agreement, doc.issuer, priced)
    _buyer(agreement, doc.collectivity)
    if doc.commitment_number and doc.commitment_number.strip():
        order = _el(agreement, "ram:BuyerOrderReferencedDocument")
        _el(order, "ram:IssuerAssignedID", doc.commitment_number.strip())  # BT-13
    if doc.contract_reference and doc.contract_reference.strip():
        contract = _el(agreement, "ram:ContractReferencedDocument")
        _el(contract, "ram:IssuerAssignedID", doc.contract_reference.strip())  # BT-12

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
    if isinstance(doc, Facture):  # a credit note asks for no payment: no due date (BT-20 meets BR-CO-25)
        _date(terms, "ram:DueDateDateTime", doc.due_date)  # BT-9
    _totals(settlement, doc)
    if isinstance(doc, Avoir):
        ref = _el(settlement, "ram:InvoiceReferencedDocument")  # BG-3
        _el(ref, "ram:IssuerAssignedID", doc.invoice_number)  # BT-25
        _date(ref, "ram:FormattedIssueDateTime", doc.invoice_date, qualified=True)  # BT-26
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


def _notes(doc: Facture | Avoir) -> list[tuple[str, str | None]]:
    """The header notes (BT-22) with their subject code (BT-21): free notes first, then the three legal
    mentions of BR-FR-05, each once (BR-FR-06). Blank notes are left out."""
    free: list[str | None] = [doc.subject]
    if isinstance(doc, Avoir):
        free.append(f"Avoir sur la facture {doc.invoice_number} : {doc.reason}")
    else:
        free.append(doc.note)
    if doc.priced.vat.category == "O":
        free.append(doc.priced.vat.exemption_reason)
    # The public-finance mentions the PDF prints, so that the XML that "fait foi" carries them too.
    free += [
        f"Nature des opérations : {doc.nature}.",
        f"Tarifs fixés par {in_sentence(doc.tariff_deliberation)}.",
        ordonnateur_line(doc.issuer),
        _titre_line(doc),
        f"Comptable public assignataire : {doc.issuer.accountant}.",
        doc.issuer.appeal_notice,
    ]
    notes: list[tuple[str, str | None]] = [(text.strip(), None) for text in free if text and text.strip()]
    notes += [
        (doc.issuer.late_payment_note.strip(), NOTE_LATE_PAYMENT),
        (doc.issuer.recovery_fee_note.strip(), NOTE_RECOVERY_FEE),
        (doc.issuer.discount_note.strip(), NOTE_DISCOUNT),
    ]
    return notes


def _titre_line(doc: Facture | Avoir) -> str | None:
    """`Titre de recettes n° …, bordereau n° …` once the titre is known (None before: the note is left out)."""
    parts = []
    if doc.titre_number and doc.titre_number.strip():
        parts.append(f"titre n° {doc.titre_number.strip()}")
    if doc.bordereau_number and doc.bordereau_number.strip():
        parts.append(f"bordereau n° {doc.bordereau_number.strip()}")
    return ("Titre de recettes : " + ", ".join(parts) + ".") if parts else None


def _payment_terms(doc: Facture | Avoir) -> str:
    if isinstance(doc, Avoir):
        return (
            "Montant déduit des sommes dues au titre de la facture corrigée ; remboursé par le comptable public "
            "de l'émetteur si celle-ci a déjà été payée."
        )
    return f"{payment_term_text(doc.issuer.payment_term_days)} ; virement au comptable public."


def payment_term_text(days: int) -> str:
    """The payment term as public buyers count it: from the invoice's receipt, not from its date."""
    return (
        f"Délai global de paiement de {days} jours à compter de la réception de la facture "
        "(sur Chorus Pro : de sa mise à disposition)"
    )
