"""The tables of the whole lifecycle (SQLModel).

request → eligibility → two quotes → convention and approvals → provisioning order → subscription →
invoices, payments, reminders, credit notes; plus the reference data (issuers, communes, price grids,
support-fee bands), the outbox of emails, the audit trail and the number sequences.

Conventions: ids are integers; amounts use the `Money` type (exact, two decimals); timestamps are UTC
(`UTCDateTime`); statuses are `StrEnum`s stored as strings, whose moves live in `models.lifecycle`;
free-form snapshots (eligibility verdict, document hashes, order payload) are JSON.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.lifecycle import (
    ApprovalStatus,
    ConventionStatus,
    CreditNoteStatus,
    InvoiceStatus,
    OrderStatus,
    OutboxStatus,
    PesBordereauStatus,
    PesPieceStatus,
    QuoteStatus,
    RequestStatus,
    SubscriptionStatus,
)
from models.parties import Party
from models.types import EnumString, Money, UTCDateTime, utcnow


def _money(**kw: Any) -> Any:
    return Field(sa_type=Money, **kw)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


def _enum(enum: type[StrEnum], length: int) -> EnumString:
    return EnumString(enum, length)


def _status(enum: type[StrEnum], default: StrEnum, length: int, index: bool = False) -> Any:
    """A status column: the entity's `StrEnum` (moves in `models.lifecycle`), stored as a string."""
    return Field(default=default, sa_type=_enum(enum, length), index=index)


def _json(default: Any = None) -> Any:
    if default is None:
        return Field(default=None, sa_column=Column(JSON, nullable=True))
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


# --------------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------------


class Issuer(SQLModel, table=True):
    """A body that issues quotes and invoices: the syndicat (LFN) or a CDG (CDG62, CDG59).

    Rows are written from the settings by `mairie init`: the legal identity is configuration.
    """

    code: str = Field(primary_key=True, max_length=16)
    kind: str = Field(max_length=16)  # syndicat | cdg
    department: str | None = Field(default=None, max_length=3)  # for a CDG: the department it serves
    name: str = Field(max_length=200)
    legal_form: str = Field(default="", max_length=200)
    address: str = Field(default="", max_length=300)
    postcode: str = Field(default="", max_length=10)
    city: str = Field(default="", max_length=100)
    siren: str = Field(max_length=9)
    siret: str = Field(max_length=14)
    vat_number: str | None = Field(default=None, max_length=20)
    vat_regime: str = Field(default="standard", max_length=20)  # standard | outside_scope
    vat_rate: Decimal = Field(default=Decimal("0.20"), max_digits=5, decimal_places=4)
    vat_exemption_reason: str | None = Field(default=None, max_length=200)
    iban: str | None = Field(default=None, max_length=34)
    bic: str | None = Field(default=None, max_length=11)
    email: str = Field(max_length=254)
    provisioning_email: str | None = Field(default=None, max_length=254)
    signatory_name: str = Field(default="", max_length=200)
    signatory_capacity: str = Field(default="", max_length=200)
    signatory_email: str | None = Field(default=None, max_length=254)
    billing_channel: str = Field(default="facturx_chorus", max_length=20)  # facturx_chorus | pes_asap | email_pdf
    payment_term_days: int = Field(default=30)
    updated_at: datetime = _ts(default_factory=utcnow)


class Epci(SQLModel, table=True):
    """An EPCI with its own taxation (CA, CC, CU, métropole), from Etalab's découpage administratif."""

    siren: str = Field(primary_key=True, max_length=9)
    name: str = Field(max_length=200)
    nature: str = Field(default="", max_length=10)
    population_municipale: int
    population_totale: int
    vintage: int
    member_count: int = 0


class Commune(SQLModel, table=True):
    """An official commune (INSEE code) of the departments served, with its SIREN and EPCI."""

    insee_code: str = Field(primary_key=True, max_length=5)
    name: str = Field(max_length=200)
    department: str = Field(max_length=3, index=True)
    siren: str = Field(max_length=9, unique=True)
    epci_siren: str | None = Field(default=None, max_length=9, index=True)
    postcodes: str = Field(default="", max_length=100)  # La Poste postcodes, space-separated, sorted


