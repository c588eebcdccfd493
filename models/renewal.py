"""The yearly renewal of one subscription, as plain values: which lines each issuer invoices, over which
months, and why the amounts differ from last year's (new grid, band change, ended service, pack renewal,
a first year not billed in full yet)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from models.catalog import Grid
from models.eligibility import Eligibility
from models.periods import BilledPeriod, campaign_period
from models.pricing import BasketLine, PricedDocument, VatRegime, price_lines, renewal_drafts, support_draft


@dataclass(frozen=True)
class LiveItem:
    """A subscribed item. `started_on` is the first day it was billed from (its go-live: the first
    invoice's go-live date, or the day an item added later went live); `ended_on` its last day of service."""

    code: str
    quantity: int
    started_on: date
    ended_on: date | None = None
    operator_amount: Decimal | None = None


def renewal_period(item: LiveItem, year: int, *, full_first_year: bool = False) -> BilledPeriod | None:
    """What the campaign of `year` bills of a yearly or first-year item (None: nothing): the months of
    `year` its first invoice did not cover, up to its last day of service (see `models.periods`)."""
    return campaign_period(year, started_on=item.started_on, ended_on=item.ended_on, full_first_year=full_first_year)


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
    full_first_year: bool = False,
    subscription_started_on: date | None = None,
    subscription_ended_on: date | None = None,
) -> RenewalPlan:
    """The renewal invoices' lines of one subscription for `year`, with the reasons of any change.

    Each yearly item (a first-year pack as what it renews into) is billed for the months of `year` not
    billed yet: the whole year, or fewer when its first invoice covered the start of the year (setting
    `full_first_year`) or when it ends within the year (started months). One-off items are not renewed.
    The support fee follows the subscription the same way (`subscription_started_on`, its go-live, and
    `subscription_ended_on`; both None: a full year).
    """
    reasons: list[str] = []
    pending: list[str] = []
    drafts = []
    for item in items:
        if item.ended_on is not None and item.ended_on < date(year - 1, 1, 1):
            continue  # ended before last year: nothing to bill, nothing to explain
        kind, label = grid.item(item.code).kind, grid.item(item.code).label
        period = None if kind == "one_off" else renewal_period(item, year, full_first_year=full_first_year)
        if item.ended_on is not None and item.ended_on <= date(year, 12, 31):
            billed = f", {period.months} mois facturés" if period else ""
            what = "service arrêté" if item.ended_on <= renewal_date else "arrêt prévu"
            reasons.append(f"{what} : {label} (fin le {item.ended_on:%d/%m/%Y}{billed})")
        if period is None:
            continue
        if kind == "first_year":
            reasons.append(f"{label} : renouvellement au prix annuel de chaque licence")
        if period.start > date(year, 1, 1):
            covered = period.start - timedelta(days=1)
            reasons.append(
                f"{label} : première année facturée jusqu'au {covered:%d/%m/%Y}, {period.months} mois facturés"
            )
        drafts += renewal_drafts(grid, [BasketLine(item.code, item.quantity, item.operator_amount)], period=period)
    if previous_grid is not None and previous_grid.code != grid.code:
        reasons.append(f"nouvelle grille tarifaire en vigueur le {grid.effective_from:%d/%m/%Y}")
    documents = []
    if drafts:
        documents.append(price_lines(syndicat, syndicat_vat, drafts))
    fee = support_amount if support_amount is not None else verdict.support_fee
    if previous_verdict is not None and support_amount is None and previous_verdict.band != verdict.band:
        before = previous_verdict.band.label if previous_verdict.band else "sur devis"
        after = verdict.band.label if verdict.band else "sur devis"
        values = [v.population.value if v.population else None for v in (previous_verdict, verdict)]
        reasons.append(f"changement de strate : {before} → {after} (population {values[0]} → {values[1]})")
    support_period = campaign_period(
        year, started_on=subscription_started_on, ended_on=subscription_ended_on, full_first_year=full_first_year
    )
    # no support period: the subscription's first invoice covers the year, or it ended before
    if support_period is not None and fee is None:
        pending.append("accompagnement")
    elif support_period is not None and fee is not None and verdict.cdg is not None:
        documents.append(price_lines(verdict.cdg, cdg_vat, [support_draft(grid, fee, period=support_period)]))
    return RenewalPlan(tuple(documents), tuple(reasons), tuple(pending))


def renewal_date(year: int, month: int, day: int) -> date:
    """The campaign date of a billing year (default 15 January, a setting)."""
    return date(year, month, day)


@dataclass(frozen=True)
class LiveWindow:
    """Which subscriptions a campaign of `year` renews: active, started before the year (their first
    invoice covered the months up to then), and not ended before the year began (a service ended in
    January is still billed for its started months of the year)."""

    year: int
    renewal_date: date

    @property
    def started_before(self) -> date:
        return date(self.year, 1, 1)

    def contains(self, *, status: str, started_on: date, ended_on: date | None) -> bool:
        return (
            status == "active"
            and started_on < self.started_before
            and (ended_on is None or ended_on >= self.started_before)
        )
