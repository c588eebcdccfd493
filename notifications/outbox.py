"""The outbox: every email is stored in the transaction of the change it reports, then sent.

- `enqueue` adds the message to the caller's transaction (no commit); a second enqueue of the same
  business event (`dedup_key`) returns the first message unchanged.
- `dispatch_due` sends the due messages in batches: it claims a batch of rows (one conditional UPDATE, so
  two dispatchers never take the same row), sends each outside any transaction — over one SMTP session
  when the sender offers one (`SmtpSender.session()`), each message its own SMTP transaction — and records
  each outcome in a short transaction as soon as the relay has answered.
- Each attempt builds the message once, as the bytes that go on the wire (`prepare`, `notifications.wire`).
- The Message-ID is generated once, at enqueue, and used at every attempt.

Delivery is at-least-once toward the relay: a crash between the relay's "250" and the commit that marks
the row sent leaves it pending, and it is sent again (same Message-ID) once its claim has lapsed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.db import UnitOfWork
from models.entities import OutboxMessage
from models.lifecycle import OutboxStatus, check, move
from models.types import utcnow
from notifications import wire
from notifications.messages import EmailDraft
from notifications.smtp import (
    DeliveryFailure,
    PermanentFailure,
    Prepared,
    PreparedSender,
    Sender,
    TransientFailure,
    refused_part,
)

log = logging.getLogger(__name__)

PENDING, SENT, UNDELIVERED = OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.UNDELIVERED
DEDUP_HEADER = "X-Mairie-Dedup-Key"

AttachmentLoader = Callable[[str], bytes]


class AttachmentUnavailable(Exception):
    """An attachment cannot be loaded, or its content does not match its SHA-256."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: exponential backoff from `first_delay`, capped, then give up."""

    max_attempts: int = 10
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=5)  # how long a claim keeps other dispatchers away

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: 30 s, 1 min, 2 min… up to 1 h."""
        factor: int = 2 ** max(attempts - 1, 0)  # int ** int is typed Any (a negative power is a float)
        return min(self.first_delay * factor, self.max_delay)


@dataclass(frozen=True)
class Outcome:
    """The state of a row after one attempt."""

    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    sent_at: datetime | None


@dataclass
class DispatchReport:
    """What one `dispatch_due` run did, by outbox row id."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    undelivered: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # claimed by another dispatcher meanwhile

    def add(self, row_id: int, outcome: Outcome) -> None:
        """File `row_id` under the status the attempt left it in."""
        buckets: dict[str, list[int]] = {SENT: self.sent, UNDELIVERED: self.undelivered}
        bucket = buckets.get(outcome.status, self.retried)
        bucket.append(row_id)


# --------------------------------------------------------------------------------------------------
# Enqueue (inside the caller's transaction)
# --------------------------------------------------------------------------------------------------


