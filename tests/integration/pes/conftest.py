"""Real-shaped data for the PES tests: both CDGs bill through pes_asap, the syndicat through Chorus Pro
(facturx_chorus). Six communes of the Pas-de-Calais and the Nord go live on 24 November or 1 December 2026
(first invoices) and renew on 15 January 2027 (the campaign). The world is built once per session on SQLite and
copied for each test.

DGFiP's PES V2 XSD is looked for in `../shared/data/pes-xsd/` beside the repository (CI has it there);
outside CI a test that needs it is skipped with a message saying where to put it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.setup import initialise
from mairie.settings import Settings
from models.db import get_engine
from tests.conftest import create_pg_database, drop_pg_database, mairie_siret, make_settings
from tests.pes_xsd import require_schema, schema_dir

GO_LIVE = date(2026, 11, 24)
CAMPAIGN_DAY = date(2027, 1, 15)
# Anhiers goes live on 1 December 2026: one month of 14,00 € TTC is 1,17 € TTC for a net of 0,97 € and
# 0,19 € of VAT — a rounding amount (BT-114) of 0,01 € on the syndicat's first invoice.
LATE = {"59007": date(2026, 12, 1)}

# Both CDGs on pes_asap, with their budget as their accountant gives it (example codes, real shapes)
PES_SETTINGS: dict[str, dict[str, object]] = {
    "cdg62": {
        "billing_channel": "pes_asap",
        "pes_id_post": "062045",
        "pes_cod_col": "162",
        "pes_cod_bud": "00",
        "pes_libelle_col_bud": "CDG 62 - Budget principal",
        "pes_ref_bdf": "621234",
        "pes_signatory_first_name": "Claude",
        "pes_signatory_last_name": "Lefèvre",
        "pes_signatory_role": "Président du Centre de gestion",
        "pes_accountant_name": "Service de gestion comptable de Béthune",
        "pes_accountant_address": "Rue Eugène Haynaut",
        "pes_accountant_postcode": "62400",
        "pes_accountant_city": "Béthune",
        "pes_accountant_phone": "03 21 00 00 00",
    },
    "cdg59": {
        "billing_channel": "pes_asap",
        "pes_id_post": "059056",
        "pes_cod_col": "159",
        "pes_cod_bud": "00",
        "pes_ref_bdf": "591234",
        "pes_signatory_first_name": "Dominique",
        "pes_signatory_last_name": "Dubois",
        "pes_signatory_role": "Président du Centre de gestion",
        "pes_accountant_name": "Service de gestion comptable de Lille municipale",
        "pes_accountant_address": "Place Augustin Laurent",
        "pes_accountant_postcode": "59000",
        "pes_accountant_city": "Lille",
    },
}

COMMUNES = {  # INSEE code → basket (the support fee goes to the CDG of the department)
    "62113": {"messagerie-5go": 2},  # Berles-Monchel, 495 inhabitants
    "62078": {"messagerie-5go": 1, "antivirus": 3, "nas-2-disques": 1},  # Balinghem, 1 242
    "62700": {"pack-antivirus-mdp": 2, "nom-de-domaine": 1},  # Regnauville, 220
    "59001": {"messagerie-5go": 3},  # Abancourt, 456
    "59007": {"page-internet": 1},  # Anhiers, 896: live on 1 December (see LATE), its invoice has a rounding
    "59004": {"messagerie-illimitee": 2, "nom-de-domaine": 1},  # Aix-en-Pévèle, 1 348
}


@pytest.fixture
def xsd() -> Path:
    """The schema folder; the test is skipped (outside CI) when it is absent."""
    return require_schema()


def pes_settings(tmp_path: Path, database_url: str | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "cdg62": dict(PES_SETTINGS["cdg62"]),
        "cdg59": dict(PES_SETTINGS["cdg59"]),
        "pes_xsd_dir": schema_dir(),
    }
    values.update(overrides)
    url = database_url or f"sqlite:///{tmp_path / 'data' / 'mairie.sqlite3'}"
    return make_settings(tmp_path, url, **values)


def go_live(settings: Settings, code: str, items: dict[str, int], day: date) -> None:
    form = RequestForm(
        collectivity=code,
        siret=mairie_siret(code),
        items=[{"code": c, "quantity": q} for c, q in items.items()],
        signatory_name="Signataire",
        signatory_email=f"maire.{code}@exemple.fr",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=day)
    quotes = quoting.issue_quotes(settings, outcome.request_id, day)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Opérateur", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    provisioning.deliver(settings, order.number, "Technicien", day, today=day)


def build_world(settings: Settings) -> None:
    initialise(settings)
    for code, items in COMMUNES.items():
        go_live(settings, code, items, LATE.get(code, GO_LIVE))
    renewal.issue(settings, 2027, today=CAMPAIGN_DAY)
    get_engine(settings.sqlalchemy_url).dispose()  # SQLite: checkpoints the WAL; PostgreSQL: frees the template


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory where six communes went live and renewed (first invoices and the 2027 campaign)."""
    root = tmp_path_factory.mktemp("pes-world")
    build_world(pes_settings(root))
    return root


@pytest.fixture(scope="session")
def world_pg(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> Iterator[tuple[Path, str]]:
    """The same world on PostgreSQL: its documents' folder and its database (a template for each test)."""
    root = tmp_path_factory.mktemp("pes-world-pg")
    url = create_pg_database(pg_server)
    build_world(pes_settings(root, url))
    yield root, url
    drop_pg_database(pg_server, url)


def clone_pg(admin_url: str, template_url: str) -> str:
    name = f"mairie_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class World:
    settings: Settings
    root: Path


@pytest.fixture
def copy(world: Path, tmp_path: Path) -> Iterator[World]:
    """This test's own copy of the world (database, documents, deposit folders), on SQLite."""
    shutil.copytree(world / "data", tmp_path / "data")
    settings = pes_settings(tmp_path)
    yield World(settings, tmp_path)
    get_engine(settings.sqlalchemy_url).dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_copy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """This test's own copy of the world, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("copy")
        return
    root, template = request.getfixturevalue("world_pg")
    admin = request.getfixturevalue("pg_server")
    shutil.copytree(root / "data", tmp_path / "data")
    url = clone_pg(admin, template)
    settings = pes_settings(tmp_path, url)
    yield World(settings, tmp_path)
    drop_pg_database(admin, url)


def validate(xml: bytes, xsd: Path, entry: str = "PES_V2/Rev0/PES_Aller.xsd") -> None:
    """Validate with lxml against the official XSD, independently of the code under test."""
    schema = etree.XMLSchema(etree.parse(str(xsd / "5.17" / entry)))
    document = etree.fromstring(xml)
    assert schema.validate(document), [str(e) for e in schema.error_log][:5]
