"""`mairie documents verify FILE.pdf [--json]` and the per-issuer sealing settings (issue 20)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from documents import Issuer, render_facture, samples
from documents.seal import SealError, seal
from documents.seal_dev import TEST_MARK, issue_test_sealing_certificate, make_test_ca, pkcs12_bytes
from mairie.cli_documents import documents_app
from mairie.services.sealing import dev_trust_root, ensure_dev_certificates, sealer_for
from mairie.settings import Settings, get_settings
from tests.pdf_checks import harmless_byte

runner = CliRunner()


def _invoice(settings: Settings) -> bytes:
    return render_facture(
        samples.sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62))
    )


@pytest.fixture
def sealed_file(tmp_path: Path) -> Path:
    settings = get_settings()
    target = tmp_path / "facture-scellee.pdf"
    target.write_bytes(seal(_invoice(settings), sealer_for(settings, settings.syndicat)))
    return target


def test_development_makes_a_marked_test_certificate_once(tmp_path: Path):
    settings = get_settings()
    first = sealer_for(settings, settings.syndicat)
    assert TEST_MARK in first.signing_cert.subject.human_friendly
    assert (settings.seal_path / "test-ca.pem").exists()
    again = sealer_for(settings, settings.syndicat)
    assert again.signing_cert.dump() == first.signing_cert.dump()
    assert dev_trust_root(settings) == settings.seal_path / "test-ca.pem"


def test_verify_prints_the_report_in_french(sealed_file: Path):
    result = runner.invoke(documents_app, ["verify", str(sealed_file)])
    assert result.exit_code == 0, result.output
    assert "Scellé par : TEST — " in result.output
    assert "Contenu scellé intact : oui" in result.output
    assert "Non modifié depuis le cachet : oui" in result.output
    assert "Certificat reconnu : oui" in result.output  # the development test CA
    assert "XML Factur-X : présent, valide" in result.output
    assert "Verdict : AUTHENTIQUE" in result.output


def test_verify_json_and_a_tampered_file(sealed_file: Path):
    data = sealed_file.read_bytes()
    title = harmless_byte(data)
    tampered = sealed_file.with_name("modifiee.pdf")
    tampered.write_bytes(data[:title] + b"G" + data[title + 1 :])
    result = runner.invoke(documents_app, ["verify", str(tampered), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert report["sealed"] is True
    assert report["intact"] is False
    assert report["genuine"] is False
    assert report["facturx_valid"] is True


def test_verify_an_unsealed_file_and_a_missing_file(tmp_path: Path):
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(_invoice(get_settings()))
    result = runner.invoke(documents_app, ["verify", str(plain)])
    assert result.exit_code == 1
    assert "Aucun cachet dans ce PDF." in result.output
    assert "Verdict : NON AUTHENTIQUE" in result.output
    result = runner.invoke(documents_app, ["verify", str(tmp_path / "absent.pdf")])
    assert result.exit_code == 2
    assert "lecture impossible" in result.output
    assert "Traceback" not in result.output


def test_verify_with_another_ca_is_not_trusted(sealed_file: Path, tmp_path: Path):
    other, _key = make_test_ca()
    pem_file = tmp_path / "autre-ca.pem"
    pem_file.write_bytes(other.public_bytes(Encoding.PEM))
    result = runner.invoke(documents_app, ["verify", str(sealed_file), "--ca", str(pem_file)])
    assert result.exit_code == 1, result.output
    assert "Certificat reconnu : non" in result.output


def test_the_issuer_pkcs12_setting_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    ca, ca_key = make_test_ca()
    now = datetime.now(UTC)
    cert, key = issue_test_sealing_certificate(
        ca, ca_key, issuer_name="CDG 62 réglé", not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
    )
    p12 = tmp_path / "cdg62.p12"
    p12.write_bytes(pkcs12_bytes(cert, key, ca, "mot-de-passe", "cdg62"))
    monkeypatch.setenv("MAIRIE_CDG62__SEAL_PKCS12", str(p12))
    monkeypatch.setenv("MAIRIE_CDG62__SEAL_PASSWORD", "mot-de-passe")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.cdg62.seal_pkcs12 == p12
    assert "mot-de-passe" not in repr(settings.cdg62)
    assert "seal_password" not in settings.cdg62.model_dump()
    sealer = sealer_for(settings, settings.cdg62)
    assert sealer.signing_cert.subject.native["common_name"] == "TEST — CDG 62 réglé"


def test_an_expired_issuer_certificate_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    ca, ca_key = make_test_ca()
    now = datetime.now(UTC)
    cert, key = issue_test_sealing_certificate(
        ca, ca_key, issuer_name="CDG 62", not_before=now - timedelta(days=60), not_after=now - timedelta(days=2)
    )
    p12 = tmp_path / "cdg62.p12"
    p12.write_bytes(pkcs12_bytes(cert, key, ca, "mot-de-passe", "cdg62"))
    monkeypatch.setenv("MAIRIE_CDG62__SEAL_PKCS12", str(p12))
    monkeypatch.setenv("MAIRIE_CDG62__SEAL_PASSWORD", "mot-de-passe")
    get_settings.cache_clear()
    settings = get_settings()
    with pytest.raises(SealError, match="Certificat de cachet expiré le"):
        sealer_for(settings, settings.cdg62)


def test_outside_development_a_missing_certificate_names_the_settings():
    settings = get_settings().model_copy(update={"environment": "production"})
    with pytest.raises(SealError, match="MAIRIE_SYNDICAT__SEAL_PKCS12 et MAIRIE_SYNDICAT__SEAL_PASSWORD"):
        sealer_for(settings, settings.syndicat)
    assert not settings.seal_path.exists()  # no test certificate made outside development


def test_init_makes_the_development_certificates_of_issuers_without_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    own = tmp_path / "cdg59.p12"
    monkeypatch.setenv("MAIRIE_CDG59__SEAL_PKCS12", str(own))
    get_settings.cache_clear()
    settings = get_settings()
    made = ensure_dev_certificates(settings)
    assert sorted(p.name for p in made) == sorted(f"{i.code.lower()}.p12" for i in (settings.syndicat, settings.cdg62))
    assert all(p.parent == settings.seal_path and p.exists() for p in made)
    assert ensure_dev_certificates(settings) == made  # made once: the same files again
    assert not own.exists()  # an issuer's own certificate is never made up
    production = settings.model_copy(update={"environment": "production"})
    assert ensure_dev_certificates(production) == []


def test_a_tsa_url_setting_timestamps_the_seals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from documents.seal_dev import test_ca
    from documents.tsa_dev import LocalTimestampAuthority
    from mairie.services.sealing import seal_document, seal_key_for

    settings = get_settings()
    sealer_for(settings, settings.syndicat)  # the development CA and certificate
    with LocalTimestampAuthority(*test_ca(settings.seal_path)) as tsa:
        monkeypatch.setenv("MAIRIE_SEAL_TSA_URL", tsa.url)
        monkeypatch.setenv("MAIRIE_CDG62__SEAL_TSA_URL", tsa.url + "?cdg62")
        get_settings.cache_clear()
        settings = get_settings()
        assert seal_key_for(settings, settings.syndicat).tsa_url == tsa.url
        assert seal_key_for(settings, settings.cdg62).tsa_url == tsa.url + "?cdg62"  # the issuer's own wins
        target = tmp_path / "horodatee.pdf"
        target.write_bytes(seal_document(settings, settings.syndicat, _invoice(settings)))
    result = runner.invoke(documents_app, ["verify", str(target)])
    assert result.exit_code == 0, result.output
    assert "Horodaté le : " in result.output and "par Horodatage de TEST Mairie Connectée (RFC 3161)" in result.output
    assert "Niveau PAdES : B-T" in result.output
    data = json.loads(runner.invoke(documents_app, ["verify", str(target), "--json"]).output)
    assert data["level"] == "B-T" and data["timestamped_at"] is not None


def test_a_tsa_url_must_be_http(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAIRIE_SEAL_TSA_URL", "tsa.example")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="http"):
        get_settings()


def test_seal_long_term_setting_makes_b_lt_seals(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from documents.seal_dev import test_ca
    from documents.tsa_dev import LocalTimestampAuthority
    from mairie.services.sealing import seal_document, seal_key_for

    monkeypatch.setenv("MAIRIE_SEAL_LONG_TERM", "true")
    get_settings.cache_clear()
    settings = get_settings()
    refusal = (
        r"MAIRIE_SEAL_LONG_TERM \(cachets B-LT\) demande une autorité d'horodatage : renseignez MAIRIE_SEAL_TSA_URL"
    )
    with pytest.raises(SealError, match=refusal):
        seal_key_for(settings, settings.syndicat)
    sealer_for(settings.model_copy(update={"seal_long_term": False}), settings.syndicat)  # the test CA
    with LocalTimestampAuthority(*test_ca(settings.seal_path)) as tsa:
        monkeypatch.setenv("MAIRIE_SEAL_TSA_URL", tsa.url)
        get_settings.cache_clear()
        settings = get_settings()
        key = seal_key_for(settings, settings.cdg62)
        assert key.level == "B-LT" and key.crls == (settings.seal_path / "test-ca.crl",)
        target = tmp_path / "b-lt.pdf"
        target.write_bytes(seal_document(settings, settings.cdg62, _invoice(settings)))
    result = runner.invoke(documents_app, ["verify", str(target)])
    assert result.exit_code == 0, result.output
    assert "Niveau PAdES : B-LT" in result.output and "Verdict : AUTHENTIQUE" in result.output
