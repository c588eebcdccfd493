"""Rendering many invoices on several cores, in worker processes that are recycled.

WeasyPrint's native memory grows with every document it lays out (≈ 8–16 KB per invoice here, below
Python, not given back by `malloc_trim`: docs/benchmarks.md), so one process rendering a national campaign
(70 000 invoices) would end near 750 MB. A `RenderPool` renders in `processes` spawned workers, warmed up
once, replaced after `max_tasks` documents each: memory stays flat whatever the campaign's size, and the
cores render side by side. Results come back in the order of the input, with at most a few documents in
flight per worker (the input is read lazily). `processes=0` renders in the calling process.

Given the issuers' `SealKey`s, a worker also seals what it renders (PAdES, `documents.seal.seal_with`): the
seal is CPU work on the PDF just made, done where the cores are; each worker opens a key once.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

from documents.api import render_facture
from documents.data import Facture
from documents.seal import SealKey, seal_with

IN_FLIGHT_PER_PROCESS = 4


def _warm_up() -> None:
    import gc

    from documents.rendering import warm_up

    warm_up()
    # What is loaded now lives as long as the worker: out of the collector's way, a full collection
    # no longer walks it (≈ 85 ms every few renders otherwise).
    gc.freeze()


def render_sealed_facture(document: Facture, key: SealKey | None) -> bytes:
    """The Factur-X PDF of `document`, sealed with `key` when given."""
    pdf = render_facture(document)
    return seal_with(pdf, key) if key is not None else pdf


class RenderPool:
    """`with RenderPool(2) as pool: for pdf in pool.factures(docs): …`

    Workers are replaced by starting a new set after `max_tasks` documents each (once the documents in
    flight are back), not with `max_tasks_per_child`: on Python 3.11 an executor using it can hang when a
    worker retires with work still queued (CPython gh-115634)."""

    def __init__(self, processes: int, max_tasks: int = 1000) -> None:
        if processes < 0:
            raise ValueError("processes must be 0 (render here) or more")
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.processes = processes
        self.max_tasks = max_tasks
        self.generations = 0  # sets of workers started
        self._executor: ProcessPoolExecutor | None = None
        self._submitted = 0

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._retire()

    def _retire(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _workers(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded parent (Prefect)
                initializer=_warm_up,
            )
            self._submitted = 0
            self.generations += 1
        return self._executor

    def factures(self, documents: Iterable[Facture], seals: Mapping[str, SealKey] | None = None) -> Iterator[bytes]:
        """The Factur-X bytes of each invoice, in order (an error raises when its result is reached); sealed
        with `seals[issuer code]` when `seals` is given (every issuer of the documents must be in it)."""

        def key(document: Facture) -> SealKey | None:
            return seals[document.issuer.code] if seals is not None else None

        if not self.processes:
            yield from (render_sealed_facture(d, key(d)) for d in documents)
            return
        pending: deque[Future[bytes]] = deque()
        limit = self.processes * IN_FLIGHT_PER_PROCESS
        for document in documents:
            if self._submitted >= self.max_tasks * self.processes:  # recycle: drain, then a new set
                while pending:
                    yield pending.popleft().result()
                self._retire()
            pending.append(self._workers().submit(render_sealed_facture, document, key(document)))
            self._submitted += 1
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
