"""A local RFC 3161 timestamp authority for development and tests: pyHanko's `DummyTimeStamper` behind a
small HTTP server on loopback (POST application/timestamp-query → application/timestamp-reply).

Its certificate says "CERTIFICAT DE TEST — développement" like the test sealing certificates, and is
issued by the given test CA (self-signed without one). Never for production: a real authority is a
qualified timestamping service (docs/operations.md).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from documents.seal_dev import TEST_MARK

CONTENT_TYPE = "application/timestamp-reply"


def _tsa_certificate(
    ca: x509.Certificate | None, ca_key: ec.EllipticCurvePrivateKey | None
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the dummy stamper signs with RSA only
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mairie Connectée (test)"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEST_MARK),
            x509.NameAttribute(NameOID.COMMON_NAME, "Horodatage de TEST Mairie Connectée"),
        ]
    )
    now = datetime.now(UTC)
    signer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = ca_key if ca_key is not None else key
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.subject if ca is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    return cert, key


class LocalTimestampAuthority:
    """`with LocalTimestampAuthority(ca, ca_key) as tsa: … tsa.url …` — answers every request, at once."""

    def __init__(
        self, ca: x509.Certificate | None = None, ca_key: ec.EllipticCurvePrivateKey | None = None, port: int = 0
    ) -> None:
        cert, key = _tsa_certificate(ca, ca_key)
        self.certificate = cert
        der_key = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        embedded = [asn1_x509.Certificate.load(ca.public_bytes(serialization.Encoding.DER))] if ca else []
        self._stamper = DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
            tsa_key=asn1_keys.PrivateKeyInfo.load(der_key),
            certs_to_embed=embedded,  # type: ignore[arg-type]
        )
        self.requests = 0
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = tsp.TimeStampReq.load(self.rfile.read(length))
                    answer = authority._stamper.request_tsa_response(request).dump()
                except Exception:  # a malformed request: 400, as a real authority would answer
                    self.send_error(400, "requête d'horodatage invalide")
                    return
                authority.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def start(self) -> LocalTimestampAuthority:
        self._thread = threading.Thread(target=self._server.serve_forever, name="tsa-dev", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalTimestampAuthority:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
