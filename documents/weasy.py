"""Two shortcuts through WeasyPrint for our own documents, each shown to change nothing on the page.

Measured on the campaign's invoices (docs/documents.md), WeasyPrint spent about a tenth of an invoice's
layout (× 0.89 without it) on two things that do not depend on what the invoice says:

1. **Parsing.** WeasyPrint parses HTML with tinyhtml5, a pure-Python HTML5 parser (≈ 10 ms for a 7 KB
   invoice). Our templates write well-formed XHTML (void elements closed, no named entities), which
   expat, in C, parses in a fraction of that; the tree is the one WeasyPrint would build from it.
   Markup that is not well-formed XML — an operator's own annex fragment, say — goes through
   WeasyPrint's parser as before.
2. **The user-agent stylesheet.** WeasyPrint matches its whole HTML5 user-agent stylesheet (≈ 330
   selectors) against every element, and its pseudo-element rules (`::marker`, `::footnote-call`,
   `::note-call`, …) give every element six more styles to compute. A document here gets only the
   user-agent rules that can match one of its elements: a selector is dropped when it names an element
   or an attribute that the document does not have (it cannot match anything in it); the pseudo-element
   rules of footnotes, notes and list markers are dropped only when neither the document nor its author
   stylesheets use footnotes (`float: footnote`), notes (`position: note(…)`) or list items.

Both rely on WeasyPrint's internals — the attributes an `HTML` object carries, its `_find_base_url` and
its `_ua_stylesheets` hook — which is why WeasyPrint is pinned to one major version (pyproject.toml).
The proof that nothing changes is `tests/unit/documents/test_weasy.py`: every document kind, rendered
both ways, gives the same page content streams byte for byte.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

import cssselect2
import tinycss2
import tinycss2.ast
from cssselect2 import parser as selectors
from weasyprint import CSS, HTML, _find_base_url
from weasyprint.css.counters import CounterStyle
from weasyprint.html import UA
from weasyprint.urls import URLFetcher

# What in an author stylesheet asks for the pseudo-elements of footnotes, notes or list markers.
PSEUDO_FEATURES = ("footnote", "note(", "list-item")
# The user-agent pseudo-elements nothing of ours uses; ::marker only matters to list items.
OPTIONAL_PSEUDO_ELEMENTS = frozenset({"footnote-call", "footnote-marker", "note-call", "note-marker", "note-callback"})
LIST_ITEM_ELEMENTS = frozenset({"li", "summary"})  # display: list-item in the user-agent stylesheet


class Document(HTML):  # type: ignore[misc]  # WeasyPrint ships no type hints
    """An `HTML` document whose user-agent stylesheet is reduced to what can apply to it."""

    _user_agent: CSS | None = None

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        if self._user_agent is None or forms:
            return super()._ua_stylesheets(forms)  # type: ignore[no-any-return]
        return [self._user_agent]


def parse(html: str, base_url: str, *, author_css: str = "") -> Document:
    """The WeasyPrint document of `html`, parsed by expat when it is well-formed XHTML (by WeasyPrint's
    HTML5 parser otherwise), with the user-agent rules that can apply to it. `author_css`: the text of the
    stylesheets it will be rendered with, for the pseudo-element check."""
    root = xhtml_root(html)
    if root is None:
        document = Document(string=html, base_url=base_url)
    else:
        document = Document.__new__(Document)
        document.base_url = _find_base_url(root, base_url)  # WeasyPrint's own: the first <base href>
        document.url_fetcher = URLFetcher()
        document.media_type = "print"
        document.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
        document.etree_element = document.wrapper_element.etree_element
    document._user_agent = user_agent_for(document.etree_element, author_css)
    return document


def xhtml_root(html: str) -> ET.Element | None:
    """The root `html` element of well-formed XHTML without namespaces; None for anything else."""
    try:
        root = ET.fromstring(html)
    except ET.ParseError:
        return None
    return root if root.tag == "html" else None


def user_agent_for(root: ET.Element, author_css: str = "") -> CSS:
    """The user-agent stylesheet reduced to the rules that can apply to the tree under `root`."""
    tags: set[str] = set()
    attributes: set[str] = set()
    styled = False
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # a comment or a processing instruction
        tag = element.tag.lower()
        tags.add(tag)
        attributes.update(name.lower() for name in element.attrib)
        styled = styled or tag in ("style", "link") or "style" in element.attrib
    pseudo_free = not styled and not uses_pseudo_features(author_css)
    return reduced_user_agent(frozenset(tags), frozenset(attributes), pseudo_free)


def uses_pseudo_features(css: str) -> bool:
    """Whether stylesheet text may ask for footnotes, notes or list items (a conservative text check)."""
    lowered = css.lower()
    return any(feature in lowered for feature in PSEUDO_FEATURES)


@lru_cache(maxsize=64)
def reduced_user_agent(tags: frozenset[str], attributes: frozenset[str], pseudo_free: bool) -> CSS:
    """WeasyPrint's user-agent stylesheet without the selectors that cannot match an element of a
    document made of `tags` and `attributes` (nor, when `pseudo_free`, the unused pseudo-elements)."""
    kept: list[str] = []
    for rule in _user_agent_rules():
        if isinstance(rule, tinycss2.ast.AtRule):
            if rule.lower_at_keyword != "counter-style":  # counter styles come from _ua_counter_style
                kept.append(rule.serialize())
            continue
        if not isinstance(rule, tinycss2.ast.QualifiedRule):
            continue
        parts = [
            tinycss2.serialize(part).strip()
            for part in _selector_parts(rule.prelude)
            if _may_apply(part, tags, attributes, pseudo_free)
        ]
        if parts:
            kept.append(f"{', '.join(parts)} {{{tinycss2.serialize(rule.content)}}}")
    return CSS(string="\n".join(kept), counter_style=CounterStyle())


@cache
def _user_agent_rules() -> tuple[Any, ...]:
    return tuple(tinycss2.parse_stylesheet(UA, skip_whitespace=True, skip_comments=True))


def _selector_parts(prelude: Iterable[Any]) -> list[list[Any]]:
    """A rule's selector list cut at its top-level commas (those inside `:is(…)` are in a function)."""
    parts: list[list[Any]] = [[]]
    for token in prelude:
        if token.type == "literal" and token.value == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _may_apply(part: list[Any], tags: frozenset[str], attributes: frozenset[str], pseudo_free: bool) -> bool:
    for selector in selectors.parse(part):
        pseudo = selector.pseudo_element
        unused = pseudo in OPTIONAL_PSEUDO_ELEMENTS or (pseudo == "marker" and not tags & LIST_ITEM_ELEMENTS)
        if pseudo_free and unused:
            continue
        if _may_match(selector.parsed_tree, tags, attributes):
            return True
    return False


def _may_match(node: Any, tags: frozenset[str], attributes: frozenset[str]) -> bool:
    """False only when `node` certainly matches no element of the document (a necessary condition for a
    match fails); True for anything it cannot tell."""
    if isinstance(node, selectors.CombinedSelector):
        return _may_match(node.left, tags, attributes) and _may_match(node.right, tags, attributes)
    if isinstance(node, selectors.CompoundSelector):
        return all(_may_match(simple, tags, attributes) for simple in node.simple_selectors)
    if isinstance(node, selectors.LocalNameSelector):
        return bool(node.lower_local_name in tags)
    if isinstance(node, selectors.IDSelector):
        return "id" in attributes
    if isinstance(node, selectors.ClassSelector):
        return "class" in attributes
    if isinstance(node, selectors.AttributeSelector):
        return bool(node.lower_name in attributes)
    if isinstance(node, selectors.PseudoClassSelector) and node.name in ("link", "any-link", "local-link"):
        return "href" in attributes
    if isinstance(node, selectors.MatchesAnySelector | selectors.SpecificityAdjustmentSelector):
        return any(_may_match(inner.parsed_tree, tags, attributes) for inner in node.selector_list)
    return True  # negations, :has(), structural and functional pseudo-classes: cannot tell
