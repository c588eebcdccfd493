"""Operator countersignatures from the UI, the scheduled follow-up (handoff), acknowledgement and delivery."""

from __future__ import annotations

from datetime import date

from flows.lifecycle import acknowledge_order, deliver_order, follow_conventions, operator_countersign
from mairie.schemas import RequestForm
from mairie.services import approvals
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)


def test_countersign_handoff_and_delivery(stack, mail_server):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(stack, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(stack, outcome.request_id, DAY)
    approvals.countersign_as_operator(
        stack, quotes.convention, "collectivity", "Alice", approvals.Decision("Jeanne Dupont", "Maire", True)
    )
    first = operator_countersign(quotes.convention, "cdg", "René Hocq", "Président", "Alice", True)
    assert first["status"] == "signed" and not first["in_force"]
    again = operator_countersign(quotes.convention, "cdg", "René Hocq", "Président", "Alice", True)
    assert again["already_decided"] is True
    last = operator_countersign(quotes.convention, "syndicat", "C. Coulon", "Président", "Alice", True)
    assert last["in_force"] is True
    # the countersignature that brings the convention into force runs the follow-up: the order is out
    orders = [m for m in mail_server.messages() if any(a.endswith(".json") for a in m.attachments)]
    assert len(orders) == 1
    number = orders[0].attachments[0].removesuffix(".json").removesuffix(".csv")
    assert follow_conventions()["orders"] == []  # nothing left to hand off

    assert acknowledge_order(number, "Technicien")["changed"] is True
    assert acknowledge_order(number, "Technicien")["changed"] is False
    delivered = deliver_order(number, "Technicien", DAY)
    assert delivered["status"] == "delivered"
    assert sorted(delivered["invoices"]) == ["CDG62-FAC-2026-00001", "LFN-FAC-2026-00001"]
