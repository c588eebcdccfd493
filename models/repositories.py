"""The look-ups that recur across use cases, one place each, on the unit of work's session.

`uow.requests.get(id)`, `uow.quotes.current(request_id)`, `uow.conventions.latest(request_id)`,
`uow.invoices.context(invoice)`, `uow.issuers.get(code)`… Each raises `NotFound` with a plain message
when the thing named does not exist, never `StopIteration` or `None` where a row is required.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlmodel import Session, col, select

from models.entities import (
    Approval,
    Collectivity,
    Convention,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    ProvisioningOrder,
    ProvisioningOrderItem,
    Quote,
    QuoteLine,
    ServiceRequest,
    ServiceRequestLine,
    Subscription,
    SubscriptionItem,
)
from models.errors import NotFound
from models.lifecycle import QuoteStatus
from models.parties import Party, parse_party


class _Repository:
    def __init__(self, session: Session) -> None:
        self.session = session


class Collectivities(_Repository):
    def get(self, collectivity_id: int) -> Collectivity:
        row = self.session.get(Collectivity, collectivity_id)
        if row is None:
            raise NotFound(f"aucune collectivité n° {collectivity_id}")
        return row

    def by_siren(self, siren: str) -> Collectivity | None:
        return self.session.exec(select(Collectivity).where(Collectivity.siren == siren)).first()


class Requests(_Repository):
    def get(self, request_id: int, *, for_update: bool = False) -> ServiceRequest:
        """A request by id; `for_update` locks its row (PostgreSQL: a concurrent issuer waits). Without the
        lock, a request this session already holds is not read again."""
        if for_update:
            row = self.session.exec(
                select(ServiceRequest).where(ServiceRequest.id == request_id).with_for_update()
            ).first()
        else:
            row = self.session.get(ServiceRequest, request_id)
        if row is None:
            raise NotFound(f"aucune demande n° {request_id}")
        return row

    def by_reference(self, text: str) -> ServiceRequest:
        """A request named by its reference (MC-DEM-2026-00001) or its number."""
        cleaned = text.strip()
        if cleaned.isdigit():
            return self.get(int(cleaned))
        row = self.session.exec(select(ServiceRequest).where(ServiceRequest.reference == cleaned)).first()
        if row is None:
            raise NotFound(f"aucune demande « {text} »")
        return row

    def lines(self, request_id: int) -> list[ServiceRequestLine]:
        return list(
            self.session.exec(
                select(ServiceRequestLine)
                .where(ServiceRequestLine.request_id == request_id)
                .order_by(col(ServiceRequestLine.id))
            ).all()
        )


class Quotes(_Repository):
    def current(self, request_id: int) -> list[Quote]:
        """The quotes of a request's current version (not superseded), in issue order."""
        return list(
            self.session.exec(
                select(Quote)
                .where(Quote.request_id == request_id, Quote.status != QuoteStatus.SUPERSEDED)
                .order_by(col(Quote.id))
            ).all()
        )

    def current_of(self, request_id: int, issuer_code: str) -> Quote | None:
        return next((q for q in self.current(request_id) if q.issuer_code == issuer_code), None)

    def lines(self, quote_id: int) -> list[QuoteLine]:
        return list(
            self.session.exec(
                select(QuoteLine).where(QuoteLine.quote_id == quote_id).order_by(col(QuoteLine.position))
            ).all()
        )

    def next_version(self, request_id: int) -> int:
        versions = self.session.exec(select(Quote.version).where(Quote.request_id == request_id)).all()
        return 1 + max(versions, default=0)


class Conventions(_Repository):
    def get(self, convention_id: int) -> Convention:
        row = self.session.get(Convention, convention_id)
        if row is None:
            raise NotFound(f"aucune convention n° {convention_id}")
        return row

    def by_reference(self, reference: str) -> Convention:
        row = self.session.exec(select(Convention).where(Convention.reference == reference.strip())).first()
        if row is None:
            raise NotFound(f"aucune convention {reference}")
        return row

    def latest(self, request_id: int) -> Convention | None:
        """The latest version of a request's convention."""
        return self.session.exec(
            select(Convention).where(Convention.request_id == request_id).order_by(col(Convention.version).desc())
        ).first()


class Approvals(_Repository):
    def of(self, convention_id: int) -> list[Approval]:
        """The three approvals of a convention in signing order."""
        return list(
            self.session.exec(
                select(Approval).where(Approval.convention_id == convention_id).order_by(col(Approval.position))
            ).all()
        )

    def of_party(self, convention_id: int, party: str) -> Approval:
        code: Party = parse_party(party)
        row = self.session.exec(
            select(Approval).where(Approval.convention_id == convention_id, Approval.party == code)
        ).first()
        if row is None:
            raise NotFound(f"aucune signature attendue de « {code} » pour cette convention")
        return row


class Orders(_Repository):
    def get(self, ref: int | str) -> ProvisioningOrder:
        """An order by id or by number (LFN-BDC-2026-00001)."""
        if isinstance(ref, int) or str(ref).strip().isdigit():
            order = self.session.get(ProvisioningOrder, int(ref))
        else:
            order = self.session.exec(
                select(ProvisioningOrder).where(ProvisioningOrder.number == str(ref).strip())
            ).first()
        if order is None:
            raise NotFound(f"aucun bon de commande « {ref} »")
        return order

    def of_convention(self, convention_id: int) -> ProvisioningOrder | None:
        return self.session.exec(
            select(ProvisioningOrder).where(ProvisioningOrder.convention_id == convention_id)
        ).first()

    def items(self, order_id: int) -> list[ProvisioningOrderItem]:
        return list(
            self.session.exec(
                select(ProvisioningOrderItem)
                .where(ProvisioningOrderItem.order_id == order_id)
                .order_by(col(ProvisioningOrderItem.id))
            ).all()
        )


