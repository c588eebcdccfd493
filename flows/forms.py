"""The operators' forms in the Prefect UI: one pydantic model per deployment, in French.

Prefect draws a deployment's "Run" form from the JSON schema of its parameters: each field's `title`
is its label, its `description` the help under it. So every field here has a French title and a
description with an example; optional texts default to "" rather than `None` (an `str | None` field is
drawn as a type switch), and item codes are a choice list whose entries show the label and the price of
the grid in force. Each form turns itself into what the service takes (`RequestForm`, `OperatorAmounts`,
`BillingUpdate`…), so that every rule is checked where the CLI and the API have it checked.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from mairie.formatting import euros
from mairie.schemas import AMOUNT_MAX, QUANTITY_MAX, OperatorAmounts, RequestedItem, RequestForm
from mairie.services.buyers import BillingUpdate
from models.money import parse_amount

SEPARATOR = " — "
AMOUNT_PATTERN = r"^\s*[0-9][0-9\s.]*(?:[,.][0-9]{1,2})?\s*€?\s*$"


@lru_cache(maxsize=1)
def item_choices() -> dict[str, str]:
    """Item code → the entry shown in a choice list: « messagerie-5go — Messagerie compte 5 Go — 16,80 €
    TTC par compte et par an », from the newest grid shipped with the software in force today (the choice
    is read back as its code; a quote is priced from the grid stored for its date)."""
    from models.catalog import bundled_grid_files, grid_in_force, load_grid_file
    from models.clock import paris_today

    grid = grid_in_force([load_grid_file(p) for p in bundled_grid_files(None)], paris_today())
    return {
        item.code: f"{item.code}{SEPARATOR}{item.label}{SEPARATOR}{euros(item.price_ttc)} TTC {item.unit}".strip()
        for item in grid.items
    }


def code_of(choice: str) -> str:
    """The item code of a choice-list entry (or of a bare code)."""
    return choice.split(SEPARATOR, 1)[0].strip().lower()


def _choice(value: Any) -> Any:
    """A bare code (the API's, a script's) is read as its entry of the list."""
    if isinstance(value, str):
        return item_choices().get(code_of(value), value)
    return value


def _choices_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = list(item_choices().values())


ItemChoice = Annotated[
    str,
    BeforeValidator(_choice),
    Field(
        title="Article",
        description="Article de la grille tarifaire (libellé et prix TTC) — ex. messagerie-5go",
        json_schema_extra=_choices_schema,
    ),
]


def _check_choice(value: str) -> str:
    if value not in item_choices().values():
        raise ValueError(f"article « {value} » inconnu de la grille : choisissez-le dans la liste")
    return value


def _blank_none(value: str) -> str | None:
    return value.strip() or None


def _amount(text: str, what: str) -> Decimal:
    try:
        amount = parse_amount(text)
    except ValueError as exc:
        raise ValueError(f"{what} : {exc}") from None
    if amount < 0 or amount > AMOUNT_MAX:
        raise ValueError(f"{what} : montant hors limites")
    return amount


def _described(name: str, example: str = "") -> dict[str, Any]:
    """Title and description of a `RequestForm` field (one source of truth), with an example."""
    info = RequestForm.model_fields[name]
    description = info.description or ""
    if example and "ex." not in description:
        description = f"{description} — ex. {example}"
    return {"title": info.title, "description": description}


# --------------------------------------------------------------------------------------------------
# demande-de-services
# --------------------------------------------------------------------------------------------------


OPTIONAL_TEXTS = ("siret", "address_line", "postcode", "city", "chorus_service_code", "commitment_number")


class ArticleDemande(BaseModel):
    """Un article de la grille et sa quantité."""

    model_config = ConfigDict(title="Article demandé", extra="forbid")

    code: ItemChoice
    quantity: int = Field(
        default=1,
        ge=1,
        le=QUANTITY_MAX,
        title="Quantité",
        description="Nombre de comptes, de postes, de Go… (entier positif) — ex. 3",
    )

    @model_validator(mode="after")
    def _known(self) -> ArticleDemande:
        _check_choice(self.code)
        return self


class DemandeDeServices(BaseModel):
    """La demande d'une collectivité, saisie par un opérateur."""

    model_config = ConfigDict(title="Demande de services", extra="forbid", str_strip_whitespace=True)

    collectivity: str = Field(
        min_length=5,
        max_length=20,
        title=RequestForm.model_fields["collectivity"].title,
        description="Code INSEE (5 caractères), SIREN (9 chiffres) ou SIRET (14 chiffres) — ex. 62041 ou 2A004",
    )
    items: list[ArticleDemande] = Field(min_length=1, max_length=30, **_described("items", "messagerie-5go × 3"))
    signatory_name: str = Field(min_length=2, max_length=200, **_described("signatory_name", "Jeanne Dupont"))
    signatory_email: str = Field(max_length=254, **_described("signatory_email", "maire@regnauville.fr"))
    signatory_capacity: str = Field(
        default="Maire", min_length=2, max_length=100, **_described("signatory_capacity", "Maire, Président")
    )
    siret: str = Field(default="", max_length=20, **_described("siret", "21620700900018"))
    address_line: str = Field(default="", max_length=300, **_described("address_line"))
    postcode: str = Field(default="", max_length=5, **_described("postcode", "62390"))
    city: str = Field(default="", max_length=100, **_described("city", "Regnauville"))
    chorus_service_code: str = Field(default="", max_length=100, **_described("chorus_service_code", "SERV-FIN"))
    commitment_number: str = Field(default="", max_length=100, **_described("commitment_number", "EJ-2026-0042"))
    domain_names: list[str] = Field(default_factory=list, max_length=20, **_described("domain_names"))
    mailbox_names: list[str] = Field(default_factory=list, max_length=200, **_described("mailbox_names", "mairie"))
    allow_duplicate: bool = Field(default=False, **_described("allow_duplicate"))

    @model_validator(mode="before")
    @classmethod
    def _from_request_form(cls, data: Any) -> Any:
        """A `RequestForm` (the API's, a script's) or its JSON is read as the same form (None as "")."""
        if isinstance(data, RequestForm):
            data = data.model_dump(mode="json")
        if isinstance(data, dict):
            return {k: ("" if v is None and k in OPTIONAL_TEXTS else v) for k, v in data.items()}
        return data

    def to_request_form(self) -> RequestForm:
        """The service's form, validated with every rule of the CLI and the API."""
        values = self.model_dump(exclude={"items"})
        for name in OPTIONAL_TEXTS:
            values[name] = _blank_none(values[name])
        items = [RequestedItem(code=code_of(i.code), quantity=i.quantity) for i in self.items]
        return RequestForm.model_validate({**values, "items": items})