class CommunePopulation(SQLModel, table=True):
    """A legal population of one commune for one INSEE vintage (millésime).

    A vintage comes into force on 1 January of its third year (2023 → 1 January 2026); several vintages
    can be stored, and the one in force on a date is used.
    """

    __table_args__ = (UniqueConstraint("insee_code", "vintage"),)

    id: int | None = Field(default=None, primary_key=True)
    insee_code: str = Field(foreign_key="commune.insee_code", max_length=5, index=True)
    vintage: int
    in_force_from: date
    municipal: int
    total: int
    source: str = Field(default="INSEE, populations légales", max_length=200)


class PriceGrid(SQLModel, table=True):
    """A version of the price grid, in force from `effective_from` (a deliberation's date)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)  # e.g. "2025-07-10"
    effective_from: date = Field(index=True)
    title: str = Field(max_length=300)
    source: str = Field(default="", max_length=500)
    support_label: str = Field(default="Accompagnement et mise en service", max_length=200)
    support_unit: str = Field(default="par collectivité et par an", max_length=200)
    loaded_at: datetime = _ts(default_factory=utcnow)


class PriceGridItem(SQLModel, table=True):
    """One priced service of a grid version. `code` is the stable identifier across versions."""

    __table_args__ = (UniqueConstraint("grid_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="pricegrid.id", index=True)
    code: str = Field(max_length=40)
    position: int = 0
    family: str = Field(max_length=200)
    label: str = Field(max_length=200)
    unit: str = Field(max_length=200)
    kind: str = Field(max_length=12)  # yearly | one_off | first_year
    price_ttc: Decimal = _money()
    vat_rate: Decimal = Field(default=Decimal("0.20"), max_digits=5, decimal_places=4)
    max_quantity: int | None = None  # above it: quote on request (feasibility)
    renews_as: list[str] = _json(list)  # first-year items: the codes billed from the second year


class SupportBand(SQLModel, table=True):
    """A support-fee band of a CDG: fee for a population in [min_population, max_population)."""

    id: int | None = Field(default=None, primary_key=True)
    grid_id: int = Field(foreign_key="pricegrid.id", index=True)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    min_population: int
    max_population: int  # exclusive
    fee: Decimal = _money()
    label: str = Field(max_length=100)


# --------------------------------------------------------------------------------------------------
# Parties
# --------------------------------------------------------------------------------------------------


class Collectivity(SQLModel, table=True):
    """A requesting body: a commune, an EPCI, a public establishment (CCAS, syndicat…) or other."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)  # commune | epci | public_establishment | other
    name: str = Field(max_length=200)
    siren: str = Field(max_length=9, unique=True)
    siret: str | None = Field(default=None, max_length=14)
    insee_code: str | None = Field(default=None, max_length=5)  # also outside the served departments
    department: str = Field(max_length=3)
    address: str = Field(default="", max_length=300)
    postcode: str = Field(default="", max_length=10)
    city: str = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=254)
    population_override: int | None = None  # entered by an operator (EPCI, establishment)
    chorus_service_code: str | None = Field(default=None, max_length=100)
    created_at: datetime = _ts(default_factory=utcnow)


class Contact(SQLModel, table=True):
    """A person of a collectivity: its signatory (maire, président…), a technical or billing contact."""

    id: int | None = Field(default=None, primary_key=True)
    collectivity_id: int = Field(foreign_key="collectivity.id", index=True)
    role: str = Field(max_length=20)  # signatory | technical | billing
    name: str = Field(max_length=200)
    capacity: str = Field(default="", max_length=100)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=30)
    active: bool = True


# --------------------------------------------------------------------------------------------------
# Request and quotes
# --------------------------------------------------------------------------------------------------


