"""A campaign rendering its invoices in a pool of recycled processes (`documents.pool.RenderPool`), as a
large campaign does: the same invariants as a campaign rendering in its own process, on SQLite and on
PostgreSQL; and the pool itself: order kept, errors raised, workers replaced."""

from __future__ import annotations

import io
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
from tests.faults.test_crash import check_campaign

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
