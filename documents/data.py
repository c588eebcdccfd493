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

    @classmethod
    def from_identity(cls, identity: IdentityLike, **extra: Any) -> Issuer:
        """Build from a `mairie.settings.IssuerIdentity` (or anything with the same fields)."""
        signatory = None
        if identity.signatory_name:
            signatory = Signatory(identity.signatory_name, identity.signatory_capacity, identity.signatory_email)
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

    def __post_init__(self) -> None:
        _check_positive_totals(self.priced, "facture")
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

    def __post_init__(self) -> None:
        _check_positive_totals(self.priced, "avoir")
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
