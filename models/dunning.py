"""Reminders of unpaid invoices, as plain values: which level is due, and when the invoice goes to the
public accountant.

Defaults (settings): a friendly reminder 7 days after the due date, a second at 21, a final notice at 45,
then the hand-over to the accountant (formal recovery is the accountant's, not the issuer's). Each level
is sent once; a missed day sends only the highest level reached, never a burst.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from models.lifecycle import OPEN_INVOICE, InvoiceStatus


@dataclass(frozen=True)
class DunningStep:
    """What today brings for one invoice: a reminder of `level`, or the hand-over (`level` = 0)."""

    level: int
    hand_over: bool = False


def level_reached(due_on: date, today: date, levels: Sequence[int]) -> int:
    """The highest reminder level reached on a day (0 when none): levels are days after the due date."""
    late = (today - due_on).days
    return sum(1 for days in sorted(levels) if late >= days)


def qualifies(status: str, amount_due: Decimal, *, payable: bool = True) -> bool:
    """Whether an invoice is still dunned: open, something left to pay, and payable (not rejected or
    already in payment on the debtor's side)."""
    return InvoiceStatus(status) in OPEN_INVOICE and amount_due > 0 and payable


def next_step(
    *,
    due_on: date,
    today: date,
    levels: Sequence[int],
    sent: Collection[int],
    handed_over: bool,
) -> DunningStep | None:
    """Today's step for a qualifying invoice: the level reached if not sent yet; once the last level has
    been sent, the hand-over to the accountant (once); otherwise nothing."""
    level = level_reached(due_on, today, levels)
    if level == 0:
        return None
    if level not in sent:
        return DunningStep(level)
    if level == len(levels) and not handed_over:
        return DunningStep(0, hand_over=True)
    return None