class Subscriptions(_Repository):
    def get(self, subscription_id: int) -> Subscription:
        row = self.session.get(Subscription, subscription_id)
        if row is None:
            raise NotFound(f"aucun abonnement n° {subscription_id}")
        return row

    def of_convention(self, convention_id: int) -> Subscription | None:
        return self.session.exec(select(Subscription).where(Subscription.convention_id == convention_id)).first()

    def items(self, subscription_id: int) -> list[SubscriptionItem]:
        return list(
            self.session.exec(
                select(SubscriptionItem)
                .where(SubscriptionItem.subscription_id == subscription_id)
                .order_by(col(SubscriptionItem.id))
            ).all()
        )


@dataclass(frozen=True)
class InvoiceContext:
    """What an invoice was issued under: its collectivity, subscription, convention and request."""

    collectivity: Collectivity
    subscription: Subscription
    convention: Convention
    request: ServiceRequest


class Invoices(_Repository):
    def get(self, invoice_id: int, *, for_update: bool = False) -> Invoice:
        query = select(Invoice).where(Invoice.id == invoice_id)
        if for_update:
            query = query.with_for_update()
        row = self.session.exec(query).first()
        if row is None:
            raise NotFound(f"aucune facture n° {invoice_id}")
        return row

    def by_number(self, number: str, *, for_update: bool = False) -> Invoice:
        query = select(Invoice).where(Invoice.number == number.strip())
        if for_update:
            query = query.with_for_update()
        row = self.session.exec(query).first()
        if row is None:
            raise NotFound(f"aucune facture n° « {number} »")
        return row

    def of_year(self, subscription_id: int, issuer_code: str, year: int) -> Invoice | None:
        """The invoice of a subscription, issuer and billing year (at most one: a unique constraint)."""
        return self.session.exec(
            select(Invoice).where(
                Invoice.subscription_id == subscription_id,
                Invoice.issuer_code == issuer_code,
                Invoice.billing_year == year,
            )
        ).first()

    def of_collectivity(self, collectivity_id: int) -> list[Invoice]:
        return list(
            self.session.exec(
                select(Invoice)
                .where(Invoice.collectivity_id == collectivity_id)
                .order_by(col(Invoice.issued_on), col(Invoice.number))
            ).all()
        )

    def lines(self, invoice_id: int) -> list[InvoiceLine]:
        return list(
            self.session.exec(
                select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(col(InvoiceLine.position))
            ).all()
        )

    def context(self, invoice: Invoice) -> InvoiceContext:
        """invoice → subscription → convention → request, and the collectivity invoiced (a reissue: those of
        the invoice it replaces)."""
        if invoice.subscription_id is None and invoice.replaces_invoice_id is not None:
            return self.context(self.get(invoice.replaces_invoice_id))
        if invoice.subscription_id is None:
            raise NotFound(f"la facture {invoice.number} n'est rattachée à aucun abonnement")
        found = self.session.exec(  # one statement for the four rows (a campaign asks twice per invoice)
            select(Subscription, Convention, ServiceRequest, Collectivity)
            .join(Convention, col(Convention.id) == Subscription.convention_id)
            .join(ServiceRequest, col(ServiceRequest.id) == Convention.request_id)
            .join(Collectivity, col(Collectivity.id) == invoice.collectivity_id)
            .where(Subscription.id == invoice.subscription_id)
        ).first()
        if found is None:  # one of them is missing: say which
            subscription = Subscriptions(self.session).get(invoice.subscription_id)
            convention = Conventions(self.session).get(subscription.convention_id)
            Requests(self.session).get(convention.request_id)
            Collectivities(self.session).get(invoice.collectivity_id)
            raise NotFound(f"la facture {invoice.number} n'a pas de contexte complet")  # not reached: a row is missing
        subscription, convention, request, collectivity = found
        return InvoiceContext(collectivity, subscription, convention, request)


class CreditNotes(_Repository):
    def of_invoice(self, invoice_id: int) -> list[CreditNote]:
        return list(
            self.session.exec(
                select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(col(CreditNote.id))
            ).all()
        )

    def lines(self, credit_note_id: int) -> list[CreditNoteLine]:
        return list(
            self.session.exec(
                select(CreditNoteLine)
                .where(CreditNoteLine.credit_note_id == credit_note_id)
                .order_by(col(CreditNoteLine.position))
            ).all()
        )


class HasCode(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def department(self) -> str | None: ...


T = TypeVar("T", bound=HasCode)


class Issuers(Generic[T]):
    """The issuers' identities (configuration, not rows): the syndicat and the CDGs."""

    def __init__(self, identities: Sequence[T]) -> None:
        self._identities = tuple(identities)

    def get(self, code: str) -> T:
        for identity in self._identities:
            if identity.code == code:
                return identity
        known = ", ".join(i.code for i in self._identities)
        raise NotFound(f"émetteur inconnu « {code} » (émetteurs configurés : {known})")

    def cdg_for_department(self, department: str) -> T | None:
        """The Centre de gestion serving a department, None for a department outside the convention."""
        return next((i for i in self._identities if i.kind == "cdg" and i.department == department), None)

    def syndicat(self) -> T:
        for identity in self._identities:
            if identity.kind == "syndicat":
                return identity
        raise NotFound("aucun syndicat configuré")

    def all(self) -> tuple[T, ...]:
        return self._identities
