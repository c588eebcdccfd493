"""The outbox with the fake sender and an injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from notification_test_support import SENDER, AttachmentStore, queue, reload
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.db import UnitOfWork
from models.entities import OutboxMessage
from models.types import utcnow
from notifications.examples import example_context
from notifications.fake import FakeSender
from notifications.messages import build
from notifications.outbox import (
    DEDUP_HEADER,
    RetryPolicy,
    dispatch_due,
    enqueue,
    pending,
    requeue,
    to_mime,
    undelivered,
)


def _no_attachments(sha256: str) -> bytes:
    raise AssertionError(f"unexpected attachment {sha256}")


# --- enqueue ------------------------------------------------------------------------------------


def test_enqueue_stores_the_draft_with_a_message_id_of_the_sender_domain(engine: Engine) -> None:
    row = queue(engine, "task:DEM-1")
    stored = reload(engine, row.id)
    assert stored.status == "pending" and stored.attempts == 0
    assert stored.message_id.startswith("<") and stored.message_id.endswith("@mairie-connectee.example>")
    assert stored.sender == SENDER and stored.kind == "operator_task"
    assert stored.subject.startswith("[À traiter]")


def test_same_dedup_key_gives_the_same_message_unchanged(engine: Engine) -> None:
    first = queue(engine, "task:DEM-1")
    again = queue(engine, "task:DEM-1", name="accountant_handover")  # another draft: ignored
    assert (again.id, again.message_id, again.kind) == (first.id, first.message_id, "operator_task")
    with UnitOfWork(engine) as uow:
        assert len(uow.session.exec(select(OutboxMessage)).all()) == 1


def test_same_dedup_key_twice_in_one_transaction(engine: Engine) -> None:
    draft = build("operator_task", example_context("operator_task"), to=["a@b.example"])
    with UnitOfWork(engine) as uow:
        one = enqueue(uow.session, draft, dedup_key="k", kind="operator_task", sender_address=SENDER)
        two = enqueue(uow.session, draft, dedup_key="k", kind="operator_task", sender_address=SENDER)
        assert one is two
        uow.commit()


def test_enqueue_does_not_commit(engine: Engine) -> None:
    draft = build("operator_task", example_context("operator_task"), to=["a@b.example"])
    with UnitOfWork(engine) as uow:
        enqueue(uow.session, draft, dedup_key="k", kind="operator_task", sender_address=SENDER)
        # no commit: the change it reports is rolled back, and so is the email
    with UnitOfWork(engine) as uow:
        assert uow.session.exec(select(OutboxMessage)).all() == []


def test_concurrent_enqueues_of_one_event_make_one_message(engine: Engine) -> None:
    """Two transactions enqueue the same event at once: the second gets the first's message."""
    draft = build("operator_task", example_context("operator_task"), to=["a@b.example"])
    seen: dict[str, str] = {}

    def second() -> None:
        with UnitOfWork(engine) as uow:
            row = enqueue(uow.session, draft, dedup_key="k", kind="operator_task", sender_address=SENDER)
            seen["second"] = row.message_id
            uow.commit()

    with UnitOfWork(engine) as uow:
        first = enqueue(uow.session, draft, dedup_key="k", kind="operator_task", sender_address=SENDER)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)  # the second waits on the first (row lock on PostgreSQL, write lock on SQLite)
        uow.commit()
    thread.join(10)
    assert seen["second"] == first.message_id


def test_enqueue_refuses_a_sender_without_domain(engine: Engine) -> None:
    draft = build("operator_task", example_context("operator_task"), to=["a@b.example"])
    with UnitOfWork(engine) as uow, pytest.raises(ValueError, match="expéditeur"):
        enqueue(uow.session, draft, dedup_key="k", kind="x", sender_address="noreply")


# --- MIME ---------------------------------------------------------------------------------------