class ServiceRequest(SQLModel, table=True):
    """A collectivity's request for services, from the Prefect form, the CLI or the API."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, max_length=40)
    collectivity_id: int = Field(foreign_key="collectivity.id", index=True)
    status: RequestStatus = _status(RequestStatus, RequestStatus.RECEIVED, 30, index=True)
    channel: str = Field(default="cli", max_length=20)  # ui | cli | api
    requested_on: date
    signatory_name: str = Field(max_length=200)
    signatory_email: str = Field(max_length=254)
    signatory_capacity: str = Field(default="", max_length=100)
    chorus_service_code: str | None = Field(default=None, max_length=100)
    commitment_number: str | None = Field(default=None, max_length=100)
    domain_names: list[str] = _json(list)
    mailbox_names: list[str] = _json(list)
    eligibility: dict[str, Any] | None = _json()
    refusal_reasons: list[str] = _json(list)
    support_amount: Decimal | None = _money(default=None)  # set by an operator when "sur devis"
    operator_comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    flow_run_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class ServiceRequestLine(SQLModel, table=True):
    """One requested item and its quantity; `operator_amount` settles an on-quote line."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    item_code: str = Field(max_length=40)
    quantity: int
    operator_amount: Decimal | None = _money(default=None)


class Quote(SQLModel, table=True):
    """A devis issued by one issuer for one request. A new version supersedes the previous one."""

    __table_args__ = (UniqueConstraint("request_id", "issuer_code", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    version: int = 1
    status: QuoteStatus = _status(QuoteStatus, QuoteStatus.ISSUED, 20)
    issued_on: date
    valid_until: date
    grid_id: int = Field(foreign_key="pricegrid.id")
    population: int | None = None
    population_kind: str | None = Field(default=None, max_length=20)
    population_vintage: int | None = None
    band_label: str | None = Field(default=None, max_length=100)
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    total_ttc: Decimal = _money()
    notes: list[str] = _json(list)
    document_sha256: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts(default_factory=utcnow)


class DocumentLineBase(SQLModel):
    """One printed line of a quote, an invoice or a credit note: everything its document shows, so that
    the document can be rebuilt from its own rows."""

    position: int
    item_code: str = Field(max_length=40)
    label: str = Field(max_length=200)
    unit: str = Field(max_length=200)
    kind: str = Field(max_length=12)  # yearly | one_off | first_year
    quantity: int
    unit_price_ttc: Decimal = _money()
    unit_price_ht: Decimal = Field(max_digits=14, decimal_places=4)
    vat_rate: Decimal = Field(max_digits=5, decimal_places=4)
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    total_ttc: Decimal = _money()
    note: str | None = Field(default=None, max_length=500)
    family: str = Field(default="", max_length=100)  # catalogue family, printed under the label
    # The billed period (BT-134, BT-135) and the months it prorates; None on a quote line (priced for a
    # full year) and for a price due whole (one-off, first-year pack).
    period_start: date | None = None
    period_end: date | None = None
    months: int | None = None
    origin: str | None = Field(default=None, max_length=40)  # the subscribed item a renewal line bills


class QuoteLine(DocumentLineBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    quote_id: int = Field(foreign_key="quote.id", index=True)


# --------------------------------------------------------------------------------------------------
# Convention and approvals
# --------------------------------------------------------------------------------------------------


class Convention(SQLModel, table=True):
    """The tripartite convention of one request: syndicat, CDG, collectivity."""

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True, max_length=40)
    request_id: int = Field(foreign_key="servicerequest.id", index=True)
    collectivity_id: int = Field(foreign_key="collectivity.id", index=True)
    syndicat_code: str = Field(foreign_key="issuer.code", max_length=16)
    cdg_code: str = Field(foreign_key="issuer.code", max_length=16)
    status: ConventionStatus = _status(ConventionStatus, ConventionStatus.AWAITING_COLLECTIVITY, 30, index=True)
    version: int = 1
    grid_id: int = Field(foreign_key="pricegrid.id")
    dated_on: date
    document_hashes: dict[str, str] = _json(dict)  # file name → SHA-256 of every document shown
    draft_sha256: str | None = Field(default=None, max_length=64)
    final_sha256: str | None = Field(default=None, max_length=64)
    in_force_on: date | None = None
    expires_at: datetime | None = _ts(default=None)
    ended_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class Approval(SQLModel, table=True):
    """One party's decision on a convention, in the order collectivity → CDG → syndicat.

    `link_nonce` is bound into the signed link; rotating it (new document version) voids earlier links.
    """

    __table_args__ = (UniqueConstraint("convention_id", "party"),)

    id: int | None = Field(default=None, primary_key=True)
    convention_id: int = Field(foreign_key="convention.id", index=True)
    party: Party = Field(sa_type=_enum(Party, 20))
    position: int
    status: ApprovalStatus = _status(ApprovalStatus, ApprovalStatus.WAITING, 20)
    signatory_name: str = Field(max_length=200)
    signatory_email: str = Field(max_length=254)
    link_nonce: str = Field(max_length=64)
    link_sent_at: datetime | None = _ts(default=None)
    reminders_sent: int = 0
    last_reminder_at: datetime | None = _ts(default=None)
    decided_at: datetime | None = _ts(default=None)
    decided_name: str | None = Field(default=None, max_length=200)
    decided_capacity: str | None = Field(default=None, max_length=100)
    deliberation_ref: str | None = Field(default=None, max_length=300)
    certified_authority: bool = False
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    document_hashes: dict[str, str] = _json(dict)
    decline_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_by_operator: str | None = Field(default=None, max_length=200)


class Question(SQLModel, table=True):
    """A question asked from the approval page, forwarded to the operators."""

    id: int | None = Field(default=None, primary_key=True)
    convention_id: int = Field(foreign_key="convention.id", index=True)
    party: Party = Field(sa_type=_enum(Party, 20))
    message: str = Field(sa_column=Column(Text, nullable=False))
    asked_at: datetime = _ts(default_factory=utcnow)
    ip_address: str | None = Field(default=None, max_length=64)


# --------------------------------------------------------------------------------------------------
# Provisioning and subscription
# --------------------------------------------------------------------------------------------------


class ProvisioningOrder(SQLModel, table=True):
    """The work order sent to the syndicat when the convention comes into force."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    convention_id: int = Field(foreign_key="convention.id", unique=True)
    status: OrderStatus = _status(OrderStatus, OrderStatus.SENT, 20)
    payload: dict[str, Any] = _json(dict)
    sent_at: datetime = _ts(default_factory=utcnow)
    acknowledged_at: datetime | None = _ts(default=None)
    acknowledged_by: str | None = Field(default=None, max_length=200)
    delivered_at: datetime | None = _ts(default=None)
    delivered_by: str | None = Field(default=None, max_length=200)
    link_nonce: str = Field(max_length=64)


class ProvisioningOrderItem(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="provisioningorder.id", index=True)
    item_code: str = Field(max_length=40)
    label: str = Field(max_length=200)
    quantity: int
    delivered_on: date | None = None
    delivered_by: str | None = Field(default=None, max_length=200)


class Subscription(SQLModel, table=True):
    """The live services of one collectivity under one convention."""

    id: int | None = Field(default=None, primary_key=True)
    collectivity_id: int = Field(foreign_key="collectivity.id", index=True)
    convention_id: int = Field(foreign_key="convention.id", unique=True)
    cdg_code: str = Field(foreign_key="issuer.code", max_length=16)
    started_on: date
    ended_on: date | None = None
    status: SubscriptionStatus = _status(SubscriptionStatus, SubscriptionStatus.ACTIVE, 20)
    support_amount: Decimal | None = _money(default=None)  # operator-set fee (on quote), else by band


class SubscriptionItem(SQLModel, table=True):
    """One service of a subscription; it starts on its delivery date and renews until ended."""

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id", index=True)
    item_code: str = Field(max_length=40)
    quantity: int
    started_on: date
    ended_on: date | None = None
    operator_amount: Decimal | None = _money(default=None)  # line total TTC set by an operator (on quote)


# --------------------------------------------------------------------------------------------------
# Billing
# --------------------------------------------------------------------------------------------------


class Invoice(SQLModel, table=True):
    """An invoice of one issuer. Never edited once issued: corrections are credit notes.

    Issued in two steps: numbered with its lines (everything its document prints) in a short transaction
    under the issuer's sequence lock (status `numbered`), then rendered, stored and emailed in a second one
    (status `issued`); any later run completes an invoice a crash left `numbered`.

    At most one invoice per subscription, issuer and billing year: the unique constraint is what makes
    renewal campaigns idempotent.
    """

    __table_args__ = (UniqueConstraint("subscription_id", "issuer_code", "billing_year"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    collectivity_id: int = Field(foreign_key="collectivity.id", index=True)
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id")
    kind: str = Field(max_length=12)  # first | renewal
    billing_year: int
    issued_on: date
    due_on: date
    delivery_date: date  # BT-72
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    total_ttc: Decimal = _money()
    amount_paid: Decimal = _money(default=Decimal("0.00"))
    amount_credited: Decimal = _money(default=Decimal("0.00"))
    status: InvoiceStatus = _status(InvoiceStatus, InvoiceStatus.ISSUED, 20)
    buyer_siret: str | None = Field(default=None, max_length=14)
    chorus_service_code: str | None = Field(default=None, max_length=100)
    commitment_number: str | None = Field(default=None, max_length=100)
    document_sha256: str | None = Field(default=None, max_length=64)
    emailed_message_id: int | None = Field(default=None, foreign_key="outboxmessage.id")
    deposited_path: str | None = Field(default=None, max_length=500)
    # The channel by which the invoice left for its debtor (facturx_chorus | pes_asap | email_pdf), set when
    # it leaves: an issuer's change of channel applies only to invoices not yet sent, never twice.
    sent_channel: str | None = Field(default=None, max_length=20)
    sent_at: datetime | None = _ts(default=None)
    handed_to_accountant_at: datetime | None = _ts(default=None)
    # A reissue (after a rejection by Chorus Pro) names the invoice it replaces; it has no subscription of
    # its own (the unique constraint stays the campaigns' guard), its context is the replaced invoice's.
    replaces_invoice_id: int | None = Field(default=None, foreign_key="invoice.id")
    created_at: datetime = _ts(default_factory=utcnow)


class InvoiceLine(DocumentLineBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)


class PesBordereau(SQLModel, table=True):
    """A bordereau of titres de recettes (PES V2) of one issuer and exercice: one `PES_Aller` file.

    Numbered with its pieces in one transaction (status `numbered`), then its file is built from the stored
    rows and written to the deposit folder (`written`); Hélios's acquit accepts or rejects it. `number`
    (IdBord) is gapless per issuer, exercice and type of bordereau (`typ_bord`, TypBord: 01 ordinary, kind
    PESB; 02 annulation-réduction, kind PESA — Hélios checks the sequence of each type apart).
    """

    __table_args__ = (UniqueConstraint("issuer_code", "exercice", "typ_bord", "number", name="uq_pesbordereau_number"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    exercice: int
    typ_bord: str = Field(default="01", max_length=2)  # TypBord: 01 ordinary, 02 annulation-réduction
    number: int
    kind: str = Field(max_length=12)  # campaign | daily | annulation
    dated_on: date  # DteBordEm, and the file's DteStr
    status: PesBordereauStatus = _status(PesBordereauStatus, PesBordereauStatus.NUMBERED, 20, index=True)
    file_name: str = Field(max_length=100)
    deposited_path: str | None = Field(default=None, max_length=500)
    file_sha256: str | None = Field(default=None, max_length=64)
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    acquit_file: str | None = Field(default=None, max_length=200)
    acquitted_at: datetime | None = _ts(default=None)
    errors: list[str] = _json(list)  # the acquit's reasons when rejected
    created_at: datetime = _ts(default_factory=utcnow)


class PesPiece(SQLModel, table=True):
    """A titre de recette: one invoice in one bordereau. `number` (IdPce) is gapless per issuer and
    exercice (kind PEST). An invoice has at most one ordinary titre that is not rejected (a partial unique
    index): a rejected titre is sent again as a new piece of a new bordereau.

    An annulation-réduction titre (TypPce 02, NatPce 06, in a TypBord 02 bordereau) carries a credit note
    (`credit_note_id`) and names the titre it cancels (`original_id`, same `invoice_id`); a credit note has
    at most one such titre that is not rejected."""

    __table_args__ = (
        UniqueConstraint("issuer_code", "exercice", "number"),
        Index(
            "ux_pespiece_live_invoice",
            "invoice_id",
            unique=True,
            sqlite_where=text("status != 'rejected' AND credit_note_id IS NULL"),
            postgresql_where=text("status != 'rejected' AND credit_note_id IS NULL"),
        ),
        Index(
            "ux_pespiece_live_credit_note",
            "credit_note_id",
            unique=True,
            sqlite_where=text("status != 'rejected' AND credit_note_id IS NOT NULL"),
            postgresql_where=text("status != 'rejected' AND credit_note_id IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    bordereau_id: int = Field(foreign_key="pesbordereau.id", index=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    credit_note_id: int | None = Field(default=None, foreign_key="creditnote.id")  # an annulation titre's avoir
    original_id: int | None = Field(default=None, foreign_key="pespiece.id")  # the titre an annulation cancels
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    exercice: int
    number: int
    status: PesPieceStatus = _status(PesPieceStatus, PesPieceStatus.NUMBERED, 20)
    asap_id: str = Field(max_length=50)  # IdUnique of the PES_Facture (PJ 006); "" for an annulation (no ASAP)
    pdf_id: str = Field(max_length=50)  # IdUnique of the Factur-X PDF (PJ 008; an annulation's: the avoir's)
    errors: list[str] = _json(list)  # the acquit's reasons for this titre or one of its PJ


class CreditNote(SQLModel, table=True):
    """An avoir: cancels all or part of an invoice, in the issuer's own credit-note sequence."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    issued_on: date
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: CreditNoteStatus = _status(CreditNoteStatus, CreditNoteStatus.ISSUED, 20)
    total_ht: Decimal = _money()
    total_vat: Decimal = _money()
    total_ttc: Decimal = _money()
    document_sha256: str | None = Field(default=None, max_length=64)
    deposited_path: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts(default_factory=utcnow)


class CreditNoteLine(DocumentLineBase, table=True):
    """A line of a credit note: the line of the invoice it cancels, as that invoice printed it."""

    id: int | None = Field(default=None, primary_key=True)
    credit_note_id: int = Field(foreign_key="creditnote.id", index=True)


class Payment(SQLModel, table=True):
    """A payment received for an invoice (recorded by an operator or imported)."""

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    amount: Decimal = _money()
    paid_on: date
    reference: str | None = Field(default=None, max_length=200)
    source: str = Field(default="manual", max_length=20)  # manual | import
    recorded_by: str | None = Field(default=None, max_length=200)
    recorded_at: datetime = _ts(default_factory=utcnow)


class Reminder(SQLModel, table=True):
    """A dunning step of an unpaid invoice; one row per invoice and level, so each is sent once."""

    __table_args__ = (UniqueConstraint("invoice_id", "level"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(foreign_key="invoice.id", index=True)
    level: int
    created_at: datetime = _ts(default_factory=utcnow)
    message_id: int | None = Field(default=None, foreign_key="outboxmessage.id")


# --------------------------------------------------------------------------------------------------
# Outbox, audit, numbering, documents
# --------------------------------------------------------------------------------------------------


class OutboxMessage(SQLModel, table=True):
    """An email, stored in the same transaction as the change it reports, then sent once.

    `dedup_key` names the business event (e.g. "quote-email:REQ-…"), so the same event never produces
    two messages; `message_id` is the stable RFC 5322 Message-ID used at every attempt.
    """

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(unique=True, max_length=200)
    message_id: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=40)
    sender: str = Field(max_length=254)
    recipients: list[str] = _json(list)
    cc: list[str] = _json(list)
    reply_to: str | None = Field(default=None, max_length=254)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attachments: list[dict[str, Any]] = _json(list)  # {filename, content_type, sha256}
    status: OutboxStatus = _status(OutboxStatus, OutboxStatus.PENDING, 20)
    attempts: int = 0
    next_attempt_at: datetime = _ts(default_factory=utcnow)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: datetime | None = _ts(default=None)
    related_type: str | None = Field(default=None, max_length=40)
    related_id: int | None = None
    created_at: datetime = _ts(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """One step of the audit trail: who did what, when, from where, on which documents."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(default_factory=utcnow, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=60)
    entity_type: str = Field(max_length=40)
    entity_id: int | None = None
    details: dict[str, Any] = _json(dict)
    ip_address: str | None = Field(default=None, max_length=64)


class NumberSequence(SQLModel, table=True):
    """The last number given per issuer, document kind and year (gapless, see `models.numbering`)."""

    issuer_code: str = Field(primary_key=True, max_length=16)
    doc_kind: str = Field(primary_key=True, max_length=8)  # DEV | FAC | AVO | CONV | BDC | DEM
    year: int = Field(primary_key=True)
    last_value: int = 0


class StoredDocument(SQLModel, table=True):
    """A PDF, attachment or PES file kept content-addressed in the document store (`MAIRIE_DOCUMENT_STORE`:
    the database's documentblob, or a folder); never overwritten."""

    sha256: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=20)  # devis | convention | facture | avoir | order-json | order-csv | pes
    filename: str = Field(max_length=200)
    content_type: str = Field(default="application/pdf", max_length=100)
    size: int
    created_at: datetime = _ts(default_factory=utcnow)


# Imported here, not at the top: this table was added as one block at the end of the module.
from sqlalchemy import BigInteger, LargeBinary  # noqa: E402


class WebGuard(SQLModel, table=True):
    """What the web app remembers across its processes to guard the API and the approval links: a rate-limit
    counter (requests of one subject in the current fixed window, and a lockout after failed API keys) or
    an API idempotency key (the answer given to the first request that carried it).

    `subject` is a SHA-256 (hex) of what is counted — an IP address, an API key, a link — so that no key,
    link or address is stored in clear. Times are seconds since the epoch (compared, never shown); a row
    past `expires_at` is of no use and is pruned.
    """

    # ip | link | question | api-key | api-submit | api-fail | idempotency
    bucket: str = Field(primary_key=True, max_length=24)
    subject: str = Field(primary_key=True, max_length=64)
    window_number: int = Field(default=0, sa_type=BigInteger)  # epoch seconds // the window's length
    count: int = 0
    blocked_until: int | None = Field(default=None, sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger, index=True)
    fingerprint: str | None = Field(default=None, max_length=64)  # idempotency: SHA-256 of the request body
    answer: dict[str, Any] | None = _json()  # idempotency: {"status": 201, "body": {...}} once answered


class ChorusDeposit(SQLModel, table=True):
    """One document deposited on Chorus Pro through its API (an invoice, or a credit note), and what
    Chorus Pro says of it since (`models.chorus`).

    Queued in the transaction that issues the document; claimed by one run (compare-and-set on `state`);
    the `numeroFluxDepot` is recorded before anything else once the API answers. `file_name` is unique:
    a document is never queued twice. `history` lists each change with its date (also in the audit).
    """

    id: int | None = Field(default=None, primary_key=True)
    issuer_code: str = Field(foreign_key="issuer.code", max_length=16)
    document_type: str = Field(max_length=12)  # invoice | credit_note
    invoice_id: int | None = Field(default=None, foreign_key="invoice.id", index=True)
    credit_note_id: int | None = Field(default=None, foreign_key="creditnote.id")
    number: str = Field(max_length=40)
    file_name: str = Field(unique=True, max_length=200)
    state: str = Field(default="queued", max_length=12, index=True)  # models.chorus.DepositState
    attempts: int = 0
    claimed_at: datetime | None = _ts(default=None)
    next_attempt_at: datetime = _ts(default_factory=utcnow)
    flux_number: str | None = Field(default=None, max_length=60, unique=True)  # numeroFluxDepot
    deposited_at: datetime | None = _ts(default=None)
    flux_state: str | None = Field(default=None, max_length=40)  # etatCourantFlux
    flux_state_at: datetime | None = _ts(default=None)
    chorus_invoice_id: int | None = Field(default=None, sa_type=BigInteger)  # identifiantFactureCPP
    status: str | None = Field(default=None, max_length=40)  # statutCourantCode
    status_at: datetime | None = _ts(default=None)
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    synced_at: datetime | None = _ts(default=None)
    history: list[dict[str, Any]] = _json(list)
    created_at: datetime = _ts(default_factory=utcnow)


class DocumentBlob(SQLModel, table=True):
    """The bytes of a stored document when the store is the database (`MAIRIE_DOCUMENT_STORE=database`):
    content-addressed by SHA-256, written once (a second write of the same bytes does nothing), in the
    transaction that records its `StoredDocument`, so a committed document always has its bytes. The hash
    is checked again on every read (`mairie.adapters.document_store`).

    PostgreSQL keeps `content` as `bytea` with STORAGE EXTERNAL (out of line, not compressed: a PDF is
    compressed already); SQLite as a BLOB.
    """

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_type=BigInteger)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)
