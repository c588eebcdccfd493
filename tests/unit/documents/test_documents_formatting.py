"""French formatting of amounts, dates and identifiers (Babel)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from documents.formatting import iban, long_date, money, number, paris_datetime, percent, short_date, siret

NB = "\xa0"


def test_money_french_grouping_and_symbol():
    assert money(Decimal("1234.56")) == f"1{NB}234,56{NB}€"
    assert money(Decimal("0.00")) == f"0,00{NB}€"
    assert money(Decimal("1078.40")) == f"1{NB}078,40{NB}€"


def test_money_keeps_four_decimals_of_a_uneven_unit_price():
    assert money(Decimal("11.6667")) == f"11,6667{NB}€"
    assert money(Decimal("13.0000")) == f"13,00{NB}€"


def test_money_refuses_floats():
    with pytest.raises(TypeError):
        money(12.5)  # type: ignore[arg-type]


def test_no_narrow_space_that_the_font_lacks():
    assert "\u202f" not in money(Decimal("1234567.89")) + number(123456)


def test_dates():
    assert long_date(date(2026, 11, 24)) == f"24{NB}novembre 2026"
    assert long_date(date(2026, 12, 1)) == f"1er{NB}décembre 2026"
    assert short_date(date(2026, 11, 24)) == "24/11/2026"


def test_paris_time_from_utc():
    text = paris_datetime(datetime(2026, 7, 1, 12, 0, 5, tzinfo=UTC))
    assert text == f"1er{NB}juillet 2026 à 14:00:05 (heure de Paris)"


def test_identifiers_and_rates():
    assert siret("21620693800013") == f"216{NB}206{NB}938{NB}00013"
    assert iban("FR7630001007941234567890185") == "FR76 3000 1007 9412 3456 7890 185"
    assert percent(Decimal("0.20")) == f"20{NB}%"
    assert number(1096) == f"1{NB}096"
