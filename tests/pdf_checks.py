"""What the tests read in a PDF beyond its text: the XMP properties, the Factur-X attachment, and a byte
of the signed range that can be changed without making the file unreadable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from io import BytesIO

from pypdf import PdfReader

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PREFIXES = {
    "http://www.aiim.org/pdfa/ns/id/": "pdfaid",
    "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#": "fx",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://www.aiim.org/pdfa/ns/extension/": "pdfaExtension",
}


def xmp_packet(pdf: bytes) -> bytes:
    data: bytes = PdfReader(BytesIO(pdf)).trailer["/Root"]["/Metadata"].get_object().get_data()
    return data


def xmp_properties(pdf: bytes) -> dict[str, list[str]]:
    """The XMP properties of `pdf` ("pdfaid:part", "fx:ConformanceLevel", "dc:title", …) with their values,
    whether written as attributes of an rdf:Description or as its child elements (both are XMP)."""
    packet = xmp_packet(pdf).decode("utf-8")
    root = ET.fromstring(packet[packet.index("<x:xmpmeta") : packet.rindex("</x:xmpmeta>") + len("</x:xmpmeta>")])
    found: dict[str, list[str]] = {}

    def name(tag: str) -> str | None:
        namespace, _, local = tag[1:].partition("}")
        prefix = PREFIXES.get(namespace)
        return f"{prefix}:{local}" if prefix else None

    for description in root.iter(f"{{{RDF}}}Description"):
        for attribute, value in description.attrib.items():
            if (key := name(attribute)) is not None:
                found.setdefault(key, []).append(value)
        for child in description:
            if (key := name(child.tag)) is None:
                continue
            items = [li.text or "" for li in child.iter(f"{{{RDF}}}li")]
            found.setdefault(key, []).extend(items if items else [(child.text or "").strip()])
    return found


def assert_pdfa3b_facturx(pdf: bytes) -> None:
    """PDF/A-3b identification, the Factur-X EN 16931 properties and their extension schema, and an Info
    dictionary that says what the XMP says."""
    props = xmp_properties(pdf)
    assert props["pdfaid:part"] == ["3"] and props["pdfaid:conformance"] == ["B"]
    assert props["fx:ConformanceLevel"] == ["EN 16931"] and props["fx:DocumentType"] == ["INVOICE"]
    assert props["fx:DocumentFileName"] == ["factur-x.xml"] and props["fx:Version"] == ["1.0"]
    assert "pdfaExtension:schemas" in props
    reader = PdfReader(BytesIO(pdf))
    info = dict(reader.metadata or {})
    assert [info["/Title"]] == props["dc:title"] and [info["/Producer"]] == props["pdf:Producer"]
    assert [info["/Author"]] == props["dc:creator"]
    (filespec,) = [entry.get_object() for entry in reader.trailer["/Root"]["/AF"]]
    assert filespec["/F"] == "factur-x.xml" and filespec["/AFRelationship"] == "/Data"
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"


def harmless_byte(pdf: bytes) -> int:
    """The offset of a byte of the PDF's second line, the binary-marker comment (`%` then 4 bytes): changing
    it leaves the file readable as before, but not the same bytes."""
    return pdf.index(b"\n%") + 2
