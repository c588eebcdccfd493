"""WeasyPrint's line splitting remembered from one document to the next, for the same pages.

WeasyPrint lays out text by asking `split_first_line(text, style, …)` how much of a text fits on a line of
a given width: Pango shapes the text with HarfBuzz, finds its break points and measures the first line.
An invoice asks it about 175 times, and most of what it asks is asked again by the next invoice: the
legal mentions, the payment text, the headings and labels, the column headers are the same words in the
same style at the same width; only names, numbers and amounts change. Measured with callgrind on
distinct invoices after a first one (docs/documents.md): about 80 % of the questions were asked before,
and the render of a syndicat invoice went from 760 to 626 million instructions (× 0.82).

`install()` (called by `documents.rendering`) puts a bounded least-recently-used memo in front of it, in
the two modules that lay out text (`weasyprint.layout.inline` and `weasyprint.layout.preferred`). The
answer depends on the text, on the width, on the two flags and on the computed style's properties that
`weasyprint.text.line_break` reads — every one of them is in the key (`_key`); the layout context only
caches hyphenation dictionaries, chosen by the `lang` in the key. WeasyPrint hands back a Pango layout
already released (`Layout.deactivate`: the text and measurements stay, the Pango objects are dropped and
made again from the text box's own style when the page is drawn), so each caller gets its own copy of
it and nothing is shared between text boxes.

Only for WeasyPrint `WEASYPRINT_MAJOR`, and only when `split_first_line` has the parameters this was
written against; otherwise WeasyPrint is left as shipped — correct, slower — and the test of this module
fails to say so. The proof that the pages do not change is `tests/unit/documents/test_line_splits.py`:
every document kind and its layout variants, and a run of distinct invoices, rendered with and without
the memo give the same page content streams byte for byte.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import weasyprint
from weasyprint.layout import inline, preferred
from weasyprint.text import line_break

WEASYPRINT_MAJOR = "70"
PARAMETERS = ("text", "style", "context", "max_width", "justification_spacing", "is_line_start", "minimum")
# Answers kept per process: an invoice asks ≈ 40 new questions, so a campaign's render worker keeps the
# last ≈ 200 invoices' answers, a few MB. The shared texts stay: each use makes them the most recent.
LIMIT = 8192

# The computed style's properties `weasyprint.text.line_break` reads (its Layout, its font description
# and features, its line metrics), besides those of its own `_font_style_cache_key` (font family, style,
# stretch, weight, variants, feature and variation settings, language override, lang; size, line height).
STYLE_PROPERTIES = (
    "direction",
    "font_kerning",
    "hyphenate_character",
    "hyphenate_limit_chars",
    "hyphenate_limit_zone",
    "hyphens",
    "letter_spacing",
    "overflow_wrap",
    "tab_size",
    "text_decoration_line",
    "white_space",
    "word_break",
    "word_spacing",
)

_original: Callable[..., Any] | None = None
_memo: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()
_lock = threading.Lock()
counts = {"asked": 0, "remembered": 0}  # for the benchmarks and the tests


def _key(
    text: str,
    style: Any,
    max_width: float | None,
    justification_spacing: float,
    is_line_start: bool,
    minimum: bool,
) -> tuple[Any, ...]:
    return (
        text,
        line_break._font_style_cache_key(style, include_size=True),
        *(style[name] for name in STYLE_PROPERTIES),
        id(style.font_config),  # one FontConfiguration per process (documents.rendering): its fonts
        max_width,
        justification_spacing,
        is_line_start,
        minimum,
    )


def split_first_line(
    text: str,
    style: Any,
    context: Any,
    max_width: float | None,
    justification_spacing: float,
    is_line_start: bool = True,
    minimum: bool = False,
) -> tuple[Any, ...]:
    """WeasyPrint's `split_first_line`, answered from the memo when it was asked the same before."""
    assert _original is not None
    counts["asked"] += 1
    try:
        key = _key(text, style, max_width, justification_spacing, is_line_start, minimum)
        hash(key)
    except TypeError:  # a property value that cannot be a key: asked as shipped
        return _original(text, style, context, max_width, justification_spacing, is_line_start, minimum)  # type: ignore[no-any-return]
    with _lock:
        found = _memo.get(key)
        if found is not None:
            _memo.move_to_end(key)
    if found is not None:
        counts["remembered"] += 1
        layout, *rest = found
        return (copy.copy(layout), *rest)
    answer = _original(text, style, context, max_width, justification_spacing, is_line_start, minimum)
    layout, *rest = answer
    with _lock:
        _memo[key] = (copy.copy(layout), *rest)
        if len(_memo) > LIMIT:
            _memo.popitem(last=False)
    return answer  # type: ignore[no-any-return]


def installed() -> bool:
    """Whether WeasyPrint splits its lines through this module."""
    return _original is not None


def applies() -> bool:
    """Whether this module was written for the WeasyPrint installed."""
    if weasyprint.__version__.split(".")[0] != WEASYPRINT_MAJOR:
        return False
    parameters = tuple(inspect.signature(line_break.split_first_line).parameters)
    return parameters == PARAMETERS and inline.split_first_line is preferred.split_first_line


def install() -> bool:
    """Install once per process, for the WeasyPrint it was written for; returns whether it is installed."""
    global _original
    if _original is not None:
        return True
    if not applies():
        return False
    _original = line_break.split_first_line
    inline.split_first_line = split_first_line
    preferred.split_first_line = split_first_line
    return True


def uninstall() -> None:
    """WeasyPrint as shipped again (the benchmarks' floors, the test comparing both). The memo is kept:
    what it holds are WeasyPrint's own answers, still right when installed again."""
    global _original
    if _original is not None:
        inline.split_first_line = _original
        preferred.split_first_line = _original
    _original = None


def forget() -> None:
    """Empty the memo (and its counts): the next questions are asked of WeasyPrint again."""
    with _lock:
        _memo.clear()
    counts.update(asked=0, remembered=0)


@contextlib.contextmanager
def shipped() -> Iterator[None]:
    """WeasyPrint's line splitting as shipped for the duration, then installed again if it was. Not for a
    process that renders in other threads meanwhile."""
    was = installed()
    uninstall()
    try:
        yield
    finally:
        if was:
            install()
