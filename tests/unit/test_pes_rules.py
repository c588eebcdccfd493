"""models.pes: a titre's line amounts (exactly the invoice's VAT and amount due), the debtor's category,
bordereaux of bounded size, PJ identifiers, the slip lines."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models import pes as rules
from models.money import document_totals, line_net, prorate, unit_price_ht

D = Decimal


def priced(items: list[tuple[str, int]], rate: Decimal, months: int | None) -> list[rules.AmountLine]:
    """Lines priced as models.pricing prices them (TTC prices, nets from the back-computed unit price)."""
    lines = []
    for position, (price, quantity) in enumerate(items, start=1):
        unit = unit_price_ht(D(price), rate, months)
        lines.append(rules.AmountLine(position, line_net(quantity, unit), rate, prorate(D(price) * quantity, months)))
    return lines


def test_vat_lines_book_the_invoice_vat_and_collect_its_amount_due() -> None:
    # one month of a 42,05 € licence and two 15,60 € domains: nets 5,09, VAT 1,02, deliberated 6,10 → −0,01
    lines = priced([("42.05", 1), ("15.60", 2)], D("0.20"), 1)
    totals = document_totals([(li.net, li.rate, li.ttc) for li in lines])
    assert totals.rounding == D("-0.01")
    amounts = rules.titre_amounts(lines, totals.vat, totals.due)
    assert sum(a.vat for a in amounts) == totals.vat == D("1.02")
    assert sum(a.ttc for a in amounts) == totals.due == D("6.10")
    assert [a.ttc for a in amounts] == [li.ttc for li in lines]  # each titre line is its invoice line's TTC
    assert all(a.ht > 0 and a.vat >= 0 for a in amounts)


def test_a_positive_rounding_too() -> None:
    lines = priced([("14.00", 1)], D("0.20"), 1)  # 1,17 € TTC: net 0,97, VAT 0,19 → +0,01
    totals = document_totals([(li.net, li.rate, li.ttc) for li in lines])
    assert totals.rounding == D("0.01")
    [amount] = rules.titre_amounts(lines, totals.vat, totals.due)
    assert (amount.ht, amount.vat) == (D("0.98"), D("0.19"))


def test_outside_vat_the_ht_is_the_amount_and_no_vat_is_written() -> None:
    lines = priced([("350.00", 1)], D("0"), 2)  # a support fee for two months
    amounts = rules.titre_amounts(lines, D("0"), D("58.33"))
    assert [(a.ht, a.vat) for a in amounts] == [(D("58.33"), D("0"))]


def test_lines_of_no_amount_are_left_out_and_totals_must_agree() -> None:
    lines = [rules.AmountLine(1, D("10.00"), D("0.20"), D("12.00")), rules.AmountLine(2, D("0"), D("0.20"), D("0"))]
    assert [a.position for a in rules.titre_amounts(lines, D("2.00"), D("12.00"))] == [1]
    with pytest.raises(ValueError, match="montant à payer"):
        rules.titre_amounts(lines, D("2.00"), D("12.01"))
    with pytest.raises(ValueError, match="TVA"):
        rules.titre_amounts(lines, D("2.01"), D("12.00"))


def test_debtor_categories_and_bordereau_kinds() -> None:
    assert rules.debtor_category("commune") == "23"
    assert rules.debtor_category("epci") == "24"
    assert rules.debtor_category("public_establishment", "CCAS de Lens") == "26"
    assert rules.debtor_category("public_establishment", "Syndicat des eaux") == "29"
    assert rules.bordereau_kind("renewal") == "campaign" and rules.bordereau_kind("first") == "daily"


def test_bordereaux_of_bounded_size() -> None:
    assert rules.cut(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert rules.cut([], 3) == []
    with pytest.raises(ValueError):
        rules.cut([1], 0)


def test_pj_ids_are_alphanumeric_and_unique_per_titre() -> None:
    a = rules.pj_id("28620062100022", 2027, 12, 345, "A")
    f = rules.pj_id("28620062100022", 2027, 12, 345, "F")
    assert a.isalnum() and a.isascii() and len(a) <= 50 and a != f
    assert rules.pj_id("28620062100022", 2027, 12, 346, "A") != a
    assert rules.file_name("28620062100022", 2027, 12) == "PESALR1_28620062100022_2027_0000012.xml"


def test_slip_lines_are_digits_with_their_keys() -> None:
    one, two = rules.talon_lines("621234", 2027, 3, 41, D("58.33"))
    assert one == "621234" + "2027" + "0000003" + "00000041" + one[-2:]
    assert two == "000000005833" + two[-2:]
    for line in (one, two):
        assert line.isdigit() and len(line) <= 60
        assert (int(line[:-2]) * 100 + int(line[-2:])) % 97 == 0  # the MOD 97-10 key checks


def test_an_annulation_reduces_the_lines_of_its_titre_by_position() -> None:
    # the original titre: positions 1 and 3 billed (position 2 was of no amount and is on no titre line)
    original = (
        rules.TitreAmount(1, D("0.20"), D("100.00"), D("20.00")),
        rules.TitreAmount(3, D("0.20"), D("10.00"), D("2.00")),
    )
    whole = rules.reductions(original, original)
    assert [(r.original_line, r.amount.position) for r in whole] == [(1, 1), (2, 3)]
    part = rules.reductions(original, (rules.TitreAmount(3, D("0.20"), D("5.00"), D("1.00")),))
    assert [(r.original_line, r.amount.ttc) for r in part] == [(2, D("6.00"))]
    with pytest.raises(ValueError, match="aucune ligne"):
        rules.reductions(original, (rules.TitreAmount(2, D("0.20"), D("1.00"), D("0.20")),))
    with pytest.raises(ValueError, match="dépasse"):
        rules.reductions(original, (rules.TitreAmount(1, D("0.20"), D("100.01"), D("20.00")),))


def test_an_avoir_on_a_titre_of_a_closed_exercice_is_a_mandat_not_an_annulation() -> None:
    from datetime import date

    assert rules.closed_exercice(2027, date(2027, 12, 31)) is None
    reason = rules.closed_exercice(2026, date(2027, 1, 3))
    assert reason is not None and "exercice clos 2026" in reason and "mandat" in reason and "673" in reason


def test_annulation_bordereaux_are_numbered_and_named_apart() -> None:
    assert rules.BORDEREAU_SEQUENCES == {"01": "PESB", "02": "PESA"}
    assert rules.file_name("28620062100022", 2027, 3) == "PESALR1_28620062100022_2027_0000003.xml"
    assert rules.file_name("28620062100022", 2027, 3, "02") == "PESALR1_28620062100022_2027_AR0000003.xml"