def test_to_mime_has_both_alternatives_the_attachments_and_the_stored_identity(
    engine: Engine, store: AttachmentStore
) -> None:
    pdf = store.put(b"%PDF-1.7 devis", "Devis LFN-DEV-2026-00007.pdf")
    csv = store.put("code;quantité\nmessagerie-5go;12\n".encode(), "commande.csv", "text/csv")
    draft = build(
        "provisioning_order", example_context("provisioning_order"), to=["deploiement@lfn.example"],
        cc=["ops@mairie-connectee.example"], reply_to="operateurs@mairie-connectee.example", attachments=[pdf, csv],
    )  # fmt: skip
    with UnitOfWork(engine) as uow:
        row = enqueue(uow.session, draft, dedup_key="order:12", kind="provisioning_order", sender_address=SENDER)
        uow.commit()
    message = to_mime(reload(engine, row.id), store.load)
    assert message["Message-ID"] == row.message_id
    assert message[DEDUP_HEADER] == "order:12"
    assert message["From"] == SENDER and message["To"] == "deploiement@lfn.example"
    assert message["Cc"] == "ops@mairie-connectee.example"
    assert message["Reply-To"] == "operateurs@mairie-connectee.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(message["Date"]) == reload(engine, row.id).created_at.replace(microsecond=0)
    body = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert body is not None and "Merci de mettre en service" in body.get_content()
    assert html is not None and "<table" in html.get_content()
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    assert set(parts) == {"Devis LFN-DEV-2026-00007.pdf", "commande.csv"}
    assert parts["Devis LFN-DEV-2026-00007.pdf"].get_content() == b"%PDF-1.7 devis"
    assert parts["commande.csv"].get_content_type() == "text/csv"
    # the same row gives the same identity at every attempt
    again = to_mime(reload(engine, row.id), store.load)
    assert (again["Message-ID"], again["Date"]) == (message["Message-ID"], message["Date"])


# --- dispatch -----------------------------------------------------------------------------------


async def test_sent_once(engine: Engine) -> None:
    row = queue(engine, "task:1")
    sender = FakeSender()
    report = await dispatch_due(engine, sender, _no_attachments)
    assert report.sent == [row.id]
    assert [m["Message-ID"] for m in sender.sent] == [row.message_id]
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 1, None)
    assert stored.sent_at is not None
    again = await dispatch_due(engine, sender, _no_attachments, now=utcnow() + timedelta(days=1))
    assert again.sent == [] and sender.calls == 1


async def test_not_due_yet_is_not_attempted(engine: Engine) -> None:
    t0 = utcnow()
    queue(engine, "task:1", now=t0 + timedelta(minutes=5))
    sender = FakeSender()
    assert (await dispatch_due(engine, sender, _no_attachments, now=t0)).sent == []
    assert sender.calls == 0


async def test_transient_failures_retry_with_backoff_on_the_injected_clock(engine: Engine) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    sender = FakeSender().fail_transient("451 4.3.0 Boîte pleine", times=2)

    report = await dispatch_due(engine, sender, _no_attachments, now=t0)
    assert report.retried == [row.id]
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts, stored.last_error) == ("pending", 1, "451 4.3.0 Boîte pleine")
    assert stored.next_attempt_at == t0 + timedelta(seconds=30)

    assert (await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(seconds=29))).retried == []
    await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(seconds=30))
    assert reload(engine, row.id).next_attempt_at == t0 + timedelta(seconds=90)  # 30 s + 60 s

    report = await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(seconds=90))
    stored = reload(engine, row.id)
    assert report.sent == [row.id] and (stored.status, stored.attempts) == ("sent", 3)
    assert len(sender.sent) == 1 and sender.calls == 3


async def test_permanent_failure_is_undelivered_at_once_and_never_retried(engine: Engine) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    sender = FakeSender().fail_permanent("550 5.1.1 <maire@x.example>: Recipient address rejected")
    report = await dispatch_due(engine, sender, _no_attachments, now=t0)
    assert report.undelivered == [row.id]
    stored = reload(engine, row.id)
    assert stored.status == "undelivered" and stored.attempts == 1
    assert stored.last_error == "550 5.1.1 <maire@x.example>: Recipient address rejected"
    await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(days=2))
    assert sender.calls == 1
    with UnitOfWork(engine) as uow:
        assert [m.id for m in undelivered(uow.session)] == [row.id]
        assert pending(uow.session) == []


async def test_gives_up_after_max_attempts(engine: Engine) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    sender = FakeSender().fail_transient(times=10)
    policy = RetryPolicy(max_attempts=3)
    for minutes in (0, 1, 3, 10):
        await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(minutes=minutes), policy=policy)
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts, sender.calls) == ("undelivered", 3, 3)
    assert stored.last_error is not None and stored.last_error.endswith("(abandon après 3 tentatives)")


