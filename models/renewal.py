"""The yearly renewal of one subscription, as plain values: which lines each issuer invoices, and why the
amounts differ from last year's (new grid, band change, ended service, pack renewal)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from models.catalog import Grid
from models.eligibility import Eligibility
from models.pricing import BasketLine, PricedDocument, VatRegime, price_lines, renewal_drafts, support_draft


@dataclass(frozen=True)
class LiveItem:
    code: str
    quantity: int
    started_on: date
    ended_on: date | None = None
    operator_amount: Decimal | None = None


def renews_on(item: LiveItem, year: int, renewal_date: date) -> bool:
    """An item is renewed in `year` if it started in an earlier year and is not ended by the renewal date."""
    if item.started_on >= date(year, 1, 1):
        return False  # its first invoice covers this year
    return item.ended_on is None or item.ended_on > renewal_date


@dataclass(frozen=True)
class RenewalPlan:
    documents: tuple[PricedDocument, ...]
    reasons: tuple[str, ...] = ()
    pending: tuple[str, ...] = field(default_factory=tuple)


def plan_renewal(
    *,
    items: Sequence[LiveItem],
    year: int,
    renewal_date: date,
    grid: Grid,
    previous_grid: Grid | None,
    verdict: Eligibility,
    previous_verdict: Eligibility | None,
    support_amount: Decimal | None,
    syndicat: str,
    syndicat_vat: VatRegime,
    cdg_vat: VatRegime,
) -> RenewalPlan:
    """The renewal invoices' lines of one subscription for `year`, with the reasons of any change."""
    live = [i for i in items if renews_on(i, year, renewal_date)]
    reasons: list[str] = []
    pending: list[str] = []
    for item in items:
        if item.ended_on is not None and date(year - 1, 1, 1) <= item.ended_on <= renewal_date:
            reasons.append(f"service arrêté : {grid.item(item.code).label} (fin le {item.ended_on:%d/%m/%Y})")
    if previous_grid is not None and previous_grid.code != grid.code:
        reasons.append(f"nouvelle grille tarifaire en vigueur le {grid.effective_from:%d/%m/%Y}")
    for item in live:
        if grid.item(item.code).kind == "first_year":
            reasons.append(f"{grid.item(item.code).label} : renouvellement au prix annuel de chaque licence")
    drafts = renewal_drafts(grid, [BasketLine(i.code, i.quantity, i.operator_amount) for i in live])
    documents = []
    if drafts:
        documents.append(price_lines(syndicat, syndicat_vat, drafts))
    fee = support_amount if support_amount is not None else verdict.support_fee
    if previous_verdict is not None and support_amount is None and previous_verdict.band != verdict.band:
        before = previous_verdict.band.label if previous_verdict.band else "sur devis"
        after = verdict.band.label if verdict.band else "sur devis"
        values = [v.population.value if v.population else None for v in (previous_verdict, verdict)]
        reasons.append(f"changement de strate : {before} → {after} (population {values[0]} → {values[1]})")
    if fee is None:
        pending.append("accompagnement")
    elif verdict.cdg is not None:
        documents.append(price_lines(verdict.cdg, cdg_vat, [support_draft(grid, fee)]))
    return RenewalPlan(tuple(documents), tuple(reasons), tuple(pending))


def renewal_date(year: int, month: int, day: int) -> date:
    """The campaign date of a billing year (default 15 January, a setting)."""
    return date(year, month, day)


@dataclass(frozen=True)
class LiveWindow:
    """Which subscriptions a campaign of `year` renews: active, started before the year (their first
    invoice covered the months up to then), not ended by the renewal date."""

    year: int
    renewal_date: date

    @property
    def started_before(self) -> date:
        return date(self.year, 1, 1)

    def contains(self, *, status: str, started_on: date, ended_on: date | None) -> bool:
        return (
            status == "active"
            and started_on < self.started_before
            and (ended_on is None or ended_on > self.renewal_date)
        )
