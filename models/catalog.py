"""Price grids and support-fee bands as plain values (no database), and their JSON data files.

A grid version is a JSON file (see `models/data/grids/2025-07-10.json`): adding a new version is adding
a file, no code change. `mairie init` stores every version in the database; the rules work on the
values below, whichever storage they came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from models.errors import InvalidInput, NotFound

ItemKind = Literal["yearly", "one_off", "first_year"]
ITEM_KINDS: tuple[ItemKind, ...] = ("yearly", "one_off", "first_year")
KIND_LABELS = {"yearly": "annuel", "one_off": "unique", "first_year": "première année"}
SUPPORT_CODE = "accompagnement"
GRIDS_DIR = Path(__file__).parent / "data" / "grids"


def item_kind(value: str) -> ItemKind:
    """The item kind a stored value names; InvalidInput when it is none of `ITEM_KINDS`."""
    for kind in ITEM_KINDS:
        if value == kind:
            return kind
    raise InvalidInput(f"type d'article « {value} » inconnu ({', '.join(ITEM_KINDS)})")


@dataclass(frozen=True)
class GridItem:
    code: str
    family: str
    label: str
    unit: str
    kind: ItemKind
    price_ttc: Decimal
    vat_rate: Decimal
    max_quantity: int | None = None
    renews_as: tuple[str, ...] = ()
    position: int = 0


@dataclass(frozen=True)
class Band:
    """Support fee for a population in [min_population, max_population)."""

    min_population: int
    max_population: int
    fee: Decimal
    label: str

    def contains(self, population: int) -> bool:
        return self.min_population <= population < self.max_population


@dataclass(frozen=True)
class Grid:
    code: str
    effective_from: date
    title: str
    source: str
    items: tuple[GridItem, ...]
    support_label: str
    support_unit: str
    bands: dict[str, tuple[Band, ...]] = field(default_factory=dict)  # CDG issuer code → bands

    def item(self, code: str) -> GridItem:
        for item in self.items:
            if item.code == code:
                return item
        known = ", ".join(i.code for i in self.items)
        raise InvalidInput(f"code d'article inconnu « {code} » ; codes acceptés : {known}")

    def has_item(self, code: str) -> bool:
        return any(i.code == code for i in self.items)


def grid_in_force(grids: Iterable[Grid], on: date) -> Grid:
    """The grid version in force on a date: the latest whose effective date is on or before it."""
    candidates = [g for g in grids if g.effective_from <= on]
    if not candidates:
        raise NotFound(f"aucune grille tarifaire n'est en vigueur le {on:%d/%m/%Y}")
    return max(candidates, key=lambda g: g.effective_from)


def parse_grid(data: dict[str, Any], overrides: dict[str, list[dict[str, Any]]] | None = None) -> Grid:
    """Build a grid from its JSON form, checking every field; `overrides` replaces a CDG's bands."""
    try:
        rate = Decimal(str(data.get("vat_rate", "0.20")))
        items = []
        for position, raw in enumerate(data["items"], start=1):
            kind = raw["kind"]
            if kind not in ITEM_KINDS:
                raise InvalidInput(f"article {raw['code']}: type « {kind} » inconnu ({', '.join(ITEM_KINDS)})")
            items.append(
                GridItem(
                    code=raw["code"],
                    family=raw["family"],
                    label=raw["label"],
                    unit=raw["unit"],
                    kind=kind,
                    price_ttc=Decimal(str(raw["price_ttc"])).quantize(Decimal("0.01")),
                    vat_rate=Decimal(str(raw.get("vat_rate", rate))),
                    max_quantity=raw.get("max_quantity"),
                    renews_as=tuple(raw.get("renews_as", ())),
                    position=position,
                )
            )
        support = data["support"]
        raw_bands: dict[str, Any] = dict(support["bands"])
        raw_bands.update(overrides or {})
        bands: dict[str, tuple[Band, ...]] = {}
        for issuer, spec in raw_bands.items():
            if isinstance(spec, str) and spec.startswith("same-as:"):
                continue
            bands[issuer] = _parse_bands(issuer, spec)
        for issuer, spec in raw_bands.items():
            if isinstance(spec, str) and spec.startswith("same-as:"):
                bands[issuer] = bands[spec.removeprefix("same-as:")]
        grid = Grid(
            code=data["code"],
            effective_from=date.fromisoformat(data["effective_from"]),
            title=data["title"],
            source=data.get("source", ""),
            items=tuple(items),
            support_label=support["label"],
            support_unit=support["unit"],
            bands=bands,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"grille tarifaire mal formée : {exc}") from exc
    codes = [i.code for i in grid.items]
    if len(set(codes)) != len(codes):
        raise InvalidInput("grille tarifaire mal formée : un code d'article apparaît deux fois")
    for item in grid.items:
        for code in item.renews_as:
            if code not in codes:
                raise InvalidInput(f"grille tarifaire mal formée : {item.code} se renouvelle en {code}, inconnu")
    return grid


def _parse_bands(issuer: str, spec: list[dict[str, Any]]) -> tuple[Band, ...]:
    bands = tuple(
        sorted(
            (
                Band(
                    min_population=int(b["min"]),
                    max_population=int(b["max"]),
                    fee=Decimal(str(b["fee"])).quantize(Decimal("0.01")),
                    label=b["label"],
                )
                for b in spec
            ),
            key=lambda b: b.min_population,
        )
    )
    # Bands must tile [0, last max) with no gap and no overlap: every population maps to one band.
    expected = 0
    for band in bands:
        if band.min_population != expected or band.max_population <= band.min_population:
            raise InvalidInput(f"tranches de {issuer} : trou ou chevauchement autour de {expected} habitants")
        expected = band.max_population
    return bands


def load_grid_file(path: Path, overrides: dict[str, list[dict[str, Any]]] | None = None) -> Grid:
    """Read a grid version from a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"fichier de grille illisible {path}: {exc}") from exc
    return parse_grid(data, overrides)


def bundled_grid_files(extra_dir: Path | None = None) -> list[Path]:
    """The grid files shipped with the software, plus those of an operator's folder."""
    files = sorted(GRIDS_DIR.glob("*.json"))
    if extra_dir is not None and extra_dir.is_dir():
        files += sorted(extra_dir.glob("*.json"))
    return files
