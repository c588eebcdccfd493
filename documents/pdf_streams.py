"""WeasyPrint's PDF writer (pydyf) deflating each stream once, at zlib's default level, instead of twice at 9.

pydyf 0.13 makes a stream's bytes (`Stream.data`: its operators joined, then deflated at level 9) each time
they are asked for, and `PDF.write` asks twice when the PDF has a file identifier, as every PDF/A has: once
to write the object, once more to hash every object into the `/ID`. An invoice has ≈ 100 KB of streams
(page contents, two font subsets, their ToUnicode maps, the ICC profile, the object stream): deflating them
twice at level 9 took 14.3 ms of its ≈ 155 ms render; once at level 6, 3.7 ms, for a PDF 0.7 % larger
(measured in `tests/unit/documents/test_pdf_streams.py`'s comparison, figures in docs/documents.md).

`install()` (called by `documents.rendering`) replaces `pydyf.Stream.data` and wraps `pydyf.PDF.write`:

- during a `write`, in that thread, a stream's bytes are made once and given again when asked again — the
  objects no longer change once `write` has begun (it writes them, then hashes what it wrote);
- outside a `write` (nobody asks, but a caller may), the bytes are made each time, as pydyf does.

The `/ID` is still the MD5 of the objects as written. Only for the pydyf version this was written against
(`PYDYF_VERSION`, pinned in pyproject.toml): another version is left as it is — correct, slower — and the
test of this module fails to say so.
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pydyf

PYDYF_VERSION = "0.13.0"
LEVEL = zlib.Z_DEFAULT_COMPRESSION  # 6

_writing = threading.local()  # .streams: id(stream) -> (stream, bytes), while this thread is in PDF.write
_original_write: Callable[..., Any] | None = None
_original_data: property | None = None


def _stream_bytes(stream: pydyf.Stream) -> bytes:
    """What pydyf 0.13's `Stream.data` gives, deflated at `LEVEL`."""
    content = b"\n".join(pydyf._to_bytes(item) for item in stream.stream)
    extra = pydyf.Dictionary(stream.extra.copy())
    if stream.compress:
        extra["Filter"] = "/FlateDecode"
        compressor = zlib.compressobj(level=LEVEL)
        content = compressor.compress(content) + compressor.flush()
    extra["Length"] = len(content)
    return b"\n".join((extra.data, b"stream", content, b"endstream"))


def _data(stream: pydyf.Stream) -> bytes:
    made: dict[int, tuple[pydyf.Stream, bytes]] | None = getattr(_writing, "streams", None)
    if made is None:
        return _stream_bytes(stream)
    found = made.get(id(stream))
    if found is not None and found[0] is stream:
        return found[1]
    data = _stream_bytes(stream)
    made[id(stream)] = (stream, data)  # the stream kept alive: its id is not reused during the write
    return data


def _write(pdf: pydyf.PDF, *args: Any, **kwargs: Any) -> Any:
    assert _original_write is not None
    outer = getattr(_writing, "streams", None)
    _writing.streams = {}
    try:
        return _original_write(pdf, *args, **kwargs)
    finally:
        _writing.streams = outer


def installed() -> bool:
    """Whether pydyf writes through this module."""
    return _original_write is not None


def install() -> bool:
    """Install once per process, for pydyf `PYDYF_VERSION` only; returns whether it is installed."""
    global _original_write, _original_data
    if _original_write is not None:
        return True
    if pydyf.__version__ != PYDYF_VERSION:
        return False
    _original_write, _original_data = pydyf.PDF.write, pydyf.Stream.__dict__["data"]
    pydyf.Stream.data = property(_data)
    pydyf.PDF.write = _write
    return True


def uninstall() -> None:
    """pydyf as shipped again (the benchmark's floor, the test comparing both)."""
    global _original_write, _original_data
    if _original_write is not None and _original_data is not None:
        pydyf.Stream.data = _original_data
        pydyf.PDF.write = _original_write
    _original_write = _original_data = None


@contextlib.contextmanager
def shipped() -> Iterator[None]:
    """pydyf as shipped for the duration (a benchmark's bare WeasyPrint; the test comparing both), then
    installed again if it was. Not for a process that renders in other threads meanwhile."""
    was = installed()
    uninstall()
    try:
        yield
    finally:
        if was:
            install()
