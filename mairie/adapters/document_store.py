"""The document store in the database (`MAIRIE_DOCUMENT_STORE=database`): every machine that reaches the
database reaches every document, so any of them sends any email, deposit or PES file.

- `put` inserts the bytes into `documentblob` (SHA-256 primary key, `INSERT … ON CONFLICT DO NOTHING`:
  idempotent, and two transactions storing the same bytes at once both succeed). Given the caller's
  session it writes in the caller's transaction, so the bytes commit or roll back with the
  `StoredDocument` row and whatever points to them: no committed row without its bytes. Without one it
  writes in a short transaction of its own (an orphan blob, if the caller then fails, is harmless).
- `get` reads in autocommit (one SELECT, no transaction: on SQLite it takes no write lock, so it may run
  while the caller's own transaction is open) and checks the SHA-256 of what it read.
- `fallback`: a file store read when a hash is not in the table — the documents written before the
  switch from `files` (`mairie documents copy-to-database` moves them in for good).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from documents.store import DocumentStore, StoredFile, StoreError, check_sha, check_suffix
from models.entities import DocumentBlob
from models.types import utcnow

BLOB = DocumentBlob.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models


class DatabaseStore:
    """Document bytes in the `documentblob` table (PostgreSQL bytea, SQLite BLOB), keyed by SHA-256."""

    def __init__(self, engine: Engine, fallback: DocumentStore | None = None) -> None:
        self.engine = engine
        self.fallback = fallback

    def put(self, content: bytes, suffix: str = ".pdf", *, transaction: object | None = None) -> StoredFile:
        """Store bytes once (in `transaction`, the caller's session, when given)."""
        check_suffix(suffix)
        sha = hashlib.sha256(content).hexdigest()
        dialect = self.engine.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(BLOB)
            .values(sha256=sha, size=len(content), content=content, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["sha256"])
        )
        if transaction is not None:
            transaction.execute(statement)  # type: ignore[attr-defined]  # a sqlmodel/SQLAlchemy Session
        else:
            with _database_errors(), self.engine.begin() as connection:
                connection.execute(statement)
        return StoredFile(sha256=sha, path=None, size=len(content))

    def get(self, sha256: str, suffix: str | None = None) -> bytes:
        """The bytes stored under a hash, checked against it (`StoreError` if absent or altered)."""
        check_sha(sha256)
        with self._reading() as connection:
            content = connection.execute(select(BLOB.c.content).where(BLOB.c.sha256 == sha256)).scalar()
        if content is None:
            if self.fallback is not None and sha256 in self.fallback:
                return self.fallback.get(sha256, suffix)
            raise StoreError(f"aucun document d'empreinte {sha256} dans la base de données")
        data = bytes(content)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"le document {sha256} a été modifié dans la base : son empreinte ne correspond plus")
        return data

    def __contains__(self, sha256: str) -> bool:
        try:
            check_sha(sha256)
        except StoreError:
            return False
        with self._reading() as connection:
            found = connection.execute(select(BLOB.c.sha256).where(BLOB.c.sha256 == sha256)).first()
        return found is not None or (self.fallback is not None and sha256 in self.fallback)

    def stats(self) -> tuple[int, int]:
        """How many documents the table holds and their total size in bytes."""
        with self._reading() as connection:
            count, total = connection.execute(select(func.count(), func.coalesce(func.sum(BLOB.c.size), 0))).one()
        return int(count), int(total)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with _database_errors(), self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection


@contextmanager
def _database_errors() -> Iterator[None]:
    """A database that cannot be reached (or refuses) becomes a `StoreError` in plain French."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StoreError(f"base de données des documents indisponible : {detail[0] if detail else exc}") from exc
