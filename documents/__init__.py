"""Documents: quotes, the tripartite convention, Factur-X invoices and credit notes, as PDF bytes.

Data in (`documents.data`), bytes out; one folder per document (template, CSS), shared fonts and base
CSS in `shared/`. Imports `models`, never the reverse.
"""

from documents.api import render_avoir, render_convention, render_devis, render_facture
from documents.data import (
    Avoir,
    Collectivity,
    Convention,
    ConventionTerms,
    Devis,
    Facture,
    Issuer,
    PendingLine,
    QuoteReference,
    ShownDocument,
    Signatory,
    Signature,
)
from documents.store import DocumentStore, StoredFile

__all__ = [
    "Avoir",
    "Collectivity",
    "Convention",
    "ConventionTerms",
    "Devis",
    "DocumentStore",
    "Facture",
    "Issuer",
    "PendingLine",
    "QuoteReference",
    "ShownDocument",
    "Signatory",
    "Signature",
    "StoredFile",
    "render_avoir",
    "render_convention",
    "render_devis",
    "render_facture",
]
