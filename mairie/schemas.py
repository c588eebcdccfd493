"""Boundary schemas: what an operator (Prefect form), the CLI and the JSON API submit.

Pydantic validates them before anything is stored; the Prefect UI renders `RequestForm` as a form and the
API's OpenAPI schema is generated from them. Every constraint enforced here is also written into the JSON
schema (patterns, enum of item codes, bounds), so that what the schema allows, the API accepts — apart
from what no schema can say: a SIREN or SIRET checksum, a commune that exists (422 and 404, documented).

Every text goes through the text policy of `models.text` (no control or bidi character, NFC); every
error becomes one French sentence (`validation_message`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, field_validator

from models.text import UnsafeText, check_text

# The same patterns validate the values (Python `re`) and describe them in the JSON schema (ECMA 262):
# they use only the syntax both share.
COLLECTIVITY_PATTERN = r"^(?:[0-9]{5}|2[AB][0-9]{3}|[0-9]{9}|[0-9]{14})$"
SIRET_PATTERN = r"^(?:(?: *[0-9]){14})? *$"  # 14 digits, spaces allowed between them; empty: none
DOMAIN_PATTERN = r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
DOMAIN_MAX = 253
POSTCODE_PATTERN = r"^[0-9]{5}$"
MAILBOX_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
# One-line text: none of the characters refused by models.text (controls, bidi controls, line separators).
_REFUSED = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
LINE_PATTERN = f"^[^{_REFUSED}]*$"
# A name: the same, starting and ending with a visible character (surrounding spaces are stripped anyway).
NAME_PATTERN = f"^[^\\s{_REFUSED}](?:[^{_REFUSED}]*[^\\s{_REFUSED}])?$"
# Multi-line text: the same, line feeds and tabs allowed (CR and CRLF are read as line feeds).
TEXT_PATTERN = (
    "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
    "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$"
)
QUANTITY_MAX = 100_000
AMOUNT_MAX = Decimal("99999999.99")

_COLLECTIVITY = re.compile(COLLECTIVITY_PATTERN)
_DOMAIN = re.compile(DOMAIN_PATTERN)
_MAILBOX = re.compile(MAILBOX_PATTERN)


@lru_cache(maxsize=1)
def item_codes() -> tuple[str, ...]:
    """The item codes of the price grids shipped with the software (the API's enum of codes). An extra
    grid folder (MAIRIE_GRIDS_DIR) can add codes: the web app adds them to its OpenAPI schema."""
    from models.catalog import bundled_grid_files, load_grid_file

    codes: list[str] = []
    for path in bundled_grid_files(None):
        for item in load_grid_file(path).items:
            if item.code not in codes:
                codes.append(item.code)
    return tuple(codes)


def _line(value: str) -> str:
    """One-line text: the text policy, then runs of spaces as one space."""
    return " ".join(check_text(value).split())


def _whole_number(value: Any) -> Any:
    """A quantity as sent: an integer (or a float without fraction, which JSON Schema counts as one);
    never a boolean or a string."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("doit être un nombre entier (sans guillemets)")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _enum_of_codes(schema: dict[str, Any]) -> None:
    schema["enum"] = list(item_codes())


class RequestedItem(BaseModel):
    """One service of the grid and its quantity."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        title="Article",
        description="Code de l'article de la grille tarifaire (ex. messagerie-5go, nom-de-domaine, page-internet)",
        min_length=1,
        max_length=40,
        json_schema_extra=_enum_of_codes,
    )
    # Strict: `true` or `"3"` are refused, not read as 1 and 3 (a JSON 3.0 is the integer 3, as JSON
    # Schema says).
    quantity: Annotated[int, Field(strict=True, ge=1, le=QUANTITY_MAX), BeforeValidator(_whole_number)] = Field(
        title="Quantité", description="Quantité (entier positif)"
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return check_text(value).strip().lower()


def _text_field(
    description: str,
    *,
    title: str | None = None,
    min_length: int = 0,
    max_length: int,
    default: Any = ...,
    multiline: bool = False,
) -> Any:
    return Field(
        default,
        title=title,
        description=description,
        min_length=min_length or None,
        max_length=max_length,
        json_schema_extra={"pattern": TEXT_PATTERN if multiline else NAME_PATTERN if min_length else LINE_PATTERN},
    )


class RequestForm(BaseModel):
    """A collectivity's request for services under the tripartite convention."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "collectivity": "62700",
                    "siret": "21620700100019",
                    "items": [{"code": "messagerie-5go", "quantity": 3}, {"code": "nom-de-domaine", "quantity": 1}],
                    "signatory_name": "Jeanne Dupont",
                    "signatory_email": "maire@regnauville.example",
                    "signatory_capacity": "Maire",
                    "domain_names": ["regnauville.fr"],
                    "mailbox_names": ["mairie", "secretariat"],
                }
            ]
        },
    )

    collectivity: str = Field(
        title="Collectivité",
        description=(
            "Code INSEE (5 caractères, ex. 62041 ou 2A004), SIREN (9 chiffres) ou SIRET (14 chiffres) de la "
            "collectivité ; un SIREN ou un SIRET dont la clé de contrôle est fausse est refusé (422), une "
            "commune inconnue aussi (404)"
        ),
        min_length=5,
        max_length=20,
        json_schema_extra={"pattern": COLLECTIVITY_PATTERN},
    )
    items: list[RequestedItem] = Field(
        title="Articles demandés",
        description="Articles demandés et quantités (chaque code une seule fois)",
        min_length=1,
        max_length=30,
    )
    signatory_name: str = _text_field(
        "Nom du signataire (maire, président…)", title="Nom du signataire", min_length=2, max_length=200
    )
    signatory_email: EmailStr = Field(
        title="Courriel du signataire", description="Adresse électronique du signataire", max_length=254
    )
    signatory_capacity: str = _text_field(
        "Qualité du signataire", title="Qualité du signataire", min_length=2, max_length=100, default="Maire"
    )
    siret: str | None = Field(
        default=None,
        title="SIRET facturé",
        description=(
            "SIRET de l'établissement facturé, en général la mairie (Chorus Pro), 14 chiffres dont la clé de "
            "contrôle est juste ; facultatif s'il est déjà connu"
        ),
        max_length=20,
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 20, "pattern": SIRET_PATTERN}, {"type": "null"}]},
    )
    address_line: str | None = Field(
        default=None,
        title="Adresse de facturation",
        description="Adresse de facturation (ex. « 1 place de la Mairie » ; par défaut pour une commune : Mairie)",
        max_length=300,
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 300, "pattern": LINE_PATTERN}, {"type": "null"}]},
    )
    postcode: str | None = Field(
        default=None,
        title="Code postal",
        description="Code postal de facturation, 5 chiffres (par défaut celui de la commune quand elle n'en a qu'un)",
        max_length=5,
        json_schema_extra={"anyOf": [{"type": "string", "pattern": POSTCODE_PATTERN}, {"type": "null"}]},
    )
    city: str | None = Field(
        default=None,
        title="Commune de facturation",
        description="Commune de l'adresse de facturation (par défaut : la commune elle-même)",
        max_length=100,
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 100, "pattern": LINE_PATTERN}, {"type": "null"}]},
    )
    chorus_service_code: str | None = Field(
        default=None,
        title="Code service Chorus Pro",
        description="Code service Chorus Pro (facultatif)",
        max_length=100,
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 100, "pattern": LINE_PATTERN}, {"type": "null"}]},
    )
    commitment_number: str | None = Field(
        default=None,
        title="Numéro d'engagement",
        description="Numéro d'engagement (facultatif)",
        max_length=100,
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 100, "pattern": LINE_PATTERN}, {"type": "null"}]},
    )
    domain_names: list[Annotated[str, Field(max_length=DOMAIN_MAX, json_schema_extra={"pattern": DOMAIN_PATTERN})]] = (
        Field(
            default_factory=list,
            title="Noms de domaine",
            description="Noms de domaine souhaités (ex. mairie-exemple.fr)",
            max_length=20,
        )
    )
    mailbox_names: list[Annotated[str, Field(max_length=64, json_schema_extra={"pattern": MAILBOX_PATTERN})]] = Field(
        default_factory=list,
        title="Boîtes aux lettres",
        description="Boîtes aux lettres souhaitées (partie avant @ : lettres, chiffres, point, tiret)",
        max_length=200,
    )
    allow_duplicate: bool = Field(
        default=False,
        title="Seconde demande volontaire",
        description=(
            "Déposer volontairement une seconde demande identique à une demande en cours de la même "
            "collectivité ; sans cela, la demande en cours est renvoyée et rien n'est créé"
        ),
    )

    @field_validator("collectivity")
    @classmethod
    def _collectivity(cls, value: str) -> str:
        check_text(value)
        cleaned = value.replace(" ", "").replace("\xa0", "").upper()
        if not _COLLECTIVITY.match(cleaned):
            raise ValueError(
                f"« {value} » n'est ni un code INSEE (5 caractères, ex. 62041), ni un SIREN (9 chiffres), "
                "ni un SIRET (14 chiffres)"
            )
        return cleaned

    @field_validator("signatory_name", "signatory_capacity")
    @classmethod
    def _names(cls, value: str) -> str:
        return _line(value)

    @field_validator("chorus_service_code", "commitment_number", "address_line", "city")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _line(value)

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(POSTCODE_PATTERN, value.strip()):
            raise ValueError(f"code postal « {value} » invalide (5 chiffres)")
        return value.strip()

    @field_validator("siret")
    @classmethod
    def _siret(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from stdnum.fr import siret

        check_text(value)
        cleaned = value.replace(" ", "")
        if not siret.is_valid(cleaned):
            raise ValueError(f"SIRET « {value} » invalide (14 chiffres et une clé de contrôle juste)")
        return cleaned

    @field_validator("domain_names", mode="before")
    @classmethod
    def _domains(cls, values: Any) -> Any:
        return _normalised_list(values)

    @field_validator("domain_names")
    @classmethod
    def _domains_valid(cls, values: list[str]) -> list[str]:
        for v in values:
            if not _DOMAIN.match(v):
                raise ValueError(f"nom de domaine « {v} » invalide (ex. mairie-exemple.fr)")
        return values

    @field_validator("mailbox_names", mode="before")
    @classmethod
    def _mailboxes(cls, values: Any) -> Any:
        return _normalised_list(values)

    @field_validator("mailbox_names")
    @classmethod
    def _mailboxes_valid(cls, values: list[str]) -> list[str]:
        for v in values:
            if not _MAILBOX.match(v):
                raise ValueError(f"nom de boîte « {v} » invalide (lettres, chiffres, point, tiret)")
        return values

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[RequestedItem]) -> list[RequestedItem]:
        codes = [i.code for i in items]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"article demandé deux fois : {', '.join(duplicates)} ; regroupez les quantités")
        return items


