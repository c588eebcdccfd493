"""Database wiring: engines, the unit of work, and errors translated into plain words.

SQLite (default) and PostgreSQL behave the same for the rules that matter here:
- every SQLite transaction starts with BEGIN IMMEDIATE, so writers queue instead of failing half-way,
  and foreign keys are enforced;
- on PostgreSQL, the row lock taken by the number-sequence UPDATE serialises concurrent issuers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from models.errors import StorageUnavailable
from models.repositories import (
    Approvals,
    Collectivities,
    Conventions,
    CreditNotes,
    Invoices,
    Issuers,
    Orders,
    Quotes,
    Requests,
    Subscriptions,
)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per database URL for the process (engines pool their connections)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=_pg_args(parsed.get_backend_name()))


def _pg_args(backend: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if backend == "postgresql" else {}


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are disabled).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # one statement on its own (the document store's reads): no transaction, no write lock
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


class UnitOfWork:
    """One transaction: rolls back unless `commit()` is called; side effects go after the commit.

    Its repositories (`uow.requests`, `uow.quotes`, `uow.conventions`, `uow.invoices`, `uow.issuers`…)
    hold the look-ups that recur. A database that cannot be reached surfaces as `StorageUnavailable`
    naming the database and what to do, whatever statement found it out.
    """

    def __init__(self, engine: Engine, issuers: Sequence[Any] = ()) -> None:
        self.engine = engine
        self.issuers: Issuers[Any] = Issuers(issuers)
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = Session(self.engine, expire_on_commit=False)
        self.collectivities = Collectivities(self.session)
        self.requests = Requests(self.session)
        self.quotes = Quotes(self.session)
        self.conventions = Conventions(self.session)
        self.approvals = Approvals(self.session)
        self.orders = Orders(self.session)
        self.subscriptions = Subscriptions(self.session)
        self.invoices = Invoices(self.session)
        self.credit_notes = CreditNotes(self.session)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            self.session.rollback()
        except OperationalError:
            pass  # the connection is gone: nothing to roll back, the error below says why
        finally:
            self.session.close()
        if isinstance(exc, OperationalError):
            raise unavailable(str(self.engine.url), exc) from exc

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


def unavailable(url: str, exc: OperationalError) -> StorageUnavailable:
    """The plain error for a database that cannot be reached."""
    return StorageUnavailable(
        f"base de données injoignable ({describe_url(url)}) : {str(exc.orig).strip().splitlines()[0]}. "
        "Vérifiez MAIRIE_DATABASE_URL, que le serveur tourne, puis lancez « mairie init »."
    )


@contextmanager
def reachable(url: str) -> Iterator[None]:
    """Turn a connection failure into a plain error naming the database and what to do."""
    try:
        yield
    except OperationalError as exc:
        raise unavailable(url, exc) from exc
