"""The outbox against a REAL SMTP server on loopback (aiosmtpd), faults included. No mocked client."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from dataclasses import replace
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from notification_test_support import AttachmentStore, queue, reload
from sqlalchemy.engine import Engine

from models.db import UnitOfWork
from models.types import utcnow
from notifications.mailserver import FaultInjection, LoopbackMailServer
from notifications.outbox import DispatchReport, dispatch_due, undelivered
from notifications.smtp import SmtpConfig, SmtpSender, SmtpSession

MAYOR = "maire@henin-beaumont.example"


def _sender(server: LoopbackMailServer) -> SmtpSender:
    return SmtpSender(server.smtp_config(timeout=5))


async def test_delivered_once_with_its_attachments_and_stable_message_id(
    engine: Engine, store: AttachmentStore, mail_server: LoopbackMailServer
) -> None:
    files = {
        "Devis LFN-DEV-2026-00007.pdf": b"%PDF-1.7 devis services",
        "Devis CDG62-DEV-2026-00007.pdf": b"%PDF-1.7 devis accompagnement",
        "Projet de convention CONV-2026-00012.pdf": b"%PDF-1.7 convention",
    }
    attachments = tuple(store.put(data, name) for name, data in files.items())
    row = queue(engine, "quotes:DEM-2026-00012:v1", name="quotes_to_signatory", attachments=attachments, to=(MAYOR,))

    report = await dispatch_due(engine, _sender(mail_server), store.load)
    assert report.sent == [row.id]
    again = await dispatch_due(engine, _sender(mail_server), store.load, now=utcnow() + timedelta(days=1))
    assert again == DispatchReport()

    received = mail_server.messages()
    assert len(received) == 1 and mail_server.handler.attempts == 1
    mail = received[0]
    assert mail.message_id == row.message_id == reload(engine, row.id).message_id
    assert mail.to == (MAYOR,) and mail.envelope_to == (MAYOR,)
    assert mail.dedup_key == "quotes:DEM-2026-00012:v1"
    assert mail.subject.startswith("Pack Mairie Connectée – Commune d'Hénin-Beaumont")
    assert set(mail.attachments) == set(files)
    message = mail.message()
    for part in message.iter_attachments():
        data = part.get_content()
        assert data == files[part.get_filename()]
        assert hashlib.sha256(data).hexdigest() in {a.sha256 for a in attachments}
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "&lt;script&gt;" in html.get_content()
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 1, None)


async def test_enqueued_twice_is_sent_once(engine: Engine, mail_server: LoopbackMailServer) -> None:
    first = queue(engine, "reminder:LFN-FAC-2026-00042:1", name="payment_reminder", to=(MAYOR,))
    second = queue(engine, "reminder:LFN-FAC-2026-00042:1", name="payment_reminder", to=(MAYOR,))
    assert second.id == first.id
    await dispatch_due(engine, _sender(mail_server), lambda sha: b"")
    assert [m.message_id for m in mail_server.messages()] == [first.message_id]


async def test_451_then_accepted_is_delivered_exactly_once(engine: Engine, tmp_path: Path) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    async with LoopbackMailServer(tmp_path / "mail", faults=FaultInjection("451", fail_first=1)) as server:
        first = await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0)
        assert first.retried == [row.id]
        stored = reload(engine, row.id)
        assert stored.status == "pending" and stored.attempts == 1
        assert stored.last_error == "451 4.3.0 Erreur temporaire simulée, réessayez plus tard"

        second = await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0 + timedelta(seconds=30))
        assert second.sent == [row.id]
        third = await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0 + timedelta(hours=2))
        assert third == DispatchReport()

        assert server.handler.attempts == 2  # counted at the server: one refusal, one acceptance
        assert [m.message_id for m in server.messages()] == [row.message_id]
    stored = reload(engine, row.id)
    assert (stored.status, stored.attempts) == ("sent", 2)


async def test_550_is_undelivered_with_the_server_answer_and_never_retried(engine: Engine, tmp_path: Path) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    async with LoopbackMailServer(tmp_path / "mail", faults=FaultInjection("550", fail_first=1)) as server:
        report = await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0)
        assert report.undelivered == [row.id]
        for hours in (1, 5, 48):
            await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0 + timedelta(hours=hours))
        assert server.handler.attempts == 1 and server.messages() == []
    with UnitOfWork(engine) as uow:
        [shown] = undelivered(uow.session)
        assert shown.id == row.id and shown.attempts == 1
        assert shown.last_error == "550 5.7.1 Message refusé (rejet simulé)"


async def test_unknown_recipient_is_undelivered_with_the_server_answer(engine: Engine, tmp_path: Path) -> None:
    faults = FaultInjection(refuse_recipients=frozenset({MAYOR}))
    row = queue(engine, "task:1", to=(MAYOR,))
    async with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        await dispatch_due(engine, _sender(server), lambda sha: b"")
        assert server.messages() == []
    stored = reload(engine, row.id)
    assert stored.status == "undelivered"
    assert stored.last_error == f"{MAYOR}: 550 5.1.1 <{MAYOR}>: destinataire inconnu (refus simulé)"


async def test_one_refused_recipient_among_several_is_sent_with_the_refusal_noted(
    engine: Engine, tmp_path: Path
) -> None:
    faults = FaultInjection(refuse_recipients=frozenset({"cdg@inconnu.example"}))
    row = queue(engine, "task:1", to=(MAYOR, "cdg@inconnu.example"))
    async with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        await dispatch_due(engine, _sender(server), lambda sha: b"")
        [mail] = server.messages()
        assert mail.envelope_to == (MAYOR,)
    stored = reload(engine, row.id)
    assert stored.status == "sent" and "cdg@inconnu.example: 550" in (stored.last_error or "")


async def test_dropped_connection_is_retried(engine: Engine, tmp_path: Path) -> None:
    t0 = utcnow()
    row = queue(engine, "task:1", now=t0)
    async with LoopbackMailServer(tmp_path / "mail", faults=FaultInjection("drop", fail_first=1)) as server:
        await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0)
        stored = reload(engine, row.id)
        assert stored.status == "pending" and "connexion interrompue" in (stored.last_error or "")
        await dispatch_due(engine, _sender(server), lambda sha: b"", now=t0 + timedelta(seconds=30))
        assert server.handler.attempts == 2
        assert [m.message_id for m in server.messages()] == [row.message_id]
    assert reload(engine, row.id).status == "sent"


async def test_relay_down_is_retried(engine: Engine, tmp_path: Path) -> None:
    server = LoopbackMailServer(tmp_path / "mail").start()
    port = server.port
    server.stop()  # nobody listens on that port any more
    row = queue(engine, "task:1")
    await dispatch_due(engine, SmtpSender(SmtpConfig(port=port, timeout=2)), lambda sha: b"")
    stored = reload(engine, row.id)
    assert stored.status == "pending" and "connexion impossible" in (stored.last_error or "")


async def test_flaky_server_every_message_delivered_exactly_once(engine: Engine, tmp_path: Path) -> None:
    """Half the deliveries fail (seeded); the clock moves on until the outbox is empty."""
    t0 = utcnow()
    rows = [queue(engine, f"task:{n}", now=t0) for n in range(12)]
    faults = FaultInjection("451", fraction=0.5, seed=7)
    async with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        now = t0
        for _ in range(12):
            await dispatch_due(engine, _sender(server), lambda sha: b"", now=now)
            now += timedelta(hours=1)
        received = [m.message_id for m in server.messages()]
        attempts_at_server = server.handler.attempts
    assert sorted(received) == sorted(r.message_id for r in rows)
    stored = [reload(engine, r.id) for r in rows]
    assert all(s.status == "sent" for s in stored)
    assert sum(s.attempts for s in stored) == attempts_at_server > len(rows)


def test_two_concurrent_dispatchers_deliver_each_message_once(engine: Engine, tmp_path: Path) -> None:
    """Two dispatchers, each in its own thread and event loop, over the same database."""
    rows = [queue(engine, f"task:{n}") for n in range(30)]
    reports: list[DispatchReport] = []
    start = threading.Barrier(2)
    with LoopbackMailServer(tmp_path / "mail") as server:

        def dispatcher() -> None:
            start.wait()
            reports.append(asyncio.run(dispatch_due(engine, _sender(server), lambda sha: b"")))

        threads = [threading.Thread(target=dispatcher) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        received = [m.message_id for m in server.messages()]

    assert sorted(received) == sorted(r.message_id for r in rows)  # each once, none missing
    sent = [row_id for report in reports for row_id in report.sent]
    assert sorted(sent) == sorted(r.id for r in rows)
    assert all(reload(engine, r.id).attempts == 1 for r in rows)


async def test_two_dispatchers_in_one_event_loop_deliver_each_message_once(
    engine: Engine, mail_server: LoopbackMailServer
) -> None:
    rows = [queue(engine, f"task:{n}") for n in range(10)]
    first, second = await asyncio.gather(
        dispatch_due(engine, _sender(mail_server), lambda sha: b""),
        dispatch_due(engine, _sender(mail_server), lambda sha: b""),
    )
    assert sorted(first.sent + second.sent) == sorted(r.id for r in rows)
    assert sorted(m.message_id for m in mail_server.messages()) == sorted(r.message_id for r in rows)


class CountingSender(SmtpSender):
    """The real sender, keeping the sessions it opened (to count their connections)."""

    def __init__(self, config: SmtpConfig) -> None:
        super().__init__(config)
        self.sessions: list[SmtpSession] = []

    def session(self) -> SmtpSession:
        self.sessions.append(super().session())
        return self.sessions[-1]


async def test_a_batch_shares_one_connection_up_to_the_batch_size(
    engine: Engine, mail_server: LoopbackMailServer
) -> None:
    rows = [queue(engine, f"task:{n}") for n in range(12)]
    sender = CountingSender(replace(mail_server.smtp_config(timeout=5), batch_size=5))
    report = await dispatch_due(engine, sender, lambda sha: b"")
    assert sorted(report.sent) == sorted(r.id for r in rows)
    assert [s.connections for s in sender.sessions] == [3]  # 5 + 5 + 2
    received = mail_server.messages()
    assert sorted(m.message_id for m in received) == sorted(r.message_id for r in rows)  # one Message-ID each
    assert len({m.message_id for m in received}) == 12


async def test_a_failure_drops_the_connection_and_the_rest_of_the_batch_goes_on(engine: Engine, tmp_path: Path) -> None:
    t0 = utcnow()
    rows = [queue(engine, f"task:{n}", now=t0) for n in range(4)]
    faults = FaultInjection("drop", fail_first=1)
    async with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        sender = CountingSender(server.smtp_config(timeout=5))
        report = await dispatch_due(engine, sender, lambda sha: b"", now=t0)
        assert report.retried == [rows[0].id] and report.sent == [r.id for r in rows[1:]]
        assert sender.sessions[0].connections == 2  # reconnected once, after the drop
        failed = reload(engine, rows[0].id)
        assert (failed.status, failed.attempts) == ("pending", 1) and "interrompue" in (failed.last_error or "")
        later = await dispatch_due(engine, sender, lambda sha: b"", now=t0 + timedelta(seconds=30))
        assert later.sent == [rows[0].id]
        assert sorted(m.message_id for m in server.messages()) == sorted(r.message_id for r in rows)


async def test_a_refused_message_costs_only_itself(engine: Engine, tmp_path: Path) -> None:
    faults = FaultInjection(refuse_recipients=frozenset({MAYOR}))
    refused = queue(engine, "task:refused", to=(MAYOR,))
    others = [queue(engine, f"task:{n}") for n in range(3)]
    async with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        report = await dispatch_due(engine, _sender(server), lambda sha: b"")
        assert report.undelivered == [refused.id] and report.sent == [r.id for r in others]
        assert len(server.messages()) == 3


async def test_a_session_sends_messages_one_after_the_other_on_one_connection(mail_server: LoopbackMailServer) -> None:
    messages = []
    for n in range(3):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@b.example", MAYOR, f"Essai n° {n}"
        message.set_content("Déjà envoyé ?")
        messages.append(message)
    async with _sender(mail_server).session() as session:
        answers = [await session.send(m) for m in messages]
        assert session.connections == 1
    assert all(a.startswith("250") for a in answers)
    assert sorted(m.subject for m in mail_server.messages()) == ["Essai n° 0", "Essai n° 1", "Essai n° 2"]


async def test_a_relay_without_8bitmime_gets_the_message_recoded(engine: Engine, store: AttachmentStore) -> None:
    """aiosmtpd with decode_data=True does not offer 8BITMIME: the prepared 8-bit bytes are not sent as they
    are; the message is rebuilt (to_mime) and recoded to 7 bits by aiosmtplib."""
    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            received.append(envelope.original_content)
            return "250 OK"

    attachment = store.put(b"%PDF-1.7 facture", "Facture n° 7.pdf")
    row = queue(engine, "task:8bit", name="quotes_to_signatory", attachments=(attachment,), to=(MAYOR,))
    with socket.socket() as probe:  # a free port (aiosmtpd's controller cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port, decode_data=True, ready_timeout=10)
    await asyncio.to_thread(controller.start)
    try:
        report = await dispatch_due(engine, SmtpSender(SmtpConfig(port=port, timeout=5)), store.load)
    finally:
        await asyncio.to_thread(controller.stop)
    assert report.sent == [row.id]
    [data] = received
    assert data.isascii()  # nothing 8-bit reached a relay that did not accept it
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert message["Message-ID"] == row.message_id
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "Hénin-Beaumont" in body.get_content()
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "Facture n° 7.pdf" and part.get_content() == b"%PDF-1.7 facture"
