"""Email for the use cases: build a message and store it in the outbox inside the caller's transaction;
send what is due after the commit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
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


def retry_undelivered(settings: Settings, message_id: int) -> outbox.DispatchReport:
    """Put an undelivered email back in the queue (same Message-ID, a fresh retry budget), once its cause is
    fixed (the address, the relay), then send what is due (`mairie mail retry`, the `relance-courriel`
    deployment). A message that is not undelivered is refused with a plain message."""
    with unit_of_work(settings) as uow:
        outbox.requeue(uow.session, message_id)
        uow.commit()
    return dispatch(settings)
