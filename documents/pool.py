"""Rendering many invoices on several cores, in worker processes that are recycled.

WeasyPrint's native memory grows with every document it lays out (≈ 8–16 KB per invoice here, below
Python, not given back by `malloc_trim`: docs/benchmarks.md), so one process rendering a national campaign
(70 000 invoices) would end near 750 MB. A `RenderPool` renders in `processes` spawned workers, warmed up
once, replaced after `max_tasks` documents each: memory stays flat whatever the campaign's size, and the
cores render side by side. Results come back in the order of the input, with at most a few documents in
flight per worker (the input is read lazily). `processes=0` renders in the calling process.

Given the issuers' `SealKey`s, a worker also seals what it renders (PAdES, `documents.seal.seal_with`): the
seal is CPU work on the PDF just made, done where the cores are; each worker opens a key once.

Two ways in: `factures` renders lazily, a few documents in flight per worker (any number of documents, in
bounded memory); `submit` queues a batch at once and returns, so that the workers render it while the caller
does something else (a campaign numbers its next window meanwhile) and `Rendering.results` gives the PDFs
in order afterwards. A set of workers that reached `max_tasks` is retired without waiting: it finishes what
it was given while the next set starts on what follows, so no core waits for the change.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
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


def _ready() -> None:
    """What a new set of workers is first given, one call each: it makes the executor start them all at once."""


def render_sealed_facture(document: Facture, key: SealKey | None) -> bytes:
    """The Factur-X PDF of `document`, sealed with `key` when given."""
    pdf = render_facture(document)
    return seal_with(pdf, key) if key is not None else pdf


class RenderPool:
    """`with RenderPool(2) as pool: for pdf in pool.factures(docs): …`

    Workers are replaced by starting a new set after `max_tasks` documents each (the old set ends once it
    has rendered what it was given), not with `max_tasks_per_child`: on Python 3.11 an executor using it can
    hang when a worker retires with work still queued (CPython gh-115634)."""

    def __init__(self, processes: int, max_tasks: int = 1000) -> None:
        if processes < 0:
            raise ValueError("processes must be 0 (render here) or more")
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.processes = processes
        self.max_tasks = max_tasks
        self.generations = 0  # sets of workers started
        self._executor: ProcessPoolExecutor | None = None
        self._retired: list[ProcessPoolExecutor] = []  # sets finishing their last documents
        self._submitted = 0

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._retire()

    def _retire(self) -> None:
        for executor in [*self._retired, *([self._executor] if self._executor is not None else [])]:
            executor.shutdown(wait=True, cancel_futures=True)
        self._retired = []
        self._executor = None

    def start(self) -> None:
        """Start the workers now, so that they warm up (≈ 2–3 s each) while the caller prepares its first
        documents; nothing happens if they run already or without worker processes."""
        if self.processes:
            self._workers()

    def _workers(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded parent (Prefect)
                initializer=_warm_up,
            )
            # a spawning executor starts a worker per call it is given while none is idle: all of them now
            for _ in range(self.processes):
                self._executor.submit(_ready)
            self._submitted = 0
            self.generations += 1
        return self._executor

    def _submit(self, document: Facture, key: SealKey | None) -> Future[bytes]:
        if self._executor is not None and self._submitted >= self.max_tasks * self.processes:
            # recycle: this set renders what it was given, then ends; the next set takes what follows
            self._executor.shutdown(wait=False)
            self._retired.append(self._executor)
            self._executor = None
        future = self._workers().submit(render_sealed_facture, document, key)
        self._submitted += 1
        return future

    def factures(self, documents: Iterable[Facture], seals: Mapping[str, SealKey] | None = None) -> Iterator[bytes]:
        """The Factur-X bytes of each invoice, in order (an error raises when its result is reached); sealed
        with `seals[issuer code]` when `seals` is given (every issuer of the documents must be in it)."""
        key = _keys(seals)
        if not self.processes:
            yield from (render_sealed_facture(d, key(d)) for d in documents)
            return
        pending: deque[Future[bytes]] = deque()
        limit = self.processes * IN_FLIGHT_PER_PROCESS
        for document in documents:
            pending.append(self._submit(document, key(document)))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def submit(self, documents: Iterable[Facture], seals: Mapping[str, SealKey] | None = None) -> Rendering:
        """Queue every document now and return at once: the workers render them while the caller goes on.
        Without worker processes (`processes=0`) nothing happens before `Rendering.results` is read."""
        key = _keys(seals)
        if not self.processes:
            batch = list(documents)
            return Rendering(lambda: (render_sealed_facture(d, key(d)) for d in batch))
        futures = [self._submit(document, key(document)) for document in documents]
        return Rendering(lambda: (future.result() for future in futures), futures)


class Rendering:
    """A batch given to `RenderPool.submit`: `results()` yields each PDF in the batch's order, waiting for
    each (an error raises when its result is reached); `cancel()` drops what no worker has begun."""

    def __init__(self, results: Callable[[], Iterator[bytes]], futures: list[Future[bytes]] | None = None) -> None:
        self._results = results
        self._in_workers = futures is not None
        self.futures = futures or []  # one per document (none without worker processes)

    def results(self) -> Iterator[bytes]:
        return self._results()

    def done(self) -> bool:
        """Whether every document of the batch is rendered (or failed, or dropped); never without worker
        processes, where the documents render as `results` is read."""
        return self._in_workers and all(future.done() for future in self.futures)

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()


def _keys(seals: Mapping[str, SealKey] | None) -> Callable[[Facture], SealKey | None]:
    def key(document: Facture) -> SealKey | None:
        return seals[document.issuer.code] if seals is not None else None

    return key
