"""The development test CA and per-issuer sealing certificates (`cryptography`), in a folder of the data
directory. Every subject says "CERTIFICAT DE TEST — développement" (its organisational unit; the common name starts
"TEST"): nothing sealed with them is evidence.

`ensure_dev_sealer(folder, code, name)` makes the CA once (`test-ca.pem`, `test-ca.key.pem`) and one
PKCS#12 per issuer (`<code>.p12`), and returns the PKCS#12 path with its password. Never for production.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEST_MARK = "CERTIFICAT DE TEST — développement"
CA_FILE = "test-ca.pem"
CA_KEY_FILE = "test-ca.key.pem"
CRL_FILE = "test-ca.crl"  # the test CA's certificate revocation list (PEM), for PAdES B-LT in development


@dataclass(frozen=True)
class DevSealer:
    """Where an issuer's development PKCS#12 is, and its password (also written beside it, as `<code>.pass`)."""

    pkcs12: Path
    password: str
    ca: Path


def _fit(text: str, limit: int = 64) -> str:
    """`text` cut to the 64 UTF-8 bytes X.520 allows a common or organisation name."""
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(organization)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_MARK),
            x509.NameAttribute(NameOID.COMMON_NAME, _fit(common_name)),
        ]
    )


def make_test_ca(
    *, now: datetime | None = None, days: int = 3650
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed test CA, marked as such in its subject."""
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Autorité de TEST Mairie Connectée", "Mairie Connectée (test)")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_test_sealing_certificate(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    issuer_name: str,
    not_before: datetime,
    not_after: datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A sealing certificate for `issuer_name` signed by the test CA, valid from `not_before` to `not_after`."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"TEST — {issuer_name}", issuer_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def pkcs12_bytes(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, password: str, label: str
) -> bytes:
    """A PKCS#12 archive of `key`, `cert` and the CA certificate, encrypted with `password`."""
    return pkcs12.serialize_key_and_certificates(
        label.encode(), key, cert, [ca], serialization.BestAvailableEncryption(password.encode())
    )


def _load_or_make_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = folder / CA_FILE, folder / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"Clé de l'autorité de test inattendue : {key_path}")
        return cert, key
    cert, key = make_test_ca()
    folder.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def test_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The test CA of `folder` (made if absent): to issue other test certificates, e.g. a local TSA's."""
    return _load_or_make_ca(folder)


def ensure_test_crl(folder: Path, *, days: int = 7) -> Path:
    """The test CA's CRL (nothing revoked) in `folder`, signed again when it ends within a day."""
    from cryptography.x509 import load_pem_x509_crl

    path = folder / CRL_FILE
    now = datetime.now(UTC)
    if path.exists():
        current = load_pem_x509_crl(path.read_bytes())
        if current.next_update_utc is not None and current.next_update_utc > now + timedelta(days=1):
            return path
    ca, ca_key = _load_or_make_ca(folder)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=days))
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def ensure_dev_sealer(folder: Path, code: str, issuer_name: str, *, days: int = 825) -> DevSealer:
    """The issuer's development PKCS#12 in `folder`, made (with the test CA) if absent or expired."""
    ca, ca_key = _load_or_make_ca(folder)
    p12, pass_file = folder / f"{code.lower()}.p12", folder / f"{code.lower()}.pass"
    now = datetime.now(UTC)
    if p12.exists() and pass_file.exists():
        password = pass_file.read_text().strip()
        _key, cert, _others = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode())
        if cert is not None and cert.not_valid_after_utc > now + timedelta(days=1):
            return DevSealer(p12, password, folder / CA_FILE)
    cert, key = issue_test_sealing_certificate(
        ca, ca_key, issuer_name=issuer_name, not_before=now - timedelta(minutes=5), not_after=now + timedelta(days=days)
    )
    password = secrets.token_urlsafe(18)
    p12.write_bytes(pkcs12_bytes(cert, key, ca, password, f"{code} {TEST_MARK}"))
    p12.chmod(0o600)
    pass_file.write_text(password + "\n")
    pass_file.chmod(0o600)
    return DevSealer(p12, password, folder / CA_FILE)
