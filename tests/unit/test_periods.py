"""Billing periods (DOMAIN.md, "Billing periods — every month of service is billed once"): the rule on
examples, then a whole life — first invoice, items added and ended, several campaigns — in both modes,
checked on the billed lines: no item-month billed twice, none billed as a year, none left unbilled, and
every amount the deliberated price × quantity × months / 12."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.catalog import GRIDS_DIR, SUPPORT_CODE, load_grid_file
from models.eligibility import CollectivityProfile, Population, assess
from models.money import to_money
from models.periods import (
    FIRST_INVOICE,
    BilledPeriod,
    BilledSpan,
    Campaign,
    campaign_period,
    first_invoice_period,
    miscounted,
    months_billed,
    months_of,
    overlaps,
    spans_of,
    started_months,
)
from models.pricing import BasketLine, PricedDocument, VatRegime, first_year_drafts, price_lines, support_draft
from models.renewal import LiveItem, plan_renewal

GRID = load_grid_file(GRIDS_DIR / "2025-07-10.json")
RENEWS_AS = {i.code: i.renews_as for i in GRID.items if i.renews_as}
PACK = "pack-antivirus-mdp"
PROFILE = CollectivityProfile(
    kind="commune", name="Test", department="62", population=Population(300, "total", 2023, "INSEE")
)
VERDICT = assess(PROFILE, GRID)
assert VERDICT.support_fee is not None
FEE: Decimal = VERDICT.support_fee


# --- the rule on examples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("go_live", "full_first_year", "end", "months"),
    [
        (date(2026, 12, 1), False, date(2026, 12, 31), 1),
        (date(2026, 1, 1), False, date(2026, 12, 31), 12),
        (date(2026, 1, 31), False, date(2026, 12, 31), 12),
        (date(2026, 3, 15), False, date(2026, 12, 31), 10),
        (date(2026, 12, 1), True, date(2027, 11, 30), 12),
        (date(2026, 3, 15), True, date(2027, 2, 28), 12),
        (date(2027, 3, 31), True, date(2028, 2, 29), 12),  # a leap year's February
        (date(2026, 1, 10), True, date(2026, 12, 31), 12),  # January: both modes agree
    ],
)
def test_first_invoice_period(go_live, full_first_year, end, months):
    assert first_invoice_period(go_live, full_first_year=full_first_year) == BilledPeriod(go_live, end, months)


@pytest.mark.parametrize(
    ("started_on", "ended_on", "full_first_year", "expected"),
    [
        (date(2026, 12, 1), None, False, (date(2027, 1, 1), date(2027, 12, 31), 12)),
        (date(2026, 12, 1), None, True, (date(2027, 12, 1), date(2027, 12, 31), 1)),
        (date(2026, 3, 15), None, True, (date(2027, 3, 1), date(2027, 12, 31), 10)),
        (date(2026, 1, 10), None, True, (date(2027, 1, 1), date(2027, 12, 31), 12)),
        (date(2020, 5, 5), date(2027, 6, 30), False, (date(2027, 1, 1), date(2027, 6, 30), 6)),
        (date(2020, 5, 5), date(2027, 6, 1), False, (date(2027, 1, 1), date(2027, 6, 1), 6)),  # June started
        (date(2020, 5, 5), date(2027, 1, 10), True, (date(2027, 1, 1), date(2027, 1, 10), 1)),
        (date(2026, 12, 1), date(2027, 6, 30), True, None),  # its first invoice covered it to 30 November
        (date(2020, 5, 5), date(2026, 12, 31), False, None),  # ended before the year
        (date(2027, 2, 1), None, False, None),  # started in the year: its first invoice covers it
        (None, None, False, (date(2027, 1, 1), date(2027, 12, 31), 12)),
    ],
)
def test_campaign_period(started_on, ended_on, full_first_year, expected):
    period = campaign_period(2027, started_on=started_on, ended_on=ended_on, full_first_year=full_first_year)
    assert period == (None if expected is None else BilledPeriod(*expected))


def test_what_each_kind_is_billed():
    go_live = date(2026, 12, 1)
    assert months_billed("one_off", go_live, None, FIRST_INVOICE) == BilledPeriod(go_live, go_live, 1)
    assert months_billed("first_year", go_live, None, FIRST_INVOICE) == BilledPeriod(go_live, date(2026, 12, 31), 1)
    assert months_billed("yearly", go_live, None, FIRST_INVOICE) == BilledPeriod(go_live, date(2026, 12, 31), 1)
    assert months_billed("one_off", go_live, None, Campaign(2027)) is None
    assert months_billed("first_year", go_live, None, Campaign(2027)) is None  # renewed as its yearly parts
    assert months_billed("yearly", go_live, None, Campaign(2027)) == BilledPeriod(
        date(2027, 1, 1), date(2027, 12, 31), 12
    )
    assert months_billed("yearly", go_live, None, Campaign(2027), full_first_year=True) == BilledPeriod(
        date(2027, 12, 1), date(2027, 12, 31), 1
    )


def test_a_period_cannot_bill_a_year_for_a_month():
    with pytest.raises(ValueError, match="12 months billed"):
        BilledPeriod(date(2026, 12, 1), date(2026, 12, 31), 12)
    with pytest.raises(ValueError, match="ends before"):
        BilledPeriod.between(date(2026, 12, 2), date(2026, 12, 1))
    with pytest.raises(ValueError, match="at most 12"):
        BilledPeriod.between(date(2026, 1, 1), date(2027, 1, 1))
    assert started_months(date(2026, 12, 31), date(2027, 1, 1)) == 2
    assert months_of(date(2026, 11, 30), date(2027, 1, 1)) == ((2026, 11), (2026, 12), (2027, 1))


def test_the_checker_sees_the_bugs_of_issue_15():
    # the first invoice billed December 2026 at the yearly price: a year billed for one month
    as_a_year = BilledSpan(("s", "messagerie-5go"), date(2026, 12, 1), date(2026, 12, 31), 12, where="FAC-1")
    assert miscounted([as_a_year]) == [as_a_year]
    # a first invoice for 12 months from December, then a campaign billing the whole of 2027
    first = BilledSpan(("s", "messagerie-5go"), date(2026, 12, 1), date(2027, 11, 30), 12, where="FAC-1")
    campaign = BilledSpan(("s", "messagerie-5go"), date(2027, 1, 1), date(2027, 12, 31), 12, where="FAC-2")
    found = overlaps([first, campaign])
    assert [o.unit for o in found] == [(2027, m) for m in range(1, 12)]
    assert "FAC-1 and FAC-2" in str(found[0])
    assert miscounted([first, campaign]) == []
    # a one-off billed twice, in different years
    nas = [BilledSpan(("s", "nas"), date(y, 1, 5), date(y, 1, 5), None, once=True) for y in (2026, 2027)]
    assert [o.unit for o in overlaps(nas)] == ["once"]
    # another subscription, or another subscribed item, is another key
    other = BilledSpan(("t", "messagerie-5go"), date(2027, 1, 1), date(2027, 12, 31), 12)
    assert overlaps([first, other]) == []


def test_go_live_on_1_december_then_the_next_campaign():
    """The "done when" of issue 15, as rules: first invoices prorated (1/12 of the yearly items and of
    the support fee), the next campaign for the full year, no overlap."""
    basket = [
        BasketLine("messagerie-5go", 2),
        BasketLine("sauvegarde-mes-n1", 1),
        BasketLine("sauvegarde-abo-n1", 1),
        BasketLine(PACK, 2),
    ]
    go_live = date(2026, 12, 1)
    services = price_lines("LFN", VatRegime.standard(), first_year_drafts(GRID, basket, go_live=go_live))
    support = price_lines(
        "CDG62", VatRegime.outside_scope(), [support_draft(GRID, FEE, period=first_invoice_period(go_live))]
    )
    assert [(line.code, line.months, line.total_ttc) for line in services.lines] == [
        ("messagerie-5go", 1, Decimal("2.80")),  # 2 × 16,80 / 12
        ("sauvegarde-mes-n1", None, Decimal("110.40")),  # one-off, in full
        ("sauvegarde-abo-n1", 1, Decimal("36.80")),  # 441,60 / 12
        (PACK, None, Decimal("62.40")),  # first-year price, in full
    ]
    assert services.amount_due == Decimal("212.40")
    assert services.billing_period == (go_live, date(2026, 12, 31))
    assert support.amount_due == to_money(FEE / 12) == Decimal("4.17")

    plan = plan_renewal(
        items=[LiveItem(b.code, b.quantity, go_live) for b in basket],
        year=2027,
        renewal_date=date(2027, 1, 15),
        grid=GRID,
        previous_grid=GRID,
        verdict=VERDICT,
        previous_verdict=VERDICT,
        support_amount=None,
        syndicat="LFN",
        syndicat_vat=VatRegime.standard(),
        cdg_vat=VatRegime.outside_scope(),
        subscription_started_on=go_live,
    )
    renewal, renewal_support = plan.documents
    assert [(line.code, line.months, line.period_start, line.period_end) for line in renewal.lines] == [
        ("messagerie-5go", 12, date(2027, 1, 1), date(2027, 12, 31)),
        ("sauvegarde-abo-n1", 12, date(2027, 1, 1), date(2027, 12, 31)),
        ("antivirus", 12, date(2027, 1, 1), date(2027, 12, 31)),
        ("gestionnaire-mdp", 12, date(2027, 1, 1), date(2027, 12, 31)),
    ]
    assert renewal.amount_due == Decimal("33.60") + Decimal("441.60") + Decimal("33.60") + Decimal("84.10")
    assert renewal_support.amount_due == FEE
    spans = [
        *spans_of(services.lines, scope=1, renews_as=RENEWS_AS),
        *spans_of(support.lines, scope=1),
        *spans_of(renewal.lines, scope=1, renews_as=RENEWS_AS),
        *spans_of(renewal_support.lines, scope=1),
    ]
    assert overlaps(spans) == [] and miscounted(spans) == []


# --- a whole life, in both modes ------------------------------------------------------------------


@dataclass(frozen=True)
class Subscribed:
    code: str
    quantity: int
    started_on: date
    ended_on: date | None


@dataclass(frozen=True)
class Life:
    go_live: date
    full_first_year: bool
    items: tuple[Subscribed, ...]
    years: tuple[int, ...]  # the campaigns run


def _date_between(draw: st.DrawFn, start: date, end: date) -> date:
    return start + timedelta(days=draw(st.integers(min_value=0, max_value=(end - start).days)))


@st.composite
def lives(draw: st.DrawFn) -> Life:
    go_live = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)))
    full = draw(st.booleans())
    years = tuple(range(go_live.year + 1, go_live.year + 1 + draw(st.integers(min_value=1, max_value=4))))
    horizon = date(years[-1], 12, 31)
    codes = draw(st.permutations([i.code for i in GRID.items]))[: draw(st.integers(min_value=1, max_value=8))]
    items = []
    for code in codes:
        added_later = draw(st.booleans())
        started = _date_between(draw, go_live + timedelta(days=1), horizon) if added_later else go_live
        ended = None
        if draw(st.booleans()):
            # the first invoice was issued at go-live: the service ends after the period it billed
            first_end = first_invoice_period(started, full_first_year=full).end
            ended = _date_between(draw, first_end, max(first_end, horizon) + timedelta(days=400))
        quantity = draw(st.integers(min_value=1, max_value=GRID.item(code).max_quantity or 500))
        items.append(Subscribed(code, quantity, started, ended))
    return Life(go_live, full, tuple(items), years)


def bill(life: Life) -> list[tuple[str, PricedDocument]]:
    """Every document of the life, as the services issue them: the first invoices at go-live, an
    invoice for each item added later (its own go-live), then each campaign."""
    full = life.full_first_year
    documents: list[tuple[str, PricedDocument]] = []
    at_go_live = [BasketLine(i.code, i.quantity) for i in life.items if i.started_on == life.go_live]
    if at_go_live:
        drafts = first_year_drafts(GRID, at_go_live, go_live=life.go_live, full_first_year=full)
        documents.append(("first", price_lines("LFN", VatRegime.standard(), drafts)))
    support_period = first_invoice_period(life.go_live, full_first_year=full)
    documents.append(
        ("first", price_lines("CDG62", VatRegime.outside_scope(), [support_draft(GRID, FEE, period=support_period)]))
    )
    for item in life.items:
        if item.started_on != life.go_live:
            drafts = first_year_drafts(
                GRID, [BasketLine(item.code, item.quantity)], go_live=item.started_on, full_first_year=full
            )
            documents.append((f"added {item.started_on}", price_lines("LFN", VatRegime.standard(), drafts)))
    for year in life.years:
        plan = plan_renewal(
            items=[LiveItem(i.code, i.quantity, i.started_on, i.ended_on) for i in life.items],
            year=year,
            renewal_date=date(year, 1, 15),
            grid=GRID,
            previous_grid=GRID,
            verdict=VERDICT,
            previous_verdict=VERDICT,
            support_amount=None,
            syndicat="LFN",
            syndicat_vat=VatRegime.standard(),
            cdg_vat=VatRegime.outside_scope(),
            full_first_year=full,
            subscription_started_on=life.go_live,
        )
        documents += [(f"campaign {year}", doc) for doc in plan.documents]
    return documents


def _billable_months(started_on: date, ended_on: date | None, horizon: date, full: bool) -> set[tuple[int, int]]:
    """Every started month of service up to the last campaign's year (or to the end of the item's first
    invoice, which may go beyond it), and to its last day of service."""
    last = max(horizon, first_invoice_period(started_on, full_first_year=full).end)
    if ended_on is not None:
        last = min(last, ended_on)
    return set(months_of(started_on, last))


def rounding_bound(doc: PricedDocument) -> Decimal:
    """The most the rounding amount can be: per line, the unit price's fifth decimal × quantity and the
    roundings of the net and of the deliberated amount to the cent; plus the VAT's rounding."""
    bound = Decimal("0.005")
    for line in doc.lines:
        bound += (1 + line.vat_rate) * (line.quantity * Decimal("0.00005") + Decimal("0.005")) + Decimal("0.005")
    return bound


