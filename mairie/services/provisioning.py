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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import col, select

from mairie.database import unit_of_work
from mairie.links import order_token
from mairie.services import paperwork
from mairie.services.channels.folder import file_deposits
from mairie.services.invoicing import IssuedInvoice, first_invoices
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.clock import number_year, paris_today
from models.db import UnitOfWork
from models.entities import (
    Collectivity,
    Contact,
    Convention,
    ProvisioningOrder,
    ProvisioningOrderItem,
    QuoteLine,
    ServiceRequest,
    Subscription,
    SubscriptionItem,
)
from models.errors import InvalidInput, InvalidTransition
from models.lifecycle import ConventionStatus, OrderStatus, move
from models.numbering import next_number
from models.text import clean_text
from models.types import utcnow


@dataclass(frozen=True)
class OrderOutcome:
    order_id: int
    number: str
    status: str
    created: bool
    payload: dict[str, Any]


def order_urls(settings: Settings, order: ProvisioningOrder) -> tuple[str, str]:
    """The acknowledgement and delivery links of an order (signed, for the syndicat's team)."""
    assert order.id is not None
    token = order_token(settings, order.id, order.link_nonce)
    base = settings.public_url.rstrip("/")
    return f"{base}/commande/{token}/accuser-reception", f"{base}/commande/{token}/livrer"


def issue_order(settings: Settings, convention_id: int) -> OrderOutcome:
    """Create the provisioning order of a convention in force and queue its email (JSON + CSV attached).
    Issuing again returns the existing order."""
    with unit_of_work(settings) as uow:
        convention = uow.conventions.get(convention_id)
        existing = uow.orders.of_convention(convention_id)
        if existing is not None:
            assert existing.id is not None
            return OrderOutcome(existing.id, existing.number, existing.status, False, existing.payload)
        if convention.status != ConventionStatus.IN_FORCE:
            raise InvalidTransition(f"la convention {convention.reference} n'est pas en vigueur ({convention.status})")
        request = uow.requests.get(convention.request_id)
        collectivity = uow.collectivities.get(convention.collectivity_id)
        services = uow.quotes.current_of(convention.request_id, convention.syndicat_code)
        lines = uow.quotes.lines(services.id) if services is not None and services.id is not None else []
        contacts = list(
            uow.session.exec(
                select(Contact).where(Contact.collectivity_id == collectivity.id, col(Contact.active).is_(True))
            ).all()
        )
        number = next_number(uow.session, convention.syndicat_code, "BDC", number_year(utcnow()))
        payload = order_payload(number, convention, collectivity, request, contacts, lines)
        order = _store_order(uow, convention_id, number, payload, lines)
        _queue_order_email(uow, settings, order, convention, collectivity, request, contacts)
        audit.record(
            uow.session,
            actor="système",
            action="order.sent",
            entity_type="provisioningorder",
            entity_id=order.id,
            details={"number": number, "convention": convention.reference},
        )
        uow.commit()
        assert order.id is not None
        return OrderOutcome(order.id, number, order.status, True, payload)


def order_payload(
    number: str,
    convention: Convention,
    collectivity: Collectivity,
    request: ServiceRequest,
    contacts: Sequence[Contact],
    lines: Sequence[QuoteLine],
) -> dict[str, Any]:
    """What the syndicat receives to provision the services (JSON attachment and webhook body)."""
    return {
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
        "items": [{"code": li.item_code, "label": li.label, "quantity": li.quantity, "kind": li.kind} for li in lines],
        "domain_names": list(request.domain_names),
        "mailbox_names": list(request.mailbox_names),
    }


def _store_order(
    uow: UnitOfWork, convention_id: int, number: str, payload: dict[str, Any], lines: Sequence[QuoteLine]
) -> ProvisioningOrder:
    order = ProvisioningOrder(
        number=number, convention_id=convention_id, payload=payload, link_nonce=secrets.token_urlsafe(16)
    )
    uow.session.add(order)
    uow.session.flush()
    assert order.id is not None
    for li in lines:
        uow.session.add(
            ProvisioningOrderItem(order_id=order.id, item_code=li.item_code, label=li.label, quantity=li.quantity)
        )
    return order


