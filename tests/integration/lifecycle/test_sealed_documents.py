"""Issued documents are sealed (issue 20): the final convention with the syndicat's certificate, every
invoice and credit note with its issuer's; the sealed PDF is the one stored, emailed and deposited; it
still carries a valid Factur-X XML (XSD, EN 16931 and BR-FR schematrons) and its PDF/A-3 identification;
each seal is in the audit trail with the sealed PDF's SHA-256 and the certificate used."""

from __future__ import annotations

import hashlib
from datetime import date
from io import BytesIO

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from facturx import get_xml_from_pdf
from pypdf import PdfReader
from sqlmodel import select
from typer.testing import CliRunner

from documents import schematron
from documents.pool import RenderPool
from documents.seal import verify
from mairie.cli_documents import documents_app
from mairie.database import unit_of_work
from mairie.services import conventions, credit_notes, paperwork, provisioning, renewal
from mairie.services.mail import dispatch
from mairie.services.sealing import dev_trust_root
from mairie.settings import Settings
from models.entities import AuditEvent, Convention, CreditNote, Invoice
from tests.integration.lifecycle.conftest import mails_to
from tests.integration.lifecycle.test_whole_chain import DAY, MAYOR, _request, _sign
from tests.pdf_checks import assert_pdfa3b_facturx, harmless_byte


def _roots(settings: Settings) -> list[asn1_x509.Certificate]:
    ca = dev_trust_root(settings)
    assert ca is not None
    return [asn1_x509.Certificate.load(der) for _t, _h, der in pem.unarmor(ca.read_bytes(), multiple=True)]


def _seals(settings: Settings) -> dict[str, dict]:
    """The `document.sealed` audit events by sealed SHA-256."""
    with unit_of_work(settings) as uow:
        events = uow.session.exec(select(AuditEvent).where(AuditEvent.action == "document.sealed")).all()
        return {e.details["sha256"]: {"entity": (e.entity_type, e.entity_id), **e.details} for e in events}


def _attachment(mail, filename: str) -> bytes:
    for part in mail.message().iter_attachments():
        if part.get_filename() == filename:
            return part.get_content()
    raise AssertionError(f"no attachment {filename}")


def _assert_sealed_by(settings: Settings, pdf: bytes, issuer_name: str, seals: dict[str, dict]) -> dict:
    report = verify(pdf, trust_roots=_roots(settings))
    assert report.genuine, report.problems
    assert report.sealed_by is not None and report.sealed_by.startswith("TEST — ")
    assert issuer_name.startswith(report.sealed_by.removeprefix("TEST — ")[:40])
    assert report.level == "B-B" and report.timestamped_at is None
    sha = hashlib.sha256(pdf).hexdigest()
    audit = seals[sha]  # the audit trail knows this very PDF and the certificate that sealed it
    assert audit["certificate"]["sha256"] == report.certificate_sha256
    assert audit["certificate"]["serial"] == report.certificate_serial
    assert audit["certificate"]["subject"] == report.certificate_subject
    assert audit["certificate"]["not_after"] == report.certificate_valid_until.isoformat()
    assert audit["level"] == "B-B"
    return report


def _assert_facturx_and_pdfa(pdf: bytes) -> None:
    _name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert schematron.errors(xml) == []  # CEN EN 16931
    assert schematron.french_errors(xml) == []  # BR-FR
    assert_pdfa3b_facturx(pdf)


def _in_force(settings, mail_server):
    _request(settings)
    dispatch(settings)
    _sign(settings, mail_server, MAYOR, "Jeanne Dupont", "Maire")
    dispatch(settings)
    _sign(settings, mail_server, settings.cdg62.signatory_email, "René Hocq", "Président")
    dispatch(settings)
    assert _sign(settings, mail_server, settings.syndicat.signatory_email, "Christophe Coulon", "Président").in_force
    dispatch(settings)


