"""`Idempotency-Key` on `POST /api/requests`: the same key with the same body gets the first answer again and
creates nothing; the same key with another body is refused (409).

The key is remembered in the table `webguard` (bucket "idempotency"), per API key, for a day: first as a
reservation (no answer yet: a second request with that key meanwhile is refused with 409 and Retry-After),
then with the answer. A submission that fails forgets its reservation, so that nothing is left by a
refused call and the client can try again with the same key.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from mairie.database import engine
from mairie.settings import Settings
from mairie.web.limits import TABLE, subject_of
from models.db import reachable

BUCKET = "idempotency"
KEEP_SECONDS = 24 * 3600
KEY_PATTERN = r"^[!-~]{1,200}$"  # 1 to 200 visible ASCII characters


@dataclass(frozen=True)
class Stored:
    """What a key already stands for: its body's fingerprint, and the answer once given."""

    fingerprint: str
    answer: dict[str, Any] | None


def fingerprint_of(body: Any) -> str:
    """The SHA-256 of a body as validated (key order and spacing do not make another body)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def subject(api_key: str, idempotency_key: str) -> str:
    return subject_of("idempotency", api_key, idempotency_key)


def reserve(settings: Settings, key_subject: str, fingerprint: str, now: float | None = None) -> Stored | None:
    """Reserve `key_subject` for a body; None when reserved now, or what the key already stands for."""
    now = time.time() if now is None else now
    with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
        row = connection.execute(
            select(TABLE.c.fingerprint, TABLE.c.answer, TABLE.c.expires_at).where(
                TABLE.c.bucket == BUCKET, TABLE.c.subject == key_subject
            )
        ).first()
        if row is not None and row.expires_at > now:
            return Stored(row.fingerprint or "", row.answer)
        if row is not None:
            connection.execute(delete(TABLE).where(TABLE.c.bucket == BUCKET, TABLE.c.subject == key_subject))
    try:
        with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
            connection.execute(
                TABLE.insert().values(
                    bucket=BUCKET,
                    subject=key_subject,
                    window_number=0,
                    count=0,
                    expires_at=int(now) + KEEP_SECONDS,
                    fingerprint=fingerprint,
                )  # `answer` left out: SQL NULL (a JSON column would store None as the JSON text null)
            )
    except IntegrityError:  # another process reserved it in between
        return Stored(fingerprint="", answer=None)
    return None


def answer(settings: Settings, key_subject: str, status: int, body: dict[str, Any]) -> None:
    """Remember the answer given for a reserved key."""
    with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
        connection.execute(
            update(TABLE)
            .where(TABLE.c.bucket == BUCKET, TABLE.c.subject == key_subject)
            .values(answer={"status": status, "body": body})
        )


def forget(settings: Settings, key_subject: str) -> None:
    """Drop a reservation whose submission failed (nothing remains of a refused call)."""
    with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
        connection.execute(
            delete(TABLE).where(TABLE.c.bucket == BUCKET, TABLE.c.subject == key_subject, TABLE.c.answer.is_(None))
        )
