"""The public API: document data in, PDF bytes out.

Invoices and credit notes come out as Factur-X (PDF/A-3b with the EN 16931 CII XML embedded), checked
against the Factur-X XSD and the EN 16931 rules of `documents.facturx_rules` every time one is made.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from jinja2 import Template

from documents.cii import build_cii
from documents.data import TO_FILL, Avoir, Convention, Devis, Facture, Issuer, Party
from documents.facturx_pdf import FACTURX_VARIANT as FACTURX_VARIANT
from documents.facturx_pdf import facturx_pdf
from documents.facturx_rules import ensure_valid
from documents.formatting import in_sentence
from documents.rendering import environment, html_to_pdf, render_html
from models.catalog import KIND_LABELS

ARCHIVE_VARIANT = "pdf/a-2b"  # quotes and conventions: archival PDF/A, no attachment needed

# The GDPR article 28 annex of the convention, unless the syndicat's settings give their own fragment.
GDPR_ANNEX = "convention/annexe_rgpd.html"

# Notes that `quote_preview` writes and that the support quote prints in its own population panel.
_PANEL_NOTE_PREFIXES = ("Population retenue", "Strate :")


def devis_html(devis: Devis) -> str:
    """The HTML of a quote (for previews and the benchmark)."""
    notes = [
        n for n in devis.priced.notes if not (devis.population is not None and n.startswith(_PANEL_NOTE_PREFIXES))
    ]
    return render_html("devis", devis=devis, notes=notes)


def render_devis(devis: Devis) -> bytes:
    """A quote (services of the syndicat or support of the CDG) as PDF/A-2b bytes."""
    return html_to_pdf(devis_html(devis), "devis", pdf_variant=ARCHIVE_VARIANT)


def facture_html(facture: Facture) -> str:
    """The HTML of an invoice."""
    return render_html("facture", facture=facture)


def render_facture(facture: Facture) -> bytes:
    """An invoice as Factur-X EN 16931 bytes (PDF/A-3b + CII XML, XSD and EN 16931 rules checked)."""
    xml = build_cii(facture)
    ensure_valid(xml)
    return facturx_pdf(facture_html(facture), "facture", xml)


def avoir_html(avoir: Avoir) -> str:
    """The HTML of a credit note."""
    return render_html("avoir", avoir=avoir)


def render_avoir(avoir: Avoir) -> bytes:
    """A credit note (type 381, referencing the invoice, BT-25) as Factur-X EN 16931 bytes."""
    xml = build_cii(avoir)
    ensure_valid(xml)
    return facturx_pdf(avoir_html(avoir), "avoir", xml)


def convention_html(convention: Convention) -> str:
    """The HTML of the tripartite convention (a draft is marked "PROJET")."""
    return render_html("convention", convention=convention, **_convention_context(convention))


def render_convention(convention: Convention) -> bytes:
    """The tripartite convention, with its annex grid and evidence page, as PDF/A-2b bytes."""
    return html_to_pdf(convention_html(convention), "convention", pdf_variant=ARCHIVE_VARIANT)


def _convention_context(convention: Convention) -> dict[str, object]:
    grid = convention.grid
    bands = grid.bands.get(convention.cdg.code, ())
    families: dict[str, list[object]] = {}
    for item in sorted(grid.items, key=lambda i: i.position):
        families.setdefault(item.family.split(" / ")[0], []).append(item)
    return {
        "bands": bands,
        "families": families,
        "kind_labels": KIND_LABELS,
        "representative": _representative(convention),
        "expected_signatory": _expected_signatory(convention),
        "terms": convention.terms,
        "gdpr_annex": gdpr_annex(convention),
        "visas": _visas(convention),
    }


def gdpr_annex(convention: Convention) -> str | Template:
    """The GDPR annex to include: the shipped fragment, or the one the syndicat's settings point to."""
    source = convention.terms.gdpr_annex_source
    return _compiled(source) if source else GDPR_ANNEX


@lru_cache(maxsize=8)
def _compiled(source: str) -> Template:
    """An annex fragment given as text, compiled once (same environment: autoescaping, strict undefined)."""
    return environment().from_string(source)


def _visas(convention: Convention) -> list[str]:
    """The legal references the convention is concluded under ("Vu …"), each deliberation once; a
    deliberation not configured yet is a marked placeholder (production refuses to start without it)."""
    syndicat, cdg, day = convention.syndicat, convention.cdg, convention.convention_date
    texts = [
        "le code général des collectivités territoriales, notamment ses articles L. 1425-1 et L. 5111-1",
        "le code général de la fonction publique",
        "le code de la commande publique, notamment son article L. 2511-6 (coopération entre pouvoirs adjudicateurs)",
        "le règlement (UE) 2016/679 du 27 avril 2016 (règlement général sur la protection des données), "
        "notamment son article 28",
    ]
    for issuer, who in ((syndicat, "du Syndicat"), (cdg, "du Centre de gestion")):
        texts += issuer.convention_deliberations or (f"la délibération {who} autorisant la signature ({TO_FILL})",)
        texts.append(issuer.tariff_deliberation_on(day) or f"la délibération {who} fixant ses tarifs ({TO_FILL})")
    unique = list(dict.fromkeys(texts))  # the CDG's deliberation of 10 July 2025 does both
    return [in_sentence(text) for text in unique]


def _representative(convention: Convention) -> Callable[[Issuer, Party], str]:
    """`representative(issuer, party)`: who signed for an issuer, else its configured signatory."""

    def representative(issuer: Issuer, party: Party) -> str:
        signed = convention.signature_of(party)
        if signed is not None:
            return f"{signed.name}, {signed.capacity}"
        if issuer.signatory is not None:
            return _who(issuer.signatory.name, issuer.signatory.capacity)
        return "son représentant légal"

    return representative


def _expected_signatory(convention: Convention) -> Callable[[Party], str]:
    def expected(party: Party) -> str:
        if party == "collectivite":
            who = convention.collectivity.signatory
            return f"{who.name}, {who.capacity}"
        issuer = convention.cdg if party == "cdg" else convention.syndicat
        return issuer.signatory.name if issuer.signatory else "Son représentant légal"

    return expected


def _who(name: str, capacity: str) -> str:
    """`M. X, Président`, or `le Président du Syndicat mixte` when the name is already a title."""
    if capacity and capacity.lower() in name.lower():
        return name[0].lower() + name[1:] if name.split(" ", 1)[0] in ("Le", "La") else name
    return f"{name}, {capacity}" if capacity else name
