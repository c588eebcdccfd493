"""French formatting of amounts and dates for the email templates (Jinja2 filters)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

NARROW_NBSP = "\u202f"  # thousands separator in French typography
NBSP = "\xa0"  # before the euro sign, so "€" never starts a line
PARIS = ZoneInfo("Europe/Paris")

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def number_fr(value: int) -> str:
    """`41234` → `41 234` (narrow no-break space between thousands)."""
    digits = str(abs(int(value)))
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if int(value) < 0 else "") + NARROW_NBSP.join(groups)


def euros(value: Decimal | int | str) -> str:
    """`Decimal("1234.5")` → `1 234,50 €` (half-up to the cent). Floats are refused: they are not money."""
    if isinstance(value, float):
        raise TypeError("montant en float refusé : utilisez Decimal")
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(amount):.2f}".split(".")
    return f"{sign}{number_fr(int(units))},{cents}{NBSP}€"


def date_fr(value: date | datetime) -> str:
    """`date(2026, 1, 1)` → `1er janvier 2026`; a datetime is shown at its Paris date."""
    if isinstance(value, datetime):
        value = _paris(value).date()
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def datetime_fr(value: datetime) -> str:
    """A UTC (or aware) datetime → `15 janvier 2026 à 10 h 30` in Paris time."""
    local = _paris(value)
    return f"{date_fr(local.date())} à {local.hour} h {local.minute:02d}"


def _paris(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime naïf refusé : passez une date avec fuseau (UTC)")
    return value.astimezone(PARIS)
