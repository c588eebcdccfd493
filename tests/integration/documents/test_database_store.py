"""The document store in the database (`MAIRIE_DOCUMENT_STORE=database`), on SQLite and PostgreSQL: roundtrip,
idempotence, altered bytes refused, atomic with the caller's transaction, read while that transaction is
open, the copy from a file store, and an email queued on one machine sent, with its attachment, by another
that shares only the database."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from documents.store import DocumentStore, StoreError
from mairie.adapters.document_store import BLOB, DatabaseStore
from mairie.database import engine, migrate, unit_of_work
from mairie.services import mail, paperwork
from mairie.settings import Settings
from models.entities import DocumentBlob, OutboxMessage, StoredDocument
from notifications.examples import example_context
from notifications.mailserver import LoopbackMailServer
from notifications.smtp import SmtpSender
from tests.conftest import make_settings

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF"
MAYOR = "maire@henin-beaumont.example"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    settings = make_settings(tmp_path / "A", db_url, data_dir=tmp_path / "A")
    migrate(settings)
    return settings


def _blobs(settings: Settings) -> int:
    with Session(engine(settings)) as session:
        return session.exec(select(func.count()).select_from(DocumentBlob)).one()


def test_database_is_the_default_store(tmp_path: Path) -> None:
    assert make_settings(tmp_path).document_store == "database"
    assert isinstance(paperwork.store_of(make_settings(tmp_path)), DatabaseStore)
    assert isinstance(paperwork.store_of(make_settings(tmp_path, document_store="files")), DocumentStore)


def test_put_then_get_gives_the_same_bytes_checked(settings: Settings) -> None:
    store = DatabaseStore(engine(settings))
    stored = store.put(PDF, ".pdf")
    assert stored.sha256 == hashlib.sha256(PDF).hexdigest() and stored.size == len(PDF) and stored.path is None
    assert store.get(stored.sha256) == PDF
    assert stored.sha256 in store and "0" * 64 not in store and "not-a-hash" not in store
    assert store.stats() == (1, len(PDF))
    with pytest.raises(StoreError, match="aucun document d'empreinte"):
        store.get("0" * 64)
    with pytest.raises(StoreError, match="empreinte SHA-256 invalide"):
        store.get("../etc/passwd")


def test_same_bytes_twice_one_row(settings: Settings) -> None:
    store = DatabaseStore(engine(settings))
    first = store.put(PDF)
    assert store.put(PDF) == first
    with unit_of_work(settings) as uow:  # and again inside a transaction that already holds them
        store.put(PDF, transaction=uow.session)
        store.put(PDF, transaction=uow.session)
        uow.commit()
    assert _blobs(settings) == 1


def test_two_transactions_storing_the_same_bytes_at_once_both_commit(settings: Settings) -> None:
    store = DatabaseStore(engine(settings))
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with unit_of_work(settings) as uow:
                store.put(PDF, transaction=uow.session)  # waits for the first (row or database lock)
                uow.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with unit_of_work(settings) as uow:
        store.put(PDF, transaction=uow.session)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)  # the second is waiting on the first
        uow.commit()
    thread.join(20)
    assert errors == [] and _blobs(settings) == 1 and store.get(hashlib.sha256(PDF).hexdigest()) == PDF


def test_altered_bytes_are_refused(settings: Settings) -> None:
    store = DatabaseStore(engine(settings))
    sha = store.put(PDF).sha256
    with engine(settings).begin() as connection:
        connection.execute(update(BLOB).where(BLOB.c.sha256 == sha).values(content=PDF.replace(b"1.7", b"1.4")))
    with pytest.raises(StoreError, match="modifié"):
        store.get(sha)


def test_kept_documents_roll_back_with_the_caller(settings: Settings) -> None:
    with unit_of_work(settings) as uow:
        kept = paperwork.keep(uow.session, settings, PDF, kind="facture", filename="LFN-FAC-2027-00001.pdf")
        # the caller's transaction is still open: nothing of it is visible to any reader yet
        assert kept.sha256 not in paperwork.store_of(settings)
        # no commit: the invoice it belonged to is rolled back, and so are the record and the bytes
    assert _blobs(settings) == 0
    with unit_of_work(settings) as uow:
        assert uow.session.get(StoredDocument, kept.sha256) is None
    with unit_of_work(settings) as uow:
        paperwork.keep(uow.session, settings, PDF, kind="facture", filename="LFN-FAC-2027-00001.pdf")
        uow.commit()
    assert paperwork.load(settings, kept.sha256) == PDF and _blobs(settings) == 1
    assert not (settings.documents_path).exists()  # nothing written on this machine's disk


def test_a_document_is_read_while_the_caller_holds_its_transaction(settings: Settings) -> None:
    """SQLite: every transaction takes the write lock (BEGIN IMMEDIATE); the store's read takes none, so
    a use case reading a committed document inside its own open transaction (a PES export) does not wait."""
    with unit_of_work(settings) as uow:
        committed = paperwork.keep(uow.session, settings, PDF, kind="facture", filename="F1.pdf")
        uow.commit()
    with unit_of_work(settings) as uow:
        paperwork.keep(uow.session, settings, b"another", kind="pes", filename="PES.xml")  # holds the lock
        assert paperwork.load(settings, committed.sha256) == PDF
        uow.commit()


def test_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    store = DatabaseStore(
        engine(make_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none"))
    )
    with pytest.raises(StoreError, match="base de données des documents indisponible"):
        store.get("0" * 64)


def test_files_written_before_the_switch_are_read_then_copied(settings: Settings, tmp_path: Path) -> None:
    folder = DocumentStore(settings.documents_path)
    old = folder.put(PDF, ".pdf")
    broken = folder.put(b"tampered later", ".xml")
    assert broken.path is not None
    broken.path.chmod(0o644)
    broken.path.write_bytes(b"tampered!")
    (settings.documents_path / "ab").mkdir()
    (settings.documents_path / "ab" / ".tmp-x.pdf").write_bytes(b"a write cut short")

    assert paperwork.load(settings, old.sha256) == PDF  # not in the table yet: read from the folder
    report = paperwork.copy_files_to_database(settings)
    assert report.copied == [old.sha256] and report.present == []
    assert [sha for sha, _ in report.refused] == [broken.sha256]
    assert DatabaseStore(engine(settings)).get(old.sha256) == PDF  # no fallback: from the table
    again = paperwork.copy_files_to_database(settings)
    assert again.copied == [] and again.present == [old.sha256]


def test_an_email_queued_on_one_machine_is_sent_by_another(settings: Settings, tmp_path: Path) -> None:
    """Machine A renders and queues; machine B (its own data folder, the same database) sends it with its
    attachment. With the file store, B could not: the PDF is only on A's disk."""
    with unit_of_work(settings) as uow:
        pdf = paperwork.keep(uow.session, settings, PDF, kind="devis", filename="Devis LFN-DEV-2026-00007.pdf")
        row = mail.enqueue_message(
            uow.session, settings, "quotes_to_signatory", example_context("quotes_to_signatory"),
            to=[MAYOR], dedup_key="quotes:DEM-2026-00012:v1", attachments=[pdf],
        )  # fmt: skip
        message_id = row.message_id
        uow.commit()

    with LoopbackMailServer(tmp_path / "mail") as server:
        url = settings.sqlalchemy_url
        on_files = make_settings(tmp_path / "C", url, data_dir=tmp_path / "C", document_store="files")
        refused = mail.dispatch(on_files, SmtpSender(server.smtp_config()))
        assert refused.retried and server.messages() == []
        with unit_of_work(settings) as uow:
            waiting = uow.session.exec(select(OutboxMessage)).one()
            assert "introuvable" in (waiting.last_error or "")
            waiting.next_attempt_at = waiting.created_at  # due again at once
            uow.session.add(waiting)
            uow.commit()

        machine_b = make_settings(tmp_path / "B", settings.sqlalchemy_url, data_dir=tmp_path / "B")
        report = mail.dispatch(machine_b, SmtpSender(server.smtp_config()))
        [received] = server.messages()
    assert report.sent and received.message_id == message_id
    [part] = list(received.message().iter_attachments())
    assert part.get_filename() == "Devis LFN-DEV-2026-00007.pdf" and part.get_content() == PDF
    assert not (tmp_path / "A" / "documents").exists() and not (tmp_path / "B" / "documents").exists()


