"""Money arithmetic: `Decimal` only, half-up rounding to the cent, exact VAT back-computation.

The deliberated prices are TTC (VAT included). The HT (net) amounts are derived from the TTC total of
each VAT rate, so that the TTC total always equals the sum of deliberated TTC prices × quantities to
the cent, and the line nets always add up exactly to the VAT basis (EN 16931 BR-CO-10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
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


@dataclass(frozen=True)
class VatSplit:
    """HT / VAT / TTC of one VAT rate, and the net of each line (summing exactly to `ht`)."""

    rate: Decimal
    ht: Decimal
    vat: Decimal
    ttc: Decimal
    line_ht: tuple[Decimal, ...]


def split_ttc(line_ttc: Sequence[Decimal], rate: Decimal) -> VatSplit:
    """Back-compute HT and VAT from TTC line totals that share one VAT rate.

    HT = round(ΣTTC / (1 + rate)), VAT = ΣTTC − HT. Each line's net is its own rounded back-computation;
    the rounding difference (a few cents at most) is given to the largest lines so that the line nets add
    up exactly to HT. With a zero rate, HT = TTC.
    """
    ttc = sum((to_money(v) for v in line_ttc), ZERO)
    divisor = Decimal(1) + rate
    ht = to_money(ttc / divisor)
    nets = [to_money(to_money(v) / divisor) for v in line_ttc]
    diff = int((ht - sum(nets, ZERO)) / CENT)
    if diff:
        step = CENT if diff > 0 else -CENT
        order = sorted(range(len(nets)), key=lambda i: (-abs(line_ttc[i]), i))
        for n in range(abs(diff)):
            nets[order[n % len(order)]] += step
    return VatSplit(rate=rate, ht=ht, vat=ttc - ht, ttc=ttc, line_ht=tuple(nets))


def unit_price_ht(price_ttc: Decimal, rate: Decimal) -> Decimal:
    """Unit net price shown on documents: exact to the cent when it divides evenly, else 4 decimals."""
    exact = price_ttc / (Decimal(1) + rate)
    cents = exact.quantize(CENT, rounding=ROUND_HALF_UP)
    if cents == exact:
        return cents
    return exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
