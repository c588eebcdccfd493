"""The parties of a tripartite convention and the order in which they sign.

One spelling everywhere: `collectivity`, `cdg`, `syndicat` (the database, the links, the documents).
The collectivity signs first, then the CDG of its department, then the syndicat; the convention is in
force when the last one has signed.
"""

from __future__ import annotations

from enum import StrEnum

from models.errors import InvalidInput
from models.lifecycle import ConventionStatus


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
