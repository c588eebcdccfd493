"""French formatting of amounts, quantities, rates and dates for the documents (Babel, locale fr_FR).

Amounts follow the French convention `1 234,56 €`. CLDR separates thousands with a narrow no-break
space (U+202F); the font shipped with the documents has no glyph for it, and a missing glyph would make
Pango fall back on a second, system font (slower, and a second font embedded in every PDF). So the
separator is printed as a plain no-break space (U+00A0), which the font has and which still never breaks.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal

LOCALE = "fr_FR"
PARIS = ZoneInfo("Europe/Paris")
NNBSP = "\u202f"
NBSP = "\xa0"


def _spaces(text: str) -> str:
    return text.replace(NNBSP, NBSP)


def money(amount: Decimal) -> str:
    """`1 234,56 €`: two decimals, or up to four for a unit net price that does not divide evenly."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"an amount must be a Decimal, not {type(amount).__name__}")
    text = format_currency(amount, "EUR", format="#,##0.00##\xa0¤", locale=LOCALE, currency_digits=False)
    return _spaces(text)


def number(value: int | Decimal) -> str:
    """`1 096`: a count (population, quantity) with French digit grouping."""
    return _spaces(format_decimal(value, format="#,##0.##", locale=LOCALE))


def percent(rate: Decimal) -> str:
    """`20 %` from `0.20`."""
    return _spaces(format_decimal(rate * 100, format="#,##0.##", locale=LOCALE)) + NBSP + "%"


def long_date(value: date) -> str:
    """`24 novembre 2026`, and `1er décembre 2026` for the first day of a month."""
    if isinstance(value, datetime):
        value = value.astimezone(PARIS).date() if value.tzinfo else value.date()
    text = format_date(value, format="long", locale=LOCALE)
    if value.day == 1:
        text = "1er" + text[1:]
    return text.replace(" ", NBSP, 1)


def short_date(value: date) -> str:
    """`24/11/2026`."""
    return format_date(value, format="dd/MM/yyyy", locale=LOCALE)


def paris_datetime(value: datetime) -> str:
    """`24 novembre 2026 à 14:05:09 (heure de Paris)` from an aware datetime (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    local = value.astimezone(PARIS)
    day = long_date(local.date())
    return f"{day} à {format_datetime(local, 'HH:mm:ss', locale=LOCALE)} (heure de Paris)"


def siret(value: str) -> str:
    """`200 039 386 00012` (SIREN in groups of three, then the NIC); a SIREN alone is grouped too."""
    digits = value.replace(" ", "")
    groups = [digits[i : i + 3] for i in range(0, min(len(digits), 9), 3)]
    if len(digits) > 9:
        groups.append(digits[9:])
    return NBSP.join(groups)


def iban(value: str) -> str:
    """`FR76 3000 1007 …`: groups of four."""
    compact = value.replace(" ", "")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def in_sentence(text: str) -> str:
    """A configured text as it reads inside a sentence: « Délibération n° 12 … » → « délibération n° 12 … »;
    an acronym or a name keeps its capitals (« CDG 62 », « Le Président » is left to its author)."""
    if len(text) > 1 and text[0].isupper() and text[1].islower() and text.split(" ", 1)[0] in SENTENCE_LOWER:
        return text[0].lower() + text[1:]
    return text


# The first words a configured deliberation or act usually starts with.
SENTENCE_LOWER = frozenset({"Délibération", "Délibérations", "Arrêté", "Décision", "Délégation"})


FILTERS = {
    "in_sentence": in_sentence,
    "siret": siret,
    "iban": iban,
    "money": money,
    "number": number,
    "percent": percent,
    "long_date": long_date,
    "short_date": short_date,
    "paris_datetime": paris_datetime,
}
