"""Provisioning handoff: the work order sent to the syndicat when a convention comes into force, its
acknowledgement and delivery, the subscription it starts and the first invoices of both issuers.

Statuses: sent → acknowledged → partially_delivered → delivered; each step records who and when.
Acknowledging twice acknowledges once; delivering before acknowledging is refused.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, select

from mairie.database import unit_of_work
from mairie.links import order_token
from mairie.services import paperwork
from mairie.services.billing import IssuedInvoice, file_deposits, issue_invoice
from mairie.services.mail import enqueue_message
from mairie.services.quoting import vat_regime
from mairie.settings import Settings
from models import audit
from models.db import reachable
from models.entities import (
    Collectivity,
    Contact,
    Convention,
    ProvisioningOrder,
    ProvisioningOrderItem,
    Quote,
    QuoteLine,
    ServiceRequest,
    Subscription,
    SubscriptionItem,
)
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import ORDER_MOVES, move
from models.numbering import next_number
from models.types import utcnow


@dataclass(frozen=True)
class OrderOutcome:
    order_id: int
    number: str
    status: str
    created: bool
    payload: dict[str, Any]


def order_urls(settings: Settings, order: ProvisioningOrder) -> tuple[str, str]:
    token = order_token(settings, order.id, order.link_nonce)  # type: ignore[arg-type]
    base = settings.public_url.rstrip("/")
    return f"{base}/commande/{token}/accuser-reception", f"{base}/commande/{token}/livrer"


def _quotes(session: Session, request_id: int) -> list[Quote]:
    return list(session.exec(select(Quote).where(Quote.request_id == request_id, Quote.status != "superseded")).all())


def issue_order(settings: Settings, convention_id: int) -> OrderOutcome:
    """Create the provisioning order of a convention in force and queue its email (JSON + CSV attached).
    Issuing again returns the existing order."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        convention = session.get(Convention, convention_id)
        if convention is None:
            raise NotFound(f"aucune convention n° {convention_id}")
        existing = session.exec(
            select(ProvisioningOrder).where(ProvisioningOrder.convention_id == convention_id)
        ).first()
        if existing is not None:
            return OrderOutcome(existing.id, existing.number, existing.status, False, existing.payload)  # type: ignore[arg-type]
        if convention.status != "in_force":
            raise InvalidTransition(f"la convention {convention.reference} n'est pas en vigueur ({convention.status})")
        request = session.get(ServiceRequest, convention.request_id)
        collectivity = session.get(Collectivity, convention.collectivity_id)
        assert request is not None and collectivity is not None
        assert request.id is not None
        services = next((q for q in _quotes(session, request.id) if q.issuer_code == convention.syndicat_code), None)
        lines: list[QuoteLine] = []
        if services is not None:
            lines = list(
                session.exec(
                    select(QuoteLine).where(QuoteLine.quote_id == services.id).order_by(QuoteLine.position)  # type: ignore[arg-type]
                ).all()
            )
        contacts = session.exec(
            select(Contact).where(Contact.collectivity_id == collectivity.id, Contact.active == True)  # noqa: E712
        ).all()
        number = next_number(session, convention.syndicat_code, "BDC", utcnow().year)
        payload = {
            "order": number,
            "convention": convention.reference,
            "convention_in_force_on": convention.in_force_on.isoformat() if convention.in_force_on else None,
            "collectivity": {
                "name": collectivity.name,
                "kind": collectivity.kind,
                "siren": collectivity.siren,
                "siret": collectivity.siret,
                "insee_code": collectivity.insee_code,
                "department": collectivity.department,
            },
            "contacts": [
                {"role": c.role, "name": c.name, "capacity": c.capacity, "email": c.email, "phone": c.phone}
                for c in contacts
            ],
            "items": [
                {"code": li.item_code, "label": li.label, "quantity": li.quantity, "kind": li.kind} for li in lines
            ],
            "domain_names": list(request.domain_names),
            "mailbox_names": list(request.mailbox_names),
        }
        order = ProvisioningOrder(
            number=number, convention_id=convention_id, payload=payload, link_nonce=secrets.token_urlsafe(16)
        )
        session.add(order)
        session.flush()
        for li in lines:
            session.add(
                ProvisioningOrderItem(
                    order_id=order.id,
                    item_code=li.item_code,
                    label=li.label,  # type: ignore[arg-type]
                    quantity=li.quantity,
                )
            )
        json_doc = paperwork.keep(
            session,
            settings,
            order_json(payload),
            kind="order-json",
            filename=f"{number}.json",
            content_type="application/json",
        )
        csv_doc = paperwork.keep(
            session, settings, order_csv(payload), kind="order-csv", filename=f"{number}.csv", content_type="text/csv"
        )
        ack_url, delivered_url = order_urls(settings, order)
        signatory = next((c for c in contacts if c.role == "signatory"), None)
        enqueue_message(
            session,
            settings,
            "provisioning_order",
            {
                "order_number": number,
                "collectivity_name": collectivity.name,
                "collectivity_siren": collectivity.siren,
                "convention_number": convention.reference,
                "items": [
                    {"code": i["code"], "label": i["label"], "quantity": i["quantity"]} for i in payload["items"]
                ],
                "collectivity_contact": {
                    "name": signatory.name if signatory else request.signatory_name,
                    "email": signatory.email if signatory else request.signatory_email,
                },
                "acknowledge_url": ack_url,
                "delivered_url": delivered_url,
            },
            to=[settings.syndicat.provisioning_email or settings.syndicat.email],
            cc=[settings.operators_email],
            attachments=[json_doc, csv_doc],
            dedup_key=f"order:{number}",
            related=("provisioningorder", order.id),
        )
        audit.record(
            session,
            actor="système",
            action="order.sent",
            entity_type="provisioningorder",
            entity_id=order.id,
            details={"number": number, "convention": convention.reference},
        )
        uow.commit()
        return OrderOutcome(order.id, number, order.status, True, payload)  # type: ignore[arg-type]


