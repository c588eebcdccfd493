"""Allowed status moves of each entity, as data; an invalid move raises `InvalidTransition`."""

from __future__ import annotations

from models.errors import InvalidTransition

REQUEST_MOVES: dict[str, set[str]] = {
    "received": {"refused", "waiting_operator", "eligible"},
    "waiting_operator": {"eligible", "refused"},
    "eligible": {"quoted"},
    "quoted": {"signing", "declined", "expired", "eligible"},
    "signing": {"in_force", "declined", "expired", "eligible"},
    "in_force": set(),
    "refused": set(),
    "declined": set(),
    "expired": set(),
}

CONVENTION_MOVES: dict[str, set[str]] = {
    "awaiting_collectivity": {"awaiting_cdg", "declined", "expired", "superseded"},
    "awaiting_cdg": {"awaiting_syndicat", "declined", "expired", "superseded"},
    "awaiting_syndicat": {"in_force", "declined", "expired", "superseded"},
    "in_force": {"terminated"},
    "declined": set(),
    "expired": set(),
    "superseded": set(),
    "terminated": set(),
}

ORDER_MOVES: dict[str, set[str]] = {
    "sent": {"acknowledged"},
    "acknowledged": {"partially_delivered", "delivered"},
    "partially_delivered": {"partially_delivered", "delivered"},
    "delivered": set(),
}

STATUS_LABELS = {
    "received": "reçue",
    "refused": "refusée",
    "waiting_operator": "en attente d'un opérateur",
    "eligible": "éligible",
    "quoted": "devis envoyés",
    "signing": "en signature",
    "in_force": "convention en vigueur",
    "declined": "déclinée",
    "expired": "expirée",
}


def move(table: dict[str, set[str]], current: str, target: str, what: str) -> str:
    """Check that `current → target` is allowed; returns the target."""
    if target not in table.get(current, set()):
        raise InvalidTransition(f"{what} : passage de « {current} » à « {target} » impossible")
    return target
