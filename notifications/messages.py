"""Message building, pure: a template name and a context in, an `EmailDraft` out.

Each message is a pair of Jinja2 templates in `notifications/templates/`: `<name>.txt` (plain text, which
also holds the `subject` block) and `<name>.html` (autoescaped). Both start with a header comment listing
the context keys (`documented_keys(name)` reads it; docs/notifications.md repeats it). Missing keys fail
loudly (StrictUndefined). No I/O here apart from reading the templates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment, PackageLoader, StrictUndefined, Undefined, select_autoescape

from notifications.formatting import date_fr, datetime_fr, euros, number_fr

DEFAULT_SIGNATURE = "L'équipe du Pack Mairie Connectée\nLa Fibre Numérique 59-62 et les Centres de gestion"

MESSAGE_NAMES = (
    "quotes_to_signatory",
    "request_refused",
    "operator_task",
    "signature_request",
    "signature_reminder",
    "signature_expired",
    "convention_declined",
    "question_forwarded",
    "convention_in_force",
    "provisioning_order",
    "invoice_issued",
    "payment_reminder",
    "accountant_handover",
    "invoice_held",
    "chorus_task",
    "pes_rejected",
    "run_failed",
)


@dataclass(frozen=True)
class Attachment:
    """A file to attach, named by the SHA-256 of its content in the document store."""

    filename: str
    content_type: str
    sha256: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"empreinte SHA-256 invalide pour « {self.filename} »")
        if "/" not in self.content_type:
            raise ValueError(f"type de contenu invalide pour « {self.filename} » : {self.content_type}")


@dataclass(frozen=True)
class EmailDraft:
    """A rendered message, not yet stored nor sent."""

    subject: str
    text: str
    html: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ContextKey:
    """One documented context key of a template: its name, whether it is optional, what it is."""

    name: str
    optional: bool
    description: str


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The one Jinja2 environment of the emails: autoescape for .html, StrictUndefined, French filters."""
    env = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    filters: dict[str, Callable[[Any], str]] = {
        "euros": euros,
        "number_fr": number_fr,
        "date_fr": date_fr,
        "datetime_fr": datetime_fr,
    }
    env.filters.update({name: _strict(function) for name, function in filters.items()})
    return env


def _strict(function: Callable[[Any], str]) -> Callable[[Any], str]:
    """A filter that reports a missing value as the missing key, not as a conversion error."""

    def apply(value: Any) -> str:
        if isinstance(value, Undefined):
            str(value)  # StrictUndefined raises UndefinedError naming the key
        return function(value)

    return apply


def build(
    name: str,
    context: Mapping[str, Any],
    *,
    to: Iterable[str],
    cc: Iterable[str] = (),
    reply_to: str | None = None,
    attachments: Iterable[Attachment] = (),
) -> EmailDraft:
    """Render message `name` (subject, text, HTML) for the given recipients.

    Raises `jinja2.UndefinedError` when the context lacks a key the templates use, and ValueError for an
    unknown message, an invalid address or a link that is not http(s).
    """
    if name not in MESSAGE_NAMES:
        raise ValueError(f"message inconnu : {name!r} (connus : {', '.join(MESSAGE_NAMES)})")
    values = {"signature": DEFAULT_SIGNATURE, **context}
    _check_links(values)
    _check_level(name, values)
    env = environment()
    text_template = env.get_template(f"{name}.txt")
    subject = _render_subject(text_template, values)
    return EmailDraft(
        subject=subject,
        text=_tidy(text_template.render(values)),
        html=env.get_template(f"{name}.html").render({**values, "subject": subject}),
        to=_addresses(to, required=True),
        cc=_addresses(cc),
        reply_to=_address(reply_to) if reply_to else None,
        attachments=tuple(attachments),
    )


def documented_keys(name: str) -> tuple[ContextKey, ...]:
    """The context keys listed in the header comment of `<name>.txt`."""
    env = environment()
    if env.loader is None:  # never: the environment is built with a PackageLoader
        raise RuntimeError("the notifications environment has no template loader")
    source, _, _ = env.loader.get_source(env, f"{name}.txt")
    header = source.split("#}", 1)[0]
    keys = []
    for match in re.finditer(r"^\s+(\w+)(\s+\(optional\))?\s*:\s*(.+)$", header, re.MULTILINE):
        keys.append(ContextKey(match.group(1), bool(match.group(2)), match.group(3).strip()))
    return tuple(keys)


def _render_subject(template: Any, values: Mapping[str, Any]) -> str:
    block = template.blocks.get("subject")
    if block is None:
        raise ValueError(f"{template.name} n'a pas de bloc « subject »")
    raw = "".join(block(template.new_context(dict(values))))
    subject = " ".join(raw.split())  # one line: a header never carries a newline
    if not subject:
        raise ValueError(f"{template.name} : objet vide")
    return subject


def _tidy(text: str) -> str:
    """Drop trailing spaces and runs of blank lines left by template tags; end with one newline."""
    lines = [line if line == "-- " else line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _check_level(name: str, values: Mapping[str, Any]) -> None:
    allowed = {"payment_reminder": (1, 2, 3)}.get(name)
    level = values.get("level")
    if name == "signature_reminder" and not (isinstance(level, int) and level >= 1):
        raise ValueError(f"signature_reminder : niveau de rappel invalide ({level!r}), un entier ≥ 1 est attendu")
    if allowed and level not in allowed:
        raise ValueError(f"{name} : niveau de rappel invalide ({level!r}), attendu : 1, 2 ou 3")


def _check_links(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key.endswith("_url") and value is not None:
            parts = urlsplit(str(value))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"lien « {key} » refusé : une adresse http(s) complète est attendue")


def _addresses(values: Iterable[str], *, required: bool = False) -> tuple[str, ...]:
    result = tuple(_address(v) for v in values)
    if required and not result:
        raise ValueError("au moins un destinataire est requis")
    return result


def _address(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"adresse électronique invalide « {value} » : {exc}") from None
