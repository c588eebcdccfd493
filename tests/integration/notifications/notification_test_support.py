"""Helpers of the notification tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.engine import Engine

from models.db import UnitOfWork
from models.entities import OutboxMessage
from notifications.examples import example_context
from notifications.messages import Attachment, build
from notifications.outbox import enqueue

SENDER = "Mairie Connectée <noreply@mairie-connectee.example>"


class AttachmentStore:
    """Content-addressed bytes, as the document store keeps them (the loader given to the outbox)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes, filename: str, content_type: str = "application/pdf") -> Attachment:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return Attachment(filename, content_type, digest)

    def load(self, sha256: str) -> bytes:
        return self.blobs[sha256]


def queue(
    engine: Engine,
    dedup_key: str,
    *,
    name: str = "operator_task",
    attachments: tuple[Attachment, ...] = (),
    now: datetime | None = None,
    to: tuple[str, ...] = ("operateurs@mairie-connectee.example",),
) -> OutboxMessage:
    """Build message `name` from its example context and enqueue it in its own committed transaction."""
    draft = build(name, example_context(name), to=to, attachments=attachments)
    with UnitOfWork(engine) as uow:
        row = enqueue(uow.session, draft, dedup_key=dedup_key, kind=name, sender_address=SENDER, now=now)
        uow.commit()
    return row


def reload(engine: Engine, row_id: int | None) -> OutboxMessage:
    with UnitOfWork(engine) as uow:
        row = uow.session.get(OutboxMessage, row_id)
        assert row is not None
        uow.session.expunge(row)  # keep its loaded values once the unit of work rolls back
        return row