def _normalised_list(values: Any) -> Any:
    """Names lower-cased and stripped, empty ones dropped (other types are left to the type check)."""
    if not isinstance(values, list):
        return values
    cleaned = []
    for v in values:
        if isinstance(v, str):
            v = check_text(v).strip().lower()
            if not v:
                continue
        cleaned.append(v)
    return cleaned


Amount = Annotated[Decimal, Field(ge=0, le=AMOUNT_MAX, max_digits=10, decimal_places=2)]


class OperatorAmounts(BaseModel):
    """Amounts an operator sets for the "sur devis" lines of a request (TTC, in euros)."""

    model_config = ConfigDict(extra="forbid")

    support_amount: Amount | None = Field(default=None, description="Accompagnement annuel (€)")
    item_amounts: dict[Annotated[str, Field(min_length=1, max_length=40)], Amount] = Field(
        default_factory=dict, description="Montant TTC total par code d'article", max_length=30
    )
    comment: str = _text_field("Commentaire (justification du montant)", max_length=2000, default="", multiline=True)
    operator: str = _text_field("Votre nom", max_length=200, default="opérateur")

    @field_validator("item_amounts", mode="before")
    @classmethod
    def _codes(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {check_text(k).strip().lower() if isinstance(k, str) else k: v for k, v in values.items()}

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str) -> str:
        return check_text(value, multiline=True).strip()

    @field_validator("operator")
    @classmethod
    def _operator(cls, value: str) -> str:
        return _line(value)


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
    "support_amount": "accompagnement",
    "item_amounts": "montants",
    "comment": "commentaire",
    "operator": "opérateur",
}