def order_json(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def order_csv(payload: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["commande", "convention", "siren", "collectivite", "code", "libelle", "quantite"])
    for item in payload["items"]:
        writer.writerow(
            [
                payload["order"],
                payload["convention"],
                payload["collectivity"]["siren"],
                payload["collectivity"]["name"],
                item["code"],
                item["label"],
                item["quantity"],
            ]
        )
    return buffer.getvalue().encode("utf-8")


def webhook_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>` HMAC of the body with the shared secret (header X-Mairie-Signature)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(settings: Settings, payload: dict[str, Any]) -> int | None:
    """Post the order to the syndicat's system when a webhook URL is set; returns the HTTP status."""
    if not settings.provisioning_webhook_url:
        return None
    import httpx

    body = order_json(payload)
    response = httpx.post(
        settings.provisioning_webhook_url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Mairie-Signature": webhook_signature(settings.secret_key, body),
        },
        timeout=15,
    )
    response.raise_for_status()
    return response.status_code


# ------------------------------------------------------------------------------------------------
# Acknowledge and deliver
# ------------------------------------------------------------------------------------------------


def _order(session: Session, ref: int | str) -> ProvisioningOrder:
    if isinstance(ref, int) or str(ref).isdigit():
        order = session.get(ProvisioningOrder, int(ref))
    else:
        order = session.exec(select(ProvisioningOrder).where(ProvisioningOrder.number == str(ref).strip())).first()
    if order is None:
        raise NotFound(f"aucun bon de commande « {ref} »")
    return order


def acknowledge(settings: Settings, ref: int | str, who: str) -> OrderOutcome:
    """Acknowledge the order (once: acknowledging again changes nothing)."""
    if len(who.strip()) < 2:
        raise InvalidInput("indiquez qui accuse réception")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        order = _order(uow.session, ref)
        if order.status != "sent":
            return OrderOutcome(order.id, order.number, order.status, False, order.payload)  # type: ignore[arg-type]
        order.status = move(ORDER_MOVES, order.status, "acknowledged", "bon de commande")
        order.acknowledged_at = utcnow()
        order.acknowledged_by = who.strip()
        uow.session.add(order)
        audit.record(
            uow.session,
            actor=who.strip(),
            action="order.acknowledged",
            entity_type="provisioningorder",
            entity_id=order.id,
        )
        uow.commit()
        return OrderOutcome(order.id, order.number, order.status, True, order.payload)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DeliveryOutcome:
    order: str
    status: str
    delivered: list[str]
    subscription_id: int | None
    invoices: list[IssuedInvoice]


def deliver(
    settings: Settings, ref: int | str, who: str, on: date, items: list[str] | None = None, today: date | None = None
) -> DeliveryOutcome:
    """Mark items (or all) delivered on a date. When every item is delivered, the subscription starts
    (each item on its delivery date) and the first invoices of both issuers are issued."""
    if len(who.strip()) < 2:
        raise InvalidInput("indiquez qui a livré")
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        session = uow.session
        order = _order(session, ref)
        if order.status == "sent":
            raise InvalidTransition(
                f"le bon de commande {order.number} n'a pas encore été accusé : accusez réception avant de livrer"
            )
        rows = list(session.exec(select(ProvisioningOrderItem).where(ProvisioningOrderItem.order_id == order.id)).all())
        wanted = set(items) if items else {r.item_code for r in rows}
        unknown = wanted - {r.item_code for r in rows}
        if unknown:
            raise InvalidInput(f"articles absents du bon {order.number} : {', '.join(sorted(unknown))}")
        delivered = []
        for row in rows:
            if row.item_code in wanted and row.delivered_on is None:
                row.delivered_on = on
                row.delivered_by = who.strip()
                session.add(row)
                delivered.append(row.item_code)
        complete = all(r.delivered_on is not None for r in rows)
        target = "delivered" if complete else "partially_delivered"
        if order.status != "delivered":
            order.status = move(ORDER_MOVES, order.status, target, "bon de commande")
        if complete and order.delivered_at is None:
            order.delivered_at = utcnow()
            order.delivered_by = who.strip()
        session.add(order)
        audit.record(
            session,
            actor=who.strip(),
            action="order.delivered",
            entity_type="provisioningorder",
            entity_id=order.id,
            details={"items": delivered, "on": on.isoformat(), "complete": complete},
        )
        subscription_id = None
        invoices: list[IssuedInvoice] = []
        if complete:
            subscription = start_subscription(session, order, rows)
            subscription_id = subscription.id
            invoices = first_invoices(session, settings, subscription, order, rows, today or paris_today())
        uow.commit()
    if invoices:
        file_deposits(settings)
    return DeliveryOutcome(order.number, order.status, delivered, subscription_id, invoices)


def start_subscription(session: Session, order: ProvisioningOrder, rows: list[ProvisioningOrderItem]) -> Subscription:
    """The subscription of a delivered order (created once)."""
    existing = session.exec(select(Subscription).where(Subscription.convention_id == order.convention_id)).first()
    if existing is not None:
        return existing
    convention = session.get(Convention, order.convention_id)
    assert convention is not None
    request = session.get(ServiceRequest, convention.request_id)
    assert request is not None
    started = min((r.delivered_on for r in rows if r.delivered_on), default=utcnow().date())
    subscription = Subscription(
        collectivity_id=convention.collectivity_id,
        convention_id=convention.id,  # type: ignore[arg-type]
        cdg_code=convention.cdg_code,
        started_on=started,
        support_amount=request.support_amount,
    )
    session.add(subscription)
    session.flush()
    amounts = {li.item_code: li.operator_amount for li in _request_lines(session, request.id)}  # type: ignore[arg-type]
    for row in rows:
        operator_total = amounts.get(row.item_code)
        session.add(
            SubscriptionItem(
                subscription_id=subscription.id,
                item_code=row.item_code,
                quantity=row.quantity,  # type: ignore[arg-type]
                started_on=row.delivered_on or started,
                operator_amount=operator_total,
            )
        )
    audit.record(
        session,
        actor="système",
        action="subscription.started",
        entity_type="subscription",
        entity_id=subscription.id,
        details={"convention": convention.reference},
    )
    return subscription


def _request_lines(session: Session, request_id: int) -> list[Any]:
    from models.entities import ServiceRequestLine

    return list(session.exec(select(ServiceRequestLine).where(ServiceRequestLine.request_id == request_id)).all())


def paris_today() -> date:
    from datetime import datetime

    from mairie.formatting import PARIS

    return datetime.now(PARIS).date()


def first_invoices(
    session: Session,
    settings: Settings,
    subscription: Subscription,
    order: ProvisioningOrder,
    rows: list[ProvisioningOrderItem],
    today: date,
) -> list[IssuedInvoice]:
    """The first invoices: the syndicat's (one-off + first year of yearly items, at the quoted prices) and
    the CDG's (support fee for the year), billing year = year of delivery."""
    convention = session.get(Convention, order.convention_id)
    assert convention is not None
    delivered_on = max(r.delivered_on for r in rows if r.delivered_on)  # type: ignore[type-var]
    year = delivered_on.year
    period = (delivered_on, date(year, 12, 31))
    issued = []
    for quote in _quotes(session, convention.request_id):
        lines = list(session.exec(select(QuoteLine).where(QuoteLine.quote_id == quote.id)).all())
        identity = next(i for i in settings.issuers() if i.code == quote.issuer_code)
        priced = paperwork.priced_from_rows(quote, lines, vat_regime(identity))
        issued.append(
            issue_invoice(
                session,
                settings,
                subscription=subscription,
                priced=priced,
                kind="first",
                year=year,
                issued_on=max(today, delivered_on),
                delivery_date=delivered_on,
                period=period,
            )
        )
    return issued
