"""Eligibility and stratum: may this collectivity be served, by which CDG, at which support fee?

Plain functions over values: no database, no settings object. The verdict always carries its reasons,
and an "on quote" case never refuses: it becomes an operator task (DOMAIN.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from models.catalog import Band, Grid

CollectivityKind = Literal["commune", "epci", "public_establishment", "other"]
COLLECTIVITY_KINDS: tuple[str, ...] = ("commune", "epci", "public_establishment", "other")
KIND_LABELS = {
    "commune": "commune",
    "epci": "EPCI",
    "public_establishment": "établissement public",
    "other": "autre structure",
}
# Departments served and the issuer code of their Centre de gestion.
CDG_BY_DEPARTMENT = {"62": "CDG62", "59": "CDG59"}
DEPARTMENT_NAMES = {"59": "Nord", "62": "Pas-de-Calais"}


@dataclass(frozen=True)
class Population:
    """A population figure with its provenance, as printed on the support quote."""

    value: int
    kind: Literal["total", "municipal", "operator"]
    vintage: int | None
    source: str

    @property
    def kind_label(self) -> str:
        return {
            "total": "population totale",
            "municipal": "population municipale",
            "operator": "population déclarée",
        }[self.kind]


@dataclass(frozen=True)
class CollectivityProfile:
    """What eligibility needs to know of a collectivity."""

    kind: str
    name: str
    department: str
    population: Population | None
    other_population: Population | None = None  # the other INSEE kind, shown beside it


@dataclass(frozen=True)
class OnQuote:
    """Why an amount must be set by an operator before the quotes can be issued."""

    # population_over_limit | population_at_limit | public_establishment_fee | other_structure
    # | quantity_over_limit | population_unknown
    code: str
    message: str
    item_code: str | None = None


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    department: str
    cdg: str | None
    kind: str
    population: Population | None
    band: Band | None
    support_fee: Decimal | None
    on_quote: tuple[OnQuote, ...] = ()
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _n(value: int) -> str:
    """An integer the French way (`43 765`)."""
    return f"{value:,}".replace(",", "\u202f")


def band_for(population: int, bands: Sequence[Band]) -> Band | None:
    """The band whose [min, max) holds the population; None above the last band ("sur devis")."""
    if population < 0:
        raise ValueError("a population cannot be negative")
    for band in bands:
        if band.contains(population):
            return band
    return None


def assess(
    profile: CollectivityProfile,
    grid: Grid,
    *,
    public_establishment_fee: Decimal | None = None,
    basket: Sequence[tuple[str, int]] = (),
) -> Eligibility:
    """The eligibility verdict, the stratum and the support fee of a collectivity on a grid.

    `basket` (item code, quantity) adds the per-item on-quote cases (e.g. storage above 100 GB).
    """
    department = profile.department
    cdg = CDG_BY_DEPARTMENT.get(department)
    if profile.kind not in COLLECTIVITY_KINDS:
        raise ValueError(f"unknown collectivity kind {profile.kind!r}")
    if cdg is None:
        return Eligibility(
            eligible=False,
            department=department,
            cdg=None,
            kind=profile.kind,
            population=profile.population,
            band=None,
            support_fee=None,
            reasons=(
                f"La convention tripartite est réservée aux collectivités du Nord (59) et du "
                f"Pas-de-Calais (62) ; {profile.name} relève du département {department}.",
            ),
        )

    on_quote: list[OnQuote] = []
    reasons: list[str] = []
    band: Band | None = None
    fee: Decimal | None = None
    bands = grid.bands.get(cdg, ())
    if profile.kind == "public_establishment":
        if public_establishment_fee is None:
            on_quote.append(
                OnQuote(
                    "public_establishment_fee",
                    "Établissement public : le tarif d'accompagnement n'est pas fixé ; un opérateur doit "
                    "saisir le montant.",
                )
            )
        else:
            fee = public_establishment_fee
            reasons.append("Établissement public : tarif d'accompagnement par établissement et par an.")
    elif profile.kind == "other":
        on_quote.append(OnQuote("other_structure", "Autre structure : l'accompagnement fait l'objet d'un devis."))
    elif profile.population is None:
        on_quote.append(
            OnQuote("population_unknown", "Population inconnue : un opérateur doit la saisir ou fixer le montant.")
        )
    else:
        band = band_for(profile.population.value, bands)
        if band is not None:
            fee = band.fee
            reasons.append(f"Strate « {band.label} » ({_n(profile.population.value)} habitants).")
        elif bands and profile.population.value == bands[-1].max_population:
            on_quote.append(
                OnQuote(
                    "population_at_limit",
                    f"Population d'exactement {_n(profile.population.value)} habitants : aucune strate ne "
                    "s'applique (« moins de » / « plus de »), l'accompagnement est sur devis.",
                )
            )
        else:
            on_quote.append(
                OnQuote(
                    "population_over_limit",
                    f"Plus de {_n(bands[-1].max_population if bands else 0)} habitants "
                    f"({_n(profile.population.value)}) : l'accompagnement est sur devis.",
                )
            )
    for code, quantity in basket:
        if grid.has_item(code):
            item = grid.item(code)
            if item.max_quantity is not None and quantity > item.max_quantity:
                on_quote.append(
                    OnQuote(
                        "quantity_over_limit",
                        f"{item.label} : {quantity} demandés, au-delà de {item.max_quantity} la prestation "
                        "est sur devis, sous réserve de faisabilité.",
                        item_code=code,
                    )
                )
    return Eligibility(
        eligible=True,
        department=department,
        cdg=cdg,
        kind=profile.kind,
        population=profile.population,
        band=band,
        support_fee=fee,
        on_quote=tuple(on_quote),
        reasons=tuple(reasons),
    )