# Pydantic's error types and their French sentence; `None`: the validator's own message (already French).
_MESSAGES: dict[str, str | None] = {
    "missing": "champ obligatoire",
    "extra_forbidden": "champ inconnu",
    "int_parsing": "doit être un nombre entier",
    "int_type": "doit être un nombre entier",
    "int_from_float": "doit être un nombre entier",
    "string_type": "doit être un texte",
    "string_unicode": "contient un caractère Unicode invalide (une moitié de paire de substitution)",
    "list_type": "doit être une liste",
    "dict_type": "doit être un objet JSON",
    "model_type": "doit être un objet JSON",
    "model_attributes_type": "doit être un objet JSON",
    "decimal_parsing": "doit être un montant",
    "decimal_type": "doit être un montant",
    "float_parsing": "doit être un montant",
    "finite_number": "doit être un montant fini",
    "decimal_max_digits": "montant trop grand",
    "decimal_max_places": "au plus deux décimales",
    "decimal_whole_digits": "montant trop grand",
    "string_pattern_mismatch": "forme invalide",
    "literal_error": "valeur non admise",
    "enum": "valeur non admise",
    "bool_type": "doit être vrai ou faux",
    "bool_parsing": "doit être vrai ou faux",
    "json_invalid": "JSON invalide",
    "recursion_loop": "structure trop imbriquée",
    "value_error": None,
    "assertion_error": None,
}