def enqueue(
    session: Session,
    draft: EmailDraft,
    *,
    dedup_key: str,
    kind: str,
    sender_address: str,
    related_type: str | None = None,
    related_id: int | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Add `draft` to the outbox in the caller's transaction (flushed, not committed).

    If a message with the same `dedup_key` exists, it is returned unchanged: same event, same message.
    """
    existing = _by_dedup_key(session, dedup_key)
    if existing is not None:
        return existing
    row = _new_row(draft, dedup_key, kind, sender_address, related_type, related_id, now or utcnow())
    try:
        with session.begin_nested():  # a concurrent enqueue of the same key only undoes this savepoint
            session.add(row)
    except IntegrityError:
        existing = _by_dedup_key(session, dedup_key)
        if existing is None:
            raise
        return existing
    return row


def _new_row(
    draft: EmailDraft,
    dedup_key: str,
    kind: str,
    sender_address: str,
    related_type: str | None,
    related_id: int | None,
    now: datetime,
) -> OutboxMessage:
    if len(draft.subject) > 300:
        raise ValueError(f"objet trop long ({len(draft.subject)} caractères, 300 au plus)")
    return OutboxMessage.model_validate(
        {
            "dedup_key": dedup_key,
            "message_id": make_msgid(domain=_domain(sender_address)),
            "kind": kind,
            "sender": sender_address,
            "recipients": list(draft.to),
            "cc": list(draft.cc),
            "reply_to": draft.reply_to,
            "subject": draft.subject,
            "body_text": draft.text,
            "body_html": draft.html,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "sha256": a.sha256} for a in draft.attachments
            ],
            "status": PENDING,
            "next_attempt_at": now,
            "created_at": now,
            "related_type": related_type,
            "related_id": related_id,
        }
    )


def _domain(sender_address: str) -> str:
    _, address = parseaddr(sender_address)
    if "@" not in address:
        raise ValueError(f"adresse d'expéditeur invalide : {sender_address!r}")
    return address.rsplit("@", 1)[1]


def _by_dedup_key(session: Session, dedup_key: str) -> OutboxMessage | None:
    return session.exec(select(OutboxMessage).where(OutboxMessage.dedup_key == dedup_key)).first()


# --------------------------------------------------------------------------------------------------
# MIME
# --------------------------------------------------------------------------------------------------


def to_mime(row: OutboxMessage, load_attachment: AttachmentLoader) -> EmailMessage:
    """The message as sent: text and HTML alternatives, attachments, the stored Message-ID.

    Raises AttachmentUnavailable when an attachment cannot be loaded or its SHA-256 does not match.
    """
    message = EmailMessage()
    message["Subject"] = row.subject
    message["From"] = row.sender
    message["To"] = ", ".join(row.recipients)
    if row.cc:
        message["Cc"] = ", ".join(row.cc)
    if row.reply_to:
        message["Reply-To"] = row.reply_to
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = row.message_id
    message[DEDUP_HEADER] = row.dedup_key
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    for attachment in row.attachments:
        maintype, _, subtype = attachment["content_type"].partition("/")
        data = _load(attachment, load_attachment)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=attachment["filename"])
    return message


def prepare(row: OutboxMessage, load_attachment: AttachmentLoader) -> Prepared:
    """The message as the wire carries it, built once (`notifications.wire`: the same headers, bodies and
    attachments as `to_mime`, without the stdlib's header registry) and its envelope (From; To and Cc).
    `Prepared.message` rebuilds it with `to_mime`, for a relay that needs it recoded. Raises
    AttachmentUnavailable like `to_mime`."""
    parts = [wire.Part(a["filename"], a["content_type"], _load(a, load_attachment)) for a in row.attachments]
    headers = [
        ("Subject", row.subject),
        ("From", row.sender),
        ("To", ", ".join(row.recipients)),
        ("Cc", ", ".join(row.cc)),
        ("Reply-To", row.reply_to or ""),
        ("Date", format_datetime(row.created_at)),
        ("Message-ID", row.message_id),
        (DEDUP_HEADER, row.dedup_key),
        ("Auto-Submitted", "auto-generated"),
    ]
    return Prepared(
        sender=parseaddr(row.sender)[1],
        recipients=[address for _, address in getaddresses([*row.recipients, *row.cc]) if address],
        data=wire.message_bytes(headers, row.body_text, row.body_html or None, parts),
        message=lambda: to_mime(row, load_attachment),
    )


def _load(attachment: dict[str, Any], load: AttachmentLoader) -> bytes:
    filename, digest = attachment["filename"], attachment["sha256"]
    try:
        data = load(digest)
    except Exception as exc:  # the loader is injected: any failure means "not available now"
        raise AttachmentUnavailable(f"pièce jointe « {filename} » introuvable ({digest[:12]}…) : {exc}") from exc
    if hashlib.sha256(data).hexdigest() != digest:
        raise AttachmentUnavailable(f"pièce jointe « {filename} » altérée : empreinte SHA-256 différente")
    return data


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------


async def dispatch_due(
    engine: Engine,
    sender: Sender,
    load_attachment: AttachmentLoader,
    *,
    now: datetime | None = None,
    limit: int = 100,
    policy: RetryPolicy | None = None,
    batch: int = 50,
) -> DispatchReport:
    """Send every pending message whose time has come (at most `limit`), oldest first, `batch` at a time:
    claimed together, sent one after the other over one session of the sender's (when it has
    `session()`), each outcome recorded at once.

    `now` fixes the clock (tests); by default the real UTC time is read at each step.
    """
    policy = policy or RetryPolicy()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DispatchReport()
    due = due_ids(engine, clock(), limit)
    async with _session(sender) as channel:
        for start in range(0, len(due), max(batch, 1)):
            chunk = due[start : start + max(batch, 1)]
            claimed = _claim(engine, chunk, clock(), policy.lease)
            claimed_at = time.monotonic()
            for row_id in chunk:
                row = claimed.get(row_id)
                # Claimed by another dispatcher; or, on a relay so slow that half the lease has gone, left to
                # the next run once its claim lapses (sending it this late could overlap another dispatcher).
                if row is None or time.monotonic() - claimed_at > policy.lease.total_seconds() / 2:
                    report.skipped.append(row_id)
                    continue
                result = await _attempt(row, channel, load_attachment)
                outcome = after_attempt(row.attempts, result, clock(), policy)
                _record(engine, row_id, outcome)
                report.add(row_id, outcome)
                log.info("courriel %s (%s) : %s — %s", row_id, row.kind, outcome.status, outcome.last_error or "ok")
    return report


@asynccontextmanager
async def _session(sender: Sender) -> AsyncIterator[Sender]:
    """The sender's session for a batch when it offers one; the sender itself otherwise (fakes, tests)."""
    opener = getattr(sender, "session", None)
    if opener is None:
        yield sender
        return
    async with opener() as session:
        yield session


def after_attempt(attempts_before: int, result: str | DeliveryFailure, now: datetime, policy: RetryPolicy) -> Outcome:
    """The row's next state, given what the relay answered (a reply string) or how it failed. Pure."""
    attempts = attempts_before + 1
    if isinstance(result, str):
        return Outcome(SENT, attempts, now, refused_part(result), now)
    if isinstance(result, PermanentFailure):
        return Outcome(UNDELIVERED, attempts, now, result.answer, None)
    if attempts >= policy.max_attempts:
        answer = f"{result.answer} (abandon après {attempts} tentatives)"
        return Outcome(UNDELIVERED, attempts, now, answer, None)
    return Outcome(PENDING, attempts, now + policy.delay(attempts), result.answer, None)


def due_ids(engine: Engine, now: datetime, limit: int) -> list[int]:
    """Ids of the pending messages due at `now`, oldest first."""
    with Session(engine) as session:
        statement = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == PENDING, col(OutboxMessage.next_attempt_at) <= now)
            .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
            .limit(limit)
        )
        return [row_id for row_id in session.exec(statement).all() if row_id is not None]


