"""Eligibility and quote previews for a collectivity named by INSEE code, SIREN or SIRET."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from mairie.database import unit_of_work
from mairie.settings import IssuerIdentity, Settings
from models.catalog import Grid
from models.db import reachable
from models.eligibility import Eligibility, assess
from models.pricing import BasketLine, QuotePreview, VatRegime, quote_preview, validate_basket
from models.repository import Found, find, grid_on


def vat_regime(identity: IssuerIdentity) -> VatRegime:
    if identity.vat_regime == "outside_scope":
        return VatRegime.outside_scope(identity.vat_exemption_reason or "TVA non applicable — article 256 B du CGI")
    return VatRegime.standard(identity.vat_rate)


@dataclass(frozen=True)
class Assessment:
    found: Found
    eligibility: Eligibility
    grid: Grid
    on: date


def assess_collectivity(settings: Settings, identifier: str, on: date, basket: Sequence[BasketLine] = ()) -> Assessment:
    """Eligibility, stratum and support fee of a collectivity on a date."""
    with reachable(settings.sqlalchemy_url), unit_of_work(settings) as uow:
        found = find(uow.session, identifier, on)
        grid = grid_on(uow.session, on)
    verdict = assess(
        found.profile(settings.population_kind),
        grid,
        public_establishment_fee=settings.public_establishment_fee,
        basket=[(line.code, line.quantity) for line in basket],
    )
    return Assessment(found, verdict, grid, on)


def preview_quotes(
    settings: Settings, identifier: str, basket: Sequence[BasketLine], on: date
) -> tuple[Assessment, QuotePreview | None]:
    """The two quotes a request would get on a date (nothing is stored or numbered)."""
    assessment = assess_collectivity(settings, identifier, on, basket)
    validate_basket(assessment.grid, basket)
    if not assessment.eligibility.eligible:
        return assessment, None
    cdg = settings.cdg_for_department(assessment.eligibility.department)
    assert cdg is not None
    preview = quote_preview(
        assessment.grid,
        basket,
        assessment.eligibility,
        syndicat=settings.syndicat.code,
        syndicat_vat=vat_regime(settings.syndicat),
        cdg_vat=vat_regime(cdg),
    )
    return assessment, preview