async def test_missing_or_altered_attachment_is_retried_without_sending(engine: Engine, store: AttachmentStore) -> None:
    t0 = utcnow()
    missing = queue(engine, "a", attachments=(store.put(b"devis", "devis.pdf"),), now=t0)
    altered_attachment = store.put(b"facture", "facture.pdf")
    altered = queue(engine, "b", attachments=(altered_attachment,), now=t0)
    store.blobs.clear()
    store.blobs[altered_attachment.sha256] = b"facture modifiee"
    sender = FakeSender()
    report = await dispatch_due(engine, sender, store.load, now=t0)
    assert sorted(report.retried) == sorted([missing.id, altered.id]) and sender.calls == 0
    assert "« devis.pdf » introuvable" in (reload(engine, missing.id).last_error or "")
    assert "« facture.pdf » altérée" in (reload(engine, altered.id).last_error or "")


async def test_partial_refusal_is_sent_and_keeps_the_refusals(engine: Engine) -> None:
    row = queue(engine, "task:1")
    sender = FakeSender(reply="250 OK (destinataires refusés : cdg@x.example: 550 5.1.1 inconnu)")
    await dispatch_due(engine, sender, _no_attachments)
    stored = reload(engine, row.id)
    assert stored.status == "sent" and "cdg@x.example: 550" in (stored.last_error or "")


async def test_a_sender_bug_counts_as_a_failed_attempt(engine: Engine) -> None:
    class Broken:
        async def send(self, message: EmailMessage) -> str:
            raise RuntimeError("boom")

    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    await dispatch_due(engine, Broken(), _no_attachments, now=t0)
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.last_error == "erreur inattendue : RuntimeError: boom"


async def test_a_claimed_row_is_left_to_its_dispatcher(engine: Engine) -> None:
    """While one dispatcher sends a row, another run does not see it as due."""
    row = queue(engine, "task:1")
    inner_reports = []

    class Reentrant(FakeSender):
        async def send(self, message: EmailMessage) -> str:
            inner_reports.append(await dispatch_due(engine, FakeSender(), _no_attachments))
            return await super().send(message)

    sender = Reentrant()
    report = await dispatch_due(engine, sender, _no_attachments)
    assert report.sent == [row.id] and len(sender.sent) == 1
    assert inner_reports[0].sent == [] and inner_reports[0].retried == []


async def test_crash_after_the_relay_accepted_sends_again_with_the_same_message_id(engine: Engine) -> None:
    """The documented duplicate window: accepted by the relay, then the process dies before recording it."""
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    accepted: list[EmailMessage] = []

    class CrashAfterAccept:
        async def send(self, message: EmailMessage) -> str:
            accepted.append(message)
            raise asyncio.CancelledError  # the process is killed here

    with pytest.raises(asyncio.CancelledError):
        await dispatch_due(engine, CrashAfterAccept(), _no_attachments, now=t0)
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts) == ("pending", 0)
    assert stored.next_attempt_at == t0 + RetryPolicy().lease  # claimed: others wait for the lease
    sender = FakeSender()
    assert (await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(minutes=1))).sent == []
    assert (await dispatch_due(engine, sender, _no_attachments, now=t0 + timedelta(minutes=5))).sent == [row.id]
    assert accepted[0]["Message-ID"] == sender.sent[0]["Message-ID"] == row.message_id


async def test_requeue_an_undelivered_message(engine: Engine) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    await dispatch_due(engine, FakeSender().fail_permanent(), _no_attachments, now=t0)
    with UnitOfWork(engine) as uow:
        requeue(uow.session, row.id or 0, now=t0)
        uow.commit()
    with UnitOfWork(engine) as uow:
        assert [m.id for m in pending(uow.session)] == [row.id]
        with pytest.raises(ValueError, match="seul un courriel non distribué"):
            requeue(uow.session, row.id or 0)
        with pytest.raises(ValueError, match="aucun courriel"):
            requeue(uow.session, 999_999)
    sender = FakeSender()
    await dispatch_due(engine, sender, _no_attachments, now=t0)
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts, len(sender.sent)) == ("sent", 1, 1)
    assert sender.sent[0]["Message-ID"] == row.message_id


async def test_limit_and_order(engine: Engine) -> None:
    t0 = utcnow()
    rows = [queue(engine, f"task:{n}", now=t0 - timedelta(minutes=n)) for n in range(5)]
    sender = FakeSender()
    report = await dispatch_due(engine, sender, _no_attachments, now=t0, limit=2)
    assert report.sent == [rows[4].id, rows[3].id]  # oldest due first
    with UnitOfWork(engine) as uow:
        assert len(pending(uow.session)) == 3
