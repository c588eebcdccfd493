"""Waiting for signatures without holding a process: reminders at 7 and 14 days, expiry at 30."""

from __future__ import annotations

from datetime import date, timedelta

from mairie.schemas import RequestForm
from mairie.services import conventions, signature_deadlines
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.mail import dispatch
from models.types import utcnow
from tests.conftest import mairie_siret
from tests.integration.lifecycle.conftest import mails_to

DAY = date(2026, 11, 24)
MAYOR = "maire@regnauville.example"


def test_reminders_then_expiry(settings, mail_server):
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "antivirus", "quantity": 1}],
        signatory_name="Jeanne Dupont",
        signatory_email=MAYOR,
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    start = utcnow()
    assert signature_deadlines.signature_housekeeping(settings, start + timedelta(days=6)).reminders == []
    assert signature_deadlines.signature_housekeeping(settings, start + timedelta(days=7, hours=1)).reminders == [
        f"{quotes.convention}:collectivity:1"
    ]
    assert signature_deadlines.signature_housekeeping(settings, start + timedelta(days=8)).reminders == []  # once
    assert signature_deadlines.signature_housekeeping(settings, start + timedelta(days=14, hours=1)).reminders == [
        f"{quotes.convention}:collectivity:2"
    ]
    expired = signature_deadlines.signature_housekeeping(settings, start + timedelta(days=31))
    assert expired.expired == [quotes.convention]
    dispatch(settings)
    subjects = [m.subject for m in mails_to(mail_server, MAYOR)]
    assert len(subjects) == 4  # quotes, two reminders, expiry
    operators = mails_to(mail_server, settings.operators_email)
    assert any(quotes.convention in m.subject for m in operators)
    assert conventions.convention_status(settings, quotes.convention).status == "expired"
    assert svc.list_requests(settings)[0]["status"] == "expired"
