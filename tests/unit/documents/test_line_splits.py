"""`documents.line_splits` answers WeasyPrint's line-splitting questions from a memo, never with other lines.

Every document kind and its layout variants (those of `test_weasy`), then a run of distinct invoices (other
communes, numbers and quantities, as a campaign renders them), are laid out with every line split afresh
and with the memo, twice over (the second time, the memo answers from what the first left); the pages'
content streams — every glyph with its position — must be the same bytes.
"""

from __future__ import annotations

from typing import Any

import pytest
import weasyprint
from weasyprint.css.properties import INITIAL_VALUES
from weasyprint.layout import inline, preferred
from weasyprint.text import line_break

from bench.documents import varied
from documents import api, line_splits, rendering
from documents.samples import sample_facture
from tests.unit.documents.test_weasy import CDG, DOCUMENTS, SYNDICAT, content_streams


def _layouts() -> dict[str, tuple[str, str]]:
    layouts = {name: (kind, make_html()) for name, (kind, make_html) in DOCUMENTS.items()}
    for support in (False, True):
        base = sample_facture(SYNDICAT, CDG, support=support)
        for index in range(6):
            layouts[f"facture-{support}-{index}"] = ("facture", api.facture_html(varied(base, index)))
    return layouts


def _pages(html: str, kind: str) -> list[bytes]:
    return content_streams(rendering.html_to_pdf(html, kind))


def test_it_is_installed_for_the_weasyprint_it_was_written_for() -> None:
    assert weasyprint.__version__.split(".")[0] == line_splits.WEASYPRINT_MAJOR, (
        "WeasyPrint changed: check documents/line_splits.py again"
    )
    assert line_splits.installed()
    assert inline.split_first_line is line_splits.split_first_line
    assert preferred.split_first_line is line_splits.split_first_line
    assert line_break.split_first_line is not line_splits.split_first_line  # WeasyPrint's own, kept


def test_the_pages_are_the_same_with_the_lines_remembered() -> None:
    layouts = _layouts()
    with line_splits.shipped():
        assert not line_splits.installed()
        reference = {name: _pages(html, kind) for name, (kind, html) in layouts.items()}
    assert line_splits.installed()
    line_splits.forget()
    for round_ in range(2):
        for name, (kind, html) in layouts.items():
            assert _pages(html, kind) == reference[name], f"{name}, round {round_ + 1}"
    asked, remembered = line_splits.counts["asked"], line_splits.counts["remembered"]
    assert remembered > 0.75 * asked  # the second round is all remembered, the first largely


def test_a_distinct_invoice_asks_mostly_what_the_ones_before_asked() -> None:
    base = sample_facture(SYNDICAT, CDG)
    line_splits.forget()
    rendering.html_to_pdf(api.facture_html(varied(base, 0)), "facture")
    before = dict(line_splits.counts)
    rendering.html_to_pdf(api.facture_html(varied(base, 1)), "facture")
    asked = line_splits.counts["asked"] - before["asked"]
    remembered = line_splits.counts["remembered"] - before["remembered"]
    assert asked > 100
    assert 0.5 * asked < remembered < asked  # its name, number and amounts are new: split afresh


def test_each_caller_gets_its_own_layout() -> None:
    seen: list[Any] = []
    original = line_splits._original
    assert original is not None

    def spy(*args: Any, **kwargs: Any) -> Any:
        answer = original(*args, **kwargs)
        seen.append(answer[0])
        return answer

    line_splits.forget()
    style = _a_text_style()
    try:
        line_splits._original = spy
        first = line_splits.split_first_line("Total à payer", style, None, 200.0, 0)
        again = line_splits.split_first_line("Total à payer", style, None, 200.0, 0)
        other_width = line_splits.split_first_line("Total à payer", style, None, 20.0, 0)
    finally:
        line_splits._original = original
    assert len(seen) == 2  # the same question once, another width asked afresh
    assert first[1:] == again[1:] and first[0] is not again[0] and again[0] is not seen[0]
    assert vars(first[0]) == vars(again[0])
    assert first[2] is None and other_width[2] is not None  # a narrower line: split, another answer


class _Recording(dict):  # type: ignore[type-arg]
    """A computed style that notes every property read from it."""

    def __init__(self, values: dict[str, Any], font_config: Any) -> None:
        super().__init__(values)
        self.font_config = font_config
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.read.add(name)
        return super().__getitem__(name)


@pytest.mark.parametrize(
    ("text", "width", "changes"),
    [
        ("Total TTC", 200.0, {}),
        ("Paiement dans le délai global de paiement de 30 jours à compter de la réception", 120.0, {}),
        ("anticonstitutionnellement indivisibilité", 40.0, {"hyphens": "auto", "lang": "fr"}),
        ("Pénalités de retard", 60.0, {"letter_spacing": 1.0, "word_spacing": 2.0, "overflow_wrap": "anywhere"}),
        ("a\tb", 80.0, {"white_space": "pre", "text_decoration_line": frozenset({"underline"})}),
    ],
)
def test_every_style_property_line_splitting_reads_is_in_the_key(
    text: str, width: float, changes: dict[str, Any]
) -> None:
    style = _a_text_style()
    values = _computed(style) | changes
    asked, keyed = _Recording(values, style.font_config), _Recording(values, style.font_config)
    original = line_splits._original
    assert original is not None
    original(text, asked, _LayoutContext(), width, 0, True, False)
    line_splits._key(text, keyed, width, 0, True, False)
    assert {"font_size", "white_space"} <= asked.read  # it did read the style
    assert asked.read <= keyed.read, f"read by WeasyPrint, not in the key: {sorted(asked.read - keyed.read)}"


def _computed(style: Any) -> dict[str, Any]:
    values = {}
    for name in INITIAL_VALUES:
        try:
            values[name] = style[name]
        except KeyError:  # a logical property WeasyPrint computes through its physical ones
            continue
    return values


class _LayoutContext:
    """What `split_first_line` uses of WeasyPrint's layout context: its hyphenation dictionaries."""

    def __init__(self) -> None:
        self.dictionaries: dict[Any, Any] = {}


def _a_text_style() -> Any:
    """The computed style of a text that wraps, in a laid-out invoice."""
    from weasyprint.formatting_structure.boxes import TextBox

    document = rendering.html_to_document(api.facture_html(sample_facture(SYNDICAT, CDG)), "facture")
    for box in document.pages[0]._page_box.descendants():
        if isinstance(box, TextBox) and box.text.startswith("Paiement") and box.style["white_space"] == "normal":
            return box.style
    pytest.fail("no text box in the invoice")
