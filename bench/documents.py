"""Benchmark of the documents (run by hand: `.venv/bin/python bench/documents.py`); prints, asserts nothing.

1. ms per document of each kind, full pipeline (Jinja2 + WeasyPrint + Factur-X + SHA-256 + store),
   against a bare WeasyPrint render of the same HTML with the same prepared stylesheets and fonts;
   then our steps around WeasyPrint timed one by one (steadier on a shared machine than a difference).
2. The Factur-X invoice against a naive render of the same invoice: CSS inlined and parsed per render,
   a fresh font configuration, the system's DejaVu fonts, WeasyPrint's own parser and user-agent
   stylesheet, then the `factur-x` library's embedding (pypdf re-reads and rewrites the PDF).
3. 200 invoices on 1 and on 2 processes (workers warmed up before the clock starts).
4. The PAdES seal of an invoice (`documents.seal.seal`, development test certificate) against its render.
5. `documents.line_splits` on distinct invoices (another commune, number and quantities each time): the
   layout with the lines remembered from the invoices before against the same layout with every line split
   afresh, alternated, and the share of WeasyPrint's questions the memo answered. Parts 1–4 render one
   document again and again, so they run without the memo (it would answer every question of a repeated
   document: a figure no campaign sees).

Targets (issue #4): overhead ≤ 20 % over bare; invoice ≤ 0.35 × naive; 2 processes ≥ 1.7 × faster.
Target (issue #20): the seal costs under 15 % of the invoice's render.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing as mp
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facturx import xml_check_xsd
from weasyprint import HTML

from documents import api, line_splits, pdf_streams, rendering
from documents.cii import build_cii
from documents.data import Facture, Issuer
from documents.facturx_pdf import facturx_pdf
from documents.facturx_rules import ensure_valid
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture
from documents.store import DocumentStore
from mairie.settings import Settings


def issuers() -> tuple[Issuer, Issuer]:
    settings = Settings()
    return Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median ms of `repeat` calls, after one warm-up call."""
    return timed_pair(fn, fn, repeat)[0]


