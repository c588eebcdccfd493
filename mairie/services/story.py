"""The whole story of one collectivity, for `mairie collectivity show` and the handoff artifacts.

The story is plain JSON data (what `mairie collectivity show --json` prints), typed by the TypedDicts
below; dates are ISO strings, timestamps in Paris time, amounts strings with two decimals.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import NotRequired, TypedDict, overload

from sqlmodel import Session, col, select

from mairie.database import unit_of_work
from mairie.formatting import PARIS
from mairie.services.channels.chorus import ChorusJson, chorus_json, latest_deposits
from mairie.services.channels.pes import invoice_state
from mairie.services.payments import amount_due
from mairie.settings import Settings
from models.directory import find
from models.entities import (
    Approval,
    Collectivity,
    Convention,
    CreditNote,
    Invoice,
    Payment,
    ProvisioningOrder,
    ProvisioningOrderItem,
    Quote,
    ServiceRequest,
    Subscription,
    SubscriptionItem,
)
from models.errors import InvalidInput, NotFound
from models.lifecycle import STATUS_LABELS
from models.text import check_text


class CollectivityFacts(TypedDict):
    name: str
    kind: str
    siren: str
    siret: str | None
    insee_code: str | None
    department: str


class QuoteStory(TypedDict):
    number: str
    issuer: str
    status: str
    total_ttc: str


class SignatureStory(TypedDict):
    party: str
    status: str
    name: str | None
    capacity: str | None
    at: str | None
    recorded_by_operator: str | None


class OrderItemStory(TypedDict):
    code: str
    quantity: int
    delivered_on: str | None


class OrderStory(TypedDict):
    number: str
    status: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    delivered_at: str | None
    items: list[OrderItemStory]


class ConventionStory(TypedDict):
    reference: str
    status: str
    in_force_on: str | None
    final_sha256: str | None
    signatures: list[SignatureStory]
    order: OrderStory | None


class RequestStory(TypedDict):
    reference: str
    status: str
    status_label: str
    requested_on: str
    refusal_reasons: list[str]
    quotes: list[QuoteStory]
    conventions: list[ConventionStory]


class SubscriptionItemStory(TypedDict):
    code: str
    quantity: int
    started_on: str
    ended_on: str | None


class SubscriptionStory(TypedDict):
    id: int | None
    status: str
    started_on: str
    ended_on: str | None
    items: list[SubscriptionItemStory]


class PaymentStory(TypedDict):
    amount: str
    paid_on: str


class PesTitreStory(TypedDict):
    bordereau: int | None  # IdBord of the titre's bordereau (per issuer, exercice and type of bordereau)
    piece: int | None  # IdPce, the titre's number
    state: str  # pending | numbered | sent | accepted | rejected


class PesStory(PesTitreStory):
    # the annulation-réduction titre of its avoir (its bordereau is an annulation one), when there is one
    annulation: NotRequired[PesTitreStory]


class InvoiceStory(TypedDict):
    number: str
    issuer: str
    kind: str
    year: int
    issued_on: str
    due_on: str
    total_ttc: str
    amount_due: str
    status: str
    payments: list[PaymentStory]
    credit_notes: list[str]
    chorus: ChorusJson | None  # the deposit through the Chorus Pro API, None for the folder channel
    pes: PesStory | None  # the titre de recettes sent to Hélios (issuers on pes_asap), else None


class Story(TypedDict):
    collectivity: CollectivityFacts
    requests: list[RequestStory]
    subscriptions: list[SubscriptionStory]
    invoices: list[InvoiceStory]


@overload
def _iso(value: date) -> str: ...
@overload
def _iso(value: date | None) -> str | None: ...
def _iso(value: date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(PARIS).isoformat(timespec="seconds")
    return value.isoformat()


def collectivity_story(settings: Settings, identifier: str) -> Story:
    """Requests, quotes, conventions and signatures, orders, subscription items, invoices and payments."""
    with unit_of_work(settings) as uow:
        s = uow.session
        found = find(s, identifier, datetime.now(PARIS).date())
        row = s.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
        if row is None:
            raise NotFound(f"{found.name} (SIREN {found.siren}) n'a encore fait aucune demande")
        story: Story = {
            "collectivity": {
                "name": row.name,
                "kind": row.kind,
                "siren": row.siren,
                "siret": row.siret,
                "insee_code": row.insee_code,
                "department": row.department,
            },
            "requests": [],
            "subscriptions": [],
            "invoices": [],
        }
        for request in s.exec(
            select(ServiceRequest).where(ServiceRequest.collectivity_id == row.id).order_by(col(ServiceRequest.id))
        ).all():
            story["requests"].append(_request_story(s, request))
        for sub in s.exec(select(Subscription).where(Subscription.collectivity_id == row.id)).all():
            story["subscriptions"].append(_subscription_story(s, sub))
        for invoice in s.exec(
            select(Invoice)
            .where(Invoice.collectivity_id == row.id)
            .order_by(col(Invoice.issued_on), col(Invoice.number))
        ).all():
            channel = next((i.billing_channel for i in settings.issuers() if i.code == invoice.issuer_code), None)
            story["invoices"].append(_invoice_story(s, invoice, channel))
        return story


def _folded(text: str) -> str:
    """Lower case without accents, hyphens as spaces: « Saint-Omer » and « saint omer » match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).replace("-", " ").split())


