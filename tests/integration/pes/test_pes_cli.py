"""`mairie pes export|acquit|acquits` with the issuers' PES settings from the environment, by their exact
names (`MAIRIE_<ISSUER>__BILLING_CHANNEL=pes_asap`, `__PES_ID_POST`, `__PES_ID_COLL`, `__PES_COD_COL`,
`__PES_COD_BUD`), and the invoice JSON of `mairie collectivity show`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mairie.cli import app
from mairie.settings import get_settings
from models.db import get_engine
from tests.integration.pes.test_pes_acquit import acquit_xml
from tests.pes_xsd import schema_dir

runner = CliRunner()


@pytest.fixture
def env(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    shutil.copytree(world / "data", tmp_path / "data")
    values = {
        "MAIRIE_DATA_DIR": str(tmp_path / "data"),
        "MAIRIE_SMTP_PORT": "9",
        "MAIRIE_CDG62__BILLING_CHANNEL": "pes_asap",
        "MAIRIE_CDG62__PES_ID_POST": "062045",
        "MAIRIE_CDG62__PES_ID_COLL": "28620062100022",
        "MAIRIE_CDG62__PES_COD_COL": "162",
        "MAIRIE_CDG62__PES_COD_BUD": "00",
        "MAIRIE_CDG59__BILLING_CHANNEL": "pes_asap",
    }
    xsd = schema_dir()
    if xsd is not None:
        values["MAIRIE_PES_XSD_DIR"] = str(xsd)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_engine(get_settings().sqlalchemy_url).dispose()
    get_settings.cache_clear()


def run(env: dict[str, str], *args: str):
    return runner.invoke(app, list(args), env=env)


def test_export_prints_the_paths_then_an_acquit_comes_back(env: dict[str, str]) -> None:
    depot = Path(env["MAIRIE_DATA_DIR"]) / "depot" / "CDG62" / "pes_asap"
    result = run(env, "pes", "export", "CDG62", "--date", "2027-01-15")
    assert result.exit_code == 0, result.output
    paths = result.stdout.split()
    assert len(paths) == 2 and all(Path(p).parent == depot and Path(p).is_file() for p in paths)
    # only the four required settings: what DGFiP's ASAP rules also need is named, the files are written
    assert "MAIRIE_CDG62__PES_REF_BDF" in result.stderr

    again = run(env, "pes", "export", "cdg62", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["issuer"] == "CDG62" and data["bordereaux"] == [] and data["paths"] == []

    story = json.loads(run(env, "collectivity", "show", "62700", "--json").stdout)
    titre = next(i["pes"] for i in story["invoices"] if i["issuer"] == "CDG62" and i["year"] == 2026)
    assert titre == {"bordereau": 1, "piece": titre["piece"], "state": "sent"} and titre["piece"] >= 1

    name = Path(paths[0]).name
    acquit = Path(env["MAIRIE_DATA_DIR"]) / "ACK.xml"
    rejected = [
        {
            "domain": 6,
            "ok": False,
            "bordereau": 1,
            "exercice": 2026,
            "errors": [("ERREUR_SIRET", "SIRET du débiteur inconnu")],
        }
    ]
    acquit.write_bytes(acquit_xml(get_settings().cdg62, name, rejected))
    result = run(env, "pes", "acquit", str(acquit), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rejected"] == [1] and data["reasons"]["1"] == ["ERREUR_SIRET : SIRET du débiteur inconnu"]
    assert len(data["resend"]) == 3

    resent = run(env, "pes", "export", "CDG62", "--json")
    assert [(b["exercice"], b["number"], b["pieces"]) for b in json.loads(resent.stdout)["bordereaux"]] == [
        (2026, 2, 3)
    ]


def test_the_watched_folder_from_the_command_line(env: dict[str, str]) -> None:
    result = run(env, "pes", "export", "CDG62", "--json")
    first = json.loads(result.stdout)["bordereaux"][0]
    folder = Path(env["MAIRIE_DATA_DIR"]) / "depot" / "CDG62" / "pes_asap" / "acquits"
    folder.mkdir()
    accepted = [{"domain": 6, "ok": True, "bordereau": first["number"], "exercice": first["exercice"]}]
    (folder / "PES_ACQUIT_1.xml").write_bytes(acquit_xml(get_settings().cdg62, first["file_name"], accepted))
    result = run(env, "pes", "acquits")
    assert result.exit_code == 0, result.output
    assert "bordereau 1 accepté" in result.stdout
    assert (folder / "traites" / "PES_ACQUIT_1.xml").is_file()
    assert "Aucun acquit en attente" in run(env, "pes", "acquits").stdout


def test_errors_are_plain_french(env: dict[str, str]) -> None:
    result = run(env, "pes", "export", "LFN")
    assert result.exit_code == 2 and "MAIRIE_SYNDICAT__BILLING_CHANNEL=pes_asap" in result.stderr
    result = run(env, "pes", "export", "CDG59")  # on pes_asap, its budget not given
    assert result.exit_code == 2
    for name in ("MAIRIE_CDG59__PES_ID_POST", "MAIRIE_CDG59__PES_COD_COL", "MAIRIE_CDG59__PES_COD_BUD"):
        assert name in result.stderr
    result = run(env, "pes", "export", "CDG99")
    assert result.exit_code == 2 and "émetteur inconnu" in result.stderr
    result = run(env, "pes", "acquit", "/nonexistent/ACK.xml")
    assert result.exit_code == 2 and "introuvable" in result.stderr
    assert "Traceback" not in result.output


def test_an_avoir_leaves_as_an_annulation_and_a_closed_exercice_is_told(env: dict[str, str]) -> None:
    from sqlmodel import select

    from mairie.database import unit_of_work
    from models.entities import Invoice

    assert run(env, "pes", "export", "CDG62", "--date", "2027-01-15").exit_code == 0
    with unit_of_work(get_settings()) as uow:
        numbers = {
            i.kind: i.number
            for i in uow.session.exec(select(Invoice).where(Invoice.issuer_code == "CDG62").order_by(Invoice.number))
        }
    for number in (numbers["renewal"], numbers["first"]):
        credited = run(env, "invoices", "credit", number, "--reason", "Erreur de facturation", "--date", "2027-01-20")
        assert credited.exit_code == 0, credited.output
    result = run(env, "pes", "export", "CDG62", "--date", "2027-01-20")
    assert result.exit_code == 0, result.output
    [path] = result.stdout.split()
    assert path.endswith("_2027_AR0000001.xml")
    assert "Dont 1 bordereau(x) d'annulation-réduction (n° 1/2027, numérotés à part)" in result.stderr
    assert "En attente :" in result.stderr and "exercice clos 2026" in result.stderr
    listed = json.loads(run(env, "pes", "export", "CDG62", "--json").stdout)
    assert listed["bordereaux"] == [] and any("mandat" in s for s in listed["skipped"])
