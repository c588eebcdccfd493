"""One follow-up for every decision: a convention brought into force from the CLI, with no Prefect server
anywhere, is handed off to the syndicat at once (order stored, its email delivered), as on the page; and a
credit note is rebuilt from its own rows."""

from __future__ import annotations

from datetime import date

from sqlmodel import select
from typer.testing import CliRunner

from mairie.cli import app
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, credit_notes, provisioning
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.entities import CreditNoteLine, InvoiceLine, ProvisioningOrder
from tests.conftest import mairie_siret
from tests.integration.lifecycle.conftest import mails_to

DAY = date(2026, 11, 24)
runner = CliRunner()


def _run(settings, *args):
    env = {"MAIRIE_DATA_DIR": str(settings.data_dir), "MAIRIE_SMTP_PORT": str(settings.smtp_port)}
    if settings.database_url:
        env["MAIRIE_DATABASE_URL"] = settings.database_url
    return runner.invoke(app, list(args), env=env)


def _quoted(settings):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 2}, {"code": "nom-de-domaine", "quantity": 1}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    return quoting.issue_quotes(settings, outcome.request_id, DAY)


def test_last_countersignature_from_the_cli_hands_off_at_once(settings, mail_server):
    quotes = _quoted(settings)
    for party in ("collectivity", "cdg"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Alice Opératrice", approvals.Decision("Signataire", "Maire", True)
        )
    assert conventions.conventions_in_force_without_order(settings) == []  # not in force yet
    result = _run(
        settings,
        "convention",
        "countersign",
        quotes.convention,
        "--party",
        "syndicat",
        "--name",
        "Paul Président",
        "--capacity",
        "Président",
        "--operator",
        "Alice Opératrice",
        "--certified",
    )
    assert result.exit_code == 0, result.output
    with unit_of_work(settings) as uow:
        orders = [(o.number, o.status) for o in uow.session.exec(select(ProvisioningOrder)).all()]
    assert [status for _number, status in orders] == ["sent"]
    assert conventions.conventions_in_force_without_order(settings) == []
    order_mails = mails_to(mail_server, settings.syndicat.provisioning_email or settings.syndicat.email)
    assert [m.subject for m in order_mails if orders[0][0] in m.subject]


def test_credit_note_lines_are_the_invoice_lines_as_printed(settings):
    quotes = _quoted(settings)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Alice Opératrice", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    delivery = provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)
    invoice = next(i for i in delivery.invoices if i.issuer == settings.syndicat.code)
    credit = credit_notes.credit_invoice(settings, invoice.number, "erreur de quantité", date(2026, 11, 30))
    printed = {"id", "invoice_id", "credit_note_id"}
    with unit_of_work(settings) as uow:
        invoice_lines = uow.session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
        note = uow.session.exec(select(CreditNoteLine)).all()
        invoice_rows = [li.model_dump(exclude=printed) for li in invoice_lines]
        note_rows = [li.model_dump(exclude=printed) for li in note]
    assert note_rows == invoice_rows and len(note_rows) == 2
    assert all(row["family"] and row["unit"] and row["period_start"] for row in note_rows)
    assert credit.total_ttc == invoice.total_ttc
