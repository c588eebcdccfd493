"""`documents.weasy` changes how a document reaches WeasyPrint, never what is on its pages.

Each document kind (and the variants that change its layout) is laid out twice: the reference way —
WeasyPrint's own HTML5 parser and its whole user-agent stylesheet — and ours; the pages' content streams
(every glyph, rule and fill with its position) must be the same bytes.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from decimal import Decimal

import pytest
from pypdf import PdfReader
from weasyprint import HTML
from weasyprint.html import UA_STYLESHEET

from documents import api, rendering, weasy
from documents.data import Issuer
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture, with_rounding
from mairie.settings import Settings

SETTINGS = Settings()
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG = Issuer.from_identity(SETTINGS.cdg62)
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#14304f"/></svg>'
)


def _long_facture():  # several pages: the header row repeated, "Page n / N"
    facture = sample_facture(SYNDICAT, CDG)
    lines = tuple(dataclasses.replace(line, position=i) for i, line in enumerate(facture.priced.lines * 7, start=1))
    return dataclasses.replace(facture, priced=dataclasses.replace(facture.priced, lines=lines))


def _tricky_facture():
    facture = sample_facture(SYNDICAT, CDG)
    name = 'Commune d\'Écœuilly-sur-Lys <Nord> & "Fils"'
    return dataclasses.replace(facture, collectivity=dataclasses.replace(facture.collectivity, name=name))


DOCUMENTS: dict[str, tuple[str, Callable[[], str]]] = {
    "devis": ("devis", lambda: api.devis_html(sample_devis(SYNDICAT, CDG))),
    "devis-support": ("devis", lambda: api.devis_html(sample_devis(SYNDICAT, CDG, support=True))),
    "convention-signed": ("convention", lambda: api.convention_html(sample_convention(SYNDICAT, CDG))),
    "convention-draft": ("convention", lambda: api.convention_html(sample_convention(SYNDICAT, CDG, signed=False))),
    "facture": ("facture", lambda: api.facture_html(sample_facture(SYNDICAT, CDG))),
    "facture-support": ("facture", lambda: api.facture_html(sample_facture(SYNDICAT, CDG, support=True))),
    "facture-rounding": (
        "facture",
        lambda: api.facture_html(with_rounding(sample_facture(SYNDICAT, CDG), Decimal("-0.01"))),
    ),
    "facture-long": ("facture", lambda: api.facture_html(_long_facture())),
    "facture-tricky-names": ("facture", lambda: api.facture_html(_tricky_facture())),
    "facture-logo": (
        "facture",
        lambda: api.facture_html(sample_facture(dataclasses.replace(SYNDICAT, logo_svg=LOGO), CDG)),
    ),
    "avoir": ("avoir", lambda: api.avoir_html(sample_avoir(SYNDICAT, CDG))),
}


def _reference_pdf(html: str, kind: str) -> bytes:
    pdf = HTML(string=html, base_url=str(rendering.ROOT / kind) + "/").write_pdf(
        stylesheets=list(rendering.stylesheets(kind)), font_config=rendering.font_config()
    )
    assert pdf is not None
    return pdf


def _our_pdf(html: str, kind: str) -> bytes:
    document = weasy.parse(html, str(rendering.ROOT / kind) + "/", author_css=rendering.author_css(kind))
    pdf = document.write_pdf(stylesheets=list(rendering.stylesheets(kind)), font_config=rendering.font_config())
    assert pdf is not None
    return pdf


def content_streams(pdf: bytes) -> list[bytes]:
    return [page.get_contents().get_data() for page in PdfReader(io.BytesIO(pdf)).pages]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_pages_are_the_same_as_weasyprints_own_way(name: str) -> None:
    kind, make_html = DOCUMENTS[name]
    html = make_html()
    assert weasy.xhtml_root(html) is not None, "the template no longer writes well-formed XHTML"
    reference, ours = content_streams(_reference_pdf(html, kind)), content_streams(_our_pdf(html, kind))
    assert len(ours) == len(reference)
    assert ours == reference


def test_the_user_agent_rules_kept_are_those_of_the_elements_present() -> None:
    html = api.facture_html(sample_facture(SYNDICAT, CDG))
    root = weasy.xhtml_root(html)
    assert root is not None
    css = weasy.user_agent_for(root, rendering.author_css("facture"))
    kept = set(css.matcher.lower_local_name_selectors)
    assert {"table", "td", "p", "div"} <= kept
    assert not kept & {"dd", "ol", "ul", "li", "input", "h4"}  # none in an invoice
    assert kept < set(UA_STYLESHEET.matcher.lower_local_name_selectors)
    assert len(css.matcher.other_selectors) < len(UA_STYLESHEET.matcher.other_selectors)


def test_footnotes_notes_and_list_items_keep_their_pseudo_elements() -> None:
    plain = "<html><body><p>Texte</p></body></html>"
    pseudo = {"marker", "footnote-call", "footnote-marker", "note-call", "note-marker", "note-callback"}

    def pseudo_elements(html: str, author_css: str = "") -> set[str]:
        root = weasy.xhtml_root(html)
        assert root is not None
        css = weasy.user_agent_for(root, author_css)
        return {entry[3] for entry in css.matcher.other_selectors if entry[3]}

    assert pseudo_elements(plain) == set()
    assert pseudo_elements(plain, ".n { float: footnote }") >= pseudo
    assert pseudo_elements(plain, ".n { display: list-item }") >= pseudo
    assert pseudo_elements('<html><body><p style="color: red">x</p></body></html>') >= pseudo
    assert "marker" in pseudo_elements("<html><body><ul><li>un</li></ul></body></html>")


def test_markup_that_is_not_xhtml_goes_through_weasyprints_parser_unchanged() -> None:
    html = (
        "<!DOCTYPE html><html lang=fr><body><p>Annexe&nbsp;: données<br>personnelles</p>"
        "<ul><li>un<li>deux</ul></body></html>"
    )
    assert weasy.xhtml_root(html) is None
    assert content_streams(_our_pdf(html, "convention")) == content_streams(_reference_pdf(html, "convention"))
