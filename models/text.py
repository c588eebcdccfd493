"""One policy for the text people type in, at every boundary (approval page, JSON API, CLI, operator forms),
and one way to show stored text on a terminal.

Input: text is normalised to NFC, and refused — with a plain French sentence naming the character — when it
holds a character that can hide or disguise what it is next to:

- C0 and C1 control characters (U+0000–U+001F, U+007F–U+009F): terminal escape sequences, NUL (which
  PostgreSQL refuses anyway), carriage returns that overwrite a line. A multi-line field (a question, the
  reason of a decline, an operator's comment) accepts the line feed and the tab; its CRLF and CR line ends
  are read as line feeds, as browsers send CRLF from a textarea.
- bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C): a U+202E in a name
  reverses what is printed after it, on a page, in an email or in a PDF.
- line and paragraph separators (U+2028, U+2029) in a one-line field (a multi-line field reads them as
  line feeds), and lone surrogates (a JSON "\\ud800" decodes to one; no database can store it).

Output: `for_terminal` escapes the same characters (whatever is stored, even from before this policy)
so that printing a value never moves the cursor, changes colours or reverses text; `without_unsafe`
drops them, for a document or an email that shows text stored before the policy.

Pure: no I/O, standard library only.
"""

from __future__ import annotations

import unicodedata

from models.errors import InvalidInput

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
LINE_SEPARATORS = frozenset("\u2028\u2029")
MULTILINE_ALLOWED = frozenset("\n\t")


class UnsafeText(InvalidInput, ValueError):
    """Text refused by the policy. Also a ValueError, so that a pydantic validator raising it gives a
    ValidationError with this message."""


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def _kind(char: str) -> str | None:
    """What is wrong with `char` in a one-line field, or None when it is fine."""
    if _is_control(char):
        return "caractère de contrôle"
    if char in BIDI_CONTROLS:
        return "caractère invisible qui change le sens d'écriture"
    if char in LINE_SEPARATORS:
        return "saut de ligne"
    if _is_surrogate(char):
        return "caractère Unicode invalide"
    return None


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """The plain French reason why `value` is refused (without the field's name), or None when it is
    accepted. `value` is read as `check_text` reads it (line ends of a multi-line field as line feeds)."""
    if multiline:
        value = _line_feeds(value)
    for char in value:
        if multiline and char in MULTILINE_ALLOWED:
            continue
        kind = _kind(char)
        if kind is not None:
            allowed = " (seuls les retours à la ligne et les tabulations sont admis)" if multiline else ""
            return f"contient un {kind} ({_codepoint(char)}) non autorisé{allowed} : retirez-le"
    return None


def _line_feeds(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    for separator in LINE_SEPARATORS:
        value = value.replace(separator, "\n")
    return value


def check_text(value: str, *, multiline: bool = False) -> str:
    """`value` normalised (NFC; line ends as line feeds in a multi-line field), or UnsafeText whose message
    says which character is refused (without naming the field: the caller's message does)."""
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise UnsafeText(problem)
    if multiline:
        value = _line_feeds(value)
    return unicodedata.normalize("NFC", value)


def clean_text(value: str, field: str, *, multiline: bool = False) -> str:
    """`check_text`, with the field's name at the head of the message: « nom : contient un caractère de
    contrôle (U+001B) non autorisé : retirez-le »."""
    try:
        return check_text(value, multiline=multiline)
    except UnsafeText as exc:
        raise UnsafeText(f"{field} : {exc}") from None


def is_safe_text(value: str, *, multiline: bool = False) -> bool:
    """True when the policy accepts `value` as it is."""
    return text_problem(value, multiline=multiline) is None


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def for_terminal(value: object, *, keep_newlines: bool = False) -> str:
    """`value` as text safe to print on a terminal: every control, bidi control, line separator and lone
    surrogate is shown as a visible escape (``\\x1b``, ``\\u202e``), so stored text can never send an escape
    sequence or reverse what follows. With `keep_newlines`, line feeds and tabs are kept as they are."""
    text = "" if value is None else str(value)
    out = []
    for char in text:
        if keep_newlines and char in MULTILINE_ALLOWED:
            out.append(char)
        elif _kind(char) is not None:
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def without_unsafe(value: object, *, keep_newlines: bool = True) -> str:
    """`value` as text with every character the policy refuses removed (line feeds and tabs kept unless
    `keep_newlines` is False): for a page, an email or a PDF that prints text stored before the policy."""
    text = "" if value is None else str(value)
    return "".join(c for c in text if (keep_newlines and c in MULTILINE_ALLOWED) or _kind(c) is None)
