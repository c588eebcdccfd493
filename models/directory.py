"""Finding things in the database by the identifiers people type: INSEE code, SIREN, SIRET."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from sqlmodel import Session, col, select
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from models.catalog import Grid, grid_in_force
from models.eligibility import CollectivityProfile, Population
from models.entities import Collectivity, Commune, CommunePopulation, Epci
from models.errors import InvalidInput, NotFound
from models.reference_data import DATA_DIR, POPULATION_SOURCE, stored_grids

REST_OF_FRANCE_FILE = DATA_DIR / "communes-hors-59-62.csv"

IdentifierKind = Literal["insee", "siren"]


@dataclass(frozen=True)
class Identifier:
    kind: IdentifierKind
    value: str


def parse_identifier(text: str) -> Identifier:
    """An INSEE code (5 characters, e.g. 62041 or 2A004), a SIREN (9 digits) or a SIRET (14 digits).

    SIREN and SIRET checksums are verified; a SIRET names its SIREN.
    """
    cleaned = text.strip().replace(" ", "").replace("\xa0", "").upper()
    if len(cleaned) == 5 and (cleaned.isdigit() or (cleaned[:2] in ("2A", "2B") and cleaned[2:].isdigit())):
        return Identifier("insee", cleaned)
    if cleaned.isdigit() and len(cleaned) == 9:
        try:
            return Identifier("siren", stdnum_siren.validate(cleaned))
        except ValidationError:
            raise InvalidInput(
                f"SIREN « {text} » invalide : la clé de contrôle ne correspond pas (vérifiez les 9 chiffres)"
            ) from None
    if cleaned.isdigit() and len(cleaned) == 14:
        try:
            return Identifier("siren", stdnum_siret.validate(cleaned)[:9])
        except ValidationError:
            raise InvalidInput(f"SIRET « {text} » invalide : la clé de contrôle ne correspond pas") from None
    raise InvalidInput(
        f"« {text} » n'est ni un code INSEE (5 caractères, ex. 62041), ni un SIREN (9 chiffres), "
        "ni un SIRET (14 chiffres)"
    )


@dataclass(frozen=True)
class Found:
    """A collectivity as found by an identifier: a reference commune/EPCI or a known collectivity."""

    kind: str
    name: str
    siren: str
    department: str
    insee_code: str | None
    epci_siren: str | None
    population_municipal: int | None
    population_total: int | None
    vintage: int | None
    collectivity_id: int | None = None
    population_override: int | None = None
    postcodes: tuple[str, ...] = ()  # a commune's La Poste postcodes

    def profile(self, population_kind: str) -> CollectivityProfile:
        """The eligibility profile, with the population of the configured kind (total or municipal)."""
        chosen, other = _populations(self, population_kind)
        return CollectivityProfile(
            kind=self.kind, name=self.name, department=self.department, population=chosen, other_population=other
        )


def _populations(found: Found, population_kind: str) -> tuple[Population | None, Population | None]:
    if found.population_override is not None:
        return Population(found.population_override, "operator", None, "saisie opérateur"), None
    if found.population_total is None or found.population_municipal is None:
        return None, None
    source = f"{POPULATION_SOURCE} {found.vintage}"
    total = Population(found.population_total, "total", found.vintage, source)
    municipal = Population(found.population_municipal, "municipal", found.vintage, source)
    return (total, municipal) if population_kind == "total" else (municipal, total)


def population_in_force(session: Session, insee_code: str, on: date) -> CommunePopulation | None:
    """The legal population in force on a date: the latest vintage in force then, else the oldest known."""
    query = select(CommunePopulation).where(CommunePopulation.insee_code == insee_code)
    rows = session.exec(query.order_by(col(CommunePopulation.vintage))).all()
    return vintage_in_force(rows, on)


def vintage_in_force(rows: Sequence[CommunePopulation], on: date) -> CommunePopulation | None:
    """Of one commune's populations sorted by vintage: the latest in force on a date, else the oldest."""
    in_force = [r for r in rows if r.in_force_from <= on]
    if in_force:
        return in_force[-1]
    return rows[0] if rows else None


