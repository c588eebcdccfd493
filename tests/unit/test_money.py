from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import parse_amount, split_ttc, to_money, unit_price_ht

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c) / 100)


def test_half_up_rounding():
    assert to_money(Decimal("0.005")) == Decimal("0.01")
    assert to_money(Decimal("2.675")) == Decimal("2.68")
    with pytest.raises(TypeError):
        to_money(0.1)  # type: ignore[arg-type]


@given(st.lists(cents, min_size=1, max_size=20), st.sampled_from([Decimal("0.20"), Decimal("0.10"), Decimal("0")]))
def test_split_is_exact(lines, rate):
    split = split_ttc(lines, rate)
    assert split.ttc == sum(lines, Decimal("0.00"))
    assert split.ht + split.vat == split.ttc
    assert sum(split.line_ht, Decimal("0.00")) == split.ht
    # every line net stays within a cent of its own back-computation
    for ttc, net in zip(lines, split.line_ht, strict=True):
        assert abs(net - ttc / (1 + rate)) <= Decimal("0.015")
    if rate == 0:
        assert split.vat == 0 and split.line_ht == tuple(to_money(v) for v in lines)


def test_known_uneven_prices():
    assert split_ttc([Decimal("14.00")], Decimal("0.20")).ht == Decimal("11.67")
    assert split_ttc([Decimal("42.05")], Decimal("0.20")).vat == Decimal("7.01")
    assert unit_price_ht(Decimal("16.80"), Decimal("0.20")) == Decimal("14.00")
    assert unit_price_ht(Decimal("14.00"), Decimal("0.20")) == Decimal("11.6667")


@pytest.mark.parametrize(("text", "value"), [("80", "80.00"), ("80,5", "80.50"), ("1 234,56 €", "1234.56")])
def test_parse_amount(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["abc", "1.234", "", "NaN"])
def test_parse_amount_refuses(text):
    with pytest.raises(ValueError):
        parse_amount(text)