def timed_pair(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median ms of `a` and of `b`, run alternately so that machine noise hits both alike."""
    a(), b()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(repeat):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times_a), statistics.median(times_b)


@contextlib.contextmanager
def as_shipped() -> Iterator[None]:
    """WeasyPrint and pydyf as shipped: every line split afresh, each stream deflated twice at level 9."""
    with pdf_streams.shipped(), line_splits.shipped():
        yield


def bare(html: str, kind: str, variant: str) -> Callable[[], bytes]:
    """WeasyPrint alone on the same HTML, with the same prepared stylesheets and font configuration."""
    base_url = str(rendering.ROOT / kind) + "/"
    sheets = list(rendering.stylesheets(kind))

    def run() -> bytes:
        with as_shipped():
            return HTML(string=html, base_url=base_url).write_pdf(
                stylesheets=sheets, font_config=rendering.font_config(), pdf_variant=variant
            )

    return run


def library_embed(pdf: bytes, xml: bytes, *, title: str, author: str) -> bytes:
    """The Factur-X step of a first implementation: the `factur-x` library re-reads the PDF and writes it
    again with the XML attached (what documents.facturx_pdf did before WeasyPrint attached it itself)."""
    from facturx import generate_from_binary

    metadata = {"author": author, "title": title, "subject": title, "keywords": "Factur-X"}
    made: bytes = generate_from_binary(
        pdf, xml, flavor="factur-x", level="en16931", check_xsd=True, pdf_metadata=metadata, lang="fr-FR"
    )
    return made


def naive_invoice(facture: Facture) -> Callable[[], bytes]:
    """What a first implementation does: CSS in a <style> parsed per render, DejaVu Sans from the system,
    a new font configuration each time; then the `factur-x` library's embedding."""
    css = (rendering.SHARED / "base.css").read_text() + (rendering.ROOT / "facture" / "style.css").read_text()
    css = re.sub(r"@font-face\s*{[^}]*}", "", css).replace('"Inter"', '"DejaVu Sans"')
    html = api.facture_html(facture).replace("</head>", f"<style>{css}</style></head>")
    xml = build_cii(facture)

    def run() -> bytes:
        with as_shipped():
            pdf = HTML(string=html, base_url=str(rendering.ROOT / "facture") + "/").write_pdf(pdf_variant="pdf/a-3b")
        return library_embed(pdf, xml, title=facture.number, author=facture.issuer.name)

    return run


def per_kind(repeat: int) -> None:
    syndicat, cdg = issuers()
    store = DocumentStore(tempfile.mkdtemp(prefix="bench-docs-"))
    cases: list[tuple[str, str, Any, Callable[[Any], bytes], Callable[[Any], str], str]] = [
        ("devis", "devis", sample_devis(syndicat, cdg), api.render_devis, api.devis_html, api.ARCHIVE_VARIANT),
        (
            "devis CDG",
            "devis",
            sample_devis(syndicat, cdg, support=True),
            api.render_devis,
            api.devis_html,
            api.ARCHIVE_VARIANT,
        ),
        (
            "convention",
            "convention",
            sample_convention(syndicat, cdg),
            api.render_convention,
            api.convention_html,
            api.ARCHIVE_VARIANT,
        ),
        (
            "facture",
            "facture",
            sample_facture(syndicat, cdg),
            api.render_facture,
            api.facture_html,
            api.FACTURX_VARIANT,
        ),
        (
            "facture CDG",
            "facture",
            sample_facture(syndicat, cdg, support=True),
            api.render_facture,
            api.facture_html,
            api.FACTURX_VARIANT,
        ),
        ("avoir", "avoir", sample_avoir(syndicat, cdg), api.render_avoir, api.avoir_html, api.FACTURX_VARIANT),
    ]
    print(f"{'document':<13}{'pages':>6}{'ours ms':>10}{'bare ms':>10}{'overhead':>10}")
    for name, kind, doc, render, to_html, variant in cases:
        ours_ms, bare_ms = timed_pair(_stored(store, render, doc), bare(to_html(doc), kind, variant), repeat)
        pages = _pages(render(doc))
        print(f"{name:<13}{pages:>6}{ours_ms:>10.1f}{bare_ms:>10.1f}{(ours_ms / bare_ms - 1) * 100:>9.1f}%")
    for facture in (sample_facture(syndicat, cdg), sample_facture(syndicat, cdg, support=True)):
        ours_ms, naive_ms = timed_pair(_stored(store, api.render_facture, facture), naive_invoice(facture), repeat)
        print(
            f"\n{facture.number} ({_pages(api.render_facture(facture))} page, Factur-X): ours {ours_ms:.1f} ms, "
            f"naive DejaVu {naive_ms:.1f} ms, ratio {ours_ms / naive_ms:.2f} (target ≤ 0.35)"
        )
        slow_ms = _without_harfbuzz_subset(naive_invoice(facture), repeat)
        print(
            f"  naive DejaVu without libharfbuzz-subset0 (fontTools subsetting): {slow_ms:.1f} ms, "
            f"ratio {ours_ms / slow_ms:.2f}"
        )


def _stored(store: DocumentStore, render: Callable[[Any], bytes], doc: Any) -> Callable[[], object]:
    """Our full pipeline: render (Jinja2, WeasyPrint, Factur-X for invoices), hash and store."""
    return lambda: store.put(render(doc))


def overhead_components(repeat: int) -> None:
    """Our steps around WeasyPrint, timed one by one (small and steady, unlike a difference of two
    large noisy medians), against the bare WeasyPrint render of the same invoice."""
    syndicat, cdg = issuers()
    facture = sample_facture(syndicat, cdg)
    html = api.facture_html(facture)
    xml = build_cii(facture)
    final = facturx_pdf(html, "facture", xml)
    store = DocumentStore(tempfile.mkdtemp(prefix="bench-docs-"))
    counter = iter(range(10**9))
    steps = {
        "Jinja2 HTML": lambda: api.facture_html(facture),
        "CII XML + EN 16931 rules": lambda: ensure_valid(build_cii(facture)),
        "Factur-X XSD check": lambda: xml_check_xsd(xml, flavor="factur-x", level="en16931"),
        "SHA-256 + store (new file)": lambda: store.put(final + str(next(counter)).encode()),
    }
    bare_ms = timed(bare(html, "facture", api.FACTURX_VARIANT), repeat)
    total = 0.0
    print(f"\nfacture, our steps around WeasyPrint (bare render {bare_ms:.1f} ms):")
    for name, fn in steps.items():
        ms = timed(fn, repeat * 4)
        total += ms
        print(f"  {name:<28}{ms:>7.2f} ms")
    print(f"  {'total':<28}{total:>7.2f} ms = {100 * total / bare_ms:.1f} % of the bare render (target ≤ 20 %)")
    ours_ms, plain_ms = timed_pair(
        lambda: facturx_pdf(html, "facture", xml),
        lambda: rendering.html_to_pdf(html, "facture", pdf_variant=api.FACTURX_VARIANT),
        repeat,
    )
    print(
        f"  Factur-X PDF (XSD, XML attached, XMP) {ours_ms:.1f} ms against the same PDF without it {plain_ms:.1f} ms"
        f" (documents.weasy's parsing and user-agent rules in both; bare WeasyPrint {bare_ms:.1f} ms)"
    )
    document = rendering.html_to_document(html, "facture", pdf_variant=api.FACTURX_VARIANT)

    def write() -> object:
        return document.write_pdf(pdf_variant=api.FACTURX_VARIANT)

    def write_as_shipped() -> object:
        with pdf_streams.shipped():
            return write()

    once_ms, twice_ms = timed_pair(write, write_as_shipped, repeat)
    print(
        f"  writing the laid-out invoice: {once_ms:.1f} ms with documents.pdf_streams (each stream deflated once, "
        f"level 6) against {twice_ms:.1f} ms with pydyf as shipped (twice, level 9): {twice_ms - once_ms:.1f} ms less"
    )


def _without_harfbuzz_subset(fn: Callable[[], object], repeat: int) -> float:
    """Time `fn` as WeasyPrint runs on a machine without libharfbuzz-subset0 (it subsets with fontTools)."""
    import weasyprint.pdf.fonts as pdf_fonts

    saved = pdf_fonts.harfbuzz_subset
    pdf_fonts.harfbuzz_subset = None
    try:
        return timed(fn, repeat)
    finally:
        pdf_fonts.harfbuzz_subset = saved


def _pages(pdf: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def seal_cost(repeat: int) -> None:
    """ms of the PAdES B-B seal of an invoice against the invoice's full render (issue #20: < 15 %)."""
    from documents.seal import load_sealer, seal
    from documents.seal_dev import ensure_dev_sealer

    syndicat, cdg = issuers()
    facture = sample_facture(syndicat, cdg)
    pdf = api.render_facture(facture)
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as folder:
        dev = ensure_dev_sealer(Path(folder), syndicat.code, syndicat.name)
        sealer = load_sealer(dev.pkcs12, dev.password)
        render_ms, seal_ms = timed_pair(lambda: api.render_facture(facture), lambda: seal(pdf, sealer), repeat)
    print(
        f"\nseal of an invoice: {seal_ms:.1f} ms against a render of {render_ms:.1f} ms "
        f"({100 * seal_ms / render_ms:.1f} %, target < 15 %)"
    )


def varied(facture: Facture, index: int) -> Facture:
    """The invoice of another commune: its number, name, address and quantities changed — for the layout
    only (the amounts are not recomputed: no Factur-X step for it)."""
    collectivity = dataclasses.replace(
        facture.collectivity,
        name=f"Commune de Saint-Exemple-{index}-sur-la-Lys",
        address=f"{index} rue de la Mairie",
        siren=f"{200000000 + index * 7919:09d}",
    )
    lines = tuple(dataclasses.replace(line, quantity=line.quantity + index % 4) for line in facture.priced.lines)
    return dataclasses.replace(
        facture,
        number=f"LFN-FAC-2027-{index:05d}",
        collectivity=collectivity,
        priced=dataclasses.replace(facture.priced, lines=lines),
    )


def line_split_memo(count: int) -> None:
    """CPU ms per layout of distinct invoices with `documents.line_splits` and without, alternated."""
    syndicat, cdg = issuers()
    for facture in (sample_facture(syndicat, cdg), sample_facture(syndicat, cdg, support=True)):
        htmls = [api.facture_html(varied(facture, index)) for index in range(count + 1)]
        line_splits.forget()
        rendering.html_to_pdf(htmls[0], "facture", pdf_variant=api.FACTURX_VARIANT)  # the first asks everything
        first = dict(line_splits.counts)
        with_ms: list[float] = []
        without_ms: list[float] = []
        for html in htmls[1:]:
            for times in (with_ms, without_ms):
                with contextlib.ExitStack() as stack:
                    if times is without_ms:
                        stack.enter_context(line_splits.shipped())
                    start = time.process_time()
                    rendering.html_to_pdf(html, "facture", pdf_variant=api.FACTURX_VARIANT)
                    times.append((time.process_time() - start) * 1000)
        asked = line_splits.counts["asked"] - first["asked"]
        remembered = line_splits.counts["remembered"] - first["remembered"]
        ours, shipped = statistics.median(with_ms), statistics.median(without_ms)
        print(
            f"\n{count} distinct invoices like {facture.number} after a first one, CPU per layout: {ours:.1f} ms with "
            f"documents.line_splits, {shipped:.1f} ms splitting every line afresh: × {ours / shipped:.3f}; "
            f"{asked / count:.0f} questions per invoice, {100 * remembered / asked:.0f} % answered from the memo"
        )


# --- throughput ---------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(root: str) -> None:
    syndicat, cdg = issuers()
    _WORKER["facture"] = sample_facture(syndicat, cdg)
    _WORKER["store"] = DocumentStore(root)
    rendering.warm_up()
    line_splits.uninstall()  # the same invoice again and again: see line_split_memo
    api.render_facture(_WORKER["facture"])


def _ready(_: int) -> None:
    return None


def _one_invoice(index: int) -> str:
    facture = dataclasses.replace(_WORKER["facture"], number=f"LFN-FAC-2026-{index:05d}")
    store: DocumentStore = _WORKER["store"]
    return store.put(api.render_facture(facture)).sha256


def throughput(count: int, processes: int) -> float:
    """Seconds to render and store `count` distinct invoices on `processes` warmed-up workers."""
    ctx = mp.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="bench-docs-") as root,
        ctx.Pool(processes, initializer=_init_worker, initargs=(root,)) as pool,
    ):
        pool.map(_ready, range(processes * 4), chunksize=1)
        start = time.perf_counter()
        hashes = pool.map(_one_invoice, range(1, count + 1), chunksize=4)
        elapsed = time.perf_counter() - start
    assert len(set(hashes)) == count
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=15, help="renders per measure (median)")
    parser.add_argument("--invoices", type=int, default=200, help="0 skips the throughput part")
    parser.add_argument("--distinct", type=int, default=40, help="distinct invoices of part 5 (0 skips it)")
    args = parser.parse_args()
    rendering.warm_up()
    with line_splits.shipped():  # parts 1-4: one document again and again (see the module's docstring)
        per_kind(args.repeat)
        overhead_components(args.repeat)
        seal_cost(args.repeat)
    if args.distinct > 0:
        line_split_memo(args.distinct)
    if args.invoices <= 0:
        return
    one = throughput(args.invoices, 1)
    two = throughput(args.invoices, 2)
    print(
        f"\n{args.invoices} invoices: 1 process {one:.2f} s ({args.invoices / one:.1f}/s), "
        f"2 processes {two:.2f} s ({args.invoices / two:.1f}/s), speed-up {one / two:.2f}× (target ≥ 1.7)"
    )


if __name__ == "__main__":
    main()
