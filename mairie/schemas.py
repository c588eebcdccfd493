"""Boundary schemas: what an operator (Prefect form), the CLI and the JSON API submit.

Pydantic validates them before anything is stored; the Prefect UI renders `RequestForm` as a form.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_MAILBOX = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


def _clean_text(value: str, what: str) -> str:
    value = " ".join(value.split())
    if _CONTROL.search(value):
        raise ValueError(f"{what} contient des caractères de contrôle")
    return value


class RequestedItem(BaseModel):
    """One service of the grid and its quantity."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        description="Code de l'article (ex. messagerie-5go, nom-de-domaine, page-internet, antivirus…)",
        min_length=1,
        max_length=40,
    )
    quantity: int = Field(description="Quantité (entier positif)", ge=1, le=100_000)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return value.strip().lower()


class RequestForm(BaseModel):
    """A collectivity's request for services under the tripartite convention."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    collectivity: str = Field(
        description="Code INSEE (5 caractères), SIREN (9 chiffres) ou SIRET (14 chiffres) de la collectivité",
        min_length=5,
        max_length=20,
    )
    items: list[RequestedItem] = Field(description="Articles demandés et quantités", min_length=1, max_length=30)
    signatory_name: str = Field(description="Nom du signataire (maire, président…)", min_length=2, max_length=200)
    signatory_email: EmailStr = Field(description="Adresse électronique du signataire")
    signatory_capacity: str = Field(default="Maire", description="Qualité du signataire", min_length=2, max_length=100)
    siret: str | None = Field(
        default=None,
        description="SIRET de l'établissement facturé, en général la mairie (Chorus Pro ; facultatif s'il est "
        "déjà connu)",
        max_length=20,
    )
    address_line: str | None = Field(
        default=None,
        description="Adresse de facturation (ex. « 1 place de la Mairie » ; par défaut : Mairie)",
        max_length=300,
    )
    postcode: str | None = Field(default=None, description="Code postal de facturation (5 chiffres)", max_length=5)
    city: str | None = Field(default=None, description="Commune de l'adresse de facturation", max_length=100)
    chorus_service_code: str | None = Field(
        default=None, description="Code service Chorus Pro (facultatif)", max_length=100
    )
    commitment_number: str | None = Field(default=None, description="Numéro d'engagement (facultatif)", max_length=100)
    domain_names: list[str] = Field(default_factory=list, description="Noms de domaine souhaités", max_length=20)
    mailbox_names: list[str] = Field(default_factory=list, description="Boîtes aux lettres souhaitées", max_length=200)

    @field_validator("signatory_name", "signatory_capacity")
    @classmethod
    def _names(cls, value: str) -> str:
        return _clean_text(value, "le nom")

    @field_validator("chorus_service_code", "commitment_number", "address_line", "city")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _clean_text(value, "la référence")

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"[0-9]{5}", value.strip()):
            raise ValueError(f"code postal « {value} » invalide (5 chiffres)")
        return value.strip()

    @field_validator("siret")
    @classmethod
    def _siret(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from stdnum.fr import siret

        cleaned = value.replace(" ", "")
        if not siret.is_valid(cleaned):
            raise ValueError(f"SIRET « {value} » invalide (14 chiffres et une clé de contrôle juste)")
        return cleaned

    @field_validator("domain_names")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values if v.strip()]
        for v in cleaned:
            if not _DOMAIN.match(v):
                raise ValueError(f"nom de domaine « {v} » invalide (ex. mairie-exemple.fr)")
        return cleaned

    @field_validator("mailbox_names")
    @classmethod
    def _mailboxes(cls, values: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in values if v.strip()]
        for v in cleaned:
            if not _MAILBOX.match(v):
                raise ValueError(f"nom de boîte « {v} » invalide (lettres, chiffres, point, tiret)")
        return cleaned

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[RequestedItem]) -> list[RequestedItem]:
        codes = [i.code for i in items]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"article demandé deux fois : {', '.join(duplicates)} ; regroupez les quantités")
        return items


class OperatorAmounts(BaseModel):
    """Amounts an operator sets for the "sur devis" lines of a request (TTC, in euros)."""

    model_config = ConfigDict(extra="forbid")

    support_amount: Decimal | None = Field(
        default=None, description="Accompagnement annuel (€)", ge=0, max_digits=10, decimal_places=2
    )
    item_amounts: dict[str, Decimal] = Field(default_factory=dict, description="Montant TTC total par code d'article")
    comment: str = Field(default="", description="Commentaire (justification du montant)", max_length=2000)
    operator: str = Field(default="opérateur", description="Votre nom", max_length=200)


FIELD_LABELS = {
    "collectivity": "collectivité",
    "items": "articles",
    "code": "code d'article",
    "quantity": "quantité",
    "signatory_name": "nom du signataire",
    "signatory_email": "courriel du signataire",
    "signatory_capacity": "qualité du signataire",
    "siret": "SIRET",
    "chorus_service_code": "code service Chorus Pro",
    "commitment_number": "numéro d'engagement",
    "domain_names": "noms de domaine",
    "mailbox_names": "boîtes aux lettres",
}


def _french(error: dict[str, Any]) -> str:
    """One pydantic error as a plain French sentence."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "champ obligatoire"
    if kind == "extra_forbidden":
        return "champ inconnu"
    if kind in ("string_too_short", "too_short"):
        return f"trop court (au moins {ctx.get('min_length', 1)})"
    if kind in ("string_too_long", "too_long"):
        return f"trop long (au plus {ctx.get('max_length')})"
    if kind in ("greater_than_equal", "greater_than"):
        return f"doit être au moins {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"doit être au plus {ctx.get('le', ctx.get('lt'))}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "doit être un nombre entier"
    if kind in ("string_type",):
        return "doit être un texte"
    if kind in ("list_type",):
        return "doit être une liste"
    if kind == "value_error" and "email" in str(error.get("msg", "")).lower():
        return "adresse électronique invalide (exemple : maire@commune.fr)"
    if kind in ("decimal_parsing", "decimal_type", "float_parsing"):
        return "doit être un montant"
    return str(error.get("msg", "valeur invalide")).removeprefix("Value error, ")


def validation_message(exc: Exception) -> str:
    """One plain French sentence from a pydantic ValidationError (up to three errors, with where they are)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for error in exc.errors()[:3]:
        where = " › ".join(
            FIELD_LABELS.get(str(p), f"n° {p + 1}" if isinstance(p, int) else str(p)) for p in error["loc"]
        )
        parts.append(f"{where} : {_french(dict(error))}" if where else _french(dict(error)))
    return " ; ".join(parts)
