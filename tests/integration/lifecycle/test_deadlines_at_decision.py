"""Deadlines are enforced where decisions are taken, whatever the scheduler did: a convention past its
deadline cannot be signed or declined through its link (it expires then and there, operators told), and a
link whose turn has not come cannot post a question."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.links import link_for
from models.entities import Approval, Convention, OutboxMessage, ServiceRequest
from models.errors import InvalidTransition
from models.types import utcnow
from tests.conftest import mairie_siret
from tests.integration.lifecycle.conftest import token_of

DAY = date(2026, 11, 24)
EVIDENCE = approvals.Evidence("203.0.113.7", "Mozilla/5.0 test")


def _quoted(settings):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 1}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    return quoting.issue_quotes(settings, outcome.request_id, DAY)


def _past_deadline(settings, reference: str) -> None:
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(reference)
        convention.expires_at = utcnow() - timedelta(minutes=1)
        uow.session.add(convention)
        uow.commit()


@pytest.mark.parametrize("decision", ["sign", "decline"])
def test_a_convention_past_its_deadline_is_not_decided_but_expired(settings, decision):
    quotes = _quoted(settings)
    token = token_of(quotes.approval_url)
    _past_deadline(settings, quotes.convention)
    with pytest.raises(InvalidTransition, match=r"délai de signature .* est dépassé"):
        if decision == "sign":
            approvals.sign(settings, token, approvals.Decision("Jeanne Dupont", "Maire", True), EVIDENCE)
        else:
            approvals.decline(settings, token, "trop cher", "Jeanne Dupont", EVIDENCE)
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(quotes.convention)
        statuses = (convention.status, uow.requests.get(quotes.request_id).status)
        approval = uow.approvals.of_party(convention.id, "collectivity")
        decided = (approval.status, approval.decided_at)
        kinds = [m.kind for m in uow.session.exec(select(OutboxMessage)).all()]
    assert statuses == ("expired", "expired")
    assert decided == ("expired", None)  # nothing of the refused decision is stored
    assert "signature_expired" in kinds


def test_a_link_whose_turn_has_not_come_cannot_ask(settings):
    quotes = _quoted(settings)
    with unit_of_work(settings) as uow:
        convention = uow.session.exec(select(Convention).where(Convention.reference == quotes.convention)).one()
        cdg = uow.session.exec(
            select(Approval).where(Approval.convention_id == convention.id, Approval.party == "cdg")
        ).one()
        cdg_token = token_of(link_for(settings, convention, cdg))
    with pytest.raises(InvalidTransition, match="pas encore à cette partie"):
        approvals.ask_question(settings, cdg_token, "Une question ?", EVIDENCE)
    # the collectivity, whose turn it is, may ask
    approvals.ask_question(settings, token_of(quotes.approval_url), "Une question ?", EVIDENCE)
    with unit_of_work(settings) as uow:
        kinds = [m.kind for m in uow.session.exec(select(OutboxMessage)).all()]
        request = uow.session.exec(select(ServiceRequest)).one()
        status = request.status
    assert kinds.count("question_forwarded") == 1 and status == "quoted"
