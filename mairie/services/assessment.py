"""One entry point to assess a collectivity on a date: find it (INSEE code, SIREN or SIRET), take the
grid in force, build its profile with the configured kind of population, and apply the eligibility rule.
Quote previews, intake and renewal all go through `assess_collectivity`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlmodel import Session

from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.settings import Settings
from models.catalog import Grid
from models.directory import Found, find, grid_on
from models.eligibility import Eligibility, assess
from models.entities import Collectivity
from models.errors import InvalidTransition
from models.pricing import BasketLine, QuotePreview, quote_preview, validate_basket


@dataclass(frozen=True)
class Assessment:
    found: Found
    eligibility: Eligibility
    grid: Grid
    on: date


def identifier_of(collectivity: Collectivity) -> str:
    """How a stored collectivity is found again in the reference data: its INSEE code, else its SIREN."""
    return collectivity.insee_code or collectivity.siren


def assess_collectivity(
    session: Session,
    settings: Settings,
    identifier: str,
    on: date,
    basket: Sequence[BasketLine] = (),
    grid: Grid | None = None,
) -> Assessment:
    """Eligibility, stratum and support fee of a collectivity on a date (with the grid in force then,
    unless one is given); `basket` adds the per-item "sur devis" cases."""
    found = find(session, identifier, on)
    grid = grid or grid_on(session, on)
    verdict = assess(
        found.profile(settings.population_kind),
        grid,
        public_establishment_fee=settings.public_establishment_fee,
        basket=[(line.code, line.quantity) for line in basket],
    )
    return Assessment(found, verdict, grid, on)


def preview(
    settings: Settings, assessment: Assessment, basket: Sequence[BasketLine], support_amount: Decimal | None = None
) -> QuotePreview:
    """The two quotes of an eligible assessment (nothing stored): services by the syndicat, support by
    the CDG of the department."""
    cdg = settings.cdg_for_department(assessment.eligibility.department)
    if not assessment.eligibility.eligible or cdg is None:
        raise InvalidTransition(f"{assessment.found.name} n'est pas éligible : aucun devis")
    return quote_preview(
        assessment.grid,
        basket,
        assessment.eligibility,
        syndicat=settings.syndicat.code,
        syndicat_vat=paperwork.vat_of(settings.syndicat),
        cdg_vat=paperwork.vat_of(cdg),
        support_amount=support_amount,
    )


def preview_quotes(
    settings: Settings, identifier: str, basket: Sequence[BasketLine], on: date
) -> tuple[Assessment, QuotePreview | None]:
    """The two quotes a request would get on a date (nothing is stored or numbered)."""
    with unit_of_work(settings) as uow:
        assessment = assess_collectivity(uow.session, settings, identifier, on, basket)
    validate_basket(assessment.grid, basket)
    if not assessment.eligibility.eligible:
        return assessment, None
    return assessment, preview(settings, assessment, basket)


def assess_named(settings: Settings, identifier: str, on: date, basket: Sequence[BasketLine] = ()) -> Assessment:
    """`assess_collectivity` in a transaction of its own, for a collectivity named by a person."""
    with unit_of_work(settings) as uow:
        return assess_collectivity(uow.session, settings, identifier, on, basket)
