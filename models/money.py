"""Money arithmetic: `Decimal` only, half-up rounding to the cent.

The deliberated prices are TTC (VAT included). Every printed line is arithmetically true: its net is
quantity × net unit price (the unit price back-computed from the TTC price, four decimals at most),
rounded to the cent; the VAT of each rate is computed on the sum of the line nets. What that leaves
between the document's total with VAT (BT-112) and the deliberated TTC total is the document's rounding
amount (BT-114), so that the amount due (BT-115) is the deliberated total, to the cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
UNIT = Decimal("0.0001")  # unit prices may carry four decimals
ZERO = Decimal("0.00")


def to_money(value: Decimal | int | str) -> Decimal:
    """Quantize a value to the cent, rounding half-up. Floats are refused: they are not money."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; use Decimal or a string")
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def parse_amount(text: str) -> Decimal:
    """Parse an amount typed by a person: `80`, `80.5`, `80,50`, `1 234,56`, `1234.56 €`.

    Raises ValueError with a plain message when the text is not an amount with at most two decimals.
    """
    cleaned = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace("€", "")
    cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"« {text} » n'est pas un montant (exemples acceptés : 80, 80.50, 80,50)") from None
    if not value.is_finite():
        raise ValueError(f"« {text} » n'est pas un montant")
    exponent = value.as_tuple().exponent  # an int for a finite value ('n', 'N' or 'F' otherwise)
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"« {text} » a plus de deux décimales")
    return to_money(value)


def to_unit_price(value: Decimal) -> Decimal:
    """A unit price as documents print it: to the cent when exact there, else to four decimals, half-up."""
    cents = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if cents == value:
        return cents
    return value.quantize(UNIT, rounding=ROUND_HALF_UP)


def unit_price_ht(price_ttc: Decimal, rate: Decimal, months: int | None = None) -> Decimal:
    """The net unit price of a line (EN 16931 BT-146): the deliberated TTC price back-computed to HT,
    × months / 12 when the line is prorated; exact to the cent when it divides evenly, else 4 decimals.

    `price_ttc` may be unrounded (an operator's line total divided by its quantity)."""
    share = 12 if months is None else months
    return to_unit_price(price_ttc * share / (12 * (Decimal(1) + rate)))


def prorate(amount: Decimal, months: int | None) -> Decimal:
    """A deliberated amount for `months` of a year (amount × months / 12), half-up to the cent; the whole
    amount when `months` is None (not prorated)."""
    if months is None:
        return to_money(amount)
    if not 0 <= months <= 12:
        raise ValueError(f"months must be within 0..12, not {months}")
    return to_money(amount * months / 12)


def line_net(quantity: int | Decimal, unit_price: Decimal) -> Decimal:
    """A line's net amount (BT-131): quantity × net unit price, half-up to the cent."""
    return to_money(quantity * unit_price)


@dataclass(frozen=True)
class VatTotal:
    """One VAT rate of a document (EN 16931 BG-23): the sum of the line nets and the VAT computed on it."""

    rate: Decimal
    basis: Decimal  # BT-116
    vat: Decimal  # BT-117


@dataclass(frozen=True)
class Totals:
    """A document's totals from its lines' nets and deliberated TTC amounts.

    net (BT-109) = Σ line nets; vat (BT-110) = Σ per rate of round(rate × Σ nets of that rate);
    grand_total (BT-112) = net + vat; rounding (BT-114) = deliberated − grand_total; due (BT-115) =
    grand_total + rounding = the deliberated total. No cent is ever moved onto a line.
    """

    breakdown: tuple[VatTotal, ...]
    net: Decimal
    vat: Decimal
    deliberated: Decimal

    @property
    def grand_total(self) -> Decimal:
        return self.net + self.vat

    @property
    def rounding(self) -> Decimal:
        return self.deliberated - self.grand_total

    @property
    def due(self) -> Decimal:
        return self.grand_total + self.rounding


def vat_breakdown(nets: Sequence[tuple[Decimal, Decimal]]) -> tuple[VatTotal, ...]:
    """Per VAT rate (in order of first appearance), the sum of the (net, rate) lines and its VAT."""
    bases: dict[Decimal, Decimal] = {}
    for net, rate in nets:
        bases[rate] = bases.get(rate, ZERO) + to_money(net)
    return tuple(VatTotal(rate, basis, to_money(basis * rate)) for rate, basis in bases.items())


def document_totals(lines: Sequence[tuple[Decimal, Decimal, Decimal]]) -> Totals:
    """The totals of (net, VAT rate, deliberated TTC) lines; see `Totals`."""
    breakdown = vat_breakdown([(net, rate) for net, rate, _ in lines])
    return Totals(
        breakdown=breakdown,
        net=sum((b.basis for b in breakdown), ZERO),
        vat=sum((b.vat for b in breakdown), ZERO),
        deliberated=sum((to_money(ttc) for _, _, ttc in lines), ZERO),
    )