def _queue_order_email(
    uow: UnitOfWork,
    settings: Settings,
    order: ProvisioningOrder,
    convention: Convention,
    collectivity: Collectivity,
    request: ServiceRequest,
    contacts: Sequence[Contact],
) -> None:
    payload = order.payload
    json_doc = paperwork.keep(
        uow.session,
        settings,
        order_json(payload),
        kind="order-json",
        filename=f"{order.number}.json",
        content_type="application/json",
    )
    csv_doc = paperwork.keep(
        uow.session,
        settings,
        order_csv(payload),
        kind="order-csv",
        filename=f"{order.number}.csv",
        content_type="text/csv",
    )
    ack_url, delivered_url = order_urls(settings, order)
    signatory = next((c for c in contacts if c.role == "signatory"), None)
    enqueue_message(
        uow.session,
        settings,
        "provisioning_order",
        {
            "order_number": order.number,
            "collectivity_name": collectivity.name,
            "collectivity_siren": collectivity.siren,
            "convention_number": convention.reference,
            "items": [{"code": i["code"], "label": i["label"], "quantity": i["quantity"]} for i in payload["items"]],
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
        dedup_key=f"order:{order.number}",
        related=("provisioningorder", order.id),
    )


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


def acknowledge(settings: Settings, ref: int | str, who: str) -> OrderOutcome:
    """Acknowledge the order (once: acknowledging again changes nothing)."""
    who = clean_text(who, "qui accuse réception")
    if len(who.strip()) < 2:
        raise InvalidInput("indiquez qui accuse réception")
    with unit_of_work(settings) as uow:
        order = uow.orders.get(ref)
        assert order.id is not None
        if order.status != OrderStatus.SENT:
            return OrderOutcome(order.id, order.number, order.status, False, order.payload)
        move(order, OrderStatus.ACKNOWLEDGED)
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
        return OrderOutcome(order.id, order.number, order.status, True, order.payload)


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
    who = clean_text(who, "qui a livré")
    if len(who.strip()) < 2:
        raise InvalidInput("indiquez qui a livré")
    with unit_of_work(settings) as uow:
        order = uow.orders.get(ref)
        if order.status == OrderStatus.SENT:
            raise InvalidTransition(
                f"le bon de commande {order.number} n'a pas encore été accusé : accusez réception avant de livrer"
            )
        assert order.id is not None
        rows = uow.orders.items(order.id)
        delivered = _mark_delivered(uow, order, rows, set(items) if items else None, who.strip(), on)
        complete = all(r.delivered_on is not None for r in rows)
        subscription_id = None
        invoices: list[IssuedInvoice] = []
        if complete:
            subscription = start_subscription(uow, order, rows)
            subscription_id = subscription.id
            invoices = first_invoices(uow, settings, subscription, today or paris_today())
        uow.commit()
    if invoices:
        file_deposits(settings)
    return DeliveryOutcome(order.number, order.status, delivered, subscription_id, invoices)


def _mark_delivered(
    uow: UnitOfWork,
    order: ProvisioningOrder,
    rows: Sequence[ProvisioningOrderItem],
    wanted: set[str] | None,
    who: str,
    on: date,
) -> list[str]:
    """Mark the wanted items (all when None) delivered on a date; the order moves to (partially)
    delivered. Returns the codes delivered now."""
    codes = {r.item_code for r in rows}
    wanted = wanted or codes
    unknown = wanted - codes
    if unknown:
        raise InvalidInput(f"articles absents du bon {order.number} : {', '.join(sorted(unknown))}")
    delivered = []
    for row in rows:
        if row.item_code in wanted and row.delivered_on is None:
            row.delivered_on = on
            row.delivered_by = who
            uow.session.add(row)
            delivered.append(row.item_code)
    complete = all(r.delivered_on is not None for r in rows)
    if order.status != OrderStatus.DELIVERED:
        move(order, OrderStatus.DELIVERED if complete else OrderStatus.PARTIALLY_DELIVERED)
    if complete and order.delivered_at is None:
        order.delivered_at = utcnow()
        order.delivered_by = who
    uow.session.add(order)
    audit.record(
        uow.session,
        actor=who,
        action="order.delivered",
        entity_type="provisioningorder",
        entity_id=order.id,
        details={"items": delivered, "on": on.isoformat(), "complete": complete},
    )
    return delivered


def start_subscription(
    uow: UnitOfWork, order: ProvisioningOrder, rows: Sequence[ProvisioningOrderItem]
) -> Subscription:
    """The subscription of a delivered order (created once); it and its items start on the go-live date."""
    existing = uow.subscriptions.of_convention(order.convention_id)
    if existing is not None:
        return existing
    convention = uow.conventions.get(order.convention_id)
    request = uow.requests.get(convention.request_id)
    assert convention.id is not None and request.id is not None
    # Services go live when the last item is delivered: the first invoice bills from that day, and so the
    # campaigns count every item's months from it.
    started = max((r.delivered_on for r in rows if r.delivered_on), default=paris_today())
    subscription = Subscription(
        collectivity_id=convention.collectivity_id,
        convention_id=convention.id,
        cdg_code=convention.cdg_code,
        started_on=started,
        support_amount=request.support_amount,
    )
    uow.session.add(subscription)
    uow.session.flush()
    assert subscription.id is not None
    amounts = {li.item_code: li.operator_amount for li in uow.requests.lines(request.id)}
    for row in rows:
        uow.session.add(
            SubscriptionItem(
                subscription_id=subscription.id,
                item_code=row.item_code,
                quantity=row.quantity,
                started_on=started,
                operator_amount=amounts.get(row.item_code),
            )
        )
    audit.record(
        uow.session,
        actor="système",
        action="subscription.started",
        entity_type="subscription",
        entity_id=subscription.id,
        details={"convention": convention.reference},
    )
    return subscription
