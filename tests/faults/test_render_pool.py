"""A campaign rendering its invoices in a pool of recycled processes (`documents.pool.RenderPool`), as a
large campaign does: the same invariants as a campaign rendering in its own process, on SQLite and on
PostgreSQL; and the pool itself: order kept, errors raised, workers replaced."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlmodel import select

from bench._seed import seed_live
from documents.data import Issuer
from documents.pool import RenderPool
from documents.samples import sample_facture
from mairie.database import unit_of_work
from mairie.services import renewal
from mairie.services.invoicing import render_processes
from mairie.services.mail import dispatch
from models.entities import Invoice
from notifications.mailserver import LoopbackMailServer
from tests.faults.conftest import campaign_settings
from tests.faults.test_crash import check_campaign, invoice_statuses

SUBSCRIPTIONS = 40  # more than renewal.WINDOW: several windows go through the pool


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_campaign_through_the_render_pool(db_url: str, tmp_path: Path, mail_server: LoopbackMailServer) -> None:
    settings = campaign_settings(tmp_path, db_url, mail_server.port, render_processes=2)
    seed_live(settings, SUBSCRIPTIONS, year=2026)
    assert render_processes(settings, 2 * SUBSCRIPTIONS) == 2
    result = renewal.issue(settings, 2027)
    assert len(result.issued) == 2 * SUBSCRIPTIONS and result.existing == []
    while dispatch(settings).sent:
        pass
    arrived = check_campaign(settings, mail_server, SUBSCRIPTIONS)  # complete, gapless, stored, filed, emailed
    assert set(arrived.values()) == {1}
    with unit_of_work(settings) as uow:  # each stored PDF is its own invoice's
        invoices = [
            (i.number, i.total_ttc, i.document_sha256)
            for i in uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all()
        ]
    from mairie.services.paperwork import load

    for number, total_ttc, sha256 in invoices[::7]:
        text = _text(load(settings, sha256 or "")).replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        assert number in text
        assert f"{total_ttc:.2f}".replace(".", ",") in text
    again = renewal.issue(settings, 2027)  # a rerun issues nothing
    assert again.issued == [] and len(again.existing) == 2 * SUBSCRIPTIONS


def test_pool_keeps_the_order_replaces_its_workers_and_raises_errors() -> None:
    from mairie.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    base = sample_facture(syndicat, cdg)
    import dataclasses

    documents = [dataclasses.replace(base, number=f"LFN-FAC-2027-{i:05d}") for i in range(1, 8)]
    with RenderPool(2, max_tasks=2) as pool:  # workers replaced after 2 documents each
        pdfs = list(pool.factures(documents))
    assert [d.number in _text(pdf) for d, pdf in zip(documents, pdfs, strict=True)] == [True] * 7
    assert pool.generations == 2  # 7 documents, 4 per set of 2 workers
    broken = dataclasses.replace(base, number="LFN-FAC-2027-00099", delivery_date=None)
    with RenderPool(2) as pool, pytest.raises(Exception):  # noqa: B017 — whatever the render raises, raised here
        list(pool.factures([documents[0], broken]))


def test_submit_renders_while_the_caller_works_and_a_set_retires_without_a_pause() -> None:
    from mairie.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    base = sample_facture(syndicat, cdg)
    import dataclasses
    import time

    documents = [dataclasses.replace(base, number=f"LFN-FAC-2027-{i:05d}") for i in range(1, 6)]
    with RenderPool(2, max_tasks=2) as pool:
        first = pool.submit(documents[:3])
        second = pool.submit(documents[3:])  # the first set (4 documents) retires: a second set takes the 5th
        assert pool.generations == 2
        deadline = time.monotonic() + 120
        while not (first.done() and second.done()):  # rendered with nobody reading the results
            assert time.monotonic() < deadline, "the workers did not render what was submitted"
            time.sleep(0.05)
        pdfs = [*first.results(), *second.results()]
    assert [d.number in _text(pdf) for d, pdf in zip(documents, pdfs, strict=True)] == [True] * 5
    with RenderPool(1) as pool:  # cancel(): what no worker took is dropped
        batch = pool.submit(documents)
        batch.cancel()
        taken = [f for f in batch.futures if not f.cancelled()]
        assert len(taken) <= 2  # a worker's own document and the one queued for it (ProcessPoolExecutor)
        for future in taken:
            assert future.result()[:5] == b"%PDF-"


def test_start_warms_every_worker_up_before_the_first_document() -> None:
    import multiprocessing

    from mairie.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    document = sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))
    before = set(multiprocessing.active_children())
    with RenderPool(2) as pool:
        pool.start()
        workers = set(multiprocessing.active_children()) - before
        assert len(workers) == 2 and pool.generations == 1  # both started, with no document given yet
        pool.start()  # already running: nothing more
        (pdf,) = list(pool.factures([document]))
        assert set(multiprocessing.active_children()) - before == workers and pool.generations == 1
    assert document.number in _text(pdf)
    with RenderPool(0) as pool:
        pool.start()  # no worker processes: nothing to start
        assert pool.generations == 0 and set(multiprocessing.active_children()) == before


def test_without_worker_processes_submit_renders_when_the_results_are_read() -> None:
    from mairie.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    document = sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))
    with RenderPool(0) as pool:
        batch = pool.submit([document])
        assert pool.generations == 0 and not batch.done()  # no worker started, nothing rendered yet
        (pdf,) = list(batch.results())
    assert document.number in _text(pdf)


class _RecordingPool(RenderPool):
    """Renders in this process, and writes down when each batch was given and when its results were read;
    the batch `fail_batch` (counted from 1) raises at its first document."""

    def __init__(self, fail_batch: int | None = None) -> None:
        super().__init__(0)
        self.events: list[tuple[str, int, int]] = []  # (what, batch, documents)
        self.cancelled: set[int] = set()  # batches whose rendering was cancelled
        self.fail_batch = fail_batch

    def submit(self, documents, seals=None):  # type: ignore[no-untyped-def]
        batch = list(documents)
        number = sum(1 for what, *_ in self.events if what == "submit") + 1
        self.events.append(("submit", number, len(batch)))
        inner = super().submit(batch, seals)

        def results():  # type: ignore[no-untyped-def]
            self.events.append(("read", number, len(batch)))
            if number == self.fail_batch:
                raise RuntimeError("rendu impossible (test)")
            yield from inner.results()

        from documents.pool import Rendering

        pool = self

        class Recorded(Rendering):
            def cancel(self) -> None:
                pool.cancelled.add(number)
                super().cancel()

        return Recorded(results)


def test_the_next_window_is_numbered_while_one_renders(
    tmp_path: Path, mail_server: LoopbackMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renewal, "WINDOW", 4)  # windows of 4 subscriptions, 8 invoices
    subscriptions = 2 * 4 + 3  # three windows: 8, 8 and 6 invoices
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", mail_server.port)
    seed_live(settings, subscriptions, year=2026)
    pool = _RecordingPool()
    result = renewal.issue(settings, 2027, pool=pool)
    assert len(result.issued) == 2 * subscriptions
    # each window is given to the pool before the previous one's PDFs are read: the workers always have one
    assert pool.events == [
        ("submit", 1, 8),
        ("submit", 2, 8),
        ("read", 1, 8),
        ("submit", 3, 6),
        ("read", 2, 8),
        ("read", 3, 6),
    ]
    while dispatch(settings).sent:
        pass
    assert set(check_campaign(settings, mail_server, subscriptions).values()) == {1}


def test_the_first_windows_grow_from_a_few_subscriptions_and_each_is_filed_as_it_is_stored(
    tmp_path: Path, mail_server: LoopbackMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renewal, "WINDOW", 8)
    monkeypatch.setattr(renewal, "FIRST_WINDOW", 2)  # windows of 2, 4, 8, 8… subscriptions
    subscriptions = 2 + 4 + 8 + 8 + 3
    filed: list[list[int] | None] = []
    file_deposits = renewal.file_deposits

    def recording(settings, *args, invoice_ids=None, **kwargs):  # type: ignore[no-untyped-def]
        filed.append(None if invoice_ids is None else list(invoice_ids))
        return file_deposits(settings, *args, invoice_ids=invoice_ids, **kwargs)

    monkeypatch.setattr(renewal, "file_deposits", recording)
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", mail_server.port)
    seed_live(settings, subscriptions, year=2026)
    pool = _RecordingPool()
    result = renewal.issue(settings, 2027, pool=pool)
    assert len(result.issued) == 2 * subscriptions
    assert [e for e in pool.events if e[0] == "submit"] == [
        ("submit", 1, 4),
        ("submit", 2, 8),
        ("submit", 3, 16),
        ("submit", 4, 16),
        ("submit", 5, 6),
    ]
    # each window filed right after it is stored (while the next renders), then one sweep for any leftover
    assert [len(ids) if ids is not None else None for ids in filed] == [4, 8, 16, 16, 6, None]
    assert sorted(i for ids in filed if ids is not None for i in ids) == sorted(i.id for i in result.issued)
    while dispatch(settings).sent:
        pass
    assert set(check_campaign(settings, mail_server, subscriptions).values()) == {1}  # filed, emailed once


def test_a_deposit_folder_failing_during_the_campaign_stops_nothing_before_the_end(
    tmp_path: Path, mail_server: LoopbackMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mairie.adapters.files import LocalFolder

    monkeypatch.setattr(renewal, "WINDOW", 4)
    subscriptions = 2 * 4 + 3  # several windows, each filed as it is stored
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", mail_server.port)
    seed_live(settings, subscriptions, year=2026)
    write = LocalFolder.write

    def full(self, relative, content):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalFolder, "write", full)
    with pytest.raises(OSError, match="No space left"):  # raised by the sweep at the end, as before
        renewal.issue(settings, 2027, pool=_RecordingPool())
    assert invoice_statuses(settings) == Counter({"issued": 2 * subscriptions})  # every window issued all the same
    with unit_of_work(settings) as uow:
        assert all(i.deposited_path is None for i in uow.session.exec(select(Invoice)).all())
    monkeypatch.setattr(LocalFolder, "write", write)
    again = renewal.issue(settings, 2027)  # the folder back: the rerun issues nothing and files everything
    assert again.issued == [] and len(again.existing) == 2 * subscriptions
    while dispatch(settings).sent:
        pass
    assert set(check_campaign(settings, mail_server, subscriptions).values()) == {1}


def test_a_window_that_fails_leaves_the_next_numbered_and_a_rerun_completes_both(
    tmp_path: Path, mail_server: LoopbackMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renewal, "WINDOW", 4)
    subscriptions = 2 * 4 + 3  # windows of 8, 8 and 6 invoices
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", mail_server.port)
    seed_live(settings, subscriptions, year=2026)
    pool = _RecordingPool(fail_batch=2)
    with pytest.raises(RuntimeError, match="rendu impossible"):
        renewal.issue(settings, 2027, pool=pool)
    assert [e[:2] for e in pool.events] == [("submit", 1), ("submit", 2), ("read", 1), ("submit", 3), ("read", 2)]
    assert {2, 3} <= pool.cancelled  # the failed window and the one queued behind it: nothing left rendering
    # window 1 issued; window 2 failed; window 3 numbered meanwhile, its rendering dropped: no gap, no document
    assert invoice_statuses(settings) == Counter({"issued": 8, "numbered": 8 + 6})
    again = renewal.issue(settings, 2027)
    assert len(again.existing) == 2 * subscriptions and again.issued == []
    assert invoice_statuses(settings) == Counter({"issued": 2 * subscriptions})
    while dispatch(settings).sent:
        pass
    assert set(check_campaign(settings, mail_server, subscriptions).values()) == {1}
