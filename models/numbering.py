"""Gapless numbering per issuer, document kind and year (`LFN-FAC-2026-00042`).

The number is allocated inside the transaction that issues the document: if that transaction rolls
back, so does the number, and no gap appears. Concurrent transactions queue on the sequence row (row
lock on PostgreSQL, database write lock on SQLite), so no number is given twice.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from models.entities import NumberSequence
from models.types import table_of

DOC_KINDS = {
    "DEV": "devis",
    "FAC": "facture",
    "AVO": "avoir",
    "CONV": "convention",
    "BDC": "bon de commande",
    "DEM": "demande",
    # PES V2 (Hélios): bordereaux and titres de recettes, per issuer and exercice (the year of the numbers)
    "PESB": "bordereau de titres (PES)",
    "PESA": "bordereau d'annulation-réduction (PES)",  # TypBord 02: Hélios checks each type's sequence apart
    "PEST": "titre de recette (PES)",
}


def format_number(issuer_code: str, doc_kind: str, year: int, value: int) -> str:
    return f"{issuer_code}-{doc_kind}-{year}-{value:05d}"


def next_value(session: Session, issuer_code: str, doc_kind: str, year: int) -> int:
    """Take the next value of a sequence inside the caller's transaction."""
    if doc_kind not in DOC_KINDS:
        raise ValueError(f"unknown document kind {doc_kind!r}")
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(NumberSequence)
        .values(issuer_code=issuer_code, doc_kind=doc_kind, year=year, last_value=0)
        .on_conflict_do_nothing()
    )
    table = table_of(NumberSequence)
    result = session.execute(
        update(table)
        .where(table.c.issuer_code == issuer_code, table.c.doc_kind == doc_kind, table.c.year == year)
        .values(last_value=table.c.last_value + 1)
        .returning(table.c.last_value)
    )
    return int(result.scalar_one())


def next_number(session: Session, issuer_code: str, doc_kind: str, year: int) -> str:
    """The next formatted number of a sequence, e.g. `CDG62-DEV-2026-00007`."""
    return format_number(issuer_code, doc_kind, year, next_value(session, issuer_code, doc_kind, year))
