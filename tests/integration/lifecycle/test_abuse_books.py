"""Issue #17's probes on the books and the terminal: an identical open request is answered with the
existing one (no new numbers, no new email) unless a second one is asked for on purpose; payments dated
before their invoice or after today are refused; a payments file imported twice records nothing twice and
says which lines were already there; control characters are refused in --reference and --by; whatever the
database holds, `collectivity show` never sends a control sequence to the terminal."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from mairie.cli import app
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, intake, payments, provisioning
from mairie.services import quotes as quoting
from models.entities import Collectivity, NumberSequence, OutboxMessage, Payment, ServiceRequest
from models.errors import InvalidInput
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)
runner = CliRunner()


def _run(settings, *args):
    env = {"MAIRIE_DATA_DIR": str(settings.data_dir), "MAIRIE_SMTP_PORT": str(settings.smtp_port)}
    if settings.database_url:
        env["MAIRIE_DATABASE_URL"] = settings.database_url
    return runner.invoke(app, list(args), env=env)


def _form(**extra):
    return RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
        **extra,
    )


def _counts(settings):
    with unit_of_work(settings) as uow:
        s = uow.session
        return (
            s.exec(select(func.count()).select_from(ServiceRequest)).one(),
            s.exec(select(func.count()).select_from(OutboxMessage)).one(),
            sorted((n.doc_kind, n.last_value) for n in s.exec(select(NumberSequence)).all()),
        )


def test_an_identical_open_request_is_the_existing_one(settings):
    first = intake.register_request(settings, _form(), channel="api", on=DAY)
    quoting.issue_quotes(settings, first.request_id, DAY)
    before = _counts(settings)
    for _ in range(3):
        again = intake.register_request(settings, _form(), channel="api", on=DAY)
        assert (again.existing, again.request_id, again.status) == (True, first.request_id, "quoted")
    assert _counts(settings) == before  # no request, no number, no email
    on_purpose = intake.register_request(settings, _form(allow_duplicate=True), channel="api", on=DAY)
    assert not on_purpose.existing and on_purpose.request_id != first.request_id
    other_items = RequestForm(**{**_form().model_dump(), "items": [{"code": "antivirus", "quantity": 1}]})
    assert not intake.register_request(settings, other_items, channel="api", on=DAY).existing


def _live(settings):
    outcome = intake.register_request(settings, _form(), channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Alice Opératrice", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    return provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY).invoices


def test_payment_dates_and_a_file_imported_twice(settings, tmp_path):
    invoice = next(i for i in _live(settings) if i.issuer == "LFN")
    for paid_on, message in ((date(1, 1, 1), "précède la facture"), (date(9999, 12, 31), "dans le futur")):
        with pytest.raises(InvalidInput, match=message):
            payments.record_payment(settings, invoice.number, Decimal("1.00"), paid_on)
    csv = tmp_path / "virements.csv"
    csv.write_text(
        "invoice_number;amount;paid_on;reference\n"
        f"{invoice.number};1,00;2026-11-25;VIR-1\n{invoice.number};2,00;2026-11-26;VIR-2\n",
        encoding="utf-8",
    )
    assert _run(settings, "payments", "import", str(csv)).exit_code == 0
    again = _run(settings, "payments", "import", str(csv))
    assert again.exit_code == 0 and "0 paiements enregistrés" in again.stdout
    assert "2 déjà enregistrés, ignorés (lignes 2, 3)" in " ".join(again.stdout.split())
    with unit_of_work(settings) as uow:
        assert uow.session.exec(select(func.count()).select_from(Payment)).one() == 2
    for option, value in (("--reference", "VIR\x1b[31m"), ("--by", "Alice\u202eetarepO")):
        refused = _run(settings, "payments", "record", invoice.number, "1,00", "--date", "2026-11-27", option, value)
        assert refused.exit_code == 2 and "U+" in refused.stderr, refused.stderr
    with unit_of_work(settings) as uow:
        assert uow.session.exec(select(func.count()).select_from(Payment)).one() == 2


def test_the_terminal_never_receives_a_control_sequence(settings):
    intake.register_request(settings, _form(), channel="cli", on=DAY)
    with unit_of_work(settings) as uow:  # stored by something older than the text policy
        row = uow.session.exec(select(Collectivity)).one()
        row.name = "Regnau\x1b[2Jville\u202e"
        uow.session.add(row)
        uow.commit()
    shown = _run(settings, "collectivity", "show", "62700")
    assert shown.exit_code == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    assert "\\x1b" in shown.stdout and "\\u202e" in shown.stdout
    assert json.loads(_run(settings, "collectivity", "show", "62700", "--json").stdout)
