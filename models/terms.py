"""Payment terms of public buyers: one source for the term printed and the due date computed."""

from __future__ import annotations

from datetime import date, timedelta

# Délai global de paiement of a public buyer (Code de la commande publique, art. R2192-10): 30 days.
LEGAL_PAYMENT_TERM_DAYS = 30


def due_on(received_on: date, term_days: int = LEGAL_PAYMENT_TERM_DAYS) -> date:
    """The due date of an invoice received (made available to the buyer) on a date."""
    if term_days < 1:
        raise ValueError("a payment term is at least one day")
    return received_on + timedelta(days=term_days)
