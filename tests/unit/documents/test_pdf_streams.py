"""`documents.pdf_streams`: each stream of a PDF deflated once, at zlib's default level; the same PDF.

The same invoice is written with pydyf as it is and through this module: the same objects (every stream
decodes to the same bytes, every dictionary says the same but the streams' /Length), each stream deflated
once instead of twice, and a file barely larger.
"""

from __future__ import annotations

import io
import zlib
from datetime import UTC, datetime
from typing import Any

import pydyf
import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject, StreamObject

from documents import api, pdf_streams
from documents.cii import build_cii
from documents.data import Issuer
from documents.facturx_pdf import facturx_pdf
from documents.samples import sample_facture
from mairie.settings import Settings

SETTINGS = Settings()
FACTURE = sample_facture(Issuer.from_identity(SETTINGS.syndicat), Issuer.from_identity(SETTINGS.cdg62))
MOMENT = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)


def _invoice() -> bytes:
    return facturx_pdf(api.facture_html(FACTURE), "facture", build_cii(FACTURE), now=MOMENT)


def _objects(pdf: bytes) -> dict[int, Any]:
    """Every object of the file but the cross-reference stream, streams decoded, without /Length."""
    reader = PdfReader(io.BytesIO(pdf))
    found: dict[int, Any] = {}
    for number in range(1, int(reader.trailer["/Size"])):
        obj = reader.get_object(IndirectObject(number, 0, reader))
        if obj is None or (isinstance(obj, DictionaryObject) and obj.get("/Type") == "/XRef"):
            continue
        if isinstance(obj, StreamObject):
            found[number] = (obj.get_data(), _plain({k: v for k, v in obj.items() if k != "/Length"}))
        else:
            found[number] = _plain(obj)
    return found


def _plain(obj: Any) -> Any:
    """An object as plain values, a reference as ("R", its number)."""
    if isinstance(obj, IndirectObject):
        return ("R", obj.idnum)
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def test_installed_for_the_pinned_pydyf() -> None:
    assert pydyf.__version__ == pdf_streams.PYDYF_VERSION, "pydyf changed: check documents/pdf_streams.py again"
    assert pdf_streams.installed()


def test_the_same_pdf_each_stream_deflated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with pdf_streams.shipped():
        shipped = _invoice()
    deflated: list[int] = []
    real = zlib.compressobj

    def counting(level: int = -1, *args: Any) -> Any:
        deflated.append(level)
        return real(level, *args)

    monkeypatch.setattr(pdf_streams.zlib, "compressobj", counting)
    ours = _invoice()
    monkeypatch.undo()

    assert _objects(ours) == _objects(shipped)
    assert len(PdfReader(io.BytesIO(ours)).trailer["/ID"]) == 2  # a PDF/A's file identifier, still there
    # one deflate per compressed stream written (each object's stream, the object stream, the xref stream)
    compressed = ours.count(b"/FlateDecode")
    assert deflated == [zlib.Z_DEFAULT_COMPRESSION] * compressed
    assert len(ours) <= len(shipped) * 1.02  # level 6 against 9: a few hundred bytes


def test_outside_a_write_a_stream_is_made_each_time() -> None:
    stream = pydyf.Stream([b"BT", b"ET"], compress=True)
    first = stream.data
    stream.stream.append(b"q")
    assert stream.data != first  # no stale bytes once the write is over, or before it begins
    assert zlib.decompress(stream.data.split(b"stream\n", 1)[1].rsplit(b"\nendstream", 1)[0]) == b"BT\nET\nq"
