"""One Jinja2 environment and one WeasyPrint set-up per process: HTML from a template, PDF from HTML.

What is costly and never changes is built once and reused by every render: the Jinja environment and
its compiled templates, the WeasyPrint `FontConfiguration` (the shipped Latin font registered once) and
the parsed stylesheets. CSS is handed to WeasyPrint as stylesheets, never inlined in a `<style>` of the
template (autoescaping would mangle it). The templates write well-formed XHTML: `documents.weasy` parses
it with expat and gives WeasyPrint only the user-agent rules that can apply (a tenth of WeasyPrint's
time on an invoice, for the same pages); `documents.line_splits` remembers how each text splits into
lines from one document to the next (a sixth of it, for the same pages).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint import CSS
from weasyprint.text.fonts import FontConfiguration

from documents import line_splits, pdf_streams, weasy
from documents.formatting import FILTERS, NBSP, NNBSP

ROOT = Path(__file__).parent
SHARED = ROOT / "shared"
KINDS = ("devis", "convention", "facture", "avoir")

pdf_streams.install()  # each PDF stream deflated once, at zlib's default level (not twice at 9)
line_splits.install()  # a text's line splitting at a width remembered from one document to the next


def _finalize(value: Any) -> Any:
    # Texts built elsewhere (pricing notes, eligibility reasons) group digits with U+202F, which the
    # shipped font lacks; printing U+00A0 instead keeps a single embedded font.
    if isinstance(value, str):
        return value.replace(NNBSP, NBSP)
    return value


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The process's Jinja2 environment: autoescaping, undefined variables raise, French filters."""
    env = Environment(
        loader=FileSystemLoader(str(ROOT)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        finalize=_finalize,
    )
    env.filters.update(FILTERS)
    return env


@lru_cache(maxsize=1)
def font_config() -> FontConfiguration:
    """The process's WeasyPrint font configuration (holds the @font-face fonts of base.css)."""
    return FontConfiguration()


@lru_cache(maxsize=1)
def _base_css() -> CSS:
    return CSS(filename=str(SHARED / "base.css"), font_config=font_config())


@cache
def stylesheets(kind: str) -> tuple[CSS, ...]:
    """The parsed stylesheets of a document kind: the shared base, then the kind's own."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; expected one of {', '.join(KINDS)}")
    return (_base_css(), CSS(filename=str(ROOT / kind / "style.css"), font_config=font_config()))


@cache
def author_css(kind: str) -> str:
    """The text of a kind's stylesheets (what `documents.weasy` checks before dropping pseudo-elements)."""
    return (SHARED / "base.css").read_text(encoding="utf-8") + (ROOT / kind / "style.css").read_text(encoding="utf-8")


def render_html(kind: str, **context: Any) -> str:
    """The HTML of a document kind from its template and the given values (StrictUndefined)."""
    return environment().get_template(f"{kind}/template.html").render(**context)


def html_to_document(html: str, kind: str, *, pdf_variant: str | None = None) -> Any:
    """The HTML of a document kind laid out with its stylesheets and the shared fonts: a WeasyPrint
    `Document` (pages and metadata), to be written with `write_pdf`."""
    parsed = weasy.parse(html, str(ROOT / kind) + "/", author_css=author_css(kind))
    return parsed.render(stylesheets=list(stylesheets(kind)), font_config=font_config(), pdf_variant=pdf_variant)


def html_to_pdf(html: str, kind: str, *, pdf_variant: str | None = None) -> bytes:
    """Lay out the HTML of a document kind with its stylesheets and the shared fonts; PDF bytes."""
    pdf: bytes | None = html_to_document(html, kind, pdf_variant=pdf_variant).write_pdf(pdf_variant=pdf_variant)
    assert pdf is not None
    return pdf


def warm_up() -> None:
    """Build the environment, fonts and stylesheets now (e.g. in a worker process before its first job)."""
    environment()
    for kind in KINDS:
        stylesheets(kind)
        author_css(kind)
