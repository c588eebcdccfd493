"""Dates as the French administration counts them: the calendar day in Europe/Paris.

Timestamps are stored in UTC; a document's date, its number's year and a billing year are Paris days
(an invoice numbered at 00:30 on 1 January in Paris belongs to the new year, though UTC says otherwise).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_day(moment: datetime) -> date:
    """The Paris calendar day of an aware moment."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware moment")
    return moment.astimezone(PARIS).date()


def paris_today(now: datetime | None = None) -> date:
    """Today in Paris (or the Paris day of `now`)."""
    return paris_day(now or datetime.now(UTC))


def number_year(moment: datetime) -> int:
    """The year a document number numbered at `moment` carries: the Paris year."""
    return paris_day(moment).year