def _claim(engine: Engine, row_ids: list[int], now: datetime, lease: timedelta) -> dict[int, OutboxMessage]:
    """Take the rows still due for this dispatcher by pushing their next attempt past the lease (one
    conditional UPDATE … RETURNING); returns those taken, by id (the others were taken meanwhile)."""
    claim = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(row_ids),
            col(OutboxMessage.status) == PENDING,
            col(OutboxMessage.next_attempt_at) <= now,
        )
        .values(next_attempt_at=now + lease)
        .returning(col(OutboxMessage.id))
        .execution_options(synchronize_session=False)
    )
    with UnitOfWork(engine) as uow:
        taken = [row_id for (row_id,) in uow.session.execute(claim).all()]
        rows = uow.session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(taken))).all() if taken else []
        uow.commit()
        return {row.id: row for row in rows if row.id is not None}


async def _attempt(row: OutboxMessage, sender: Sender, load_attachment: AttachmentLoader) -> str | DeliveryFailure:
    try:
        if isinstance(sender, PreparedSender):
            prepared = prepare(row, load_attachment)
        else:
            message = to_mime(row, load_attachment)
    except AttachmentUnavailable as exc:
        return TransientFailure(str(exc))
    try:
        if isinstance(sender, PreparedSender):
            return await sender.send_prepared(prepared)
        return await sender.send(message)
    except DeliveryFailure as failure:
        return failure
    except Exception as exc:  # a sender bug must not leave the row claimed forever: count it as an attempt
        log.exception("courriel %s : échec inattendu de l'envoi", row.id)
        return TransientFailure(f"erreur inattendue : {type(exc).__name__}: {exc}")


def _record(engine: Engine, row_id: int, outcome: Outcome) -> None:
    # A guarded move (compare-and-set on `pending`): the status table says which moves are allowed, the
    # WHERE clause makes the move atomic against a concurrent dispatcher. One short transaction per message,
    # as soon as the relay has answered: a crash loses at most the mark of the message in flight.
    check(OutboxStatus, PENDING, OutboxStatus(outcome.status))
    with engine.begin() as connection:
        connection.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == PENDING)
            .values(
                status=outcome.status,
                attempts=outcome.attempts,
                next_attempt_at=outcome.next_attempt_at,
                last_error=outcome.last_error,
                sent_at=outcome.sent_at,
            )
        )


# --------------------------------------------------------------------------------------------------
# Operators' views
# --------------------------------------------------------------------------------------------------


def pending(session: Session) -> list[OutboxMessage]:
    """Messages not sent yet (including those waiting for a retry), oldest first."""
    return _with_status(session, PENDING)


def undelivered(session: Session) -> list[OutboxMessage]:
    """Messages given up on, with the relay's answer in `last_error`, oldest first."""
    return _with_status(session, UNDELIVERED)


def requeue(session: Session, outbox_id: int, *, now: datetime | None = None) -> OutboxMessage:
    """Put an undelivered message back in the queue (e.g. once the relay is fixed); caller commits.

    The retry budget starts again; the last error stays visible until the next attempt.
    """
    row = session.get(OutboxMessage, outbox_id)
    if row is None:
        raise ValueError(f"aucun courriel n° {outbox_id} dans la file d'envoi")
    if row.status != UNDELIVERED:
        raise ValueError(f"le courriel n° {outbox_id} est « {row.status} » : seul un courriel non distribué se renvoie")
    move(row, OutboxStatus.PENDING)
    row.attempts, row.next_attempt_at = 0, now or utcnow()
    session.add(row)
    return row


def _with_status(session: Session, status: str) -> list[OutboxMessage]:
    statement = (
        select(OutboxMessage)
        .where(OutboxMessage.status == status)
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    )
    return list(session.exec(statement).all())
