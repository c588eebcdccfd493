"""The yearly campaign waits for the operator's approval in the UI, then issues; the daily reminders."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

from prefect.flow_runs import resume_flow_run
from sqlmodel import select

from flows.billing import payment_reminders, renewal_campaign
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, payments, provisioning
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.entities import Invoice
from tests.conftest import mairie_siret
from tests.flows.test_intake_flow import _wait_for_paused

DAY = date(2026, 11, 24)


def _live(settings, code: str) -> None:
    form = RequestForm(
        collectivity=code,
        siret=mairie_siret(code),
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Signataire",
        signatory_email=f"maire.{code}@exemple.fr",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Opérateur", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)


def test_campaign_waits_for_approval_and_excludes(stack, mail_server):
    _live(stack, "62700")
    _live(stack, "62113")
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "state", renewal_campaign(year=2027, today=date(2027, 1, 15), return_state=True)
        )
    )
    thread.start()
    paused = _wait_for_paused()
    with unit_of_work(stack) as uow:  # nothing is issued before the approval
        assert uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all() == []
    resume_flow_run(paused.id, run_input={"approve": True, "exclude": ["216201137"], "operator": "Alice"})
    thread.join(timeout=120)
    result = outcome["state"].result()
    assert sorted(result["issued"]) == ["CDG62-FAC-2027-00001", "LFN-FAC-2027-00001"]
    assert result["excluded"] == ["216201137"]
    renewal_mails = [m for m in mail_server.messages() if any("-FAC-2027-" in a for a in m.attachments)]
    assert sorted(m.attachments[0] for m in renewal_mails) == ["CDG62-FAC-2027-00001.pdf", "LFN-FAC-2027-00001.pdf"]


def test_daily_reminders_skip_paid_invoices(stack, mail_server):
    _live(stack, "62700")
    # live on 24 November: 2 accounts for November and December, 2 × 16,80 € × 2 / 12
    payments.record_payment(stack, "LFN-FAC-2026-00001", Decimal("5.60"), date(2026, 12, 1))
    result = payment_reminders(today=date(2027, 1, 1))  # due 24/12/2026 → 8 days late
    assert result["reminders"] == ["CDG62-FAC-2026-00001:1"]
    reminders = [m for m in mail_server.messages() if m.subject.startswith("Rappel")]
    assert len(reminders) == 1 and reminders[0].attachments == ("CDG62-FAC-2026-00001.pdf",)
    assert payment_reminders(today=date(2027, 1, 2))["reminders"] == []