def collectivity_story_named(settings: Settings, text: str) -> Story:
    """`collectivity_story` for an operator who names a collectivity by its code (INSEE, SIREN, SIRET) or
    by its name among those on file (accents, case and hyphens ignored). Several names match: the refusal
    lists them with their codes."""
    cleaned = check_text(text).strip()
    if cleaned.replace(" ", "").isdigit() or (len(cleaned) == 5 and cleaned[:2].upper() in ("2A", "2B")):
        return collectivity_story(settings, cleaned)
    wanted = _folded(cleaned)
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(select(Collectivity).order_by(col(Collectivity.name))).all()
        exact = [r for r in rows if _folded(r.name) == wanted]
        matches = exact or [r for r in rows if wanted in _folded(r.name)]
        named = [(r.name, r.insee_code or r.siren) for r in matches]
    if not named:
        raise NotFound(f"aucune collectivité « {cleaned} » n'a fait de demande (essayez son code INSEE ou son SIREN)")
    if len(named) > 1:
        listed = ", ".join(f"{name} ({code})" for name, code in named[:20])
        raise InvalidInput(f"plusieurs collectivités répondent à « {cleaned} » : {listed} ; donnez son code")
    return collectivity_story(settings, named[0][1])


def _request_story(s: Session, request: ServiceRequest) -> RequestStory:
    quotes = s.exec(select(Quote).where(Quote.request_id == request.id).order_by(col(Quote.id))).all()
    conventions = s.exec(select(Convention).where(Convention.request_id == request.id)).all()
    return {
        "reference": request.reference,
        "status": request.status,
        "status_label": STATUS_LABELS.get(request.status, request.status),
        "requested_on": _iso(request.requested_on),
        "refusal_reasons": request.refusal_reasons,
        "quotes": [
            {
                "number": q.number,
                "issuer": q.issuer_code,
                "status": q.status,
                "total_ttc": f"{q.total_ttc:.2f}",
            }
            for q in quotes
        ],
        "conventions": [_convention_story(s, convention) for convention in conventions],
    }


def _convention_story(s: Session, convention: Convention) -> ConventionStory:
    approvals = s.exec(
        select(Approval).where(Approval.convention_id == convention.id).order_by(col(Approval.position))
    ).all()
    order = s.exec(select(ProvisioningOrder).where(ProvisioningOrder.convention_id == convention.id)).first()
    return {
        "reference": convention.reference,
        "status": convention.status,
        "in_force_on": _iso(convention.in_force_on),
        "final_sha256": convention.final_sha256,
        "signatures": [
            {
                "party": a.party,
                "status": a.status,
                "name": a.decided_name,
                "capacity": a.decided_capacity,
                "at": _iso(a.decided_at),
                "recorded_by_operator": a.recorded_by_operator,
            }
            for a in approvals
        ],
        "order": None if order is None else _order_story(s, order),
    }


def _order_story(s: Session, order: ProvisioningOrder) -> OrderStory:
    items = s.exec(select(ProvisioningOrderItem).where(ProvisioningOrderItem.order_id == order.id)).all()
    return {
        "number": order.number,
        "status": order.status,
        "acknowledged_by": order.acknowledged_by,
        "acknowledged_at": _iso(order.acknowledged_at),
        "delivered_at": _iso(order.delivered_at),
        "items": [{"code": i.item_code, "quantity": i.quantity, "delivered_on": _iso(i.delivered_on)} for i in items],
    }


def _subscription_story(s: Session, sub: Subscription) -> SubscriptionStory:
    items = s.exec(select(SubscriptionItem).where(SubscriptionItem.subscription_id == sub.id)).all()
    return {
        "id": sub.id,
        "status": sub.status,
        "started_on": _iso(sub.started_on),
        "ended_on": _iso(sub.ended_on),
        "items": [
            {
                "code": i.item_code,
                "quantity": i.quantity,
                "started_on": _iso(i.started_on),
                "ended_on": _iso(i.ended_on),
            }
            for i in items
        ],
    }


def _invoice_story(s: Session, invoice: Invoice, channel: str | None = None) -> InvoiceStory:
    payments = s.exec(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    credits = s.exec(select(CreditNote).where(CreditNote.invoice_id == invoice.id)).all()
    return {
        "number": invoice.number,
        "issuer": invoice.issuer_code,
        "kind": invoice.kind,
        "year": invoice.billing_year,
        "issued_on": _iso(invoice.issued_on),
        "due_on": _iso(invoice.due_on),
        "total_ttc": f"{invoice.total_ttc:.2f}",
        "amount_due": f"{amount_due(invoice):.2f}",
        "status": invoice.status,
        "payments": [{"amount": f"{p.amount:.2f}", "paid_on": _iso(p.paid_on)} for p in payments],
        "credit_notes": [c.number for c in credits],
        "chorus": chorus_json(latest_deposits(s, [invoice.id]).get(invoice.id) if invoice.id else None),
        "pes": _pes_story(s, invoice, channel),
    }


def _pes_story(s: Session, invoice: Invoice, channel: str | None) -> PesStory | None:
    state = invoice_state(s, invoice, channel)
    if state is None:
        return None
    story: PesStory = {"bordereau": state["bordereau"], "piece": state["piece"], "state": state["state"]}
    if "annulation" in state:
        annulation = state["annulation"]
        story["annulation"] = {
            "bordereau": annulation["bordereau"],
            "piece": annulation["piece"],
            "state": annulation["state"],
        }
    return story
