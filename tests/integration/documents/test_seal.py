"""PAdES seals (issue 20): a sealed Factur-X invoice keeps its PDF bytes and its valid XML, the seal
verifies offline, one changed byte inside the sealed range is detected, and an expired certificate is
refused when sealing."""

import random
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from facturx import get_xml_from_pdf
from pyhanko.pdf_utils.generic import NameObject, TextStringObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pypdf import PdfReader

from documents import Issuer, render_avoir, render_convention, render_facture, samples, schematron
from documents.seal import SEAL_FIELD, SealError, load_sealer, seal, verify
from documents.seal_dev import (
    TEST_MARK,
    ensure_dev_sealer,
    issue_test_sealing_certificate,
    make_test_ca,
    pkcs12_bytes,
)
from mairie.settings import Settings
from tests.pdf_checks import assert_pdfa3b_facturx, harmless_byte


@pytest.fixture(scope="module")
def invoice() -> bytes:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    facture = samples.sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))
    return render_facture(facture)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory):
    return ensure_dev_sealer(tmp_path_factory.mktemp("seal"), "SYNDICAT", "La Fibre Numérique 59-62")


@pytest.fixture(scope="module")
def sealed(invoice: bytes, dev) -> bytes:
    return seal(invoice, load_sealer(dev.pkcs12, dev.password))


def _ca(dev) -> asn1_x509.Certificate:
    _type, _headers, der = pem.unarmor(dev.ca.read_bytes())
    return asn1_x509.Certificate.load(der)


def _byte_range(pdf: bytes) -> list[int]:
    start = pdf.rindex(b"/ByteRange")
    inside = pdf[pdf.index(b"[", start) + 1 : pdf.index(b"]", start)]
    return [int(n) for n in inside.split()]


def test_the_seal_is_an_incremental_update_that_keeps_the_facturx_xml_valid(invoice: bytes, sealed: bytes):
    assert sealed[: len(invoice)] == invoice  # every byte of the PDF/A-3 is kept; the seal is appended
    _name, before = get_xml_from_pdf(invoice, check_xsd=True)
    _name, after = get_xml_from_pdf(sealed, check_xsd=True)
    assert after == before
    assert schematron.check_all(after) == []