def _french(error: dict[str, Any]) -> str:
    """One pydantic error as a plain French sentence (never pydantic's English)."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("string_too_short", "too_short"):
        return f"trop court (au moins {ctx.get('min_length', 1)})"
    if kind in ("string_too_long", "too_long"):
        return f"trop long (au plus {ctx.get('max_length')})"
    if kind in ("greater_than_equal", "greater_than"):
        return f"doit être au moins {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"doit être au plus {ctx.get('le', ctx.get('lt'))}"
    if kind == "value_error" and "email" in str(error.get("msg", "")).lower():
        return "adresse électronique invalide (exemple : maire@commune.fr)"
    if kind in _MESSAGES:
        fixed = _MESSAGES[kind]
        if fixed is not None:
            return fixed
        return str(error.get("msg", "valeur invalide")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return "valeur invalide"


def _where(loc: tuple[Any, ...]) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"n° {p + 1}")
        elif str(p) in FIELD_LABELS:
            parts.append(FIELD_LABELS[str(p)])
        elif str(p) == "[key]":
            continue
        else:
            parts.append(str(p)[:60])
    return " › ".join(parts)


def errors_message(errors: Sequence[Any]) -> str:
    """One plain French sentence from pydantic's error dicts (up to three, with where they are)."""
    parts = []
    for error in list(errors)[:3]:
        where = _where(tuple(error.get("loc", ())))
        parts.append(f"{where} : {_french(dict(error))}" if where else _french(dict(error)))
    return " ; ".join(parts) or "valeur invalide"


def validation_message(exc: Exception) -> str:
    """One plain French sentence from a pydantic ValidationError (up to three errors, with where they are)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    return errors_message(exc.errors())


__all__ = [
    "COLLECTIVITY_PATTERN",
    "DOMAIN_PATTERN",
    "LINE_PATTERN",
    "MAILBOX_PATTERN",
    "NAME_PATTERN",
    "OperatorAmounts",
    "RequestForm",
    "RequestedItem",
    "UnsafeText",
    "errors_message",
    "item_codes",
    "validation_message",
]
