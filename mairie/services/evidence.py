"""A convention's evidence page against the database: does each signature the sealed PDF lists (who, when,
from where, how, which documents with their SHA-256) match what this database recorded, and is the file
the very one it recorded as final? Used by `mairie documents verify`; without a reachable database, says
it could not compare."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from documents.evidence import convention_evidence, squeeze
from documents.formatting import paris_datetime
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.settings import Settings
from models.errors import NotFound, StorageUnavailable

PARTY_NAMES = {"collectivite": "collectivité", "cdg": "centre de gestion", "syndicat": "syndicat"}


@dataclass(frozen=True)
class PartyCheck:
    party: str
    name: str
    differences: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class EvidenceCheck:
    """`compared` False: `reason` says why (no database, convention unknown there)."""

    convention: str
    compared: bool
    reason: str | None = None
    same_file: bool | None = None  # the file's SHA-256 is the final one the database recorded
    parties: tuple[PartyCheck, ...] = field(default=())

    @property
    def matches(self) -> bool | None:
        if not self.compared:
            return None
        return bool(self.same_file) and all(p.matches for p in self.parties)

    def as_json(self) -> dict[str, object]:
        return {
            "convention": self.convention,
            "compared": self.compared,
            "reason": self.reason,
            "matches": self.matches,
            "same_file": self.same_file,
            "parties": [
                {"party": p.party, "name": p.name, "matches": p.matches, "differences": list(p.differences)}
                for p in self.parties
            ],
        }


def _database_absent(settings: Settings) -> str | None:
    """Why there is no database to look in (a SQLite file not there: opening it would create it)."""
    url = settings.sqlalchemy_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        from pathlib import Path

        if not Path(path).is_file():
            return f"aucune base de données ici ({path})"
    return None


def check_convention(settings: Settings, pdf: bytes) -> EvidenceCheck | None:
    """The comparison of a convention's evidence page with the database; None when `pdf` is no convention."""
    found = convention_evidence(pdf)
    if found is None:
        return None
    number, text = found
    absent = _database_absent(settings)
    if absent:
        return EvidenceCheck(number, compared=False, reason=absent)
    try:
        with unit_of_work(settings) as uow:
            convention = uow.conventions.by_reference(number)
            assert convention.id is not None
            signatures = paperwork.signatures_of(uow.approvals.of(convention.id))
            final = convention.final_sha256
            labels = {
                "collectivite": uow.collectivities.get(convention.collectivity_id).name,
                "cdg": uow.issuers.get(convention.cdg_code).name,
                "syndicat": uow.issuers.get(convention.syndicat_code).name,
            }
    except StorageUnavailable as exc:
        return EvidenceCheck(number, compared=False, reason=f"base de données injoignable ({exc})")
    except NotFound:
        return EvidenceCheck(number, compared=False, reason=f"convention {number} inconnue de cette base")
    return EvidenceCheck(
        number,
        compared=True,
        same_file=hashlib.sha256(pdf).hexdigest() == final,
        parties=tuple(_check_party(text, labels, s) for s in signatures),
    )


def _segment(text: str, labels: dict[str, str], party: str) -> str | None:
    """The squeezed text of a party's rows of the evidence page (its label up to the next party's)."""
    order = ["collectivite", "cdg", "syndicat"]
    start = text.find(squeeze(labels[party]))
    if start < 0:
        return None
    ends = [text.find(squeeze(labels[p]), start + 1) for p in order[order.index(party) + 1 :]]
    ends.append(text.find(squeeze("Documents présentés aux signataires"), start))
    end = min((e for e in ends if e > start), default=len(text))
    return text[start:end]


def _check_party(text: str, labels: dict[str, str], signature: paperwork.doc.Signature) -> PartyCheck:
    segment = _segment(text, labels, signature.party)
    party = PARTY_NAMES[signature.party]
    if segment is None:
        return PartyCheck(party, signature.name, ("partie absente de la page de preuve",))
    recording = (
        f"Enregistrée par {signature.operator} pour le compte de la partie"
        if signature.by_operator
        else "Par le signataire, via le lien personnel reçu par courriel"
    )
    expected = [
        ("signataire", signature.name),
        ("date et heure", paris_datetime(signature.signed_at)),
        ("adresse IP", signature.ip_address),
        ("mode d'enregistrement", recording),
    ]
    if signature.user_agent:
        expected.append(("navigateur", signature.user_agent))
    expected += [
        (f"document {d.filename} (SHA-256)", f"{d.filename} — SHA-256 {d.sha256}") for d in signature.documents
    ]
    differences = tuple(
        f"{what} : « {value} » enregistré en base, absent de la page" for what, value in expected
        if squeeze(value) not in segment
    )  # fmt: skip
    return PartyCheck(party, signature.name, differences)
