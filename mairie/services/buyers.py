"""The buyer's identity on the invoices (`models.buyer`): what a collectivity has on file, the operator's
correction, and the invoices held while something Chorus Pro needs is missing — emitted by themselves once
it is complete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select

from mairie.database import unit_of_work
from mairie.services.assessment import identifier_of
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.buyer import BuyerIdentity, check_postcode, check_siret, describe_missing, missing_for_invoice
from models.db import UnitOfWork
from models.directory import find
from models.entities import Collectivity, Invoice, ServiceRequest, Subscription
from models.errors import InvalidInput
from models.lifecycle import SubscriptionStatus
from models.text import UnsafeText, check_text


def _text(value: str, what: str) -> str:
    try:
        return " ".join(check_text(value).split())
    except UnsafeText as exc:
        raise InvalidInput(f"{what} : {exc}") from None


def buyer_of(collectivity: Collectivity, request: ServiceRequest | None = None) -> BuyerIdentity:
    """What an invoice to this collectivity would carry (the request's service code and commitment number
    first, the collectivity's otherwise)."""
    return BuyerIdentity(
        siret=collectivity.siret,
        address_line=collectivity.address,
        postcode=collectivity.postcode,
        city=collectivity.city,
        service_code=(request.chorus_service_code if request else None) or collectivity.chorus_service_code,
        commitment_number=request.commitment_number if request else None,
    )


def hold(
    uow: UnitOfWork,
    settings: Settings,
    collectivity: Collectivity,
    issuers: Sequence[str],
    what: str,
    missing: Sequence[str],
) -> None:
    """Record that invoices wait for the buyer's identity, and tell the operators once per gap."""
    assert collectivity.id is not None
    names = [uow.issuers.get(code).name for code in issuers]
    audit.record(
        uow.session,
        actor="système",
        action="invoice.held",
        entity_type="collectivity",
        entity_id=collectivity.id,
        details={"what": what, "issuers": list(issuers), "missing": list(missing)},
    )
    enqueue_message(
        uow.session,
        settings,
        "invoice_held",
        {
            "collectivity_name": collectivity.name,
            "identifier": identifier_of(collectivity),
            "issuer_names": names,
            "what": what,
            "missing": [describe_missing([m]) for m in missing],
        },
        to=[settings.operators_email],
        dedup_key=f"invoice-held:{collectivity.id}:{what}:{'+'.join(missing)}",
        related=("collectivity", collectivity.id),
    )


@dataclass(frozen=True)
class BillingUpdate:
    siret: str | None = None
    address_line: str | None = None
    postcode: str | None = None
    city: str | None = None
    service_code: str | None = None


def apply_billing(collectivity: Collectivity, update: BillingUpdate, postcodes: Sequence[str]) -> list[str]:
    """Check and set the billing identity's fields given (others kept); returns the fields changed."""
    changed = []
    if update.siret is not None:
        collectivity.siret = check_siret(update.siret, collectivity.siren, collectivity.name)
        changed.append("siret")
    if update.address_line is not None:
        line = _text(update.address_line, "l'adresse")
        if not 2 <= len(line) <= 300:
            raise InvalidInput("l'adresse de facturation doit compter de 2 à 300 caractères")
        collectivity.address = line
        changed.append("address_line")
    if update.postcode is not None:
        collectivity.postcode = check_postcode(update.postcode, postcodes)
        changed.append("postcode")
    if update.city is not None:
        city = _text(update.city, "la commune")
        if not 1 <= len(city) <= 100:
            raise InvalidInput("la commune de l'adresse de facturation doit compter de 1 à 100 caractères")
        collectivity.city = city
        changed.append("city")
    if update.service_code is not None:
        collectivity.chorus_service_code = _text(update.service_code, "le code service") or None
        changed.append("service_code")
    return changed


def update_billing(
    settings: Settings, identifier: str, update: BillingUpdate, *, operator: str, today: date
) -> BuyerIdentity:
    """An operator corrects a collectivity's billing identity; the first invoices it held leave at once."""
    if len(operator.strip()) < 2:
        raise InvalidInput("indiquez le nom de l'opérateur")
    with unit_of_work(settings) as uow:
        found = find(uow.session, identifier, today)
        collectivity = uow.collectivities.by_siren(found.siren)
        if collectivity is None:
            raise InvalidInput(f"{found.name} n'a encore fait aucune demande : rien à facturer")
        changed = apply_billing(collectivity, update, found.postcodes)
        if not changed:
            raise InvalidInput("rien à changer : indiquez --siret, --address, --postcode, --city ou --service-code")
        uow.session.add(collectivity)
        audit.record(
            uow.session,
            actor=operator.strip(),
            action="collectivity.billing_updated",
            entity_type="collectivity",
            entity_id=collectivity.id,
            details={field: getattr(collectivity, _COLUMN[field]) for field in changed},
        )
        uow.commit()
        identity = buyer_of(collectivity)
    release_held(settings, today)
    return identity


_COLUMN = {
    "siret": "siret",
    "address_line": "address",
    "postcode": "postcode",
    "city": "city",
    "service_code": "chorus_service_code",
}


def subscriptions_without_first_invoices(settings: Settings) -> list[int]:
    """Live subscriptions whose first invoices were held (no invoice of kind `first` yet)."""
    with unit_of_work(settings) as uow:
        invoiced = select(Invoice.subscription_id).where(Invoice.kind == "first")
        rows = uow.session.exec(
            select(Subscription.id).where(
                Subscription.status == SubscriptionStatus.ACTIVE, col(Subscription.id).not_in(invoiced)
            )
        ).all()
        return [int(r) for r in rows if r is not None]


def release_held(settings: Settings, today: date) -> list[str]:
    """Issue the first invoices held for a buyer's identity that is now complete; returns their numbers.
    (Held renewal invoices are issued by running the campaign of their year again: it is idempotent.)"""
    from mairie.services.channels.folder import file_deposits
    from mairie.services.invoicing import first_invoices

    numbers: list[str] = []
    for subscription_id in subscriptions_without_first_invoices(settings):
        with unit_of_work(settings) as uow:
            subscription = uow.session.exec(
                select(Subscription).where(Subscription.id == subscription_id).with_for_update()
            ).one()
            collectivity = uow.collectivities.get(subscription.collectivity_id)
            request = uow.requests.get(uow.conventions.get(subscription.convention_id).request_id)
            if missing_for_invoice(buyer_of(collectivity, request)):
                continue
            issued = first_invoices(uow, settings, subscription, today)
            uow.commit()
            numbers += [i.number for i in issued]
    if numbers:
        file_deposits(settings)
    return numbers
