"""Sending, async (aiosmtplib): one message per SMTP session, failures sorted into transient and permanent.

Transient (retry later): 4xx replies, connection refused or dropped, timeouts, and problems of the relay
itself rather than of the message (greeting refused, authentication refused, STARTTLS unavailable): the
message is fine, the relay or its configuration is not. Permanent (do not retry): a 5xx reply to the
sender, the recipients or the content. Both carry the server's answer, shown to operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

import aiosmtplib

if TYPE_CHECKING:
    from mairie.settings import Settings


PARTIAL_REFUSAL = "destinataires refusés : "


def refused_part(reply: str) -> str | None:
    """The refusals noted in a success reply by `send` (some recipients refused), or None."""
    return reply if PARTIAL_REFUSAL in reply else None


class DeliveryFailure(Exception):
    """The relay did not take the message; `answer` is what it said (or what went wrong on the way)."""

    def __init__(self, answer: str, code: int | None = None) -> None:
        super().__init__(answer)
        self.answer = answer
        self.code = code


class TransientFailure(DeliveryFailure):
    """Worth retrying later: 4xx reply, connection refused or dropped, timeout, relay misconfigured."""


class PermanentFailure(DeliveryFailure):
    """Retrying would not help: a 5xx reply about the sender, the recipients or the content."""


class Sender(Protocol):
    """Anything that hands a message to a relay and returns the relay's answer."""

    async def send(self, message: EmailMessage) -> str:
        """Send one message; raise TransientFailure or PermanentFailure when it is not accepted."""
        ...


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP relay."""

    host: str = "127.0.0.1"
    port: int = 8025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """Read `MAIRIE_SMTP_HOST`, `_PORT`, `_USER`, `_PASSWORD`, `_STARTTLS`, `_TIMEOUT`."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
        )


async def send(config: SmtpConfig, message: EmailMessage) -> str:
    """Send `message` through the relay; return its final answer (e.g. "250 OK").

    Envelope sender and recipients come from the From, To and Cc headers (Bcc too, which aiosmtplib
    strips). When only some recipients are refused the message went to the others: it is not retried,
    and the refusals are appended to the returned answer so that they stay visible.
    """
    try:
        refused, reply = await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            start_tls=config.starttls,
            use_tls=False,
            timeout=config.timeout,
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise classify(exc) from exc
    answer = f"250 {reply}".strip()
    if refused:
        details = "; ".join(f"{addr}: {r.code} {r.message}" for addr, r in sorted(refused.items()))
        answer += f" ({PARTIAL_REFUSAL}{details})"
    return answer


def classify(exc: BaseException) -> DeliveryFailure:
    """Map an aiosmtplib (or socket) error to TransientFailure or PermanentFailure."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return _all_recipients_refused(exc)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPConnectResponseError
                  | aiosmtplib.SMTPHeloError):  # fmt: skip
        return TransientFailure(f"{exc.code} {exc.message} (relais SMTP : vérifier sa configuration)", exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = PermanentFailure if exc.code >= 500 else TransientFailure
        return kind(f"{exc.code} {exc.message}", exc.code)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientFailure(f"délai dépassé : {_text(exc)}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return TransientFailure(f"connexion interrompue par le serveur : {_text(exc)}")
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        return TransientFailure(f"connexion impossible : {_text(exc)}")
    return TransientFailure(f"erreur SMTP : {_text(exc)}")


def _all_recipients_refused(exc: aiosmtplib.SMTPRecipientsRefused) -> DeliveryFailure:
    answer = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
    codes = [r.code for r in exc.recipients]
    # Nothing was delivered, so a retry is safe; it is worth one if any refusal was temporary.
    if any(400 <= code < 500 for code in codes):
        return TransientFailure(answer, min(codes))
    return PermanentFailure(answer, max(codes) if codes else None)


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class SmtpSender:
    """The real sender: one SMTP session per message, through the configured relay."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> str:
        """Send one message (see `notifications.smtp.send`)."""
        return await send(self.config, message)