# --------------------------------------------------------------------------------------------------
# The operators' actions
# --------------------------------------------------------------------------------------------------

_OPERATOR = Field(
    min_length=2, max_length=200, title="Opérateur", description="Votre nom (gardé au dossier) — ex. Alice Martin"
)
_INVOICE = Field(
    min_length=5, max_length=40, title="Numéro de facture", description="Tel qu'imprimé — ex. LFN-FAC-2026-00012"
)


class Paiement(BaseModel):
    """Un paiement reçu pour une facture (partiel possible ; au-delà du reste à payer, refusé)."""

    model_config = ConfigDict(title="Paiement", extra="forbid", str_strip_whitespace=True)

    invoice: str = _INVOICE
    amount: str = Field(
        max_length=20,
        pattern=AMOUNT_PATTERN,
        title="Montant payé (€ TTC)",
        description="Montant reçu — ex. 80,50 ou 1 200,00",
    )
    paid_on: date = Field(
        title="Date du paiement", description="Date du virement ou de l'encaissement — ex. 2026-03-02"
    )
    reference: str = Field(
        default="", max_length=200, title="Référence", description="Référence du virement (facultatif) — ex. VIR 0042"
    )
    operator: str = _OPERATOR

    def amount_value(self) -> Decimal:
        return _amount(self.amount, "montant")


class ImportPaiements(BaseModel):
    """Un fichier de paiements (CSV) du dossier d'import, choisi par son nom."""

    model_config = ConfigDict(title="Import de paiements", extra="forbid", str_strip_whitespace=True)

    file: str = Field(
        min_length=1,
        max_length=255,
        title="Fichier",
        description=(
            "Nom d'un fichier .csv déposé dans le dossier d'import (réglage MAIRIE_IMPORT_DIR ; colonnes "
            "invoice_number, amount, paid_on, reference) — ex. releve-2026-03.csv"
        ),
    )
    operator: str = _OPERATOR


class Avoir(BaseModel):
    """L'annulation d'une facture émise par un avoir, dans la séquence de son émetteur."""

    model_config = ConfigDict(title="Avoir", extra="forbid", str_strip_whitespace=True)

    invoice: str = _INVOICE
    reason: str = Field(
        min_length=3,
        max_length=500,
        title="Motif",
        description="Motif imprimé sur l'avoir — ex. Facture émise en double",
    )


class MontantArticle(BaseModel):
    """Le montant TTC total d'un article « sur devis »."""

    model_config = ConfigDict(title="Montant d'un article", extra="forbid")

    code: ItemChoice
    amount: str = Field(
        max_length=20,
        pattern=AMOUNT_PATTERN,
        title="Montant TTC (€)",
        description="Montant total TTC de la ligne — ex. 1380 ou 1 380,00",
    )

    @model_validator(mode="after")
    def _known(self) -> MontantArticle:
        _check_choice(self.code)
        return self


