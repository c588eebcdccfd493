"""Every status of every entity, with its allowed moves as data.

Each entity's status is a `StrEnum` (stored as its string value); `MOVES` says, for each status, which
statuses may follow. Every change of status goes through `move(row, target)`, which raises
`InvalidTransition` with a plain French message for a move the lifecycle does not allow.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, TypeVar

from models.errors import InvalidTransition


class RequestStatus(StrEnum):
    RECEIVED = "received"
    REFUSED = "refused"
    WAITING_OPERATOR = "waiting_operator"
    ELIGIBLE = "eligible"
    QUOTED = "quoted"
    SIGNING = "signing"
    IN_FORCE = "in_force"
    DECLINED = "declined"
    EXPIRED = "expired"


class QuoteStatus(StrEnum):
    ISSUED = "issued"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


class ConventionStatus(StrEnum):
    AWAITING_COLLECTIVITY = "awaiting_collectivity"
    AWAITING_CDG = "awaiting_cdg"
    AWAITING_SYNDICAT = "awaiting_syndicat"
    IN_FORCE = "in_force"
    DECLINED = "declined"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    TERMINATED = "terminated"


class ApprovalStatus(StrEnum):
    WAITING = "waiting"  # an earlier party has not signed yet
    PENDING = "pending"  # this party's turn: its link has been sent
    SIGNED = "signed"
    DECLINED = "declined"
    EXPIRED = "expired"


class OrderStatus(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    PARTIALLY_DELIVERED = "partially_delivered"
    DELIVERED = "delivered"


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class InvoiceStatus(StrEnum):
    NUMBERED = "numbered"  # step 1 done: number and lines stored, no document yet
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CREDITED = "credited"


class CreditNoteStatus(StrEnum):
    ISSUED = "issued"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    UNDELIVERED = "undelivered"
    CANCELLED = "cancelled"  # no longer worth sending (e.g. a reminder of an invoice paid meanwhile)


S = TypeVar("S", bound=StrEnum)


def _moves(table: dict[S, set[S]]) -> dict[S, frozenset[S]]:
    return {status: frozenset(targets) for status, targets in table.items()}


MOVES: dict[type[StrEnum], dict[Any, frozenset[Any]]] = {
    RequestStatus: _moves(
        {
            RequestStatus.RECEIVED: {RequestStatus.REFUSED, RequestStatus.WAITING_OPERATOR, RequestStatus.ELIGIBLE},
            RequestStatus.WAITING_OPERATOR: {RequestStatus.ELIGIBLE, RequestStatus.REFUSED},
            RequestStatus.ELIGIBLE: {RequestStatus.QUOTED},
            # back to eligible: a new version of the quotes (requote) before the convention is in force
            RequestStatus.QUOTED: {
                RequestStatus.SIGNING,
                RequestStatus.DECLINED,
                RequestStatus.EXPIRED,
                RequestStatus.ELIGIBLE,
            },
            RequestStatus.SIGNING: {
                RequestStatus.IN_FORCE,
                RequestStatus.DECLINED,
                RequestStatus.EXPIRED,
                RequestStatus.ELIGIBLE,
            },
            RequestStatus.IN_FORCE: set(),
            RequestStatus.REFUSED: set(),
            RequestStatus.DECLINED: set(),
            RequestStatus.EXPIRED: set(),
        }
    ),
    QuoteStatus: _moves(
        {
            QuoteStatus.ISSUED: {
                QuoteStatus.ACCEPTED,
                QuoteStatus.DECLINED,
                QuoteStatus.SUPERSEDED,
                QuoteStatus.EXPIRED,
            },
            QuoteStatus.ACCEPTED: set(),
            QuoteStatus.DECLINED: set(),
            QuoteStatus.SUPERSEDED: set(),
            QuoteStatus.EXPIRED: set(),
        }
    ),
    ConventionStatus: _moves(
        {
            ConventionStatus.AWAITING_COLLECTIVITY: {
                ConventionStatus.AWAITING_CDG,
                ConventionStatus.DECLINED,
                ConventionStatus.EXPIRED,
                ConventionStatus.SUPERSEDED,
            },
            ConventionStatus.AWAITING_CDG: {
                ConventionStatus.AWAITING_SYNDICAT,
                ConventionStatus.DECLINED,
                ConventionStatus.EXPIRED,
                ConventionStatus.SUPERSEDED,
            },
            ConventionStatus.AWAITING_SYNDICAT: {
                ConventionStatus.IN_FORCE,
                ConventionStatus.DECLINED,
                ConventionStatus.EXPIRED,
                ConventionStatus.SUPERSEDED,
            },
            ConventionStatus.IN_FORCE: {ConventionStatus.TERMINATED},
            ConventionStatus.DECLINED: set(),
            ConventionStatus.EXPIRED: set(),
            ConventionStatus.SUPERSEDED: set(),
            ConventionStatus.TERMINATED: set(),
        }
    ),
    ApprovalStatus: _moves(
        {
            ApprovalStatus.WAITING: {ApprovalStatus.PENDING},
            ApprovalStatus.PENDING: {ApprovalStatus.SIGNED, ApprovalStatus.DECLINED, ApprovalStatus.EXPIRED},
            ApprovalStatus.SIGNED: set(),
            ApprovalStatus.DECLINED: set(),
            ApprovalStatus.EXPIRED: set(),
        }
    ),
    OrderStatus: _moves(
        {
            OrderStatus.SENT: {OrderStatus.ACKNOWLEDGED},
            OrderStatus.ACKNOWLEDGED: {OrderStatus.PARTIALLY_DELIVERED, OrderStatus.DELIVERED},
            OrderStatus.PARTIALLY_DELIVERED: {OrderStatus.PARTIALLY_DELIVERED, OrderStatus.DELIVERED},
            OrderStatus.DELIVERED: set(),
        }
    ),
    SubscriptionStatus: _moves(
        {SubscriptionStatus.ACTIVE: {SubscriptionStatus.ENDED}, SubscriptionStatus.ENDED: set()}
    ),
    InvoiceStatus: _moves(
        {
            InvoiceStatus.NUMBERED: {InvoiceStatus.ISSUED},
            InvoiceStatus.ISSUED: {InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.CREDITED},
            InvoiceStatus.PARTIALLY_PAID: {InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID},
            InvoiceStatus.PAID: set(),
            InvoiceStatus.CREDITED: set(),
        }
    ),
    CreditNoteStatus: _moves({CreditNoteStatus.ISSUED: set()}),
    OutboxStatus: _moves(
        {
            # pending → pending: a failed attempt, retried later
            OutboxStatus.PENDING: {
                OutboxStatus.PENDING,
                OutboxStatus.SENT,
                OutboxStatus.UNDELIVERED,
                OutboxStatus.CANCELLED,
            },
            # an operator retries an undelivered message
            OutboxStatus.UNDELIVERED: {OutboxStatus.PENDING, OutboxStatus.CANCELLED},
            OutboxStatus.SENT: set(),
            OutboxStatus.CANCELLED: set(),
        }
    ),
}

WHAT: dict[type[StrEnum], str] = {
    RequestStatus: "demande",
    QuoteStatus: "devis",
    ConventionStatus: "convention",
    ApprovalStatus: "signature",
    OrderStatus: "bon de commande",
    SubscriptionStatus: "abonnement",
    InvoiceStatus: "facture",
    CreditNoteStatus: "avoir",
    OutboxStatus: "courriel",
}

STATUS_LABELS: dict[str, str] = {
    RequestStatus.RECEIVED: "reçue",
    RequestStatus.REFUSED: "refusée",
    RequestStatus.WAITING_OPERATOR: "en attente d'un opérateur",
    RequestStatus.ELIGIBLE: "éligible",
    RequestStatus.QUOTED: "devis envoyés",
    RequestStatus.SIGNING: "en signature",
    RequestStatus.IN_FORCE: "convention en vigueur",
    RequestStatus.DECLINED: "déclinée",
    RequestStatus.EXPIRED: "expirée",
}

# Open conventions: still waiting for a signature.
OPEN_CONVENTION = frozenset(
    {ConventionStatus.AWAITING_COLLECTIVITY, ConventionStatus.AWAITING_CDG, ConventionStatus.AWAITING_SYNDICAT}
)
# Requests whose quotes are issued (issuing again returns them).
QUOTED_REQUEST = frozenset(
    {RequestStatus.QUOTED, RequestStatus.SIGNING, RequestStatus.IN_FORCE, RequestStatus.DECLINED, RequestStatus.EXPIRED}
)
# Invoices that may still receive a payment, a reminder or a credit note.
OPEN_INVOICE = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID})


def allowed(current: S, target: S) -> bool:
    """Whether the lifecycle allows `current → target` (both of the same status type)."""
    return target in MOVES[type(target)].get(current, frozenset())


def check(enum: type[S], current: str, target: S) -> S:
    """`target` when `current → target` is allowed, else `InvalidTransition` in plain words."""
    here = enum(current)
    if not allowed(here, target):
        raise InvalidTransition(f"{WHAT[enum]} : passage de « {here} » à « {target} » impossible")
    return target


class HasStatus(Protocol):
    status: Any


def move(row: HasStatus, target: S) -> S:
    """Change the status of an entity row, checked against its status table."""
    row.status = check(type(target), str(row.status), target)
    return target


# --------------------------------------------------------------------------------------------------
# PES V2 (titres de recettes sent to Hélios), appended as one block: statuses, moves, names
# --------------------------------------------------------------------------------------------------


class PesBordereauStatus(StrEnum):
    NUMBERED = "numbered"  # its number and pieces are stored; the file is not written yet (the next run does)
    WRITTEN = "written"  # the PES_Aller file is in the deposit folder, waiting for Hélios's acquit
    ACCEPTED = "accepted"  # Hélios's acquit took it
    REJECTED = "rejected"  # Hélios's acquit refused it: its titres go again in a new bordereau


class PesPieceStatus(StrEnum):
    NUMBERED = "numbered"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


MOVES.update(
    {
        PesBordereauStatus: _moves(
            {
                PesBordereauStatus.NUMBERED: {PesBordereauStatus.WRITTEN},
                PesBordereauStatus.WRITTEN: {PesBordereauStatus.ACCEPTED, PesBordereauStatus.REJECTED},
                PesBordereauStatus.ACCEPTED: set(),
                PesBordereauStatus.REJECTED: set(),
            }
        ),
        PesPieceStatus: _moves(
            {
                PesPieceStatus.NUMBERED: {PesPieceStatus.SENT},
                PesPieceStatus.SENT: {PesPieceStatus.ACCEPTED, PesPieceStatus.REJECTED},
                PesPieceStatus.ACCEPTED: set(),
                PesPieceStatus.REJECTED: set(),
            }
        ),
    }
)
WHAT.update({PesBordereauStatus: "bordereau PES", PesPieceStatus: "titre de recette"})
