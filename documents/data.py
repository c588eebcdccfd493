"""What the documents print: plain frozen dataclasses, built by the service layer (or `samples.py`).

Priced lines and totals are `models.pricing.PricedDocument` values: the documents print them as they
are and never recompute a price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from models.catalog import Grid
from models.eligibility import Population
from models.errors import InvalidInput
from models.pricing import PricedDocument

CENT = Decimal("0.01")

# BT-23, the French billing frame ("cadre de facturation", BR-FR-08): the values the BR-FR-Flux2 schematron
# accepts. The letter says what is sold (B goods, S services, M both), the digit the process: 1 an invoice to
# pay (Chorus Pro's "A1 facture fournisseur"), 2 one already paid (BT-115 must then be 0, BR-FR-CO-09),
# 4 the final invoice after a deposit, 8/9 multi-vendor and bilateral frames with their own line groups.
BILLING_FRAMES = frozenset({
    "B1", "S1", "M1", "B2", "S2", "M2", "S3", "B4", "S4", "M4",
    "S5", "S6", "B7", "S7", "B8", "S8", "M8", "B9", "S9", "M9",
})
# The default for every issuer: what the syndicat and the CDGs invoice are services (mail, backup, licences,
# support) billed before they are paid, deposited by the issuer itself — "S1". An invoice that also delivers
# goods (the NAS) becomes "M1" (see `documents.cii.billing_frame`).
DEFAULT_BILLING_FRAME = "S1"

# The three legal mentions BR-FR-05 requires in the notes (BG-1) of every invoice and credit note. Both
# parties are public bodies: a late payment by a public buyer follows the code de la commande publique
# (moratory interest at the ECB rate + 8 points, a fixed recovery indemnity of 40 €), not the Code de
# commerce (L. 441-10); recovery itself belongs to the issuer's public accountant. Issuer settings, to be
# confirmed by each issuer's accountant, like the VAT regime.
DEFAULT_LATE_PAYMENT_NOTE = (  # PMD
    "Pénalités de retard : intérêts moratoires dus de plein droit au taux de la Banque centrale européenne "
    "majoré de 8 points (articles L. 2192-13 et R. 2192-31 du code de la commande publique)."
)
DEFAULT_RECOVERY_FEE_NOTE = (  # PMT
    "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 € "
    "(articles L. 2192-13 et D. 2192-35 du code de la commande publique)."
)
DEFAULT_DISCOUNT_NOTE = "Pas d'escompte pour paiement anticipé."  # AAB

# Voies et délais de recours against a titre (article L. 1617-5 CGCT, 1° and 2°; its 4° requires the mention):
# the debtor contests the amount before the competent court within two months of receiving the titre; the
# form of an act of recovery before the juge de l'exécution within two months of its notification. A
# public debtor and a claim under an administrative contract: the administrative court, named once — a
# notice that leaves the court ambiguous does not start the delay. Nord and Pas-de-Calais are both in the
# jurisdiction of the tribunal administratif de Lille. An issuer setting (`appeal_notice`).
DEFAULT_APPEAL_NOTICE = (
    "Voies et délais de recours : dans un délai de deux mois suivant la réception du titre exécutoire émis "
    "pour cette somme ou, à défaut, du premier acte procédant de ce titre ou de la notification d'un acte de "
    "poursuite, le débiteur peut en contester le bien-fondé en saisissant directement le tribunal "
    "administratif de Lille, y compris par l'application Télérecours (www.telerecours.fr) ; la régularité "
    "formelle d'un acte de poursuite se conteste devant le juge de l'exécution dans les deux mois suivant sa "
    "notification (article L. 1617-5 du code général des collectivités territoriales). La contestation "
    "suspend la force exécutoire du titre."
)
# What a development document prints where a setting has no value yet (production refuses to start then).
TO_FILL = "à renseigner"
MISSING_TARIFF_DELIBERATION = f"({TO_FILL} : délibération fixant ces tarifs)"

# Items delivered as goods ("livraison de biens"); every other item is a service ("prestation de services").
GOODS_CODES = frozenset({"nas-2-disques"})


def operation_nature(priced: PricedDocument) -> str:
    """The nature of the operations, a mention of every invoice: services, goods (the NAS), or both."""
    goods = {line.code in GOODS_CODES for line in priced.lines}
    if goods == {True}:
        return "Livraison de biens"
    if goods == {True, False}:
        return "Prestations de services et livraison de biens (NAS)"
    return "Prestations de services"


@dataclass(frozen=True)
class Signatory:
    """A person who signs for a party: `Mme Jeanne Martin`, `Maire`."""

    name: str
    capacity: str
    email: str | None = None


def ordonnateur_line(issuer: Issuer) -> str:
    """`Ordonnateur : René Hocq, Président du Centre de gestion.` (name and capacity, L. 1617-5 4° CGCT)."""
    who = issuer.ordonnateur
    if who is None:
        return f"Ordonnateur : ({TO_FILL})."
    return f"Ordonnateur : {who.name}, {who.capacity}." if who.capacity else f"Ordonnateur : {who.name}."


@dataclass(frozen=True)
class ConventionTerms:
    """The clauses of the tripartite convention that are settings (`mairie.settings.ConventionTerms`, on
    the syndicat's identity): duration and capped tacit renewals, notice, reversibility, the GDPR annex."""

    initial_years: int = 1
    renewal_years: int = 1
    max_renewals: int = 3
    notice_months: int = 3
    general_interest_notice_months: int = 3
    data_return_days: int = 30
    breach_notice_hours: int = 48
    hosting_place: str = f"({TO_FILL} : lieu d'hébergement des données)"
    court: str = "tribunal administratif de Lille"
    gdpr_annex_source: str | None = None  # a Jinja/HTML fragment replacing convention/annexe_rgpd.html

    def __post_init__(self) -> None:
        if self.initial_years < 1 or self.renewal_years < 1 or self.max_renewals < 0 or self.notice_months < 1:
            raise InvalidInput("durée, reconductions et préavis de la convention : des nombres positifs")

    @property
    def total_years(self) -> int:
        """The longest the convention can last: the initial period and every tacit renewal."""
        return self.initial_years + self.renewal_years * self.max_renewals


@dataclass(frozen=True)
class Issuer:
    """The legal identity of an issuer (the syndicat or a CDG), printed in the header of its documents."""

    code: str
    name: str
    legal_form: str
    address: str
    postcode: str
    city: str
    siren: str
    siret: str
    email: str
    vat_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    signatory: Signatory | None = None
    payment_term_days: int = 30
    accountant: str = "comptable public assignataire (DGFiP)"
    phone: str | None = None
    website: str | None = None
    logo_svg: str | None = None  # an SVG document; printed in the header when given
    billing_frame: str = DEFAULT_BILLING_FRAME  # BT-23, a setting per issuer (its channel decides the process)
    late_payment_note: str = DEFAULT_LATE_PAYMENT_NOTE  # BT-22 with subject PMD
    recovery_fee_note: str = DEFAULT_RECOVERY_FEE_NOTE  # BT-22 with subject PMT
    discount_note: str = DEFAULT_DISCOUNT_NOTE  # BT-22 with subject AAB
    ordonnateur: Signatory | None = None  # who issues the titres (name and capacity, L. 1617-5 4° CGCT)
    # The deliberation fixing this issuer's prices, per grid version: (effective date of the grid, text).
    tariff_deliberations: tuple[tuple[date, str], ...] = ()
    convention_deliberations: tuple[str, ...] = ()  # what authorises it to conclude the convention
    appeal_notice: str = DEFAULT_APPEAL_NOTICE  # voies et délais de recours
    convention_terms: ConventionTerms = field(default_factory=ConventionTerms)  # read from the syndicat's

    def tariff_deliberation_on(self, day: date) -> str | None:
        """The deliberation that fixes the prices of the grid version in force on a day, if configured."""
        known = [(effective, text) for effective, text in self.tariff_deliberations if effective <= day]
        return max(known)[1] if known else None

    def __post_init__(self) -> None:
        if self.billing_frame not in BILLING_FRAMES:
            raise InvalidInput(
                f"cadre de facturation (BT-23) inconnu : {self.billing_frame!r} ; "
                f"valeurs admises : {', '.join(sorted(BILLING_FRAMES))}"
            )
        for what, text in (("pénalités de retard", self.late_payment_note),
                           ("indemnité de recouvrement", self.recovery_fee_note),
                           ("escompte", self.discount_note)):
            if not text.strip():
                raise InvalidInput(f"la mention « {what} » d'une facture ne peut pas être vide (BR-FR-05)")

    @classmethod
    def from_identity(cls, identity: IdentityLike, **extra: Any) -> Issuer:
        """Build from a `mairie.settings.IssuerIdentity` (or anything with the same fields).

        The French settings (`billing_frame` and the three notes) are taken from the identity when it has
        them, else the defaults above apply; `extra` overrides both.
        """
        signatory = None
        if identity.signatory_name:
            signatory = Signatory(identity.signatory_name, identity.signatory_capacity, identity.signatory_email)
        for name in OPTIONAL_SETTINGS:
            value = getattr(identity, name, None)
            if value is not None:
                extra.setdefault(name, value)
        for name, value in _mentions_of(identity).items():
            extra.setdefault(name, value)
        return cls(
            code=identity.code,
            name=identity.name,
            legal_form=identity.legal_form,
            address=identity.address,
            postcode=identity.postcode,
            city=identity.city,
            siren=identity.siren,
            siret=identity.siret,
            email=identity.email,
            vat_number=identity.vat_number,
            iban=identity.iban,
            bic=identity.bic,
            signatory=signatory,
            payment_term_days=identity.payment_term_days,
            **extra,
        )


# Issuer fields an identity may carry (mairie's settings do not have them yet): read when present.
OPTIONAL_SETTINGS = ("billing_frame", "late_payment_note", "recovery_fee_note", "discount_note")


def _mentions_of(identity: object) -> dict[str, Any]:
    """The public-finance mentions of an identity (ordonnateur, accountant, deliberations, appeal notice,
    convention terms), for the fields it has; blank ones are left to the defaults."""
    found: dict[str, Any] = {}
    name, title = getattr(identity, "ordonnateur_name", ""), getattr(identity, "ordonnateur_title", "")
    if name and name.strip():
        found["ordonnateur"] = Signatory(name.strip(), (title or "").strip())
    accountant = getattr(identity, "accountant_name", "")
    if accountant and accountant.strip():
        found["accountant"] = accountant.strip()
    tariffs: Mapping[Any, str] = getattr(identity, "tariff_deliberations", None) or {}
    found["tariff_deliberations"] = tuple(sorted((_day(key), text) for key, text in tariffs.items() if text.strip()))
    deliberations: Iterable[str] = getattr(identity, "convention_deliberations", None) or ()
    found["convention_deliberations"] = tuple(text for text in deliberations if text.strip())
    appeal = getattr(identity, "appeal_notice", None)
    if appeal and appeal.strip():
        found["appeal_notice"] = appeal.strip()
    terms = getattr(identity, "convention", None)
    if terms is not None:
        found["convention_terms"] = _terms(terms)
    return found


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _terms(terms: object) -> ConventionTerms:
    """`ConventionTerms` from the settings' model (or its dump); the annex template file read once here."""
    values = dict(terms) if isinstance(terms, Mapping) else dict(vars(terms))
    template = values.pop("gdpr_annex_template", None)
    known = {name: values[name] for name in ConventionTerms.__dataclass_fields__ if name in values}
    if template:
        path = Path(template)
        known["gdpr_annex_source"] = _template_text(str(path), path.stat().st_mtime_ns)
    return ConventionTerms(**known)


@lru_cache(maxsize=4)
def _template_text(path: str, mtime_ns: int) -> str:
    """The annex template's text, read once per version of the file (an issuer is built for every document)."""
    return Path(path).read_text(encoding="utf-8")


class IdentityLike(Protocol):
    """The fields of `mairie.settings.IssuerIdentity` that documents read (documents never import mairie)."""

    code: str
    name: str
    legal_form: str
    address: str
    postcode: str
    city: str
    siren: str
    siret: str
    email: str
    vat_number: str | None
    iban: str | None
    bic: str | None
    signatory_name: str
    signatory_capacity: str
    signatory_email: str | None
    payment_term_days: int


@dataclass(frozen=True)
class Collectivity:
    """The buyer: a commune, an EPCI or a public establishment, with its Chorus Pro identifiers."""

    name: str
    kind_label: str  # "commune", "EPCI", "établissement public"…
    address: str
    postcode: str
    city: str
    siren: str
    siret: str
    department: str
    signatory: Signatory
    insee_code: str | None = None
    email: str | None = None
    chorus_service_code: str | None = None  # "code service" of the recipient in Chorus Pro (BT-10)


@dataclass(frozen=True)
class PendingLine:
    """A line that waits for an operator amount ("sur devis"): printed, never totalled."""

    label: str
    reason: str


@dataclass(frozen=True)
class Devis:
    """A quote of one issuer: the syndicat's services quote or the CDG's support quote."""

    number: str
    issue_date: date
    issuer: Issuer
    collectivity: Collectivity
    priced: PricedDocument
    validity_days: int = 90
    subject: str = "Pack Mairie Connectée — convention tripartite"
    population: Population | None = None  # printed on the support quote
    band_label: str | None = None
    grid_title: str | None = None
    pending: tuple[PendingLine, ...] = ()

    @property
    def valid_until(self) -> date:
        return self.issue_date + timedelta(days=self.validity_days)

    @property
    def nature(self) -> str:
        return operation_nature(self.priced)

    @property
    def tariff_deliberation(self) -> str:
        """The issuer's deliberation fixing the prices of the grid in force on the quote's date."""
        return self.issuer.tariff_deliberation_on(self.issue_date) or MISSING_TARIFF_DELIBERATION


@dataclass(frozen=True)
class Facture:
    """An invoice (Factur-X EN 16931). `delivery_date` is BT-72; the due date is issue + payment term."""

    number: str
    issue_date: date
    delivery_date: date
    issuer: Issuer
    collectivity: Collectivity
    priced: PricedDocument
    period_start: date | None = None  # BG-14, the yearly period invoiced
    period_end: date | None = None
    commitment_number: str | None = None  # "numéro d'engagement" (BT-13)
    contract_reference: str | None = None  # the convention number (BT-12)
    subject: str = "Pack Mairie Connectée"
    note: str | None = None
    # The titre de recettes issued for this invoice and its bordereau, once known (the PES channel fills them).
    titre_number: str | None = None
    bordereau_number: str | None = None
    tariff_date: date | None = None  # the day whose grid priced the lines; None: the issue date

    @property
    def due_date(self) -> date:
        """BT-9, the latest due date: the term counts from the invoice's receipt (on Chorus Pro its making
        available), which is the issue date at the earliest."""
        return self.issue_date + timedelta(days=self.issuer.payment_term_days)

    @property
    def nature(self) -> str:
        return operation_nature(self.priced)

    @property
    def tariff_deliberation(self) -> str:
        return self.issuer.tariff_deliberation_on(self.tariff_date or self.issue_date) or MISSING_TARIFF_DELIBERATION

    @property
    def rounding_amount(self) -> Decimal:
        """BT-114: the deliberated TTC total − (HT + VAT), a cent or two (`PricedDocument.rounding_amount`)."""
        return self.priced.rounding_amount

    @property
    def amount_due(self) -> Decimal:
        """BT-115, the amount to pay: the total with VAT (BT-112) plus the rounding amount (BT-114)."""
        return self.priced.amount_due

    def __post_init__(self) -> None:
        _check_positive_totals(self.priced, "facture")
        _check_rounding(self.priced, self.priced.rounding_amount, "facture")
        if (self.period_start is None) != (self.period_end is None):
            raise InvalidInput("la période facturée doit avoir un début et une fin")


@dataclass(frozen=True)
class Avoir:
    """A credit note (type 381) that corrects an issued invoice, named by its number (BT-25) and date."""

    number: str
    issue_date: date
    delivery_date: date
    issuer: Issuer
    collectivity: Collectivity
    priced: PricedDocument  # the amounts credited, positive
    invoice_number: str
    invoice_date: date
    reason: str
    commitment_number: str | None = None
    contract_reference: str | None = None
    subject: str = "Pack Mairie Connectée"
    titre_number: str | None = None  # the titre d'annulation or de réduction and its bordereau, once known
    bordereau_number: str | None = None
    tariff_date: date | None = None  # the day whose grid priced the lines; None: the corrected invoice's date

    @property
    def due_date(self) -> date:
        return self.issue_date + timedelta(days=self.issuer.payment_term_days)

    @property
    def nature(self) -> str:
        return operation_nature(self.priced)

    @property
    def tariff_deliberation(self) -> str:
        day = self.tariff_date or self.invoice_date
        return self.issuer.tariff_deliberation_on(day) or MISSING_TARIFF_DELIBERATION

    @property
    def rounding_amount(self) -> Decimal:
        """BT-114, as on an invoice."""
        return self.priced.rounding_amount

    @property
    def amount_due(self) -> Decimal:
        """BT-115, the amount credited: the total with VAT (BT-112) plus the rounding amount (BT-114)."""
        return self.priced.amount_due

    def __post_init__(self) -> None:
        _check_positive_totals(self.priced, "avoir")
        _check_rounding(self.priced, self.priced.rounding_amount, "avoir")
        if not self.reason.strip():
            raise InvalidInput("un avoir doit dire pourquoi il corrige la facture")


@dataclass(frozen=True)
class QuoteReference:
    """A quote as the convention cites it."""

    number: str
    issue_date: date
    issuer: Issuer
    priced: PricedDocument


Party = Literal["collectivite", "cdg", "syndicat"]


@dataclass(frozen=True)
class Signature:
    """Evidence of one party's signature, as recorded by the approval flow."""

    party: Party
    name: str
    capacity: str
    signed_at: datetime  # aware; printed in Europe/Paris time
    ip_address: str
    user_agent: str | None = None
    operator: str | None = None  # the operator who recorded it on the party's behalf, if any
    # The deliberation or delegation authorising the signatory, as given when signing (`deliberation_ref`).
    authority: str | None = None
    certified: bool = False  # the signatory certified being authorised to sign
    # The documents this party approved (file name and SHA-256, as shown to it when it signed).
    documents: tuple[ShownDocument, ...] = ()

    @property
    def by_operator(self) -> bool:
        """Recorded by an operator for the party, not signed by the party itself on the page."""
        return bool(self.operator and self.operator.strip())

    def __post_init__(self) -> None:
        if self.signed_at.tzinfo is None:
            raise InvalidInput("l'heure d'une signature doit porter son fuseau (UTC de préférence)")


@dataclass(frozen=True)
class ShownDocument:
    """A document shown to the signatories, with its SHA-256."""

    label: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Convention:
    """The tripartite convention: syndicat, CDG of the department, collectivity."""

    number: str
    convention_date: date  # the annex grid is the one in force on this date
    syndicat: Issuer
    cdg: Issuer
    collectivity: Collectivity
    grid: Grid
    services_quote: QuoteReference
    support_quote: QuoteReference
    payment_term_days: int = 30
    signatures: tuple[Signature, ...] = ()
    documents: tuple[ShownDocument, ...] = ()

    @property
    def terms(self) -> ConventionTerms:
        """Duration, renewals, notice, reversibility and GDPR settings: the syndicat's, which drafts it."""
        return self.syndicat.convention_terms

    @property
    def collectivity_authority(self) -> str | None:
        """The collectivity's deliberation or delegation authorising its signatory, once it gave it."""
        signed = self.signature_of("collectivite")
        return signed.authority if signed is not None and signed.authority else None

    @property
    def draft(self) -> bool:
        """A convention is a draft ("PROJET") until the three parties have signed."""
        return {s.party for s in self.signatures} != {"collectivite", "cdg", "syndicat"}

    def __post_init__(self) -> None:
        if self.grid.effective_from > self.convention_date:
            raise InvalidInput(
                f"la grille {self.grid.code} n'est pas encore en vigueur le {self.convention_date:%d/%m/%Y}"
            )
        parties = [s.party for s in self.signatures]
        if len(parties) != len(set(parties)):
            raise InvalidInput("une partie ne signe qu'une fois la convention")

    def signature_of(self, party: Party) -> Signature | None:
        return next((s for s in self.signatures if s.party == party), None)


def _check_positive_totals(priced: PricedDocument, what: str) -> None:
    if not priced.lines:
        raise InvalidInput(f"un(e) {what} doit avoir au moins une ligne")
    if priced.total_ttc < Decimal(0):
        raise InvalidInput(f"le total d'un(e) {what} ne peut pas être négatif ; un avoir corrige une facture")


def _check_rounding(priced: PricedDocument, rounding: Decimal, what: str) -> None:
    if not isinstance(rounding, Decimal) or rounding != rounding.quantize(CENT):
        raise InvalidInput(f"l'arrondi d'un(e) {what} est un montant en euros au centime près : {rounding!r}")
    if priced.total_ttc < Decimal(0):
        raise InvalidInput(f"l'arrondi rendrait négatif le montant à payer d'un(e) {what}")
