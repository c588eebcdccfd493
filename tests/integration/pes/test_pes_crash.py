"""Crash and rerun, and two exports at once: no titre twice, no gap in the bordereau and titre numbers, and a
bordereau a crash left unwritten is written by the next export with the same numbers and the same bytes."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from documents import pes as doc
from mairie.adapters.files import LocalFolder
from mairie.database import unit_of_work
from mairie.services.channels import pes as channel
from models import pes as rules
from models.entities import Invoice, NumberSequence, PesBordereau, PesPiece
from models.lifecycle import PesBordereauStatus
from tests.integration.pes.conftest import CAMPAIGN_DAY, World


class Crash(Exception):
    """The process dies here."""


class CrashingDrop(LocalFolder):
    """A deposit folder whose write never happens: the process stops after the numbering's commit."""

    def write(self, relative: str, content: bytes) -> str:
        raise Crash(relative)


def state(settings, issuer: str) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, int]]]:
    """(bordereaux (exercice, number, status), pieces (exercice, number, invoice id)) of an issuer."""
    with unit_of_work(settings) as uow:
        bordereaux = uow.session.exec(select(PesBordereau).where(PesBordereau.issuer_code == issuer)).all()
        pieces = uow.session.exec(select(PesPiece).where(PesPiece.issuer_code == issuer)).all()
        return (
            sorted((b.exercice, b.number, str(b.status)) for b in bordereaux),
            sorted((p.exercice, p.number, p.invoice_id) for p in pieces),
        )


def assert_gapless_and_once(settings, issuer: str) -> None:
    bordereaux, pieces = state(settings, issuer)
    with unit_of_work(settings) as uow:
        invoice_ids = {i.id for i in uow.session.exec(select(Invoice).where(Invoice.issuer_code == issuer))}
        for exercice in {e for e, _, _ in pieces}:
            numbers = [n for e, n, _ in pieces if e == exercice]
            assert numbers == list(range(1, len(numbers) + 1)), numbers
            assert uow.session.get(NumberSequence, (issuer, "PEST", exercice)).last_value == len(numbers)
            bords = [n for e, n, _ in bordereaux if e == exercice]
            assert bords == list(range(1, len(bords) + 1)), bords
            assert uow.session.get(NumberSequence, (issuer, "PESB", exercice)).last_value == len(bords)
    assert Counter(i for _, _, i in pieces) == Counter(invoice_ids)  # every invoice exactly once


def test_a_crash_after_numbering_is_completed_by_the_next_export(any_copy: World) -> None:
    settings = any_copy.settings
    with pytest.raises(Crash):
        channel.export(settings, "CDG62", today=CAMPAIGN_DAY, drop=CrashingDrop(settings.deposit_path))
    bordereaux, pieces = state(settings, "CDG62")
    assert bordereaux == [(2026, 1, "numbered")] and len(pieces) == 3  # numbered, committed, no file
    assert not list((settings.deposit_path / "CDG62" / "pes_asap").glob("PESALR1_*.xml"))

    report = channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    assert [(b.exercice, b.number, b.created) for b in report.bordereaux] == [
        (2026, 1, False),  # the leftover, written with its numbers
        (2027, 1, True),
    ]
    assert_gapless_and_once(settings, "CDG62")
    assert [s for _, _, s in state(settings, "CDG62")[0]] == ["written", "written"]
    # the file is the same bytes whoever writes it: rebuilt from the stored rows, it is identical
    written = Path(report.bordereaux[0].path).read_bytes()
    with unit_of_work(settings) as uow:
        bordereau = uow.session.exec(
            select(PesBordereau).where(PesBordereau.issuer_code == "CDG62", PesBordereau.exercice == 2026)
        ).one()
        pieces_rows = list(uow.session.exec(select(PesPiece).where(PesPiece.bordereau_id == bordereau.id)))
        identity = uow.issuers.get("CDG62")
        again = doc.build_pes_aller(
            channel.header_of(identity),
            channel.bordereau_document(uow, settings, identity, bordereau, pieces_rows),
            channel.issuer_of(identity),
            bordereau.file_name,
        )
        assert bordereau.file_sha256 == hashlib.sha256(written).hexdigest()
    assert again == written
    assert channel.export(settings, "CDG62", today=CAMPAIGN_DAY).bordereaux == []


def test_a_crash_inside_the_numbering_leaves_no_gap(any_copy: World, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = any_copy.settings
    calls = {"n": 0}
    real = rules.pj_id

    def dies_at_the_second_titre(*args: object) -> str:
        calls["n"] += 1
        if calls["n"] == 3:  # the second titre's first PJ: the numbering transaction is half done
            raise Crash("pj_id")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rules, "pj_id", dies_at_the_second_titre)
    with pytest.raises(Crash):
        channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    assert state(settings, "CDG59") == ([], [])  # rolled back: no bordereau, no titre, no number taken
    with unit_of_work(settings) as uow:
        sequence = uow.session.get(NumberSequence, ("CDG59", "PESB", 2026))
        assert sequence is None or sequence.last_value == 0
    monkeypatch.setattr(rules, "pj_id", real)
    channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    assert_gapless_and_once(settings, "CDG59")


def test_an_interrupted_campaign_export_resumes_without_duplicates(any_copy: World) -> None:
    settings = any_copy.settings.model_copy(
        update={"cdg62": any_copy.settings.cdg62.model_copy(update={"pes_bordereau_max_pieces": 1})}
    )
    with unit_of_work(settings) as uow:
        first_two = [
            i.id
            for i in uow.session.exec(
                select(Invoice)
                .where(Invoice.issuer_code == "CDG62", Invoice.kind == "renewal")
                .order_by(Invoice.number)
            )
        ][:2]
    partial = channel.export(settings, "CDG62", today=CAMPAIGN_DAY, only=[i for i in first_two if i])
    assert [(b.exercice, b.number) for b in partial.bordereaux] == [(2027, 1), (2027, 2)]
    rest = channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    assert sorted((b.exercice, b.number) for b in rest.bordereaux) == [(2026, 1), (2026, 2), (2026, 3), (2027, 3)]
    assert_gapless_and_once(settings, "CDG62")


def test_two_exports_at_once_send_each_titre_once(any_copy: World) -> None:
    settings = any_copy.settings
    errors: list[BaseException] = []
    reports: list[channel.ExportReport] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            reports.append(channel.export(settings, "CDG62", today=CAMPAIGN_DAY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert_gapless_and_once(settings, "CDG62")
    written = [b for r in reports for b in r.bordereaux if b.created]
    assert sorted((b.exercice, b.number) for b in written) == [(2026, 1), (2027, 1)]
    with unit_of_work(settings) as uow:
        statuses = {b.status for b in uow.session.exec(select(PesBordereau))}
    assert statuses == {PesBordereauStatus.WRITTEN}
