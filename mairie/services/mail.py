"""Email for the use cases: build a message and store it in the outbox inside the caller's transaction;
send what is due after the commit."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from sqlmodel import Session

from mairie.database import engine, unit_of_work
from mairie.services import paperwork
from mairie.settings import Settings
from models.entities import OutboxMessage
from notifications import messages, outbox
from notifications.smtp import Sender, SmtpConfig, SmtpSender


def enqueue_message(
    session: Session,
    settings: Settings,
    name: str,
    context: Mapping[str, Any],
    *,
    to: Iterable[str],
    dedup_key: str,
    cc: Iterable[str] = (),
    attachments: Iterable[paperwork.Stored] = (),
    related: tuple[str, int | None] | None = None,
) -> OutboxMessage:
    """Render message `name` and add it to the outbox (same event → same message, see `dedup_key`)."""
    draft = messages.build(
        name,
        context,
        to=to,
        cc=cc,
        reply_to=settings.operators_email,
        attachments=[messages.Attachment(a.filename, a.content_type, a.sha256) for a in attachments],
    )
    row = outbox.enqueue(
        session,
        draft,
        dedup_key=dedup_key,
        kind=name,
        sender_address=settings.mail_from,
        related_type=related[0] if related else None,
        related_id=related[1] if related else None,
    )
    session.flush()
    return row


def sender_for(settings: Settings) -> Sender:
    return SmtpSender(SmtpConfig.from_settings(settings))


async def dispatch_async(settings: Settings, sender: Sender | None = None, limit: int = 500) -> outbox.DispatchReport:
    """Send every due message of the outbox (after the commits that queued them), `MAIRIE_SMTP_BATCH_SIZE` at
    a time over one SMTP session; attachments are read from the configured document store."""
    return await outbox.dispatch_due(
        engine(settings),
        sender or sender_for(settings),
        lambda sha: paperwork.load(settings, sha),
        limit=limit,
        batch=settings.smtp_batch_size,
    )


def dispatch(settings: Settings, sender: Sender | None = None, limit: int = 500) -> outbox.DispatchReport:
    """Synchronous wrapper, for sync flows and the CLI (no event loop may be running in this thread)."""
    return asyncio.run(dispatch_async(settings, sender, limit))


class SendingMeanwhile:
    """Send the due emails every `interval` seconds in a thread of their own while the caller works — a
    campaign's slice renders its invoices, and the emails of those already committed leave meanwhile instead
    of after the last one. Safe beside any other dispatcher: each message is claimed once
    (`outbox.dispatch_due`). A failed round is logged and the next one tries again; the caller sends what is
    left after the block, as before. `sent` counts the messages sent by the thread.

        with SendingMeanwhile(settings) as mailer:
            renewal.issue(...)
        left = dispatch(settings)
    """

    def __init__(self, settings: Settings, interval: float = 2.0, sender: Sender | None = None) -> None:
        self.settings, self.interval, self.sender = settings, interval, sender
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="envoi-courriels", daemon=True)

    def __enter__(self) -> SendingMeanwhile:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sent += len(dispatch(self.settings, self.sender).sent)
            except Exception as exc:  # the database or the relay: the next round, or the caller, tries again
                self.failures.append(str(exc))
                logging.getLogger(__name__).warning("envoi des courriels pendant la campagne : %s", exc)


def retry_undelivered(settings: Settings, message_id: int) -> outbox.DispatchReport:
    """Put an undelivered email back in the queue (same Message-ID, a fresh retry budget), once its cause is
    fixed (the address, the relay), then send what is due (`mairie mail retry`, the `relance-courriel`
    deployment). A message that is not undelivered is refused with a plain message."""
    with unit_of_work(settings) as uow:
        outbox.requeue(uow.session, message_id)
        uow.commit()
    return dispatch(settings)