def test_a_campaign_issued_on_one_machine_is_filed_and_emailed_by_another(tmp_path: Path) -> None:
    """The real campaign on machine A (SQLite file shared as "the database"); machine B, with its own data
    folder, files every invoice in its deposit folder and sends every email, PDFs read from the database."""
    from bench._seed import seed_live
    from mairie.services import renewal
    from mairie.services.channels.folder import file_deposits
    from mairie.services.setup import initialise
    from models.entities import Invoice

    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    machine_a = make_settings(tmp_path / "A", url, data_dir=tmp_path / "A")
    initialise(machine_a)
    seed_live(machine_a, 3, year=2026)
    issued = renewal.issue(machine_a, 2027).issued
    assert len(issued) == 6
    ids = [i.id for i in issued]
    with unit_of_work(machine_a) as uow:  # as if machine A had stopped before filing them
        for invoice in uow.session.exec(select(Invoice).where(col(Invoice.id).in_(ids))):
            invoice.deposited_path = None
            uow.session.add(invoice)
        uow.commit()
    with LoopbackMailServer(tmp_path / "mail") as server:
        machine_b = make_settings(tmp_path / "B", url, data_dir=tmp_path / "B", smtp_port=server.port)
        filed = file_deposits(machine_b)
        report = mail.dispatch(machine_b)
        received = server.messages()
    assert sorted(filed) == sorted(i.number for i in issued)
    with unit_of_work(machine_b) as uow:
        for invoice in uow.session.exec(select(Invoice).where(col(Invoice.id).in_(ids))):
            deposited = Path(invoice.deposited_path or "")
            assert deposited.is_relative_to(tmp_path / "B")
            assert deposited.read_bytes() == paperwork.load(machine_b, invoice.document_sha256 or "")
    assert len(report.sent) == len(received) >= 6  # the campaign's emails, each with its invoice
    pdfs = {p.get_content() for m in received for p in m.message().iter_attachments()}
    assert {paperwork.load(machine_a, i.sha256) for i in issued} <= pdfs
    assert not (tmp_path / "A" / "documents").exists() and not (tmp_path / "B" / "documents").exists()
