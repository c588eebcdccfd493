"""Loading the reference data into the database, idempotently: issuers, communes and their legal
populations, EPCIs, price grids and support bands. Running it twice changes nothing the second time."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from models.catalog import Grid, item_kind
from models.entities import (
    Commune,
    CommunePopulation,
    Epci,
    Issuer,
    PriceGrid,
    PriceGridItem,
    SupportBand,
)

DATA_DIR = Path(__file__).parent / "data"
COMMUNES_FILE = DATA_DIR / "communes-59-62.csv"
EPCI_FILE = DATA_DIR / "epci-59-62.csv"
POPULATION_SOURCE = "INSEE, populations légales"


def vintage_in_force_from(vintage: int) -> date:
    """A legal-population vintage comes into force on 1 January of its third year (2023 → 2026-01-01)."""
    return date(vintage + 3, 1, 1)


@dataclass
class LoadReport:
    communes: int = 0
    populations: int = 0
    epcis: int = 0
    grids: int = 0
    issuers: int = 0


def sync_issuers(session: Session, identities: Iterable[Any]) -> int:
    """Write the issuers' identity (from the settings) into the `issuer` table; returns rows changed."""
    changed = 0
    for identity in identities:
        values = identity.model_dump() if hasattr(identity, "model_dump") else dict(identity)
        # the table keeps the identity's columns only (the settings also carry what documents print)
        values = {key: value for key, value in values.items() if key in Issuer.model_fields}
        row = session.get(Issuer, values["code"])
        if row is None:
            session.add(Issuer.model_validate(values))
            changed += 1
            continue
        dirty = False
        for key, value in values.items():
            if key not in Issuer.model_fields:  # a setting the table does not keep (e.g. the PES budget)
                continue
            if getattr(row, key) != value:
                setattr(row, key, value)
                dirty = True
        if dirty:
            session.add(row)
            changed += 1
    return changed


def load_communes(session: Session, communes_file: Path = COMMUNES_FILE, epci_file: Path = EPCI_FILE) -> LoadReport:
    """Insert or update communes, their populations (one row per vintage) and EPCIs."""
    report = LoadReport()
    existing_epci = {e.siren: e for e in session.exec(select(Epci)).all()}
    with epci_file.open(encoding="utf-8", newline="") as handle:
        for raw in csv.DictReader(handle):
            values = {
                "siren": raw["siren"],
                "name": raw["name"],
                "nature": raw["nature"],
                "population_municipale": int(raw["population_municipale"]),
                "population_totale": int(raw["population_totale"]),
                "vintage": 2023,
                "member_count": int(raw["member_count"]),
            }
            report.epcis += _upsert(session, existing_epci.get(raw["siren"]), Epci, values)
    session.flush()

    existing = {c.insee_code: c for c in session.exec(select(Commune)).all()}
    populations = {(p.insee_code, p.vintage): p for p in session.exec(select(CommunePopulation)).all()}
    rows = []
    with communes_file.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for raw in rows:
        values = {
            "insee_code": raw["insee_code"],
            "name": raw["name"],
            "department": raw["department"],
            "siren": raw["siren"],
            "epci_siren": raw["epci_siren"] or None,
            "postcodes": raw.get("postcodes", ""),
        }
        report.communes += _upsert(session, existing.get(raw["insee_code"]), Commune, values)
    session.flush()
    for raw in rows:
        vintage = int(raw["vintage"])
        values = {
            "insee_code": raw["insee_code"],
            "vintage": vintage,
            "in_force_from": vintage_in_force_from(vintage),
            "municipal": int(raw["population_municipale"]),
            "total": int(raw["population_totale"]),
            "source": POPULATION_SOURCE,
        }
        report.populations += _upsert(session, populations.get((raw["insee_code"], vintage)), CommunePopulation, values)
    return report


def _upsert(session: Session, row: Any, model: Any, values: dict[str, Any]) -> int:
    if row is None:
        session.add(model.model_validate(values))
        return 1
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    if changed:
        session.add(row)
    return int(changed)


def store_grid(session: Session, grid: Grid) -> bool:
    """Store a grid version once. A stored version is never rewritten: returns False if it exists
    (identical or not — a changed grid is a new version with its own effective date)."""
    if session.exec(select(PriceGrid).where(PriceGrid.code == grid.code)).first() is not None:
        return False
    row = PriceGrid(
        code=grid.code,
        effective_from=grid.effective_from,
        title=grid.title,
        source=grid.source,
        support_label=grid.support_label,
        support_unit=grid.support_unit,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    for item in grid.items:
        session.add(
            PriceGridItem(
                grid_id=row.id,
                code=item.code,
                position=item.position,
                family=item.family,
                label=item.label,
                unit=item.unit,
                kind=item.kind,
                price_ttc=item.price_ttc,
                vat_rate=item.vat_rate,
                max_quantity=item.max_quantity,
                renews_as=list(item.renews_as),
            )
        )
    for issuer, bands in grid.bands.items():
        for band in bands:
            session.add(
                SupportBand(
                    grid_id=row.id,
                    issuer_code=issuer,
                    min_population=band.min_population,
                    max_population=band.max_population,
                    fee=band.fee,
                    label=band.label,
                )
            )
    return True


def stored_grids(session: Session) -> list[Grid]:
    """Every grid version of the database, as plain values for the rules."""
    from models.catalog import Band, GridItem

    grids = []
    for row in session.exec(select(PriceGrid).order_by(col(PriceGrid.effective_from))).all():
        items = session.exec(
            select(PriceGridItem).where(PriceGridItem.grid_id == row.id).order_by(col(PriceGridItem.position))
        ).all()
        bands_rows = session.exec(
            select(SupportBand).where(SupportBand.grid_id == row.id).order_by(col(SupportBand.min_population))
        ).all()
        bands: dict[str, list[Band]] = {}
        for b in bands_rows:
            bands.setdefault(b.issuer_code, []).append(
                Band(b.min_population, b.max_population, Decimal(b.fee), b.label)
            )
        grids.append(
            Grid(
                code=row.code,
                effective_from=row.effective_from,
                title=row.title,
                source=row.source,
                items=tuple(
                    GridItem(
                        code=i.code,
                        family=i.family,
                        label=i.label,
                        unit=i.unit,
                        kind=item_kind(i.kind),
                        price_ttc=i.price_ttc,
                        vat_rate=i.vat_rate,
                        max_quantity=i.max_quantity,
                        renews_as=tuple(i.renews_as),
                        position=i.position,
                    )
                    for i in items
                ),
                support_label=row.support_label,
                support_unit=row.support_unit,
                bands={k: tuple(v) for k, v in bands.items()},
            )
        )
    return grids
