"""Embedding the CII XML into a PDF/A-3b with the `factur-x` library (XSD checked every time)."""

from __future__ import annotations

from facturx import generate_from_binary


def embed_facturx(pdf: bytes, xml: bytes, *, title: str, author: str) -> bytes:
    """A Factur-X EN 16931 PDF: `pdf` (already PDF/A-3b) with `xml` attached as factur-x.xml.

    `check_xsd=True`: the library refuses an XML that does not match the Factur-X EN 16931 schema.
    """
    metadata = {
        "author": author,
        "keywords": "Factur-X, facture électronique, EN 16931",
        "title": title,
        "subject": title,
    }
    facturx: bytes = generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        pdf_metadata=metadata,
        lang="fr-FR",
    )
    return facturx
