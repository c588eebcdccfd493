from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import document_totals, line_net, parse_amount, prorate, to_money, unit_price_ht

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: Decimal(c) / 100)


def test_half_up_rounding():
    assert to_money(Decimal("0.005")) == Decimal("0.01")
    assert to_money(Decimal("2.675")) == Decimal("2.68")
    with pytest.raises(TypeError):
        to_money(0.1)  # type: ignore[arg-type]


@given(st.lists(cents, min_size=1, max_size=20), st.sampled_from([Decimal("0.20"), Decimal("0.10"), Decimal("0")]))
def test_totals_are_exact(lines, rate):
    # Each TTC amount as a one-unit line: its net is its own back-computation (no cent moved onto it),
    # the VAT is computed on the sum of the nets and the rounding amount closes the gap (BT-114).
    nets = [line_net(1, unit_price_ht(ttc, rate)) for ttc in lines]
    totals = document_totals([(net, rate, ttc) for net, ttc in zip(nets, lines, strict=True)])
    assert totals.due == totals.deliberated == sum(lines, Decimal("0.00"))
    assert totals.net + totals.vat + totals.rounding == totals.due
    assert totals.grand_total == totals.net + totals.vat
    assert sum(nets, Decimal("0.00")) == totals.net
    assert totals.vat == to_money(totals.net * rate)
    # every line net stays within a cent of its own back-computation
    for ttc, net in zip(lines, nets, strict=True):
        assert abs(net - ttc / (1 + rate)) <= Decimal("0.015")
    if rate == 0:
        assert totals.vat == 0 and nets == [to_money(v) for v in lines] and totals.rounding == 0


def test_known_uneven_prices():
    assert line_net(1, unit_price_ht(Decimal("14.00"), Decimal("0.20"))) == Decimal("11.67")
    assert document_totals([(Decimal("35.04"), Decimal("0.20"), Decimal("42.05"))]).vat == Decimal("7.01")
    assert unit_price_ht(Decimal("16.80"), Decimal("0.20")) == Decimal("14.00")
    assert unit_price_ht(Decimal("14.00"), Decimal("0.20")) == Decimal("11.6667")


def test_prorated_unit_prices_and_amounts():
    # DOMAIN.md: go-live on 1 December, a 16,80 € account costs 1,40 € (14,00 € HT / 12)
    assert prorate(Decimal("16.80"), 1) == Decimal("1.40")
    assert unit_price_ht(Decimal("16.80"), Decimal("0.20"), 1) == Decimal("1.1667")
    assert prorate(Decimal("16.80"), 12) == prorate(Decimal("16.80"), None) == Decimal("16.80")
    assert unit_price_ht(Decimal("16.80"), Decimal("0.20"), 12) == Decimal("14.00")
    assert prorate(Decimal("42.05"), 7) == Decimal("24.53")  # 24,529166… half-up
    assert prorate(Decimal("0.06"), 1) == Decimal("0.01")  # 0,005 exactly: half-up
    with pytest.raises(ValueError):
        prorate(Decimal("16.80"), 13)


@pytest.mark.parametrize(("text", "value"), [("80", "80.00"), ("80,5", "80.50"), ("1 234,56 €", "1234.56")])
def test_parse_amount(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["abc", "1.234", "", "NaN"])
def test_parse_amount_refuses(text):
    with pytest.raises(ValueError):
        parse_amount(text)
