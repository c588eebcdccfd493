"""Fixtures of the notification tests: a database with the tables, an attachment store, a mail server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from notification_test_support import AttachmentStore
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models.entities  # noqa: F401 — registers the tables
from models.db import get_engine
from notifications.mailserver import LoopbackMailServer


@pytest.fixture
def engine(db_url: str) -> Engine:
    """SQLite, and PostgreSQL when reachable (the `db_url` fixture of tests/conftest.py)."""
    engine = get_engine(db_url)
    SQLModel.metadata.create_all(engine)
    return engine


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = get_engine("sqlite:///" + str(tmp_path / "t.sqlite3"))
    SQLModel.metadata.create_all(engine)
    return engine


@pytest.fixture
def store() -> AttachmentStore:
    return AttachmentStore()


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[LoopbackMailServer]:
    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server
