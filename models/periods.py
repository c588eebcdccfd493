"""Billing periods: which months of an item each invoice bills, so that every month is billed once.

The rule (DOMAIN.md, "Billing periods"), by *started month*: a month in which the service runs for at
least one day counts in full.

- The first invoice of an item, issued when it goes live on G, bills it from G to 31 December of that
  year: m = 13 − month(G) months (a yearly item or the support fee is then prorated, price × m / 12).
  One-off items and the first-year pack are due in full on that invoice, whatever the month.
- With the setting `full first year`, the first invoice covers 12 started months from G instead (to the
  end of the month before G's month, one year later), and the campaign of the next year bills only the
  months of that year not covered yet.
- The campaign of year Y bills 1 January – 31 December Y, less what the item's first invoice covered,
  up to the item's last day of service (`ended_on`, inclusive) when it ends within the year.

The invariant — no item-month billed twice, none billed as a year — is checked on billed lines by
`overlaps` and `miscounted`, which tests run on computed and on stored lines alike.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol

Kind = Literal["yearly", "one_off", "first_year"]
IN_FULL_KINDS: frozenset[str] = frozenset({"one_off", "first_year"})  # price due whole, never prorated
Month = tuple[int, int]  # (year, month)


def month_index(day: date) -> int:
    """Months since year 0, so that two dates' months compare and subtract simply."""
    return day.year * 12 + day.month - 1


def started_months(start: date, end: date) -> int:
    """The calendar months in which [start, end] has at least one day (0 when end < start)."""
    return max(0, month_index(end) - month_index(start) + 1)


