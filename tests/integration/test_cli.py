"""The `mairie` CLI on real communes of 59 and 62, text and JSON, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mairie.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli")
    environ = {"MAIRIE_DATA_DIR": str(data)}
    result = runner.invoke(app, ["init"], env=environ)
    assert result.exit_code == 0, result.output
    return environ


def run(env, *args):
    return runner.invoke(app, list(args), env=env)


def test_eligibility_json_small_commune(env):
    # Regnauville (62): 220 inhabitants (total), 213 (municipal)
    result = run(env, "eligibility", "62700", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["eligible"] is True and data["department"] == "62" and data["cdg"] == "CDG62"
    assert data["population"] == {
        "value": 220,
        "kind": "total",
        "vintage": 2023,
        "source": "INSEE, populations légales 2023",
    }
    assert data["support_fee"] == "50.00" and data["on_quote"] == []


def test_eligibility_nord_commune_by_siren(env):
    result = run(env, "eligibility", "215900010", "--json")  # Abancourt (59): 456 total
    data = json.loads(result.stdout)
    assert (data["cdg"], data["support_fee"], data["population"]["value"]) == ("CDG59", "50.00", 456)


def test_eligibility_large_commune_is_on_quote(env):
    data = json.loads(run(env, "eligibility", "62041", "--json").stdout)  # Arras
    assert data["support_fee"] is None and [r["code"] for r in data["on_quote"]] == ["population_over_limit"]


def test_eligibility_text_is_french(env):
    result = run(env, "eligibility", "62700")
    assert result.exit_code == 0
    assert "Éligible" in result.stdout and "50,00\xa0€" in result.stdout


def test_quote_preview_json(env):
    result = run(
        env, "quote", "preview", "62700", "messagerie-5go=3", "page-internet=1", "--date", "2026-03-01", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lfn, cdg = data["quotes"]
    assert lfn["issuer"] == "LFN" and cdg["issuer"] == "CDG62"
    assert (lfn["total_ht"], lfn["total_vat"], lfn["total_ttc"]) == ("53.67", "10.73", "64.40")
    assert (cdg["total_ht"], cdg["total_vat"], cdg["total_ttc"]) == ("50.00", "0.00", "50.00")
    assert data["on_quote"] == [] and data["pending"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eligibility", "99999"], "aucune commune"),
        (["eligibility", "216200411"], "clé de contrôle"),
        (["quote", "preview", "62700", "inconnu=1"], "code d'article inconnu"),
        (["quote", "preview", "62700", "antivirus=-1"], "entier positif"),
        (["quote", "preview", "62700", "antivirus=1.5"], "entier positif"),
        (["quote", "preview", "62700", "antivirus"], "CODE=QUANTITÉ"),
        (["quote", "preview", "62700", "antivirus=1", "--date", "2026-02-30"], "AAAA-MM-JJ"),
    ],
)
def test_bad_input_is_a_clear_error(env, args, message):
    result = run(env, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_database_unreachable(env):
    result = run({"MAIRIE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "eligibility", "62700")
    assert result.exit_code == 3
    assert "injoignable" in result.stderr and "Traceback" not in result.output


def test_documents_copy_to_database_then_extract(tmp_path):
    import hashlib

    from documents.store import DocumentStore

    environ = {"MAIRIE_DATA_DIR": str(tmp_path / "data")}
    pdf = b"%PDF-1.7 une facture"
    sha = DocumentStore(tmp_path / "old-documents").put(pdf).sha256
    first = run(environ, "documents", "copy-to-database", "--dossier", str(tmp_path / "old-documents"))
    assert first.exit_code == 0, first.output
    assert "1 document(s) copié(s) dans la base, 0 déjà présent(s), 0 refusé(s)" in first.output
    again = run(environ, "documents", "copy-to-database", "--dossier", str(tmp_path / "old-documents"))
    assert "0 document(s) copié(s) dans la base, 1 déjà présent(s)" in again.output

    out = tmp_path / "sortie.pdf"
    extracted = run(environ, "documents", "extract", sha, "--out", str(out))
    assert extracted.exit_code == 0, extracted.output
    assert out.read_bytes() == pdf and hashlib.sha256(out.read_bytes()).hexdigest() == sha
    missing = run(environ, "documents", "extract", "0" * 64, "--out", str(tmp_path / "x.pdf"))
    assert missing.exit_code == 2 and "aucun document d'empreinte" in missing.output
    nowhere = run(environ, "documents", "copy-to-database", "--dossier", str(tmp_path / "absent"))
    assert nowhere.exit_code == 2 and "dossier introuvable" in nowhere.output


@pytest.mark.usefixtures("prefect_harness")
def test_pool_creates_the_work_pool_and_the_lost_slice_automation(env):
    """`mairie pool` against a Prefect server (the session's test server): the campaign's process pool with
    its concurrency limit, and the automation that marks a silent child run Crashed; twice: updated."""
    import uuid
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.orchestration import get_client

    from mairie.stack import LOST_SLICES_AUTOMATION

    name = f"test-pool-cli-{uuid.uuid4().hex[:8]}"
    settings = {**env, "MAIRIE_CAMPAIGN_WORK_POOL": name, "MAIRIE_CAMPAIGN_CONCURRENCY": "3",
                "MAIRIE_CAMPAIGN_LOST_AFTER_S": "75"}  # fmt: skip
    first = run(settings, "pool")
    assert first.exit_code == 0, first.output
    assert f"Pool « {name} » créé (type process, au plus 3 lots à la fois)" in first.output
    assert "un lot resté 75 s sans démarrer ou sans battement de cœur" in first.output
    again = run(settings, "pool")
    assert again.exit_code == 0 and f"Pool « {name} » mis à jour" in again.output, again.output
    try:
        with get_client(sync_client=True) as client:
            pool = client.read_work_pool(name)
            assert pool.type == "process" and pool.concurrency_limit == 3
        automation = Automation.read(name=LOST_SLICES_AUTOMATION)
        assert getattr(automation.trigger, "within", None) == timedelta(seconds=75)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_work_pool(name)


def test_pool_without_a_prefect_server_says_so(env, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # whether or not a test server runs
        result = run(env, "pool")
    assert result.exit_code != 0
    assert "aucun serveur Prefect" in result.output