def test_the_sealed_invoice_is_still_a_pdfa3b_with_an_invisible_printable_seal_field(invoice: bytes, sealed: bytes):
    reader = PdfReader(BytesIO(sealed))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    original = PdfReader(BytesIO(invoice)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert xmp == original  # the XMP packet (PDF/A identification, Factur-X extension schema) is kept as is
    assert_pdfa3b_facturx(sealed)
    assert len(reader.pages) == len(PdfReader(BytesIO(invoice)).pages)
    assert dict(reader.metadata or {}) == dict(PdfReader(BytesIO(invoice)).metadata or {})  # Info kept too
    (field,) = [f.get_object() for f in reader.trailer["/Root"]["/AcroForm"]["/Fields"]]
    assert field["/FT"] == "/Sig" and field["/T"] == SEAL_FIELD
    # PDF/A-3: an annotation without appearance stream must have a zero-size Rect, and the Print flag (bit 3).
    assert [float(x) for x in field["/Rect"]] == [0, 0, 0, 0]
    assert int(field["/F"]) & 4
    assert field["/V"].get_object()["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES baseline


def test_the_seal_verifies_offline_with_who_when_and_the_certificate(sealed: bytes, dev):
    report = verify(sealed, trust_roots=[_ca(dev)])
    assert report.sealed and report.intact and report.unchanged_since
    assert report.trusted is True
    assert report.genuine
    assert report.sealed_by == "TEST — La Fibre Numérique 59-62"
    assert TEST_MARK in (report.certificate_subject or "")
    assert report.sealed_at is not None
    assert abs(datetime.now(UTC) - report.sealed_at) < timedelta(minutes=10)
    assert report.certificate_sha256 is not None and len(report.certificate_sha256) == 64
    assert report.facturx_present and report.facturx_valid
    assert report.problems == ()


def test_a_certificate_outside_the_trust_roots_is_not_trusted(sealed: bytes):
    other_ca, _key = make_test_ca()
    report = verify(sealed, trust_roots=[asn1_x509.Certificate.load(other_ca.public_bytes(Encoding.DER))])
    assert report.intact
    assert report.trusted is False
    assert not report.genuine


def test_one_changed_byte_inside_the_sealed_range_is_detected(sealed: bytes):
    a, b, _c, _d = _byte_range(sealed)
    at = harmless_byte(sealed)
    assert a <= at < a + b  # inside the first signed range (the original invoice)
    tampered = bytearray(sealed)
    tampered[at] ^= 0x01  # a byte of the binary-marker comment: the PDF still parses, its hash does not match
    report = verify(bytes(tampered))
    assert report.sealed
    assert not report.intact
    assert not report.genuine
    assert any("modifié" in p for p in report.problems)


def test_any_changed_byte_inside_the_sealed_ranges_is_never_genuine(sealed: bytes):
    a, b, c, d = _byte_range(sealed)
    rng = random.Random(20)
    positions = [rng.randrange(a, a + b) for _ in range(4)] + [rng.randrange(c, c + d) for _ in range(2)]
    for position in positions:
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        report = verify(bytes(tampered))
        assert not report.genuine, position


def test_an_update_appended_after_the_seal_is_reported(sealed: bytes):
    writer = IncrementalPdfFileWriter(BytesIO(sealed), strict=False)
    info = writer.trailer["/Info"].get_object()
    info[NameObject("/Title")] = TextStringObject("Facture modifiée")
    writer.update_container(info)
    out = BytesIO()
    writer.write(out)
    report = verify(out.getvalue())
    assert report.intact  # the sealed bytes themselves are untouched
    assert not report.unchanged_since
    assert not report.genuine
    assert any("complété après le cachet" in p for p in report.problems)


def test_an_unsealed_pdf_is_reported_unsealed(invoice: bytes):
    report = verify(invoice)
    assert not report.sealed and not report.genuine
    assert report.facturx_valid
    assert report.problems == ("Aucun cachet dans ce PDF.",)


def test_an_expired_certificate_is_refused_when_sealing(invoice: bytes, tmp_path: Path):
    ca, ca_key = make_test_ca()
    now = datetime.now(UTC)
    cert, key = issue_test_sealing_certificate(
        ca, ca_key, issuer_name="CDG 62", not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    p12 = tmp_path / "expired.p12"
    p12.write_bytes(pkcs12_bytes(cert, key, ca, "secret-de-test", "expired"))
    with pytest.raises(SealError, match="Certificat de cachet expiré le"):
        seal(invoice, load_sealer(p12, "secret-de-test"))


def test_a_wrong_password_is_a_clear_error(dev):
    with pytest.raises(SealError, match="mot de passe erroné"):
        load_sealer(dev.pkcs12, "pas-le-bon")


def test_the_dev_sealer_is_made_once_and_reused(dev):
    again = ensure_dev_sealer(dev.pkcs12.parent, "SYNDICAT", "La Fibre Numérique 59-62")
    assert again == dev


def test_a_long_accented_issuer_name_fits_the_certificate_subject():
    ca, ca_key = make_test_ca()
    now = datetime.now(UTC)
    name = "Centre de gestion de la fonction publique territoriale du Pas-de-Calais — Arras"
    cert, _key = issue_test_sealing_certificate(
        ca, ca_key, issuer_name=name, not_before=now, not_after=now + timedelta(days=1)
    )
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(common_name, str)
    assert common_name.startswith("TEST — Centre de gestion")
    assert len(common_name.encode("utf-8")) <= 64
    unit = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert unit == TEST_MARK


def test_a_sealed_credit_note_and_a_sealed_convention_verify(dev):
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    sealer = load_sealer(dev.pkcs12, dev.password)
    avoir = seal(render_avoir(samples.sample_avoir(syndicat, cdg)), sealer)
    _name, xml = get_xml_from_pdf(avoir, check_xsd=True)
    assert schematron.check_all(xml) == []
    report = verify(avoir, trust_roots=[_ca(dev)])
    assert report.genuine and report.facturx_valid
    convention = seal(render_convention(samples.sample_convention(syndicat, cdg)), sealer)
    report = verify(convention, trust_roots=[_ca(dev)])
    assert report.genuine
    assert not report.facturx_present  # a convention carries no Factur-X XML


# PAdES B-T: the seal carries an RFC 3161 token from a timestamp authority (a local stand-in here) ------------


def test_a_timestamp_authority_makes_the_seal_b_t(invoice: bytes, dev, tmp_path: Path):
    from documents.seal import SealKey, seal_with
    from documents.seal_dev import test_ca
    from documents.tsa_dev import LocalTimestampAuthority

    ca, ca_key = test_ca(dev.ca.parent)
    with LocalTimestampAuthority(ca, ca_key) as tsa:
        key = SealKey(pkcs12=dev.pkcs12, password=dev.password, tsa_url=tsa.url)
        before = datetime.now(UTC)
        sealed = seal_with(invoice, key)
        first = tsa.requests  # 2: the first token sizes the signature's room
        again = seal_with(invoice, key)
        assert tsa.requests == first + 1  # then one token per seal
    assert verify(again, trust_roots=[_ca(dev)]).genuine
    report = verify(sealed, trust_roots=[_ca(dev)])
    assert report.genuine, report.problems
    assert report.level == "B-T" and key.level == "B-T"
    assert report.timestamp_authority == "Horodatage de TEST Mairie Connectée"
    assert report.timestamped_at is not None
    assert before - timedelta(seconds=1) <= report.timestamped_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert sealed[: len(invoice)] == invoice
    assert schematron.check_all(get_xml_from_pdf(sealed, check_xsd=True)[1]) == []
    # one byte changed in the sealed range: detected whatever the timestamp says
    at = harmless_byte(sealed)
    assert not verify(sealed[:at] + b"G" + sealed[at + 1 :], trust_roots=[_ca(dev)]).genuine


def test_an_unreachable_timestamp_authority_refuses_the_seal(invoice: bytes, dev):
    import socket

    from documents.seal import SealKey, seal_with

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    key = SealKey(pkcs12=dev.pkcs12, password=dev.password, tsa_url=f"http://127.0.0.1:{port}/tsa")
    with pytest.raises(SealError, match=re.escape(f"Horodatage impossible : l'autorité d'horodatage http://127.0.0.1:{port}/tsa")):
        seal_with(invoice, key)


def test_later_seals_reuse_the_first_estimate_of_the_signature_room(invoice: bytes, tmp_path: Path):
    from documents import seal as sealing

    dev = ensure_dev_sealer(tmp_path / "seal", "CDG59", "Centre de gestion du Nord")
    sealer = load_sealer(dev.pkcs12, dev.password)
    first = seal(invoice, sealer)
    room = sealing._RESERVED[sealer.signing_cert.sha256]
    assert room == sealing._contents_room(first) + sealing.ROOM_MARGIN
    again = seal(invoice, sealer)  # no dummy signature this time: the room is known
    assert sealing._contents_room(again) == room
    assert verify(again, trust_roots=[_ca(dev)]).genuine
    sealing._RESERVED[sealer.signing_cert.sha256] = 64  # far too small: sealed again with a new estimate
    third = seal(invoice, sealer)
    assert verify(third, trust_roots=[_ca(dev)]).genuine
    assert sealing._RESERVED[sealer.signing_cert.sha256] == sealing._contents_room(third) + sealing.ROOM_MARGIN


# PAdES B-LT: the revocation data (here the test CA's CRL) embedded in a DSS after the timestamped seal ----


def test_long_term_seals_embed_the_revocation_data_and_keep_the_pdfa(invoice: bytes, tmp_path: Path):
    from documents.seal import SealKey, seal_with
    from documents.seal_dev import ensure_test_crl, test_ca
    from documents.tsa_dev import LocalTimestampAuthority

    folder = tmp_path / "seal"
    dev = ensure_dev_sealer(folder, "SYNDICAT", "La Fibre Numérique 59-62")
    crl = ensure_test_crl(folder)
    assert ensure_test_crl(folder) == crl and crl.read_bytes().startswith(b"-----BEGIN X509 CRL-----")
    with LocalTimestampAuthority(*test_ca(folder)) as tsa:
        p12 = {"pkcs12": dev.pkcs12, "password": dev.password, "tsa_url": tsa.url, "long_term": True}
        key = SealKey(**p12, crls=(crl,), trust_roots=(dev.ca,))
        assert key.level == "B-LT"
        sealed = seal_with(invoice, key)
        # without the CRL the certificates' revocation cannot be known: refused, nothing made
        no_crl = SealKey(**p12, trust_roots=(dev.ca,))
        with pytest.raises(SealError, match="Cachet B-LT impossible : les données de révocation"):
            seal_with(invoice, no_crl)
    assert sealed[: len(invoice)] == invoice
    report = verify(sealed, trust_roots=[_ca(dev)])
    assert report.genuine, report.problems
    assert report.level == "B-LT" and report.unchanged_since  # the DSS is the one later change allowed
    reader = PdfReader(BytesIO(sealed))
    dss = reader.trailer["/Root"]["/DSS"].get_object()
    assert len(dss["/CRLs"]) == 1 and len(dss["/Certs"]) >= 2
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert xmp == PdfReader(BytesIO(invoice)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert schematron.check_all(get_xml_from_pdf(sealed, check_xsd=True)[1]) == []
    at = harmless_byte(sealed)
    assert not verify(sealed[:at] + b"G" + sealed[at + 1 :], trust_roots=[_ca(dev)]).genuine
    # something else appended after the DSS is still a change
    appended = IncrementalPdfFileWriter(BytesIO(sealed), strict=False)
    appended.root["/Lang"] = TextStringObject("en")
    appended.update_root()
    out = BytesIO()
    appended.write(out)
    changed = verify(out.getvalue(), trust_roots=[_ca(dev)])
    assert changed.intact and not changed.unchanged_since and not changed.genuine
    # and so is a new title in the Info dictionary, which pyHanko's own analysis would let through
    retitled = IncrementalPdfFileWriter(BytesIO(sealed), strict=False)
    info = retitled.trailer["/Info"].get_object()
    info[NameObject("/Title")] = TextStringObject("Facture modifiée")
    retitled.update_container(info)
    out = BytesIO()
    retitled.write(out)
    assert not verify(out.getvalue(), trust_roots=[_ca(dev)]).unchanged_since


def test_long_term_needs_a_timestamp_authority(invoice: bytes, dev):
    from documents.seal import SealKey, seal_with

    with pytest.raises(SealError, match="B-LT demande une autorité d'horodatage"):
        seal_with(invoice, SealKey(pkcs12=dev.pkcs12, password=dev.password, long_term=True))