def test_the_final_convention_invoices_and_credit_note_are_sealed_by_their_issuer(settings, mail_server, tmp_path):
    _in_force(settings, mail_server)
    seals = _seals(settings)
    with unit_of_work(settings) as uow:
        convention = uow.session.exec(select(Convention)).one()
        final_sha, convention_id = convention.final_sha256, convention.id
    final = paperwork.load(settings, final_sha)
    report = _assert_sealed_by(settings, final, settings.syndicat.name, seals)
    assert seals[final_sha]["entity"] == ("convention", convention_id)
    assert not report.facturx_present  # a convention carries no invoice XML
    (mail,) = [m for m in mails_to(mail_server, MAYOR) if "LFN-CONV-2026-00001.pdf" in m.attachments]
    assert _attachment(mail, "LFN-CONV-2026-00001.pdf") == final  # the sealed PDF is the one sent

    # First invoices, rendered and sealed in this process.
    order = provisioning.issue_order(settings, conventions.conventions_in_force_without_order(settings)[0])
    provisioning.acknowledge(settings, order.number, "Technicien LFN")
    provisioning.deliver(settings, order.number, "Technicien LFN", DAY, today=DAY)
    # Renewal invoices, rendered and sealed by a worker process of the render pool (the key opened there).
    with RenderPool(1) as pool:
        campaign = renewal.issue(settings, 2027, today=date(2027, 1, 15), pool=pool)
    assert len(campaign.issued) == 2
    credit = credit_notes.credit_invoice(settings, "CDG62-FAC-2027-00001", "erreur de strate", date(2027, 2, 25))
    dispatch(settings)

    seals = _seals(settings)
    names = {"LFN": settings.syndicat.name, "CDG62": settings.cdg62.name}
    with unit_of_work(settings) as uow:
        invoices = [i.model_copy() for i in uow.session.exec(select(Invoice)).all()]
        notes = [n.model_copy() for n in uow.session.exec(select(CreditNote)).all()]
    assert sorted(i.number for i in invoices) == [
        "CDG62-FAC-2026-00001", "CDG62-FAC-2027-00001", "LFN-FAC-2026-00001", "LFN-FAC-2027-00001",
    ]  # fmt: skip
    for invoice in invoices:
        pdf = paperwork.load(settings, invoice.document_sha256)
        _assert_sealed_by(settings, pdf, names[invoice.issuer_code], seals)
        assert seals[invoice.document_sha256]["entity"] == ("invoice", invoice.id)
        _assert_facturx_and_pdfa(pdf)
        deposited = settings.deposit_path / invoice.issuer_code / "facturx_chorus" / f"{invoice.number}.pdf"
        assert deposited.read_bytes() == pdf  # the deposit is the sealed PDF
        (mail,) = [m for m in mails_to(mail_server, MAYOR) if f"{invoice.number}.pdf" in m.attachments]
        assert _attachment(mail, f"{invoice.number}.pdf") == pdf
    (note,) = notes
    assert note.number == credit.credit_note and credit.sha256 == note.document_sha256
    pdf = paperwork.load(settings, note.document_sha256)
    _assert_sealed_by(settings, pdf, settings.cdg62.name, seals)
    assert seals[note.document_sha256]["entity"] == ("credit_note", note.id)
    _assert_facturx_and_pdfa(pdf)

    # `mairie documents verify` on the issued invoice, then on a copy with one byte changed.
    lfn = next(i for i in invoices if i.number == "LFN-FAC-2027-00001")
    good = tmp_path / "facture.pdf"
    good.write_bytes(paperwork.load(settings, lfn.document_sha256))
    runner = CliRunner()
    result = runner.invoke(documents_app, ["verify", str(good), "--ca", str(dev_trust_root(settings))])
    assert result.exit_code == 0, result.output
    assert f"Scellé par : TEST — {settings.syndicat.name}"[:40] in result.output
    assert "Verdict : AUTHENTIQUE" in result.output
    data = good.read_bytes()
    at = harmless_byte(data)  # the binary-marker comment, inside the sealed range
    bad = tmp_path / "facture-modifiee.pdf"
    bad.write_bytes(data[:at] + b"X" + data[at + 1 :])
    result = runner.invoke(documents_app, ["verify", str(bad), "--ca", str(dev_trust_root(settings))])
    assert result.exit_code == 1, result.output
    assert "Le contenu scellé a été modifié" in result.output
    assert "Verdict : NON AUTHENTIQUE" in result.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_a_certificate_outside_development_nothing_is_issued(settings, mail_server):
    """Sealing refused (no certificate outside development): the convention stays unsigned by the last
    party, nothing half-stored."""
    _request(settings)
    dispatch(settings)
    _sign(settings, mail_server, MAYOR, "Jeanne Dupont", "Maire")
    dispatch(settings)
    _sign(settings, mail_server, settings.cdg62.signatory_email, "René Hocq", "Président")
    dispatch(settings)
    production = settings.model_copy(update={"environment": "production"})
    from documents.seal import SealError

    with pytest.raises(SealError, match="MAIRIE_SYNDICAT__SEAL_PKCS12"):
        _sign(production, mail_server, settings.syndicat.signatory_email, "Christophe Coulon", "Président")
    with unit_of_work(settings) as uow:
        convention = uow.session.exec(select(Convention)).one()
        assert convention.final_sha256 is None and str(convention.status) != "in_force"


