"""Blocks that several emails share in their context (the contact to write to, how to pay), built in one
place so that every message says them the same way."""

from __future__ import annotations

from typing import TypedDict

PLATFORM_TEAM = "L'équipe Mairie Connectée"


class Contact(TypedDict):
    name: str
    email: str


class PaymentDetails(TypedDict):
    payee: str
    iban: str
    bic: str


def contact_block(name: str, email: str) -> Contact:
    """Whom the recipient writes to (an issuer, or the platform's team)."""
    return {"name": name, "email": email}


def team_contact(operators_email: str) -> Contact:
    """The platform's team, for messages about requests and conventions."""
    return contact_block(PLATFORM_TEAM, operators_email)


def payment_block(issuer_name: str, iban: str | None, bic: str | None) -> PaymentDetails:
    """Where a public body pays: the issuer's public accountant, on the issuer's account."""
    return {"payee": f"{issuer_name} — comptable public", "iban": iban or "", "bic": bic or ""}
