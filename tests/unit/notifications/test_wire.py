"""The bytes the outbox puts on the wire (`outbox.prepare`, `notifications.wire`) say exactly what the
reference `outbox.to_mime` says: every header, body and attachment, parsed back, is the same."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from notifications.examples import example_context
from notifications.messages import Attachment, build
from notifications.outbox import _new_row, prepare, to_mime

SENDER = "Mairie Connectée <noreply@mairie-connectee.example>"
T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
HEADERS = ("Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "X-Mairie-Dedup-Key", "Auto-Submitted")


def _store(*files: tuple[str, str, bytes]) -> tuple[list[Attachment], dict[str, bytes]]:
    blobs = {hashlib.sha256(data).hexdigest(): data for _, _, data in files}
    return [Attachment(name, kind, hashlib.sha256(data).hexdigest()) for name, kind, data in files], blobs


def _parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def _same(row, blobs: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    prepared = prepare(row, blobs.__getitem__)
    reference = _parse(to_mime(row, blobs.__getitem__).as_bytes(policy=policy.SMTP))
    wire = _parse(prepared.data)
    assert wire.defects == [] and all(part.defects == [] for part in wire.walk())
    for name in HEADERS:
        assert str(wire.get(name, "")) == str(reference.get(name, "")), name
    for kind in ("plain", "html"):
        ours, theirs = wire.get_body(preferencelist=(kind,)), reference.get_body(preferencelist=(kind,))
        assert (ours is None) == (theirs is None)
        if ours is not None and theirs is not None:
            assert ours.get_content_type() == theirs.get_content_type()
            assert ours.get_content().splitlines() == theirs.get_content().splitlines()
    ours_files = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in wire.iter_attachments()]
    theirs_files = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in reference.iter_attachments()]
    assert ours_files == theirs_files
    assert all(len(line) <= 998 for line in prepared.data.split(b"\r\n"))
    assert b"\n" not in prepared.data.replace(b"\r\n", b"")  # CRLF only


@pytest.mark.parametrize("name", ["quotes_to_signatory", "invoice_issued", "provisioning_order", "run_failed"])
def test_every_template_with_attachments(name: str) -> None:
    attachments, blobs = _store(
        ("Devis LFN-DEV-2026-00007.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 300),
        ("commande.csv", "text/csv", "code;quantité\r\nmessagerie-5go;12\r\n".encode()),
        ("vide.txt", "text/plain", b""),
    )
    draft = build(
        name, example_context(name), to=["maire@henin-beaumont.example", "dgs@henin-beaumont.example"],
        cc=["ops@mairie-connectee.example"], reply_to="operateurs@mairie.example", attachments=attachments,
    )  # fmt: skip
    _same(_new_row(draft, f"k:{name}", name, SENDER, None, None, T0), blobs)


def test_accents_long_subject_odd_file_names_and_a_line_longer_than_smtp_allows() -> None:
    attachments, blobs = _store(
        ('Facture « n° 42 » "définitive".pdf', "application/pdf", b"%PDF"),
        ('back\\slash "quoted".pdf', "application/pdf", b"%PDF-2"),
    )
    context = example_context("operator_task")
    draft = build("operator_task", context, to=["elu@commune.example"], attachments=attachments)
    row = _new_row(draft, "clé:" + "x" * 120, "operator_task", SENDER, None, None, T0)
    row.recipients = [f"destinataire{n}@une-commune-au-nom-assez-long.example" for n in range(4)]
    row.cc = ['"Opérateurs, Mairie Connectée" <ops@mairie-connectee.example>']
    row.reply_to = "Secrétariat du Syndicat <secretariat@lfn5962.example>"
    row.subject = "Échéance dépassée — relance n° 3 pour la Communauté de communes des Campagnes de l'Artois " * 2
    row.body_text = "Ligne courte.\r\nUne ligne très longue : " + "é" * 800 + "\rfin\n\nAprès un blanc."
    row.body_html = None
    _same(row, blobs)


def test_the_envelope_is_from_the_sender_to_every_recipient() -> None:
    context = example_context("operator_task")
    draft = build("operator_task", context, to=["a@b.example", "c@d.example"], cc=["e@f.example"])
    prepared = prepare(_new_row(draft, "k", "operator_task", SENDER, None, None, T0), lambda sha: b"")
    assert prepared.sender == "noreply@mairie-connectee.example"
    assert list(prepared.recipients) == ["a@b.example", "c@d.example", "e@f.example"]
    assert prepared.message()["Message-ID"] == _parse(prepared.data)["Message-ID"]
