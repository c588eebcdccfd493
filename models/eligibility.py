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


PUBLIC_ESTABLISHMENT_UNSET = (
    "Établissement public : le tarif d'accompagnement n'est pas fixé ; un opérateur doit saisir le montant."
)
PUBLIC_ESTABLISHMENT_FEE = "Établissement public : tarif d'accompagnement par établissement et par an."


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

    band, fee, on_quote, reasons = _support(profile, grid.bands.get(cdg, ()), public_establishment_fee)
    on_quote += _items_on_quote(grid, basket)
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


def _support(
    profile: CollectivityProfile, bands: Sequence[Band], public_establishment_fee: Decimal | None
) -> tuple[Band | None, Decimal | None, list[OnQuote], list[str]]:
    """The support fee of an eligible collectivity: its band, or why an operator must set the amount."""
    if profile.kind == "public_establishment":
        if public_establishment_fee is None:
            return None, None, [OnQuote("public_establishment_fee", PUBLIC_ESTABLISHMENT_UNSET)], []
        return None, public_establishment_fee, [], [PUBLIC_ESTABLISHMENT_FEE]
    if profile.kind == "other":
        return (
            None,
            None,
            [OnQuote("other_structure", "Autre structure : l'accompagnement fait l'objet d'un devis.")],
            [],
        )
    if profile.population is None:
        unknown = "Population inconnue : un opérateur doit la saisir ou fixer le montant."
        return None, None, [OnQuote("population_unknown", unknown)], []
    population = profile.population.value
    band = band_for(population, bands)
    if band is not None:
        return band, band.fee, [], [f"Strate « {band.label} » ({_n(population)} habitants)."]
    if bands and population == bands[-1].max_population:
        message = (
            f"Population d'exactement {_n(population)} habitants : aucune strate ne "
            "s'applique (« moins de » / « plus de »), l'accompagnement est sur devis."
        )
        return None, None, [OnQuote("population_at_limit", message)], []
    message = (
        f"Plus de {_n(bands[-1].max_population if bands else 0)} habitants "
        f"({_n(population)}) : l'accompagnement est sur devis."
    )
    return None, None, [OnQuote("population_over_limit", message)], []


def _items_on_quote(grid: Grid, basket: Sequence[tuple[str, int]]) -> list[OnQuote]:
    """The per-item "sur devis" cases: a quantity above the item's limit (feasibility to check)."""
    cases = []
    for code, quantity in basket:
        if not grid.has_item(code):
            continue
        item = grid.item(code)
        if item.max_quantity is not None and quantity > item.max_quantity:
            cases.append(
                OnQuote(
                    "quantity_over_limit",
                    f"{item.label} : {quantity} demandés, au-delà de {item.max_quantity} la prestation "
                    "est sur devis, sous réserve de faisabilité.",
                    item_code=code,
                )
            )
    return cases