def find(session: Session, text: str, on: date) -> Found:
    """Find a collectivity by INSEE code, SIREN or SIRET: a known collectivity first (it may carry an
    operator-entered population), then the official communes and EPCIs of Nord and Pas-de-Calais."""
    ident = parse_identifier(text)
    if ident.kind == "insee":
        commune = session.get(Commune, ident.value)
        if commune is None:
            if session.exec(select(Commune).limit(1)).first() is None:
                raise NotFound("les communes ne sont pas chargées : lancez d'abord « mairie init »")
            elsewhere = rest_of_france().get(ident.value)
            if elsewhere is not None:
                return elsewhere
            raise NotFound(f"aucune commune de code INSEE {ident.value} en France (code officiel géographique)")
        return _commune_found(session, commune, on)
    known = session.exec(select(Collectivity).where(Collectivity.siren == ident.value)).first()
    if known is not None and known.kind not in ("commune", "epci"):
        return Found(
            kind=known.kind,
            name=known.name,
            siren=known.siren,
            department=known.department,
            insee_code=None,
            epci_siren=None,
            population_municipal=None,
            population_total=None,
            vintage=None,
            collectivity_id=known.id,
            population_override=known.population_override,
        )
    commune = session.exec(select(Commune).where(Commune.siren == ident.value)).first()
    if commune is not None:
        return _commune_found(session, commune, on)
    epci = session.get(Epci, ident.value)
    if epci is not None:
        return Found(
            kind="epci",
            name=epci.name,
            siren=epci.siren,
            department=epci_department(session, epci.siren),
            insee_code=None,
            epci_siren=None,
            population_municipal=epci.population_municipale,
            population_total=epci.population_totale,
            vintage=epci.vintage,
            collectivity_id=known.id if known else None,
            population_override=known.population_override if known else None,
        )
    elsewhere = next((f for f in rest_of_france().values() if f.siren == ident.value), None)
    if elsewhere is not None:
        return elsewhere
    raise NotFound(
        f"aucune collectivité de SIREN {ident.value} parmi les communes et EPCI du Nord et du Pas-de-Calais ; "
        "un établissement public doit d'abord être enregistré par un opérateur"
    )


@lru_cache(maxsize=1)
def rest_of_france() -> dict[str, Found]:
    """The other communes of France (reference file), so that a request from outside Nord and
    Pas-de-Calais is refused with its reason instead of being unknown."""
    with REST_OF_FRANCE_FILE.open(encoding="utf-8", newline="") as handle:
        return {
            row["insee_code"]: Found(
                kind="commune",
                name=row["name"],
                siren=row["siren"],
                department=row["department"],
                insee_code=row["insee_code"],
                epci_siren=None,
                population_municipal=int(row["population_municipale"]),
                population_total=int(row["population_totale"]),
                vintage=2023,
            )
            for row in csv.DictReader(handle)
        }


def _commune_found(session: Session, commune: Commune, on: date) -> Found:
    population = population_in_force(session, commune.insee_code, on)
    known = session.exec(select(Collectivity).where(Collectivity.siren == commune.siren)).first()
    return commune_found(commune, population, known)


def commune_found(commune: Any, population: Any | None, known: Collectivity | None = None) -> Found:
    """What the directory says of a commune (a `Commune` row or any row with its columns), with the population
    vintage in force and, when it is one already, the collectivity on file."""
    return Found(
        kind="commune",
        name=commune.name,
        siren=commune.siren,
        department=commune.department,
        insee_code=commune.insee_code,
        epci_siren=commune.epci_siren,
        population_municipal=population.municipal if population else None,
        population_total=population.total if population else None,
        vintage=population.vintage if population else None,
        collectivity_id=known.id if known else None,
        population_override=known.population_override if known else None,
        postcodes=tuple(commune.postcodes.split()),
    )


def epci_department(session: Session, epci_siren: str) -> str:
    """The department of an EPCI: the one of most of its member communes (some straddle two)."""
    departments = session.exec(select(Commune.department).where(Commune.epci_siren == epci_siren)).all()
    if not departments:
        raise NotFound(f"EPCI {epci_siren} sans commune membre connue")
    return Counter(departments).most_common(1)[0][0]


def grid_on(session: Session, on: date) -> Grid:
    """The price grid in force on a date, from the database."""
    grids = stored_grids(session)
    if not grids:
        raise NotFound("aucune grille tarifaire chargée : lancez d'abord « mairie init »")
    return grid_in_force(grids, on)