class NouveauDevis(BaseModel):
    """Une nouvelle version des devis et du projet de convention d'une demande (les liens précédents ne
    signent plus rien)."""

    model_config = ConfigDict(title="Nouveau devis", extra="forbid", str_strip_whitespace=True)

    request: str = Field(
        min_length=1,
        max_length=40,
        title="Demande",
        description="Référence de la demande (ou son numéro) — ex. MC-DEM-2026-00003",
    )
    amounts: list[MontantArticle] = Field(
        default_factory=list,
        max_length=30,
        title="Montants sur devis",
        description="Nouveaux montants des articles « sur devis » (facultatif) — ex. stockage-go : 1 380,00",
    )
    support: str = Field(
        default="",
        max_length=20,
        pattern=r"^$|" + AMOUNT_PATTERN,
        title="Accompagnement annuel (€ TTC)",
        description="Montant de l'accompagnement du CDG quand il est « sur devis » (facultatif) — ex. 1 200,00",
    )
    operator: str = _OPERATOR

    def operator_amounts(self) -> OperatorAmounts:
        items = {code_of(a.code): _amount(a.amount, code_of(a.code)) for a in self.amounts}
        support = _amount(self.support, "accompagnement") if self.support.strip() else None
        return OperatorAmounts(item_amounts=items, support_amount=support, operator=self.operator)


class RelanceCourriel(BaseModel):
    """Un courriel non remis, remis dans la file d'envoi une fois sa cause corrigée."""

    model_config = ConfigDict(title="Renvoi d'un courriel", extra="forbid")

    message_id: int = Field(
        ge=1,
        title="Numéro du courriel",
        description="Id du courriel non remis (artefact « courriels-non-remis » du tableau de bord) — ex. 42",
    )


class RemiseConvention(BaseModel):
    """La remise au syndicat d'une convention en vigueur, tout de suite (sans attendre le suivi)."""

    model_config = ConfigDict(title="Remise d'une convention", extra="forbid", str_strip_whitespace=True)

    convention: str = Field(
        min_length=5,
        max_length=40,
        title="Convention",
        description="Référence de la convention en vigueur — ex. LFN-CONV-2026-00004",
    )


class ExclusionCampagne(BaseModel):
    """Une collectivité laissée hors de la campagne de renouvellement d'une année (ou remise dedans)."""

    model_config = ConfigDict(title="Exclusion de la campagne", extra="forbid", str_strip_whitespace=True)

    year: int = Field(ge=2000, le=2100, title="Année de la campagne", description="ex. 2027")
    collectivity: str = Field(
        min_length=5,
        max_length=20,
        title="Collectivité",
        description="Code INSEE, SIREN ou SIRET — ex. 62700 ou 216207001",
    )
    reason: str = Field(
        default="",
        max_length=500,
        title="Motif",
        description="Pourquoi elle n'est pas renouvelée (requis pour exclure) — ex. Résiliation au 31/12",
    )
    exclude: bool = Field(
        default=True,
        title="Exclure",
        description="Coché : exclure de la campagne ; décoché : remettre dans la campagne",
    )
    operator: str = _OPERATOR


class IdentiteFacturation(BaseModel):
    """L'identité de facturation d'une collectivité (SIRET de la mairie, adresse, code service) ; les
    premières factures retenues faute d'identité partent dès qu'elle est complète. Un champ laissé vide
    ne change pas."""

    model_config = ConfigDict(title="Identité de facturation", extra="forbid", str_strip_whitespace=True)

    collectivity: str = Field(
        min_length=5,
        max_length=20,
        title="Collectivité",
        description="Code INSEE, SIREN ou SIRET — ex. 62700",
    )
    siret: str = Field(
        default="",
        max_length=20,
        title="SIRET facturé",
        description="SIRET de l'établissement facturé, en général la mairie (14 chiffres) — ex. 21620700900018",
    )
    address_line: str = Field(
        default="", max_length=300, title="Adresse", description="Adresse de facturation — ex. 1 place de la Mairie"
    )
    postcode: str = Field(default="", max_length=5, title="Code postal", description="5 chiffres — ex. 62390")
    city: str = Field(default="", max_length=100, title="Commune", description="Commune de l'adresse — ex. Regnauville")
    service_code: str = Field(
        default="", max_length=100, title="Code service Chorus Pro", description="Facultatif — ex. SERV-FIN"
    )
    operator: str = _OPERATOR

    def update(self) -> BillingUpdate:
        return BillingUpdate(
            siret=_blank_none(self.siret),
            address_line=_blank_none(self.address_line),
            postcode=_blank_none(self.postcode),
            city=_blank_none(self.city),
            service_code=_blank_none(self.service_code),
        )


class Collectivite(BaseModel):
    """Une collectivité, par son nom ou son code."""

    model_config = ConfigDict(title="Collectivité", extra="forbid", str_strip_whitespace=True)

    identifier: str = Field(
        min_length=2,
        max_length=100,
        title="Collectivité",
        description="Nom (ex. Regnauville), code INSEE (ex. 62700), SIREN ou SIRET",
    )
