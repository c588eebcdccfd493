"""Outside development, a sealing certificate that cannot seal refuses the start-up (issue 20): `mairie up`,
`mairie web`, `mairie quote-worker` and `mairie documents check-seals` (before the Prefect worker) exit with
a French message naming the setting — missing, expired, not yet valid, a key that is not the certificate's,
no signature key usage. Valid certificates start."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from documents.seal_dev import issue_test_sealing_certificate, make_test_ca, pkcs12_bytes
from mairie import cli, cli_documents, cli_web
from mairie.services.sealing import check_at_startup, startup_problems
from mairie.settings import Settings
from tests.conftest import real_identities

NOW = datetime.now(UTC)
runner = CliRunner()


@pytest.fixture(scope="module")
def ca():
    return make_test_ca()


def _p12(folder: Path, name: str, cert, key, ca_cert) -> Path:
    path = folder / f"{name}.p12"
    path.write_bytes(pkcs12_bytes(cert, key, ca_cert, "secret-p12", name))
    return path


def _valid(folder: Path, ca, name: str) -> Path:
    cert, key = issue_test_sealing_certificate(
        ca[0], ca[1], issuer_name=name, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=365)
    )
    return _p12(folder, name, cert, key, ca[0])


def _production(tmp_path: Path, **seals: dict[str, object]) -> Settings:
    identities = real_identities()
    for name, values in seals.items():
        identities[name] = identities[name] | values
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        data_dir=tmp_path / "data",
        secret_key=secrets.token_urlsafe(32),
        **identities,
    )


@pytest.fixture
def valid_seals(tmp_path: Path, ca) -> dict[str, dict[str, object]]:
    return {
        name: {"seal_pkcs12": _valid(tmp_path, ca, name), "seal_password": "secret-p12"}
        for name in ("syndicat", "cdg62", "cdg59")
    }


def test_valid_certificates_pass(tmp_path: Path, valid_seals):
    settings = _production(tmp_path, **valid_seals)
    assert startup_problems(settings) == []
    check_at_startup(settings)  # does not raise


def test_development_needs_no_certificate(tmp_path: Path):
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    assert startup_problems(settings) == []


def test_a_missing_certificate_is_named(tmp_path: Path, valid_seals):
    del valid_seals["cdg59"]
    (problem,) = startup_problems(_production(tmp_path, **valid_seals))
    assert "MAIRIE_CDG59__SEAL_PKCS12 et MAIRIE_CDG59__SEAL_PASSWORD" in problem


def test_expired_and_not_yet_valid_certificates_are_refused(tmp_path: Path, ca, valid_seals):
    expired, expired_key = issue_test_sealing_certificate(
        ca[0], ca[1], issuer_name="Expiré", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)
    )
    future, future_key = issue_test_sealing_certificate(
        ca[0], ca[1], issuer_name="Futur", not_before=NOW + timedelta(days=2), not_after=NOW + timedelta(days=400)
    )
    valid_seals["syndicat"]["seal_pkcs12"] = _p12(tmp_path, "expire", expired, expired_key, ca[0])
    valid_seals["cdg62"]["seal_pkcs12"] = _p12(tmp_path, "futur", future, future_key, ca[0])
    problems = startup_problems(_production(tmp_path, **valid_seals))
    assert len(problems) == 2
    assert problems[0].startswith("MAIRIE_SYNDICAT__SEAL_PKCS12 : Certificat de cachet expiré le")
    assert problems[1].startswith("MAIRIE_CDG62__SEAL_PKCS12 : Certificat de cachet pas encore valide")


def test_a_wrong_password_is_refused(tmp_path: Path, valid_seals):
    valid_seals["cdg62"]["seal_password"] = "pas-le-bon"
    (problem,) = startup_problems(_production(tmp_path, **valid_seals))
    assert problem.startswith("MAIRIE_CDG62__SEAL_PKCS12 : Fichier de cachet")
    assert "mot de passe erroné" in problem


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path, ca, valid_seals):
    cert, _key = issue_test_sealing_certificate(
        ca[0], ca[1], issuer_name="Syndicat", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30)
    )
    other = ec.generate_private_key(ec.SECP256R1())
    key_file, chain_file = tmp_path / "cachet.key.pem", tmp_path / "cachet.pem"
    key_file.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret-pem"),
        )
    )
    pem = serialization.Encoding.PEM
    chain_file.write_bytes(cert.public_bytes(pem) + ca[0].public_bytes(pem))
    valid_seals["syndicat"] = {"seal_key": key_file, "seal_certificate": chain_file, "seal_password": "secret-pem"}
    (problem,) = startup_problems(_production(tmp_path, **valid_seals))
    assert problem.startswith("MAIRIE_SYNDICAT__SEAL_KEY : La clé privée du cachet ne correspond pas à son certificat")


_only_key_agreement = dict.fromkeys(
    ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_cert_sign", "crl_sign",
     "encipher_only", "decipher_only"),
    False,
) | {"key_agreement": True}  # fmt: skip


def test_a_certificate_without_signature_key_usage_is_refused(tmp_path: Path, ca, valid_seals):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Chiffrement seulement")]))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.KeyUsage(**_only_key_agreement), critical=True)
        .sign(ca[1], hashes.SHA256())
    )
    valid_seals["cdg59"]["seal_pkcs12"] = _p12(tmp_path, "chiffrement", cert, key, ca[0])
    (problem,) = startup_problems(_production(tmp_path, **valid_seals))
    assert problem.startswith("MAIRIE_CDG59__SEAL_PKCS12 : Certificat de cachet sans usage de signature")


@pytest.mark.parametrize(
    ("command", "where"),
    [(["up"], "cli"), (["web"], "cli_web"), (["quote-worker"], "cli"), (["documents", "check-seals"], "cli_documents")],
)
def test_the_entry_points_refuse_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca, command, where):
    expired, key = issue_test_sealing_certificate(
        ca[0], ca[1], issuer_name="Expiré", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1)
    )
    seals = {
        name: {"seal_pkcs12": _valid(tmp_path, ca, name), "seal_password": "secret-p12"}
        for name in ("syndicat", "cdg62")
    }
    seals["cdg59"] = {"seal_pkcs12": _p12(tmp_path, "expire", expired, key, ca[0]), "seal_password": "secret-p12"}
    production = _production(tmp_path, **seals)
    for module in (cli, cli_web, cli_documents):
        monkeypatch.setattr(module, "get_settings", lambda: production)
    started: list[str] = []
    monkeypatch.setattr("mairie.stack.check_exposure", lambda *a: started.append("up"))
    monkeypatch.setattr("mairie.stack.serve_quote_tasks", lambda *a, **k: started.append("quote-worker"))
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: started.append("web"))
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 2, result.output
    assert "MAIRIE_CDG59__SEAL_PKCS12 : Certificat de cachet expiré le" in result.output
    assert started == []  # nothing started


def test_check_seals_lists_the_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, valid_seals):
    production = _production(tmp_path, **valid_seals)
    monkeypatch.setattr(cli_documents, "get_settings", lambda: production)
    result = runner.invoke(cli.app, ["documents", "check-seals"])
    assert result.exit_code == 0, result.output
    for code in ("LFN", "CDG62", "CDG59"):
        assert f"{code} : " in result.output
    assert "PAdES B-B" in result.output
