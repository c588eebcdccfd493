"""The buyer's identity an invoice needs before it can be emitted (Chorus Pro, EN 16931, BR-FR).

Chorus Pro identifies the buyer by the SIRET of the establishment invoiced (usually the mairie; a SIREN
alone is not enough) and reads its postal address; when the buyer's structure requires them in the
Chorus Pro directory, a service code (BT-10) and a commitment number (BT-13) too. An invoice whose buyer
lacks any of these is held for an operator, never emitted with an empty field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from stdnum.exceptions import ValidationError
from stdnum.fr import siret as stdnum_siret

from models.errors import InvalidInput

POSTCODE = re.compile(r"^\d{5}$")
MAIRIE = "Mairie"  # the address line of a commune's mairie when nothing more precise is known


@dataclass(frozen=True)
class BillingAddress:
    line: str
    postcode: str
    city: str


def check_siret(siret: str, siren: str, name: str) -> str:
    """A billing SIRET: 14 digits, its Luhn key right, and an establishment of the buyer's SIREN."""
    cleaned = siret.replace(" ", "").replace("\xa0", "")
    try:
        valid = stdnum_siret.validate(cleaned)
    except ValidationError:
        raise InvalidInput(
            f"SIRET « {siret} » invalide : 14 chiffres dont la clé de contrôle (celui de l'établissement facturé, "
            "en général la mairie)"
        ) from None
    if not valid.startswith(siren):
        raise InvalidInput(f"le SIRET {valid} n'appartient pas à {name} (SIREN {siren})")
    return valid


def check_postcode(postcode: str, known: Sequence[str] = ()) -> str:
    """A French postcode (5 digits); among the commune's own postcodes when they are known."""
    cleaned = postcode.strip()
    if not POSTCODE.match(cleaned):
        raise InvalidInput(f"code postal « {postcode} » invalide : 5 chiffres")
    if known and cleaned not in known:
        raise InvalidInput(f"code postal {cleaned} inconnu pour cette commune (codes : {', '.join(known)})")
    return cleaned


def default_address(kind: str, name: str, postcodes: Sequence[str]) -> BillingAddress | None:
    """A commune with a single postcode is invoiced at its mairie by default; otherwise no default (the
    request, or an operator, gives the address)."""
    if kind == "commune" and len(postcodes) == 1:
        return BillingAddress(MAIRIE, postcodes[0], name)
    return None


@dataclass(frozen=True)
class BuyerIdentity:
    """What the collectivity has on file for its invoices."""

    siret: str | None
    address_line: str
    postcode: str
    city: str
    service_code: str | None = None
    commitment_number: str | None = None
    requires_service_code: bool = False
    requires_commitment_number: bool = False


FIELD_LABELS = {
    "siret": "SIRET de l'établissement facturé",
    "address_line": "adresse",
    "postcode": "code postal",
    "city": "commune",
    "service_code": "code service Chorus Pro",
    "commitment_number": "numéro d'engagement",
}


def missing_for_invoice(buyer: BuyerIdentity) -> tuple[str, ...]:
    """The fields an invoice to this buyer still lacks (empty when it can be emitted)."""
    missing = [
        field
        for field, value in (
            ("siret", buyer.siret),
            ("address_line", buyer.address_line),
            ("postcode", buyer.postcode),
            ("city", buyer.city),
        )
        if not (value or "").strip()
    ]
    if buyer.requires_service_code and not (buyer.service_code or "").strip():
        missing.append("service_code")
    if buyer.requires_commitment_number and not (buyer.commitment_number or "").strip():
        missing.append("commitment_number")
    return tuple(missing)


def describe_missing(missing: Sequence[str]) -> str:
    """The missing fields in words, for the operator's task."""
    return ", ".join(FIELD_LABELS.get(field, field) for field in missing)