@settings(max_examples=250, deadline=None)
@given(life=lives())
def test_every_month_of_service_is_billed_once(life):
    documents = bill(life)
    spans = [
        span for where, doc in documents for span in spans_of(doc.lines, scope="S", where=where, renews_as=RENEWS_AS)
    ]
    assert overlaps(spans) == []  # no item-month billed twice
    assert miscounted(spans) == []  # none billed as a year

    # and none left unbilled: each subscribed service is billed for every started month up to the horizon
    horizon = date(life.years[-1], 12, 31)
    covered: dict[object, set[object]] = {}
    for span in spans:
        covered.setdefault(span.key, set()).update(span.units)
    for item in life.items:
        kind = GRID.item(item.code).kind
        if kind == "one_off":
            assert covered[("S", item.code, item.code)] == {"once"}
            continue
        months = _billable_months(item.started_on, item.ended_on, horizon, life.full_first_year)
        for service in RENEWS_AS.get(item.code, (item.code,)):
            assert covered[("S", item.code, service)] == months
    support = _billable_months(life.go_live, None, horizon, life.full_first_year)
    assert covered[("S", SUPPORT_CODE, SUPPORT_CODE)] == support


@settings(max_examples=250, deadline=None)
@given(life=lives())
def test_every_amount_is_the_deliberated_price_for_its_months(life):
    for _where, doc in bill(life):
        for line in doc.lines:
            full = FEE if line.code == SUPPORT_CODE else GRID.item(line.code).price_ttc * line.quantity
            if line.in_full:
                assert line.months is None and line.total_ttc == full
            else:
                assert line.months is not None and 1 <= line.months <= 12
                assert line.total_ttc == to_money(full * line.months / 12)
                assert line.period_start is not None and line.period_end is not None
                assert line.months == started_months(line.period_start, line.period_end)
        # the amount due is the sum of the lines' deliberated amounts; the rounding amount stays small
        assert doc.amount_due == sum((line.total_ttc for line in doc.lines), Decimal("0.00"))
        assert doc.amount_due == doc.grand_total + doc.rounding_amount
        assert abs(doc.rounding_amount) <= rounding_bound(doc)
