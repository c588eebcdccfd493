"""A new version of the quotes voids the links sent with the previous one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mairie.links import LinkError
from mairie.schemas import OperatorAmounts, RequestForm
from mairie.services import approvals, conventions
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.mail import dispatch
from tests.conftest import mairie_siret
from tests.integration.lifecycle.conftest import link_in, mails_to, token_of

DAY = date(2026, 11, 24)
MAYOR = "maire@regnauville.example"


def test_new_version_voids_earlier_links(settings, mail_server):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "stockage-go", "quantity": 120}],
        signatory_name="Jeanne Dupont",
        signatory_email=MAYOR,
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    assert outcome.status == "waiting_operator" and outcome.pending == ("stockage-go",)
    svc.settle_request(
        settings, outcome.request_id, OperatorAmounts(item_amounts={"stockage-go": Decimal("1500")}), DAY
    )
    first = quoting.issue_quotes(settings, outcome.request_id, DAY)
    dispatch(settings)
    old_token = token_of(link_in(mails_to(mail_server, MAYOR)[-1], "/approbation/"))

    second = quoting.requote(
        settings, outcome.request_id, DAY, "Alice", OperatorAmounts(item_amounts={"stockage-go": Decimal("1380")})
    )
    dispatch(settings)
    assert second.convention != first.convention
    assert [q.number for q in second.quotes] == ["LFN-DEV-2026-00002", "CDG62-DEV-2026-00002"]
    assert second.quotes[0].total_ttc == Decimal("1380.00")
    assert len(mails_to(mail_server, MAYOR)) == 2

    decision = approvals.Decision("Jeanne Dupont", "Maire", True)
    evidence = approvals.Evidence("127.0.0.1", "pytest")
    with pytest.raises(LinkError, match="version remplacée") as raised:
        approvals.sign(settings, old_token, decision, evidence)
    assert raised.value.status == 409
    new_token = token_of(link_in(mails_to(mail_server, MAYOR)[-1], "/approbation/"))
    assert approvals.sign(settings, new_token, decision, evidence).status == "signed"
    assert conventions.convention_status(settings, first.convention).status == "superseded"
