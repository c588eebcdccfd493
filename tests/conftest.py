"""Shared fixtures: settings on a temporary data directory, SQLite and PostgreSQL databases.

PostgreSQL tests use the server at 127.0.0.1:5432 (trust auth; override with MAIRIE_TEST_PG_URL). They
skip when it is unreachable, except in CI (`CI=true`), where they must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mairie.settings import Settings, get_settings

PG_ADMIN_URL = os.environ.get("MAIRIE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_available()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    return PG_ADMIN_URL


def create_pg_database(admin_url: str) -> str:
    """A fresh, uniquely named database on the test server; returns its URL."""
    name = f"mairie_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, url: str) -> None:
    from models.db import get_engine

    get_engine(url).dispose()
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    url = create_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each integration test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mairie.sqlite3'}"
    else:
        yield request.getfixturevalue("pg_url")


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: object) -> Settings:
    """Settings isolated in a temporary data directory (no environment, no .env file)."""
    # Port 9 (discard): nothing listens there, so a test that sends without its own loopback server gets a
    # refused connection instead of delivering to a developer's `mairie up` on the default port 8025.
    values: dict[str, object] = {"data_dir": tmp_path / "data", "database_url": database_url, "smtp_port": 9}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def real_identities() -> dict[str, dict[str, object]]:
    """Issuer settings with no example value left — what production accepts (`placeholder_problems` finds
    nothing): made-up names and addresses, SIRETs, IBANs and VAT numbers with valid keys, one IBAN each."""
    common = {"signatory_capacity": "Président", "bic": "BDFEFRPPCCT"}
    cdg59_deliberation = "Délibération n° 2025-12 du conseil d'administration du 3 juillet 2025"
    return {
        "syndicat": common | {
            "siret": "20003938600020", "iban": "FR7630001007940000005901143", "vat_number": "FR25200039386",
            "email": "contact@lfn5962.fr", "provisioning_email": "deploiement@lfn5962.fr",
            "signatory_name": "Mme Alice Martin", "signatory_email": "presidence@lfn5962.fr",
            "ordonnateur_name": "Alice Martin", "accountant_name": "Service de gestion comptable de Lille",
            "tariff_deliberations": {"2025-07-10": "Délibération n° 2025-31 du comité syndical du 26 juin 2025"},
            "convention": {"hosting_place": "France, centre de données du Syndicat à Lille"},
        },
        "cdg62": common | {
            "siret": "28620062100030", "iban": "FR7630001006200000006270025", "email": "numerique@cdg62-essai.fr",
            "signatory_name": "M. Bruno Petit", "signatory_email": "presidence@cdg62-essai.fr",
            "accountant_name": "Paierie départementale du Pas-de-Calais",
        },
        "cdg59": common | {
            "siret": "28590030400046", "iban": "FR7630001005900000005900032", "email": "numerique@cdg59-essai.fr",
            "signatory_name": "Mme Chantal Roux", "signatory_email": "presidence@cdg59-essai.fr",
            "ordonnateur_name": "Chantal Roux", "accountant_name": "Paierie départementale du Nord",
            "tariff_deliberations": {"2025-07-10": cdg59_deliberation},
            "convention_deliberations": [cdg59_deliberation],
        },
    }  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's environment or data directory."""
    for key in list(os.environ):
        if key.startswith("MAIRIE_") and key != "MAIRIE_TEST_PG_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("MAIRIE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def siret_of(siren: str, nic: str = "0001") -> str:
    """A SIRET of the establishment `nic` of a SIREN, with its Luhn key (tests name the mairie's so)."""
    from stdnum import luhn

    return siren + nic + luhn.calc_check_digit(siren + nic)


REGNAUVILLE_SIRET = siret_of("216207001")  # the mairie of Regnauville (62700), as the tests invoice it


def mairie_siret(identifier: str) -> str | None:
    """The SIRET the tests give for a commune named by its INSEE code (or a SIREN): its SIREN with the
    establishment 0001 — what a request must carry for its invoices (Chorus Pro); None for a code that
    names no commune of France (the request is refused before its SIRET matters)."""
    import csv

    from models.directory import REST_OF_FRANCE_FILE
    from models.reference_data import COMMUNES_FILE

    if len(identifier) == 9 and identifier.isdigit():
        return siret_of(identifier)
    for path in (COMMUNES_FILE, REST_OF_FRANCE_FILE):
        with path.open(encoding="utf-8", newline="") as handle:
            siren = next((row["siren"] for row in csv.DictReader(handle) if row["insee_code"] == identifier), None)
        if siren:
            return siret_of(siren)
    return None


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's test server, started once for the whole session by the first test that needs it
    (≈11 s); flow heartbeats off (each would cost about a second). A second, nested harness must not
    be started: its teardown drains the events worker of the first one and can wait forever."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        prefect_test_harness(server_startup_timeout=60),
    ):
        yield
        drain_prefect_events()  # the harness's own drain has no time limit


def drain_prefect_events(timeout: float = 30) -> None:
    """Flush and stop Prefect's events workers, waiting at most `timeout` seconds. Each worker is bound to the
    API it was started for: one left behind by a test whose server has stopped would make a later unbounded
    drain (the test harness's teardown) wait forever. Call it while the server still runs."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=timeout, at_exit=False)


def restore_sigint() -> None:
    """`preexec_fn` of a child a test stops with Ctrl-C (SIGINT): a background job of a script — CI's, or
    `bash .ci/run &` — starts with SIGINT ignored, and its children would inherit that; give the child the
    Ctrl-C a terminal would."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