def months_of(start: date, end: date) -> tuple[Month, ...]:
    """The (year, month) pairs [start, end] touches, in order."""
    return tuple((i // 12, i % 12 + 1) for i in range(month_index(start), month_index(end) + 1))


def end_of_month(year: int, month: int) -> date:
    """The last day of a month."""
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


@dataclass(frozen=True)
class BilledPeriod:
    """A span of service billed on one line: from `start` to `end` (inclusive), `months` started months.

    `months` is what a yearly price is multiplied by (× months / 12); it always equals the started months
    of [start, end], so that a line cannot bill a year for one month.
    """

    start: date
    end: date
    months: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"billed period ends before it starts: {self.start} → {self.end}")
        if self.months != started_months(self.start, self.end):
            raise ValueError(f"{self.months} months billed for {self.start} → {self.end}")
        if self.months > 12:
            raise ValueError(f"a billed period is at most 12 months, not {self.months}")

    @staticmethod
    def between(start: date, end: date) -> BilledPeriod:
        """The period from start to end, with its started months."""
        return BilledPeriod(start, end, started_months(start, end))

    @property
    def calendar_months(self) -> tuple[Month, ...]:
        return months_of(self.start, self.end)

    @property
    def full_year(self) -> bool:
        return self.months == 12


@dataclass(frozen=True)
class FirstInvoice:
    """Target: the invoice issued when the item goes live (its `started_on`)."""


@dataclass(frozen=True)
class Campaign:
    """Target: the yearly renewal campaign of `year`."""

    year: int


BillingTarget = FirstInvoice | Campaign
FIRST_INVOICE = FirstInvoice()


def first_invoice_period(go_live: date, *, full_first_year: bool = False, ended_on: date | None = None) -> BilledPeriod:
    """The period of the first invoice for services going live on `go_live`.

    By default: `go_live` → 31 December, 13 − month(go_live) months. With `full_first_year`: 12 started
    months from `go_live`, up to the end of the eleventh month after it. An `ended_on` inside that span
    (the last day of service) shortens it.
    """
    if full_first_year:
        last = month_index(go_live) + 11
        end = end_of_month(last // 12, last % 12 + 1)
    else:
        end = date(go_live.year, 12, 31)
    if ended_on is not None and ended_on < end:
        if ended_on < go_live:
            raise ValueError(f"service ended on {ended_on}, before it went live on {go_live}")
        end = ended_on
    return BilledPeriod.between(go_live, end)


def campaign_period(
    year: int, *, started_on: date | None = None, ended_on: date | None = None, full_first_year: bool = False
) -> BilledPeriod | None:
    """The months of `year` the campaign bills for an item live since `started_on` (its go-live), up to
    `ended_on` (inclusive). None when the campaign bills nothing: the item starts in `year` or later (its
    first invoice covers it), its first invoice already covered the whole year, or it ended before.
    """
    start, end = date(year, 1, 1), date(year, 12, 31)
    if started_on is not None:
        if started_on.year >= year:
            return None
        covered = first_invoice_period(started_on, full_first_year=full_first_year).end
        start = max(start, covered + timedelta(days=1))
    if ended_on is not None:
        end = min(end, ended_on)
    if end < start:
        return None
    return BilledPeriod.between(start, end)


def months_billed(
    kind: str,
    started_on: date,
    ended_on: date | None,
    target: BillingTarget,
    *,
    full_first_year: bool = False,
) -> BilledPeriod | None:
    """What `target` bills of an item of `kind` live from `started_on` to `ended_on` (None: still live).

    - one-off: its first invoice bills it once, on its go-live day (a one-day period, due in full);
      campaigns never.
    - first-year price (the pack): its first invoice bills it in full for the first invoice's period;
      campaigns never (what it renews as are yearly items of their own, live from the same day).
    - yearly (and the support fee): prorated periods, as `first_invoice_period` and `campaign_period`.

    The period's `months` is the proration numerator for yearly items; for one-off and first-year items
    the price is due whole (see `IN_FULL_KINDS`).
    """
    if isinstance(target, FirstInvoice):
        if kind == "one_off":
            return BilledPeriod.between(started_on, started_on)
        return first_invoice_period(started_on, full_first_year=full_first_year, ended_on=ended_on)
    if kind in IN_FULL_KINDS:
        return None
    return campaign_period(target.year, started_on=started_on, ended_on=ended_on, full_first_year=full_first_year)


# --------------------------------------------------------------------------------------------------
# The invariant, checked on billed lines
# --------------------------------------------------------------------------------------------------


class BilledLineLike(Protocol):
    """What the checker reads of a line (a `models.pricing.PricedLine`, or a stored line mapped to it)."""

    @property
    def code(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def period_start(self) -> date | None: ...
    @property
    def period_end(self) -> date | None: ...
    @property
    def months(self) -> int | None: ...
    @property
    def origin(self) -> str | None: ...


@dataclass(frozen=True)
class BilledSpan:
    """One thing billed over a period: `key` names what (who, which subscribed item, which service),
    `once` marks a one-off (billable a single time at all), `months` is what the line billed (None when
    its price is due in full), `where` says which document it comes from (for messages)."""

    key: Hashable
    start: date
    end: date
    months: int | None
    once: bool = False
    where: str = ""

    @property
    def units(self) -> tuple[Hashable, ...]:
        """What this span consumes: the single unit of a one-off, else each calendar month it touches."""
        return ("once",) if self.once else months_of(self.start, self.end)


@dataclass(frozen=True)
class Overlap:
    key: Hashable
    unit: Hashable  # a (year, month), or "once" for a one-off billed twice
    first: BilledSpan
    second: BilledSpan

    def __str__(self) -> str:
        return f"{self.key} billed twice for {self.unit}: {self.first.where or '?'} and {self.second.where or '?'}"


def spans_of(
    lines: Iterable[BilledLineLike],
    *,
    scope: Hashable = None,
    where: str = "",
    renews_as: Mapping[str, Sequence[str]] | None = None,
) -> list[BilledSpan]:
    """The spans of billed lines (lines without a period, as on a quote, bill no time and are skipped).

    Key: (scope, subscribed item, service). The subscribed item is the line's `origin` (the pack a
    renewal line comes from) or its code. A first-year pack covers, over its period, each service it
    renews as (`renews_as`, from the grid), so that a renewal of those services inside the pack's first
    year shows as an overlap.
    """
    renews = renews_as or {}
    spans: list[BilledSpan] = []
    for line in lines:
        if line.period_start is None or line.period_end is None:
            continue
        subscribed = line.origin or line.code
        services = tuple(renews.get(line.code, ())) or (line.code,)
        for service in services:
            spans.append(
                BilledSpan(
                    key=(scope, subscribed, service),
                    start=line.period_start,
                    end=line.period_end,
                    months=line.months,
                    once=line.kind == "one_off",
                    where=where,
                )
            )
    return spans


def overlaps(spans: Iterable[BilledSpan]) -> list[Overlap]:
    """Every unit (item-month, or a one-off) billed more than once under the same key."""
    seen: dict[tuple[Hashable, Hashable], BilledSpan] = {}
    found: list[Overlap] = []
    for span in spans:
        for unit in span.units:
            first = seen.get((span.key, unit))
            if first is None:
                seen[(span.key, unit)] = span
            else:
                found.append(Overlap(span.key, unit, first, span))
    return found


def miscounted(spans: Iterable[BilledSpan]) -> list[BilledSpan]:
    """Spans whose billed months differ from the started months of their period (a year billed for one
    month, say), or that bill more than 12 months on one line."""
    return [
        s
        for s in spans
        if s.months is not None and (s.months != started_months(s.start, s.end) or not 1 <= s.months <= 12)
    ]
