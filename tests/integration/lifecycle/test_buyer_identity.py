"""The buyer's identity Chorus Pro needs (issue #15 item 3): asked at the request (`mairie request submit
--siret S --address "LINE" --postcode CP --city "VILLE"`, the same fields in the API and the Prefect form),
required unless on file, the mairie's address by default; an invoice whose buyer lacks it is held as an
operator task, never emitted with empty fields, and leaves once an operator completes it."""

from __future__ import annotations

import json
from datetime import date

from sqlmodel import select
from typer.testing import CliRunner

from mairie.cli import app
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.entities import AuditEvent, Collectivity, Invoice, OutboxMessage
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)
SIRET = mairie_siret("62700")
runner = CliRunner()


def _run(settings, *args):
    env = {"MAIRIE_DATA_DIR": str(settings.data_dir), "MAIRIE_SMTP_PORT": str(settings.smtp_port)}
    if settings.database_url:
        env["MAIRIE_DATABASE_URL"] = settings.database_url
    return runner.invoke(app, list(args), env=env)


def _submit(settings, *extra):
    return _run(
        settings,
        "request",
        "submit",
        "62700",
        "messagerie-5go=1",
        "--signatory-name",
        "Jeanne Dupont",
        "--signatory-email",
        "maire@regnauville.example",
        "--in-process",
        "--json",
        *extra,
    )


def _billing(settings):
    with unit_of_work(settings) as uow:
        row = uow.session.exec(select(Collectivity).where(Collectivity.insee_code == "62700")).one()
        return (row.siret, row.address, row.postcode, row.city)


def test_the_request_asks_for_the_siret_and_defaults_to_the_mairie(settings):
    refused = _submit(settings)
    assert refused.exit_code == 2
    assert "indiquez le SIRET de l'établissement facturé de Regnauville" in " ".join(refused.stderr.split())
    assert json.loads(_submit(settings, "--siret", SIRET).stdout)["result"]["status"] == "quoted"
    assert _billing(settings) == (SIRET, "Mairie", "62140", "Regnauville")  # one postcode: the mairie's
    # on file now: --siret may be omitted; an address given replaces the default
    again = _submit(settings, "--address", "1 place de la Mairie", "--postcode", "62140", "--city", "Regnauville")
    assert again.exit_code == 0, again.stderr
    assert _billing(settings) == (SIRET, "1 place de la Mairie", "62140", "Regnauville")
    wrong = _submit(settings, "--postcode", "62000")
    assert wrong.exit_code == 2 and "code postal 62000 inconnu pour cette commune (codes : 62140)" in wrong.stderr
    other = _submit(settings, "--siret", mairie_siret("62041"))
    assert other.exit_code == 2 and "n'appartient pas à Regnauville" in other.stderr


def _delivered_without_siret(settings):
    """A collectivity on file from before the SIRET was asked for: its invoices must wait for one."""
    form = RequestForm(
        collectivity="62700",
        siret=SIRET,
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Alice Opératrice", approvals.Decision("Signataire", "Maire", True)
        )
    with unit_of_work(settings) as uow:
        row = uow.session.exec(select(Collectivity).where(Collectivity.insee_code == "62700")).one()
        row.siret = None
        uow.session.add(row)
        uow.commit()
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    return provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)


def test_invoices_wait_for_the_siret_then_leave(settings):
    delivered = _delivered_without_siret(settings)
    assert delivered.status == "delivered" and delivered.invoices == []
    with unit_of_work(settings) as uow:
        assert uow.session.exec(select(Invoice)).all() == []  # nothing numbered, no empty SIRET anywhere
        held = uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "invoice_held")).one()
        held_text = (held.recipients, held.body_text)
        actions = uow.session.exec(select(AuditEvent.action)).all()
    assert held_text[0] == [settings.operators_email]
    assert "SIRET de l'établissement facturé" in held_text[1] and "mairie collectivity billing 62700" in held_text[1]
    assert "invoice.held" in actions

    result = _run(settings, "collectivity", "billing", "62700", "--siret", SIRET, "--operator", "Alice Opératrice")
    assert result.exit_code == 0, result.stderr
    with unit_of_work(settings) as uow:
        invoices = [(i.number, i.buyer_siret, i.kind) for i in uow.session.exec(select(Invoice)).all()]
    assert sorted(invoices) == [
        ("CDG62-FAC-2026-00001", SIRET, "first"),
        ("LFN-FAC-2026-00001", SIRET, "first"),
    ]


def test_a_campaign_holds_what_it_cannot_emit(settings):
    _delivered_without_siret(settings)
    result = renewal.issue(settings, 2027, today=date(2027, 1, 15))
    assert result.issued == [] and result.held == ["Regnauville (216207001) : SIRET de l'établissement facturé"]
    with unit_of_work(settings) as uow:
        assert uow.session.exec(select(Invoice)).all() == []
