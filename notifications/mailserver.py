"""A real SMTP server for development and tests (aiosmtpd, loopback only by default).

Every message received is kept as a `.eml` file in a folder (name: UTC timestamp + short hash, written
atomically), with the envelope prepended as `X-MailFrom` / `X-RcptTo` headers. `FaultInjection` makes
some deliveries fail (451, dropped connection, 550) so that clients can be tested against a real server.
The server runs in its own thread and event loop, so sync and async code can both use it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller

from notifications.smtp import SmtpConfig

FaultMode = Literal["451", "drop", "550"]
FAULT_MODES: tuple[FaultMode, ...] = ("451", "drop", "550")


@dataclass(frozen=True)
class FaultInjection:
    """Deliveries to fail, at the end of DATA: the first `fail_first`, then a seeded `fraction` of the rest.

    `mode` says how: "451" (temporary error), "drop" (connection closed without an answer) or "550"
    (rejected). Addresses in `refuse_recipients` are refused at RCPT with 550, whatever the mode.
    """

    mode: FaultMode = "451"
    fail_first: int = 0
    fraction: float = 0.0
    seed: int = 0
    refuse_recipients: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f"mode de panne inconnu : {self.mode!r} (attendu : {', '.join(FAULT_MODES)})")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError("la proportion de pannes doit être comprise entre 0 et 1")
        if self.fail_first < 0:
            raise ValueError("fail_first doit être positif ou nul")


@dataclass(frozen=True)
class ReceivedMail:
    """A message found in the folder, with the headers an operator or a test looks at."""

    path: Path
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    envelope_to: tuple[str, ...]
    message_id: str
    date: datetime | None
    attachments: tuple[str, ...]
    dedup_key: str | None

    def message(self) -> EmailMessage:
        """The whole message, parsed again from the file (to read bodies and attachments)."""
        return _parse(self.path)


class MailFolderHandler:
    """aiosmtpd handler: writes each accepted message to `folder`, applies the fault injection.

    `attempts` counts the DATA commands received, `saved` the files written (in order).
    """

    def __init__(
        self,
        folder: Path,
        faults: FaultInjection | None = None,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.faults = faults or FaultInjection()
        self.on_saved = on_saved
        self.attempts = 0
        self.saved: list[Path] = []
        self._random = random.Random(self.faults.seed)
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        """Refuse the addresses listed in the fault injection; accept the others."""
        if address.lower() in {a.lower() for a in self.faults.refuse_recipients}:
            return f"550 5.1.1 <{address}>: destinataire inconnu (refus simulé)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message as a .eml file, unless the fault injection says this delivery fails."""
        fault = self._next_fault()
        if fault == "451":
            return "451 4.3.0 Erreur temporaire simulée, réessayez plus tard"
        if fault == "550":
            return "550 5.7.1 Message refusé (rejet simulé)"
        if fault == "drop":
            return await _drop(server)
        path = self._save(envelope)
        return f"250 2.0.0 OK: enregistré sous {path.name}"

    def _next_fault(self) -> FaultMode | None:
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.faults.fail_first:
                return self.faults.mode
            if self.faults.fraction and self._random.random() < self.faults.fraction:
                return self.faults.mode
            return None

    def _save(self, envelope: Any) -> Path:
        content = envelope.original_content or b""
        head = f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        path = write_eml(self.folder, head.encode("utf-8") + content)
        with self._lock:
            self.saved.append(path)
        if self.on_saved is not None:
            self.on_saved(path)
        return path


async def _drop(server: Any) -> str:
    """Close the connection without answering; aiosmtpd then cancels this handler."""
    server.transport.abort()
    await asyncio.sleep(10)  # cancelled by connection_lost long before this ends
    return "421 4.4.2 Connexion interrompue (panne simulée)"


def write_eml(folder: Path, content: bytes) -> Path:
    """Write `content` atomically as `<UTC timestamp>-<hash>.eml` in `folder`; return the path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    digest = hashlib.sha256(content).hexdigest()[:10]
    path = folder / f"{stamp}-{digest}.eml"
    counter = 1
    while path.exists():
        path = folder / f"{stamp}-{digest}-{counter}.eml"
        counter += 1
    temporary = folder / f".{path.name}.tmp"
    with open(temporary, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    return path


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on a port chosen by the system (port 0)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = cast(asyncio.Server, self.server).sockets[0].getsockname()[1]
        # Named, not `super()`: mypy can then tell it is aiosmtpd's (untyped, `untyped_calls_exclude`).
        Controller._trigger_server(self)


class LoopbackMailServer:
    """A real SMTP server on loopback that keeps every message in `folder`.

    Use as a context manager (`with LoopbackMailServer(folder) as server:`), an async one, or call
    `start()` / `stop()`. With `port=0` the system picks a free port; read it from `.port`.
    """

    def __init__(
        self,
        folder: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultInjection | None = None,
        allow_remote: bool = False,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"« {host} » n'est pas une adresse de bouclage : ce serveur de test n'écoute que sur "
                "127.0.0.1, ::1 ou localhost (sauf autorisation explicite)"
            )
        self.folder = Path(folder)
        self.host = host
        self.port = port
        self.handler = MailFolderHandler(self.folder, faults, on_saved)
        self._controller: _Controller | None = None

    def start(self) -> LoopbackMailServer:
        """Listen (returns once the server answers); `.port` then holds the actual port."""
        if self._controller is not None:
            raise RuntimeError("le serveur SMTP tourne déjà")
        controller = _Controller(
            self.handler, hostname=self.host, port=self.port, server_hostname="localhost", ready_timeout=10
        )
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def stop(self) -> None:
        """Stop listening and end the server's thread (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def smtp_config(self, timeout: float = 5.0) -> SmtpConfig:
        """An `SmtpConfig` pointing at this server."""
        return SmtpConfig(host=self.host, port=self.port, timeout=timeout)

    def messages(self) -> list[ReceivedMail]:
        """The messages received so far (see `list_messages`)."""
        return list_messages(self.folder)

    def __enter__(self) -> LoopbackMailServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LoopbackMailServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def list_messages(folder: Path) -> list[ReceivedMail]:
    """The `.eml` files of `folder`, oldest first (names start with the UTC reception time)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [read_mail(path) for path in sorted(folder.glob("*.eml"))]


def _parse(path: Path) -> EmailMessage:
    with open(path, "rb") as stream:
        message = BytesParser(policy=policy.default).parse(stream)
    assert isinstance(message, EmailMessage)
    return message


def read_mail(path: Path) -> ReceivedMail:
    """The summary of one .eml file."""
    message = _parse(path)
    return ReceivedMail(
        path=path,
        subject=str(message.get("Subject", "")),
        sender=str(message.get("From", "")),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        envelope_to=tuple(a.strip() for a in str(message.get("X-RcptTo", "")).split(",") if a.strip()),
        message_id=str(message.get("Message-ID", "")).strip(),
        date=_date(message),
        attachments=tuple(part.get_filename() or "(sans nom)" for part in message.iter_attachments()),
        dedup_key=str(message["X-Mairie-Dedup-Key"]) if message["X-Mairie-Dedup-Key"] else None,
    )


def _addresses(message: EmailMessage, header: str) -> tuple[str, ...]:
    return tuple(address for _, address in getaddresses(message.get_all(header, [])) if address)


def _date(message: EmailMessage) -> datetime | None:
    raw = message.get("Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
