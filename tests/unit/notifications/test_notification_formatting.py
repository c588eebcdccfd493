"""French amounts and dates in emails."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from notifications.formatting import date_fr, datetime_fr, euros, number_fr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0"), "0,00\xa0€"),
        (Decimal("16.8"), "16,80\xa0€"),
        (Decimal("1234.5"), "1\u202f234,50\xa0€"),
        (Decimal("1234567.005"), "1\u202f234\u202f567,01\xa0€"),  # half-up
        (Decimal("-42.05"), "-42,05\xa0€"),
        ("759", "759,00\xa0€"),
    ],
)
def test_euros(value: object, expected: str) -> None:
    assert euros(value) == expected  # type: ignore[arg-type]


def test_euros_refuses_floats() -> None:
    with pytest.raises(TypeError):
        euros(16.8)  # type: ignore[arg-type]


def test_number_fr() -> None:
    assert (number_fr(499), number_fr(3500), number_fr(41234)) == ("499", "3\u202f500", "41\u202f234")


def test_dates_in_french_and_paris_time() -> None:
    assert date_fr(date(2026, 1, 1)) == "1er janvier 2026"
    assert date_fr(date(2026, 8, 15)) == "15 août 2026"
    # 23:30 UTC on 31 December is already 1 January in Paris
    assert date_fr(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == "1er janvier 2026"
    assert datetime_fr(datetime(2026, 7, 1, 8, 5, tzinfo=UTC)) == "1er juillet 2026 à 10 h 05"
    with pytest.raises(ValueError):
        datetime_fr(datetime(2026, 7, 1, 8, 5))
