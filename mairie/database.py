"""The application's database: engine from the settings, migrations, units of work."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from mairie.settings import Settings
from models.db import UnitOfWork, get_engine, reachable

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "models" / "migrations"


def engine(settings: Settings) -> Engine:
    return get_engine(settings.sqlalchemy_url)


def unit_of_work(settings: Settings) -> UnitOfWork:
    """A unit of work on the settings' database, with the configured issuers (`uow.issuers`)."""
    return UnitOfWork(engine(settings), settings.issuers())


def alembic_config(settings: Settings) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = settings.sqlalchemy_url
    config.attributes["configure_logging"] = False
    return config


def migrate(settings: Settings) -> None:
    """Create or upgrade the schema to the latest migration (idempotent)."""
    with reachable(settings.sqlalchemy_url):
        command.upgrade(alembic_config(settings), "head")
