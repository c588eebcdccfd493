"""The parties of a tripartite convention and the order in which they sign.

One spelling everywhere: `collectivity`, `cdg`, `syndicat` (the database, the links, the documents).
The collectivity signs first, then the CDG of its department, then the syndicat; the convention is in
force when the last one has signed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from models.errors import InvalidInput
from models.lifecycle import OPEN_CONVENTION, ApprovalStatus, ConventionStatus


class Party(StrEnum):
    COLLECTIVITY = "collectivity"
    CDG = "cdg"
    SYNDICAT = "syndicat"


SIGNING_ORDER: tuple[Party, ...] = (Party.COLLECTIVITY, Party.CDG, Party.SYNDICAT)

PARTY_LABELS: dict[str, str] = {
    Party.COLLECTIVITY: "la collectivité",
    Party.CDG: "le Centre de gestion",
    Party.SYNDICAT: "le syndicat",
}

# The convention's status while it waits for each party, and once that party has signed.
AWAITING: dict[Party, ConventionStatus] = {
    Party.COLLECTIVITY: ConventionStatus.AWAITING_COLLECTIVITY,
    Party.CDG: ConventionStatus.AWAITING_CDG,
    Party.SYNDICAT: ConventionStatus.AWAITING_SYNDICAT,
}


def parse_party(text: str) -> Party:
    """A party named by its code, with the accepted codes in the error."""
    try:
        return Party(text.strip())
    except ValueError:
        raise InvalidInput(f"partie inconnue « {text} » ({', '.join(SIGNING_ORDER)})") from None


def position(party: str) -> int:
    """1 for the collectivity, 2 for the CDG, 3 for the syndicat."""
    return SIGNING_ORDER.index(Party(party)) + 1


def next_party(party: str) -> Party | None:
    """Who signs after `party`, None after the last one."""
    index = SIGNING_ORDER.index(Party(party))
    return SIGNING_ORDER[index + 1] if index + 1 < len(SIGNING_ORDER) else None


def status_after_signature(party: str) -> ConventionStatus:
    """The convention's status once `party` has signed: waiting for the next one, or in force."""
    following = next_party(party)
    return ConventionStatus.IN_FORCE if following is None else AWAITING[following]


def decision_refusal(
    *,
    convention_status: str,
    approval_status: str,
    expires_at: datetime | None,
    now: datetime,
    reference: str,
) -> str | None:
    """Why a party may not decide (sign, decline) now, in plain words; None when it may.

    The deadline is checked here, where the decision is taken, whatever the scheduled expiry did."""
    if approval_status == ApprovalStatus.WAITING:
        return "Ce n'est pas encore à cette partie de signer : la signature précédente est attendue."
    if convention_status not in OPEN_CONVENTION:
        return f"La convention {reference} n'est plus ouverte à la signature."
    if expires_at is not None and now >= expires_at:
        return f"Le délai de signature de la convention {reference} est dépassé : elle a expiré."
    return None


def question_refusal(
    *, convention_status: str, approval_status: str, expires_at: datetime | None, now: datetime
) -> str | None:
    """Why a party may not ask a question through its link now; None when it may (its turn has come and
    the convention is open or in force)."""
    if approval_status == ApprovalStatus.WAITING:
        return "Ce n'est pas encore à cette partie de se prononcer : la signature précédente est attendue."
    if convention_status == ConventionStatus.IN_FORCE:
        return None
    if convention_status not in OPEN_CONVENTION or (expires_at is not None and now >= expires_at):
        return "Cette convention n'est plus ouverte : écrivez directement à l'équipe Mairie Connectée."
    return None
