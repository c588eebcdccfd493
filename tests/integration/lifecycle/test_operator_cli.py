"""The operators' CLI on a collectivity with live services: the story, the campaign review, payments
(record, import with a bad line, too much) and a credit note."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from mairie.cli import app
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, provisioning
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.entities import Payment
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)
runner = CliRunner()


@pytest.fixture
def live(settings):
    """A collectivity whose services are delivered (signatures recorded by operators)."""
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings,
            quotes.convention,
            party,
            "Alice Opératrice",
            approvals.Decision("Signataire", "Maire" if party == "collectivity" else "Président", True),
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)
    return settings


def run(settings, *args):
    env = {"MAIRIE_DATA_DIR": str(settings.data_dir), "MAIRIE_SMTP_PORT": str(settings.smtp_port)}
    if settings.database_url:
        env["MAIRIE_DATABASE_URL"] = settings.database_url
    return runner.invoke(app, list(args), env=env)


def test_story_review_payments_and_credit(live, tmp_path):
    story = json.loads(run(live, "collectivity", "show", "62700", "--json").stdout)
    assert [i["number"] for i in story["invoices"]] == ["CDG62-FAC-2026-00001", "LFN-FAC-2026-00001"]
    signatures = story["requests"][0]["conventions"][0]["signatures"]
    assert {s["recorded_by_operator"] for s in signatures} == {"Alice Opératrice"}
    assert story["requests"][0]["conventions"][0]["order"]["status"] == "delivered"

    review = json.loads(run(live, "renew", "2027", "--dry-run", "--json").stdout)
    assert review["totals"] == {"LFN": "33.60", "CDG62": "50.00"}

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "invoice_number,amount,paid_on,reference\nLFN-FAC-2026-00001,10,2026-12-01,VIR1\n"
        "CDG62-FAC-2026-00001,abc,2026-12-01,VIR2\n",
        encoding="utf-8",
    )
    result = run(live, "payments", "import", str(bad))
    assert result.exit_code == 2 and "ligne 3" in " ".join(result.stderr.split())
    with unit_of_work(live) as uow:
        assert uow.session.exec(select(Payment)).all() == []  # the whole file is checked first

    # live on 24 November: the first support invoice bills November and December, 50,00 € × 2 / 12
    too_much = run(live, "payments", "record", "CDG62-FAC-2026-00001", "8,34", "--date", "2026-11-30")
    assert too_much.exit_code == 2 and "dépasse le reste à payer" in " ".join(too_much.stderr.split())
    assert run(live, "payments", "record", "CDG62-FAC-2026-00001", "8,33", "--date", "2026-11-30").exit_code == 0

    credit = run(live, "invoices", "credit", "LFN-FAC-2026-00001", "--reason", "doublon", "--date", "2026-12-03")
    assert credit.exit_code == 0 and "LFN-AVO-2026-00001" in credit.stdout
    again = run(live, "invoices", "credit", "LFN-FAC-2026-00001", "--reason", "doublon")
    assert again.exit_code == 2 and "déjà un avoir" in again.stderr
