"""The whole story of one collectivity, for `mairie collectivity show` and the handoff artifacts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import select

from mairie.database import unit_of_work
from mairie.formatting import PARIS
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
from models.errors import NotFound
from models.lifecycle import STATUS_LABELS


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(PARIS).isoformat(timespec="seconds")
    return value.isoformat()


def collectivity_story(settings: Settings, identifier: str) -> dict[str, Any]:
    """Requests, quotes, conventions and signatures, orders, subscription items, invoices and payments."""
    with unit_of_work(settings) as uow:
        s = uow.session
        found = find(s, identifier, datetime.now(PARIS).date())
        row = s.exec(select(Collectivity).where(Collectivity.siren == found.siren)).first()
        if row is None:
            raise NotFound(f"{found.name} (SIREN {found.siren}) n'a encore fait aucune demande")
        story: dict[str, Any] = {
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
            select(ServiceRequest).where(ServiceRequest.collectivity_id == row.id).order_by(ServiceRequest.id)
        ).all():  # type: ignore[arg-type]
            quotes = s.exec(select(Quote).where(Quote.request_id == request.id).order_by(Quote.id)).all()  # type: ignore[arg-type]
            conventions = []
            for convention in s.exec(select(Convention).where(Convention.request_id == request.id)).all():
                approvals = s.exec(
                    select(Approval).where(Approval.convention_id == convention.id).order_by(Approval.position)
                ).all()  # type: ignore[arg-type]
                order = s.exec(
                    select(ProvisioningOrder).where(ProvisioningOrder.convention_id == convention.id)
                ).first()
                order_items = (
                    []
                    if order is None
                    else s.exec(select(ProvisioningOrderItem).where(ProvisioningOrderItem.order_id == order.id)).all()
                )
                conventions.append(
                    {
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
                        "order": None
                        if order is None
                        else {
                            "number": order.number,
                            "status": order.status,
                            "acknowledged_by": order.acknowledged_by,
                            "acknowledged_at": _iso(order.acknowledged_at),
                            "delivered_at": _iso(order.delivered_at),
                            "items": [
                                {"code": i.item_code, "quantity": i.quantity, "delivered_on": _iso(i.delivered_on)}
                                for i in order_items
                            ],
                        },
                    }
                )
            story["requests"].append(
                {
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
                    "conventions": conventions,
                }
            )
        for sub in s.exec(select(Subscription).where(Subscription.collectivity_id == row.id)).all():
            items = s.exec(select(SubscriptionItem).where(SubscriptionItem.subscription_id == sub.id)).all()
            story["subscriptions"].append(
                {
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
            )
        for invoice in s.exec(
            select(Invoice).where(Invoice.collectivity_id == row.id).order_by(Invoice.issued_on, Invoice.number)
        ).all():  # type: ignore[arg-type]
            payments = s.exec(select(Payment).where(Payment.invoice_id == invoice.id)).all()
            credits = s.exec(select(CreditNote).where(CreditNote.invoice_id == invoice.id)).all()
            story["invoices"].append(
                {
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
                }
            )
        return story
