"""What the documents print: plain frozen dataclasses, built by the service layer (or `samples.py`).

Priced lines and totals are `models.pricing.PricedDocument` values: the documents print them as they
are and never recompute a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
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


@dataclass(frozen=True)
class Signatory:
    """A person who signs for a party: `Mme Jeanne Martin`, `Maire`."""

    name: str
    capacity: str
    email: str | None = None


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

    @property
    def due_date(self) -> date:
        return self.issue_date + timedelta(days=self.issuer.payment_term_days)

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

    @property
    def due_date(self) -> date:
        return self.issue_date + timedelta(days=self.issuer.payment_term_days)

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
    duration_years: int = 1
    notice_months: int = 3
    payment_term_days: int = 30
    signatures: tuple[Signature, ...] = ()
    documents: tuple[ShownDocument, ...] = ()

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
