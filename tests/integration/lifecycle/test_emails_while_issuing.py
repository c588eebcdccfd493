"""The emails of what is committed leave while the caller still works (a campaign's slice renders), once
each, and a failed round does not stop the next ones (`mail.SendingMeanwhile`)."""

from __future__ import annotations

import time
from datetime import date

import pytest

from mairie.schemas import RequestForm
from mairie.services import intake, mail
from mairie.services import quotes as quoting
from tests.conftest import mairie_siret

DAY = date(2026, 11, 20)


def _quoted(settings) -> None:
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 1}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = intake.register_request(settings, form, channel="cli", on=DAY)
    quoting.issue_quotes(settings, outcome.request_id, DAY)  # commits, and queues the quotes' email


def _wait_for(received, count: int, seconds: float = 20) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(received()) >= count:
            return received()
        time.sleep(0.05)
    return received()


def test_an_email_leaves_while_the_work_goes_on_and_only_once(settings, mail_server) -> None:
    with mail.SendingMeanwhile(settings, interval=0.1) as meanwhile:
        _quoted(settings)
        during = _wait_for(mail_server.messages, 1)  # still inside the block: the work is not over
        assert len(during) == 1 and "devis" in during[0].subject.lower()
    assert meanwhile.sent == 1 and meanwhile.failures == []
    assert mail.dispatch(settings).sent == []  # nothing left for the caller's last round
    assert len(mail_server.messages()) == 1


def test_a_failed_round_is_told_and_the_next_one_sends(settings, mail_server, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = mail.dispatch, []

    def flaky(settings, sender=None, limit=500):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("base de données injoignable")
        return real(settings, sender, limit)

    _quoted(settings)
    monkeypatch.setattr(mail, "dispatch", flaky)
    with mail.SendingMeanwhile(settings, interval=0.1) as meanwhile:
        assert len(_wait_for(mail_server.messages, 1)) == 1
    assert meanwhile.failures == ["base de données injoignable"] and meanwhile.sent == 1
