"""Pure rules of sending: how failures are classified, what state a row takes after an attempt, the fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
import pytest

from mairie.settings import Settings
from notifications.fake import FakeSender
from notifications.outbox import PENDING, SENT, UNDELIVERED, RetryPolicy, after_attempt
from notifications.smtp import PermanentFailure, SmtpConfig, TransientFailure, classify, refused_part

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "answer"),
    [
        (aiosmtplib.SMTPResponseException(451, "4.3.0 Try again"), TransientFailure, "451 4.3.0 Try again"),
        (aiosmtplib.SMTPDataError(554, "5.7.1 Rejected"), PermanentFailure, "554 5.7.1 Rejected"),
        (aiosmtplib.SMTPDataError(452, "4.3.1 Full"), TransientFailure, "452 4.3.1 Full"),
        (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Not yours", "a@b.example"), PermanentFailure, "553"),
        (aiosmtplib.SMTPServerDisconnected("Unexpected EOF"), TransientFailure, "interrompue"),
        (aiosmtplib.SMTPConnectError("refused"), TransientFailure, "connexion impossible"),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), TransientFailure, "délai dépassé"),
        (ConnectionRefusedError(111, "Connection refused"), TransientFailure, "connexion impossible"),
        (TimeoutError(), TransientFailure, "délai dépassé"),
        # the relay or its configuration is at fault, not the message: keep it for later
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials"), TransientFailure, "535"),
        (aiosmtplib.SMTPConnectResponseError(554, "No service"), TransientFailure, "554"),
    ],
)
def test_classify(error: BaseException, kind: type, answer: str) -> None:
    failure = classify(error)
    assert type(failure) is kind
    assert answer in failure.answer


def _refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, "non", f"r{i}@x.example") for i, code in enumerate(codes)]
    )


def test_all_recipients_refused_for_good_is_permanent_with_every_answer() -> None:
    failure = classify(_refused(550, 553))
    assert isinstance(failure, PermanentFailure)
    assert "r0@x.example: 550 non" in failure.answer and "r1@x.example: 553 non" in failure.answer


def test_a_temporary_refusal_among_them_makes_it_worth_a_retry() -> None:
    assert isinstance(classify(_refused(550, 450)), TransientFailure)


def test_refused_part() -> None:
    assert refused_part("250 OK") is None
    assert refused_part("250 OK (destinataires refusés : a@b: 550 non)") is not None


def test_config_from_settings() -> None:
    settings = Settings(_env_file=None, smtp_host="relais.example", smtp_port=587, smtp_user="u",  # type: ignore[call-arg]
                        smtp_password="p", smtp_starttls=True, smtp_timeout=7.5)  # fmt: skip
    assert SmtpConfig.from_settings(settings) == SmtpConfig("relais.example", 587, "u", "p", True, 7.5)


# --- state after an attempt -------------------------------------------------------------------------


def test_success_marks_sent_and_counts_the_attempt() -> None:
    outcome = after_attempt(0, "250 2.0.0 OK", T0, RetryPolicy())
    assert (outcome.status, outcome.attempts, outcome.sent_at, outcome.last_error) == (SENT, 1, T0, None)


def test_partial_refusal_is_sent_with_the_refusals_visible() -> None:
    outcome = after_attempt(1, "250 OK (destinataires refusés : x@y.example: 550 inconnu)", T0, RetryPolicy())
    assert outcome.status == SENT and "x@y.example: 550" in (outcome.last_error or "")


def test_permanent_failure_gives_up_at_once_with_the_answer() -> None:
    outcome = after_attempt(0, PermanentFailure("550 5.1.1 Unknown user", 550), T0, RetryPolicy())
    assert (outcome.status, outcome.attempts, outcome.last_error) == (UNDELIVERED, 1, "550 5.1.1 Unknown user")


def test_transient_failures_back_off_exponentially_up_to_an_hour() -> None:
    policy = RetryPolicy(max_attempts=20)
    waits = []
    for attempts_before in range(10):
        outcome = after_attempt(attempts_before, TransientFailure("451 later"), T0, policy)
        assert outcome.status == PENDING and outcome.last_error == "451 later"
        waits.append(int((outcome.next_attempt_at - T0).total_seconds()))
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_transient_failures_give_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=10)
    assert after_attempt(8, TransientFailure("451 later"), T0, policy).status == PENDING
    last = after_attempt(9, TransientFailure("451 later"), T0, policy)
    assert last.status == UNDELIVERED and last.attempts == 10
    assert last.last_error == "451 later (abandon après 10 tentatives)"


def test_policy_delay() -> None:
    policy = RetryPolicy(first_delay=timedelta(seconds=10), max_delay=timedelta(seconds=50))
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 50]


# --- the fake sender ------------------------------------------------------------------------------


def _message(n: int) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"n° {n}"
    return message


async def test_fake_sender_plays_its_script_then_accepts() -> None:
    sender = FakeSender().fail_transient("451 plus tard").fail_permanent("550 non").succeed().fail_transient()
    with pytest.raises(TransientFailure, match="451 plus tard"):
        await sender.send(_message(1))
    with pytest.raises(PermanentFailure) as refused:
        await sender.send(_message(2))
    assert refused.value.code == 550
    assert await sender.send(_message(3)) == "250 2.0.0 OK"
    with pytest.raises(TransientFailure):
        await sender.send(_message(4))
    assert await sender.send(_message(5)) == "250 2.0.0 OK"
    assert [m["Subject"] for m in sender.sent] == ["n° 3", "n° 5"]
    assert sender.calls == 5


async def test_fake_sender_repeats_a_failure() -> None:
    sender = FakeSender().fail_transient(times=2)
    for _ in range(2):
        with pytest.raises(TransientFailure):
            await sender.send(_message(1))
    await sender.send(_message(1))
    assert len(sender.sent) == 1
