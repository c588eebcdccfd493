"""Rate limits whose state is in the database (table `webguard`), so that every web process counts the same
requests: per address, per approval link, questions per link, per API key, submissions per key, and the
failed API keys of an address (slowed down, then refused for a while).

A limit is a fixed window: at most `allowed` requests of one subject per `window` seconds; the request
over it is refused with the seconds left until the window ends (`Retry-After`). Counting is one atomic
upsert (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, on SQLite and PostgreSQL alike): two processes never
read the same count. Subjects are stored as SHA-256 digests: no address, key or link in clear.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mairie.database import engine
from mairie.settings import Settings
from models.db import reachable
from models.entities import WebGuard

TABLE = WebGuard.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Limit:
    """At most `allowed` requests per `window` seconds (0: no limit) in `bucket`."""

    bucket: str
    allowed: int
    window: int

    @property
    def active(self) -> bool:
        return self.allowed > 0


class RateLimited(Exception):
    """A request over a limit: a French sentence and the seconds to wait (the `Retry-After` header)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


def subject_of(*parts: str) -> str:
    """The stored name of what is counted: a digest, never the address, key or link itself."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def wait_text(seconds: int) -> str:
    """« 45 secondes », « 1 minute », « 15 minutes »."""
    if seconds < 120:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


# ------------------------------------------------------------------------------------------------
# The limits of the settings
# ------------------------------------------------------------------------------------------------


def per_ip(settings: Settings) -> Limit:
    return Limit("ip", settings.rate_ip_per_minute, 60)


def per_link(settings: Settings) -> Limit:
    return Limit("link", settings.rate_link_per_minute, 60)


def questions(settings: Settings) -> Limit:
    return Limit("question", settings.rate_questions_per_link_per_hour, 3600)


def per_api_key(settings: Settings) -> Limit:
    return Limit("api-key", settings.rate_api_key_per_minute, 60)


def submissions(settings: Settings) -> Limit:
    return Limit("api-submit", settings.rate_api_submissions_per_key_per_hour, 3600)


def api_failures(settings: Settings) -> Limit:
    """Failed API keys of one address; `allowed` is the number after which the address is locked out."""
    return Limit("api-fail", settings.rate_api_failures_before_lockout, settings.rate_api_failure_window_minutes * 60)


# ------------------------------------------------------------------------------------------------
# Counting
# ------------------------------------------------------------------------------------------------


def _upsert(connection: Connection, bucket: str, subject: str, window_number: int, expires_at: int) -> int:
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    values = insert(TABLE).values(
        bucket=bucket, subject=subject, window_number=window_number, count=1, expires_at=expires_at
    )
    statement = values.on_conflict_do_update(
        index_elements=[TABLE.c.bucket, TABLE.c.subject],
        set_={
            "count": case((TABLE.c.window_number == window_number, TABLE.c.count + 1), else_=1),
            "window_number": window_number,
            "expires_at": case((TABLE.c.expires_at > expires_at, TABLE.c.expires_at), else_=expires_at),
        },
    ).returning(TABLE.c.count)
    return int(connection.execute(statement).scalar_one())


def count(settings: Settings, limit: Limit, subject: str, now: float) -> tuple[int, int]:
    """Count one request of `subject`: (its number in the current window, seconds until the window ends)."""
    window_number = int(now // limit.window)
    window_end = (window_number + 1) * limit.window
    with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
        number = _upsert(connection, limit.bucket, subject, window_number, window_end)
        if number == 1:  # a new window: a good moment to forget what no window needs any more
            connection.execute(delete(TABLE).where(TABLE.c.expires_at < int(now) - 60))
    return number, max(1, math.ceil(window_end - now))


def hit(settings: Settings, limit: Limit, subject: str, now: float, message: Callable[[int], str]) -> int:
    """Count one request; RateLimited (with `message(seconds)`) when it is over the limit. Returns the
    request's number in the window (0 when the limit is off: nothing is counted)."""
    if not limit.active:
        return 0
    number, left = count(settings, limit, subject, now)
    if number > limit.allowed:
        raise RateLimited(message(left), left)
    return number


def blocked_for(settings: Settings, bucket: str, subject: str, now: float) -> int:
    """Seconds left of a lockout of `subject` in `bucket` (0 when none)."""
    with reachable(settings.sqlalchemy_url), engine(settings).connect() as connection:
        until = connection.execute(
            select(TABLE.c.blocked_until).where(TABLE.c.bucket == bucket, TABLE.c.subject == subject)
        ).scalar_one_or_none()
    if until is None or until <= now:
        return 0
    return max(1, math.ceil(until - now))


def block(settings: Settings, bucket: str, subject: str, until: float) -> None:
    """Lock `subject` out of `bucket` until `until` (the row exists: it was just counted)."""
    end = math.ceil(until)
    with reachable(settings.sqlalchemy_url), engine(settings).begin() as connection:
        connection.execute(
            update(TABLE)
            .where(TABLE.c.bucket == bucket, TABLE.c.subject == subject)
            .values(blocked_until=end, expires_at=case((TABLE.c.expires_at > end, TABLE.c.expires_at), else_=end))
        )


def clock() -> float:
    """The clock of the limits (the app's `state.clock` replaces it in tests)."""
    return time.time()
