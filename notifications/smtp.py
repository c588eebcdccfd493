"""Sending, async (aiosmtplib), failures sorted into transient and permanent.

`SmtpSender.send` sends one message in an SMTP session of its own; `SmtpSender.session()` opens a
`SmtpSession` that sends several over one connection (the outbox's batches): opened at the first message,
renewed after `batch_size` messages and after any failure (a failed message never leaves a half-used
connection to the next one).

Transient (retry later): 4xx replies, connection refused or dropped, timeouts, and problems of the relay
itself rather than of the message (greeting refused, authentication refused, STARTTLS unavailable): the
message is fine, the relay or its configuration is not. Permanent (do not retry): a 5xx reply to the
sender, the recipients or the content. Both carry the server's answer, shown to operators.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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
    batch_size: int = 50  # messages per SMTP connection, at most (relays often cap it, e.g. at 100)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        """Read `MAIRIE_SMTP_HOST`, `_PORT`, `_USER`, `_PASSWORD`, `_STARTTLS`, `_TIMEOUT`, `_BATCH_SIZE`."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
            batch_size=settings.smtp_batch_size,
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
    return _answer(refused, reply)


def _answer(refused: dict[str, aiosmtplib.SMTPResponse], reply: str) -> str:
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


@dataclass(frozen=True)
class Prepared:
    """A message ready for the wire: envelope and bytes (CRLF, `email.policy.SMTP`, 8-bit text parts), built
    once. `message` rebuilds it as an `EmailMessage` for the rare relay that needs it recoded (no 8BITMIME,
    or an address that needs SMTPUTF8)."""

    sender: str
    recipients: Sequence[str]
    data: bytes
    message: Callable[[], EmailMessage]


@runtime_checkable
class PreparedSender(Protocol):
    """A sender that takes prepared bytes (`SmtpSession`)."""

    async def send_prepared(self, prepared: Prepared) -> str:
        """Send `prepared`; raise TransientFailure or PermanentFailure when it is not accepted."""
        ...


class SmtpSession:
    """Several messages over one SMTP connection (use as an async context manager; QUIT at the end).

    The connection is opened at the first message, renewed after `config.batch_size` messages, and dropped
    after any failure: the next message opens a fresh one. Each message is its own SMTP transaction with its
    own answer, so one refused message costs only itself.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._smtp: aiosmtplib.SMTP | None = None
        self._sent = 0
        self.connections = 0  # opened so far (for tests and benchmarks)

    async def __aenter__(self) -> SmtpSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def send(self, message: EmailMessage) -> str:
        """Send one `EmailMessage` over the session (see `notifications.smtp.send` for the answer)."""
        return await self._transaction(lambda smtp: smtp.send_message(message))

    async def send_prepared(self, prepared: Prepared) -> str:
        """Send prepared bytes as they are; recoded by aiosmtplib only if the relay cannot take them."""

        def transaction(smtp: aiosmtplib.SMTP) -> Any:
            addresses = [prepared.sender, *prepared.recipients]
            eight_bit_ok = smtp.supports_extension("8bitmime") or prepared.data.isascii()
            if not eight_bit_ok or not all(a.isascii() for a in addresses):
                return smtp.send_message(prepared.message())
            options = ["BODY=8BITMIME"] if smtp.supports_extension("8bitmime") else []
            return smtp.sendmail(prepared.sender, list(prepared.recipients), prepared.data, mail_options=options)

        return await self._transaction(transaction)

    async def close(self) -> None:
        """End the session politely (QUIT); a relay that does not answer is simply disconnected."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.is_connected:
                await smtp.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    async def _transaction(self, run: Callable[[aiosmtplib.SMTP], Any]) -> str:
        try:
            smtp = await self._connection()
            refused, reply = await run(smtp)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            self._drop()
            raise classify(exc) from exc
        except BaseException:
            self._drop()  # cancelled, or anything unexpected, mid-transaction: the connection's state is unknown
            raise
        self._sent += 1
        return _answer(refused, reply)

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and (self._sent >= self.config.batch_size or not self._smtp.is_connected):
            await self.close()
        if self._smtp is None:
            smtp = aiosmtplib.SMTP(
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username,
                password=self.config.password,
                start_tls=self.config.starttls,
                use_tls=False,
                timeout=self.config.timeout,
            )
            await smtp.connect()
            self._smtp, self._sent = smtp, 0
            self.connections += 1
        return self._smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()


class SmtpSender:
    """The real sender, through the configured relay: `send` opens an SMTP session per message; `session()`
    gives one session for a batch (what the outbox uses)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> str:
        """Send one message (see `notifications.smtp.send`)."""
        return await send(self.config, message)

    def session(self) -> SmtpSession:
        """A session for several messages over one connection (`async with sender.session() as s:`)."""
        return SmtpSession(self.config)