def test_verify_compares_the_evidence_page_with_the_database(settings, mail_server, tmp_path, monkeypatch):
    """The mayor signs from the link, an operator records the CDG's and the syndicat's signatures: the sealed
    convention's evidence page lists each party (who, when, IP, how, which documents with their SHA-256),
    and `mairie documents verify` finds them as recorded; a database that says otherwise, or none, is told."""
    from mairie import cli_documents
    from mairie.services import approvals
    from models.entities import Approval

    _request(settings)
    dispatch(settings)
    _sign(settings, mail_server, MAYOR, "Jeanne Dupont", "Maire")
    decision = approvals.Decision("René Hocq", "Président", True)
    approvals.countersign_as_operator(settings, "LFN-CONV-2026-00001", "cdg", "Claire Dumont", decision)
    decision = approvals.Decision("Christophe Coulon", "Président", True)
    assert approvals.countersign_as_operator(
        settings, "LFN-CONV-2026-00001", "syndicat", "Claire Dumont", decision
    ).in_force
    with unit_of_work(settings) as uow:
        convention = uow.session.exec(select(Convention)).one()
        final_sha = convention.final_sha256
        hashes = dict(convention.document_hashes)
    final = tmp_path / "LFN-CONV-2026-00001.pdf"
    final.write_bytes(paperwork.load(settings, final_sha))
    text = PdfReader(BytesIO(final.read_bytes())).pages[-1].extract_text()
    assert "Documents approuvés par Jeanne Dupont" in text and "127.0.0.1" in text and "pytest" in text
    assert "Enregistrée par Claire Dumont" in text
    assert len(hashes) == 3 and all(sha[:32] in text.replace("\n", "") for sha in hashes.values())

    monkeypatch.setattr(cli_documents, "get_settings", lambda: settings)
    runner = CliRunner()
    result = runner.invoke(documents_app, ["verify", str(final)])
    assert result.exit_code == 0, result.output
    assert "Page de preuve de la convention LFN-CONV-2026-00001" in result.output
    assert "Fichier identique à la convention finale enregistrée en base : oui" in result.output
    assert "Signature (collectivité) de Jeanne Dupont : concorde avec la base" in result.output
    assert "Signature (centre de gestion) de René Hocq : concorde avec la base" in result.output
    assert "Signature (syndicat) de Christophe Coulon : concorde avec la base" in result.output
    assert "Signatures et base de données : CONCORDANTES" in result.output
    data = __import__("json").loads(runner.invoke(documents_app, ["verify", str(final), "--json"]).output)
    assert data["evidence"]["matches"] is True and data["evidence"]["same_file"] is True
    assert [p["party"] for p in data["evidence"]["parties"]] == ["collectivité", "centre de gestion", "syndicat"]

    # The database says the mayor signed from elsewhere: the page no longer matches it.
    with unit_of_work(settings) as uow:
        mayor = uow.session.exec(select(Approval).where(Approval.party == "collectivity")).one()
        mayor.ip_address = "203.0.113.9"
        uow.session.add(mayor)
        uow.commit()
    result = runner.invoke(documents_app, ["verify", str(final)])
    assert result.exit_code == 1, result.output
    assert "Signature (collectivité) de Jeanne Dupont : ne concorde pas" in result.output
    assert "adresse IP : « 203.0.113.9 » enregistré en base, absent de la page" in result.output
    assert "Signatures et base de données : DIFFÉRENTES" in result.output
    assert "Verdict : AUTHENTIQUE" in result.output  # the seal itself is intact

    # No database: the seal is checked, the signatures could not be compared.
    elsewhere = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'absente.sqlite3'}"})
    monkeypatch.setattr(cli_documents, "get_settings", lambda: elsewhere)
    result = runner.invoke(documents_app, ["verify", str(final), "--ca", str(dev_trust_root(settings))])
    assert result.exit_code == 0, result.output
    assert "Non comparée à la base de données : aucune base de données ici" in result.output
    assert not (tmp_path / "absente.sqlite3").exists()
