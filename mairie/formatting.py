"""French formatting for people (Babel) and stable JSON for programs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

PARIS = ZoneInfo("Europe/Paris")


def euros(amount: Decimal) -> str:
    """`1 234,56 €` (French grouping with a narrow no-break space)."""
    return format_currency(amount, "EUR", locale="fr_FR")


def number(value: int) -> str:
    return format_decimal(value, locale="fr_FR")


def day(value: date) -> str:
    return format_date(value, format="long", locale="fr_FR")


def moment(value: datetime) -> str:
    """A UTC timestamp shown in Europe/Paris."""
    return format_datetime(value.astimezone(PARIS), format="d MMMM y 'à' HH:mm", locale="fr_FR")


def amount_json(amount: Decimal | None) -> str | None:
    """Amounts in JSON are strings with two decimals: `"80.00"`."""
    return None if amount is None else f"{amount:.2f}"
