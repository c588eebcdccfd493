"""What a convention's PDF says about its signatures, read back from the PDF itself: its number and the text
of its evidence page (« Page de preuve »), without whitespace so that line breaks of the layout do not
matter. `mairie.services.evidence` compares it with the database."""

from __future__ import annotations

import re
from io import BytesIO

EVIDENCE_TITLE = "Page de preuve"
_NUMBER = re.compile(r"\b([A-Z0-9]{2,16}-CONV-\d{4}-\d{5})\b")


def squeeze(text: str) -> str:
    """`text` without any whitespace (nor the soft hyphens a layout may add)."""
    return re.sub(r"[\s\u00ad\u2010]+", "", text)


def convention_evidence(pdf: bytes) -> tuple[str, str] | None:
    """The convention number and the squeezed text of the evidence page onwards, or None when `pdf` is not a
    convention with an evidence page (an invoice, a draft, an unreadable file)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(BytesIO(pdf))
        metadata = reader.metadata
        title = str(metadata.get("/Title") or "") if metadata is not None else ""
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError):
        return None
    start = next((i for i, text in enumerate(pages) if EVIDENCE_TITLE in text), None)
    found = _NUMBER.search(title)
    if start is None or found is None or not title.startswith("Convention"):
        return None
    text = "\n".join(pages[start:])
    return found.group(1), squeeze(text[text.index(EVIDENCE_TITLE) :])
