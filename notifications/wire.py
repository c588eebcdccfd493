"""An outbox message as the bytes that go on the wire, written directly (pure; no I/O).

`email.message.EmailMessage` builds and then flattens a message through its header registry (every
header parsed into a tree, then folded again) and writes base64 bodies line by line in Python: for an
invoice email with a PDF that is about three times the CPU of the SMTP exchange itself. The structure of
our messages is fixed — text, optionally an HTML alternative, attachments — so this module writes it with
the standard library's encoders (RFC 2047 encoded words, RFC 2231 parameters, base64 in C) and nothing
else. `notifications.outbox.to_mime` stays the reference: the tests parse both and compare every header,
body and attachment.

Choices: CRLF line ends; headers folded at 78 characters; text parts in 7bit when ASCII, else 8bit (the
session sends with BODY=8BITMIME, or recodes through `to_mime` for a relay without it), quoted-printable
only for a line longer than SMTP allows (998); attachments in base64.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import encode_rfc2231, formataddr, getaddresses

CRLF = b"\r\n"
MAX_HEADER = 78
MAX_LINE = 998  # RFC 5322: the longest line SMTP must carry


@dataclass(frozen=True)
class Part:
    """An attachment: its file name, its MIME type and its bytes."""

    filename: str
    content_type: str
    data: bytes


ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender", "bcc"})


def message_bytes(
    headers: Sequence[tuple[str, str]], text: str, html: str | None, attachments: Sequence[Part]
) -> bytes:
    """The whole message: `headers` in their order (an empty value is left out; From, To, Cc, Reply-To are
    address lists, "Name <a@b>, …"), then the MIME structure of `to_mime`: text, or text + HTML
    alternatives, mixed with the attachments when there are any."""
    out = [
        _address(name, value) if name.lower() in ADDRESS_HEADERS else _unstructured(name, value)
        for name, value in headers
        if value
    ]
    out.append(b"MIME-Version: 1.0\r\n")
    body = _text_part("plain", text)
    if html is not None:
        body = _multipart("alternative", [body, _text_part("html", html)])
    if attachments:
        body = _multipart("mixed", [body, *(_attachment(a) for a in attachments)])
    return b"".join(out) + body


def _unstructured(name: str, value: str) -> bytes:
    line = f"{name}: {value}"
    if value.isascii() and len(line) <= MAX_HEADER and "\n" not in value and "\r" not in value:
        return line.encode("ascii") + CRLF
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, maxlinelen=MAX_HEADER, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}".encode("ascii") + CRLF


def _address(name: str, value: str) -> bytes:
    formatted = [formataddr((display, address), charset="utf-8") for display, address in getaddresses([value])]
    line = f"{name}: {', '.join(formatted)}"
    if len(line) > MAX_HEADER:
        line = f"{name}: " + ",\r\n ".join(formatted)  # one address per line
    return line.encode("ascii") + CRLF


def _text_part(subtype: str, text: str) -> bytes:
    data = text.encode("utf-8")
    lines = data.splitlines()
    if any(len(line) > MAX_LINE for line in lines):
        encoded = binascii.b2a_qp(b"\n".join(lines), istext=True)
        encoding, body = "quoted-printable", encoded.replace(b"\n", CRLF)
        body = body if body.endswith(CRLF) else body + CRLF
    else:
        encoding, body = ("7bit" if data.isascii() else "8bit"), CRLF.join(lines) + CRLF
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
    return head.encode("ascii") + body


def _attachment(part: Part) -> bytes:
    head = (
        f"Content-Type: {part.content_type}\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: attachment;\r\n {_filename(part.filename)}\r\n\r\n"
    )
    return head.encode("ascii") + base64.encodebytes(part.data).replace(b"\n", CRLF)


def _filename(filename: str) -> str:
    if filename.isascii() and filename.isprintable():
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'filename="{escaped}"'
    return f"filename*={encode_rfc2231(filename, 'utf-8')}"


def _multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    boundary = f"==============={secrets.token_hex(16)}=="
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode("ascii")
    return head + delimiter.join(parts) + f"\r\n--{boundary}--\r\n".encode("ascii")
