"""PAdES seals of the issued PDFs (pyHanko), and their verification without the database.

`seal` appends a PAdES signature to a PDF as an incremental update: the bytes of the PDF it is given
(a Factur-X PDF/A-3b with its embedded XML) are kept as they are, and the signature covers all of them.
B-B by default; B-T when a timestamp authority (RFC 3161) is given: its token proves the seal existed at
that time, whatever the clock of the machine that sealed; B-LT when the certificates' revocation data is
added after it (`embed_revocation_info`: a DSS in a second incremental update).
`verify` says who sealed a PDF, when, whether it is intact and unchanged since, and whether its embedded
Factur-X XML is still there and valid (Factur-X XSD and the EN 16931 rules of `documents.facturx_rules`).

`load_sealer` opens an issuer's PKCS#12 file (`load_pem_sealer` a PEM key and chain); `SealKey` says where
a key is, picklable, so that a render worker opens it itself (`seal_with`, once per process and file);
`documents.seal_dev` makes the development test CA and sealing certificates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from models.errors import DomainError

T = TypeVar("T")

SEAL_FIELD = "CachetEmetteur"


class _KeepMetadataWriter(IncrementalPdfFileWriter):
    """An incremental writer that leaves the document's metadata as it is.

    pyHanko's writer otherwise rewrites the XMP packet on every update (new producer and modification
    date, properties re-serialised as attributes with generated namespace prefixes: `fx:` of Factur-X
    becomes `ns0:`), which a PDF/A or Factur-X checker may refuse. The seal's own time is in the
    signature; the sealed PDF keeps the original XMP and Info dictionary byte for byte."""

    def _update_meta(self) -> None:
        return None


class SealError(DomainError):
    """A seal that cannot be made (certificate expired, not yet valid, wrong key, unreadable key file, timestamp
    authority unreachable); French message."""


@dataclass(frozen=True)
class SealKey:
    """Where an issuer's sealing key is: a PKCS#12 file (`pkcs12`), or a PEM key (`key_pem`) with its PEM
    certificate and chain (`chain_pem`); its password; the timestamp authority's URL (B-T) if any.
    Plain values, so it crosses to a render worker, which opens the key itself."""

    pkcs12: Path | None = None
    password: str | None = field(default=None, repr=False)
    key_pem: Path | None = None
    chain_pem: Path | None = None
    tsa_url: str | None = None
    name: str | None = None  # the signer's name written in the signature dictionary
    # B-LT (with a TSA): the revocation data of the certificates (CRL, OCSP) embedded in the PDF's DSS.
    # `crls` and `trust_roots` given (PEM/DER files): from them only, nothing fetched (development, tests);
    # else fetched online from the certificates' URLs, the roots being the chain's and the system's.
    long_term: bool = False
    crls: tuple[Path, ...] = ()
    trust_roots: tuple[Path, ...] = ()

    @property
    def source(self) -> Path:
        path = self.pkcs12 or self.key_pem
        assert path is not None, "a SealKey names a PKCS#12 file or a PEM key"
        return path

    @property
    def level(self) -> str:
        """The PAdES baseline level its seals reach."""
        if not self.tsa_url:
            return "B-B"
        return "B-LT" if self.long_term else "B-T"


@dataclass(frozen=True)
class SealCertificate:
    """What identifies a sealing certificate in the audit trail."""

    subject: str
    serial: str  # hexadecimal
    sha256: str  # of the DER certificate: its fingerprint
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: asn1_x509.Certificate) -> SealCertificate:
        validity = cert["tbs_certificate"]["validity"]
        return cls(
            subject=cert.subject.human_friendly,
            serial=format(cert.serial_number, "x"),
            sha256=hashlib.sha256(cert.dump()).hexdigest(),
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
        )

    def as_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "serial": self.serial,
            "sha256": self.sha256,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
        }


@dataclass(frozen=True)
class SealReport:
    """What a PDF says about its seal, checked offline.

    `intact`: the sealed bytes hash to what the signature says and the signature matches the certificate.
    `unchanged_since`: nothing was appended after the seal (the seal covers the whole file).
    `trusted`: the certificate chains to one of the trust roots given to `verify` (None: none given).
    """

    sealed: bool
    intact: bool = False
    unchanged_since: bool = False
    trusted: bool | None = None
    sealed_by: str | None = None
    sealed_at: datetime | None = None
    certificate_subject: str | None = None
    certificate_sha256: str | None = None
    certificate_valid_until: datetime | None = None
    certificate_serial: str | None = None
    level: str | None = None  # B-B; B-T with an RFC 3161 timestamp token; B-LT with revocation data too
    timestamped_at: datetime | None = None  # the timestamp authority's time (B-T)
    timestamp_authority: str | None = None
    facturx_present: bool = False
    facturx_problems: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def genuine(self) -> bool:
        """Sealed, intact, unchanged since, and (when trust roots were given) by a trusted certificate."""
        return self.sealed and self.intact and self.unchanged_since and self.trusted is not False

    @property
    def facturx_valid(self) -> bool:
        return self.facturx_present and not self.facturx_problems


def load_sealer(pkcs12: Path, password: str | None) -> signers.SimpleSigner:
    """The issuer's sealing key and certificate chain from a PKCS#12 file (`SealError` in French if unreadable)."""
    try:
        data = pkcs12.read_bytes()
    except OSError as exc:
        raise SealError(f"Fichier de cachet illisible : {pkcs12} ({exc.strerror}).") from exc
    try:
        sealer = signers.SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=password.encode() if password is not None else None
        )
    except Exception as exc:  # pyHanko/cryptography raise ValueError or their own errors for a bad file
        raise SealError(f"Fichier de cachet {pkcs12} illisible (mot de passe erroné ou format invalide).") from exc
    if not isinstance(sealer, signers.SimpleSigner):
        raise SealError(f"Fichier de cachet {pkcs12} sans clé ni certificat.")
    return sealer


def load_pem_sealer(key: Path, chain: Path, password: str | None) -> signers.SimpleSigner:
    """The sealing key (PEM) and its certificate followed by its chain (one PEM file), `SealError` if unreadable."""
    for path in (key, chain):
        if not path.is_file():
            raise SealError(f"Fichier de cachet introuvable : {path}.")
    try:
        with open(chain, "rb") as handle:
            certs = [asn1_x509.Certificate.load(der) for _t, _h, der in pem.unarmor(handle.read(), multiple=True)]
    except Exception as exc:  # asn1crypto raises ValueError or its own errors on a bad file
        raise SealError(f"Chaîne de certificats {chain} illisible (PEM attendu).") from exc
    if not certs:
        raise SealError(f"Aucun certificat dans {chain}.")
    try:
        private = serialization.load_pem_private_key(
            key.read_bytes(), password=password.encode() if password is not None else None
        )
    except (OSError, ValueError, TypeError) as exc:
        raise SealError(f"Clé de cachet {key} illisible (mot de passe erroné ou format invalide).") from exc
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sealer = signers.SimpleSigner(
        signing_cert=certs[0],
        signing_key=asn1_keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore.from_certs(certs),  # type: ignore[no-untyped-call]
    )
    return sealer


def open_key(key: SealKey) -> signers.SimpleSigner:
    """The signer a `SealKey` names (read from its file now)."""
    if key.pkcs12 is not None:
        return load_sealer(key.pkcs12, key.password)
    assert key.key_pem is not None and key.chain_pem is not None
    return load_pem_sealer(key.key_pem, key.chain_pem, key.password)


@lru_cache(maxsize=16)
def _opened(key: SealKey, stamp: tuple[int, int]) -> signers.SimpleSigner:
    return open_key(key)


def signer_of(key: SealKey) -> signers.SimpleSigner:
    """The signer of `key`, opened once per process and version of its file (a renewed file is read again)."""
    try:
        stat = key.source.stat()
    except OSError as exc:
        raise SealError(f"Fichier de cachet illisible : {key.source} ({exc.strerror}).") from exc
    return _opened(key, (stat.st_mtime_ns, stat.st_size))


def certificate_of(key: SealKey) -> SealCertificate:
    """The sealing certificate of `key` (for the audit trail)."""
    cert = signer_of(key).signing_cert
    if cert is None:
        raise SealError("Aucun certificat de cachet.")
    return SealCertificate.of(cert)


def _key_matches(sealer: signers.SimpleSigner) -> bool:
    private = serialization.load_der_private_key(sealer.signing_key.dump(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert = sealer.signing_cert
    return cert is not None and public == cert.public_key.dump()


def check_certificate(sealer: signers.Signer, *, now: datetime | None = None) -> None:
    """Refuses (`SealError`, in French) a sealing certificate that is expired or not valid yet at `now`, whose
    key usage allows no signature, or (for a key held here) whose private key is not the certificate's."""
    cert = sealer.signing_cert
    if cert is None:
        raise SealError("Aucun certificat de cachet.")
    usage = cert.key_usage_value
    if usage is not None and not ({"digital_signature", "non_repudiation"} & set(usage.native)):
        raise SealError(
            f"Certificat de cachet sans usage de signature (keyUsage digitalSignature ou nonRepudiation) : "
            f"{cert.subject.human_friendly}."
        )
    if isinstance(sealer, signers.SimpleSigner) and not _key_matches(sealer):
        raise SealError(f"La clé privée du cachet ne correspond pas à son certificat ({cert.subject.human_friendly}).")
    moment = now or datetime.now(UTC)
    validity = cert["tbs_certificate"]["validity"]
    not_before: datetime = validity["not_before"].native
    not_after: datetime = validity["not_after"].native
    subject = cert.subject.human_friendly
    if moment > not_after:
        raise SealError(
            f"Certificat de cachet expiré le {not_after:%d/%m/%Y à %H:%M} UTC ({subject}) : "
            "renouvelez-le avant de sceller un document."
        )
    if moment < not_before:
        raise SealError(f"Certificat de cachet pas encore valide (à partir du {not_before:%d/%m/%Y}) : {subject}.")


def _outside_any_loop(work: Callable[[], T]) -> T:
    """`work()` where no event loop runs: pyHanko's synchronous API starts its own with `asyncio.run`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(work).result()


@lru_cache(maxsize=8)
def timestamper_for(url: str, timeout: float = 10.0) -> TimeStamper:
    """The process's RFC 3161 client of the timestamp authority at `url` (HTTP POST,
    application/timestamp-query). One per URL: its first token sizes the room a seal reserves, so every
    later seal asks the authority once, not twice."""
    return RequestsHTTPTimeStamper(url, timeout=timeout)  # type: ignore[no-untyped-call]


def seal(
    pdf: bytes,
    signer: signers.Signer,
    *,
    name: str | None = None,
    now: datetime | None = None,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """`pdf` with a PAdES seal appended as an incremental update (the original bytes are kept intact):
    B-B, or B-T with the token of `timestamper` (an RFC 3161 authority) over the signature.

    Refuses an expired, not-yet-valid or unusable certificate, and a timestamp authority that does not
    answer (`SealError`, French message)."""
    check_certificate(signer, now=now)
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=name,
        reason="Cachet de l'émetteur : document authentique et non modifié",
        location="France",
    )

    def work(reserved: int | None) -> bytes:
        writer = _KeepMetadataWriter(BytesIO(pdf), strict=False)
        out = BytesIO()
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
        pdf_signer.sign_pdf(writer, output=out, bytes_reserved=reserved)
        return out.getvalue()

    # B-B: the room of the signature is what pyHanko's first estimate for this certificate reserved (the
    # estimate builds a whole dummy signature: half the seal's time). B-T keeps the estimate: a token's
    # size is the authority's.
    cert = signer.signing_cert
    room_key = cert.sha256 if cert is not None and timestamper is None else None
    reserved = _RESERVED.get(room_key) if room_key is not None else None
    try:
        try:
            sealed = _outside_any_loop(lambda: work(reserved))
        except Exception:
            if reserved is None:
                raise
            sealed = _outside_any_loop(lambda: work(None))  # the room was too small after all
            reserved = None
        if room_key is not None and reserved is None:
            with contextlib.suppress(ValueError):  # not found: estimated again next time
                _RESERVED[room_key] = _contents_room(sealed) + ROOM_MARGIN
        return sealed
    except SealError:
        raise
    except Exception as exc:
        if timestamper is not None and _is_timestamp_failure(exc):
            url = getattr(timestamper, "url", "")
            raise SealError(
                f"Horodatage impossible : l'autorité d'horodatage {url} n'a pas répondu correctement ({exc})."
            ) from exc
        raise


_RESERVED: dict[bytes, int] = {}
# Hex digits added to the first estimate: an ECDSA signature's DER length varies by a few bytes.
ROOM_MARGIN = 64


def _contents_room(sealed: bytes) -> int:
    """The room pyHanko reserved for the last signature of `sealed`: its /Contents, in hexadecimal digits
    (what `bytes_reserved` counts)."""
    start = sealed.index(b"<", sealed.rindex(b"/Contents")) + 1
    return sealed.index(b">", start) - start


def _is_timestamp_failure(exc: BaseException) -> bool:
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimestampRequestError | OSError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def seal_with(pdf: bytes, key: SealKey) -> bytes:
    """`pdf` sealed with the key `key` names (opened once per process), timestamped when it has a TSA URL,
    with the revocation data embedded when it is long-term (B-LT)."""
    signer = signer_of(key)
    sealed = seal(pdf, signer, name=key.name, timestamper=timestamper_for(key.tsa_url) if key.tsa_url else None)
    if key.long_term:
        if not key.tsa_url:
            raise SealError("Un cachet B-LT demande une autorité d'horodatage (MAIRIE_SEAL_TSA_URL).")
        sealed = embed_revocation_info(sealed, _long_term_context(key, signer))
    return sealed


def _read_certificates(path: Path) -> list[asn1_x509.Certificate]:
    data = path.read_bytes()
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _t, _h, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


def _read_crl(path: Path) -> Any:
    from asn1crypto import crl

    data = path.read_bytes()
    if pem.detect(data):
        _t, _h, data = pem.unarmor(data)
    return crl.CertificateList.load(data)


def _long_term_context(key: SealKey, signer: signers.SimpleSigner) -> ValidationContext:
    """How the seal's certificates are validated to gather their revocation data (PAdES B-LT): every
    certificate but the roots must have some ("require")."""
    try:
        if key.crls or key.trust_roots:
            roots = [cert for path in key.trust_roots for cert in _read_certificates(path)]
            crls = [_read_crl(path) for path in key.crls]
            return ValidationContext(trust_roots=roots, crls=crls, allow_fetching=False, revocation_mode="require")
        chain_roots = [c for c in signer.cert_registry if c.self_signed]
        return ValidationContext(extra_trust_roots=chain_roots, allow_fetching=True, revocation_mode="require")
    except (OSError, ValueError) as exc:
        raise SealError(f"Données de révocation du cachet illisibles : {exc}") from exc


def embed_revocation_info(sealed: bytes, context: ValidationContext) -> bytes:
    """`sealed` with a DSS (certificates, CRLs, OCSP answers of the seal's and its timestamp's chains) in an
    incremental update that keeps the XMP and Info as they are: PAdES B-LT. `SealError` (French) when a
    certificate's revocation data cannot be had."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore, collect_validation_info

    reader = PdfFileReader(BytesIO(sealed), strict=False)
    signature = reader.embedded_signatures[-1]

    def work() -> bytes:
        paths = asyncio.run(collect_validation_info(signature, context))
        writer = _KeepMetadataWriter(BytesIO(sealed), strict=False)
        DocumentSecurityStore.supply_dss_in_writer(
            writer, signature.pkcs7_content, paths=paths, validation_context=context
        )
        out = BytesIO()
        writer.write(out)  # type: ignore[no-untyped-call]
        return out.getvalue()

    try:
        return _outside_any_loop(work)
    except Exception as exc:  # certvalidator's path and revocation errors
        raise SealError(
            f"Cachet B-LT impossible : les données de révocation des certificats n'ont pu être obtenues ({exc})."
        ) from exc


def _facturx(pdf: bytes) -> tuple[bool, tuple[str, ...]]:
    """Whether `pdf` carries a Factur-X XML, and what is wrong with it (XSD, then the EN 16931 rules)."""
    from facturx import get_xml_from_pdf, xml_check_xsd

    from documents import facturx_rules

    try:
        _name, xml = get_xml_from_pdf(pdf, check_xsd=False)
    except Exception:  # factur-x raises plain exceptions on a PDF it cannot read
        return False, ()
    if not xml:
        return False, ()
    try:
        xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # factur-x raises a bare Exception listing the XSD errors
        return True, (f"XML Factur-X non conforme au schéma : {exc}",)
    return True, tuple(str(v) for v in facturx_rules.check(xml))


def verify(pdf: bytes, *, trust_roots: Iterable[asn1_x509.Certificate] = ()) -> SealReport:
    """The seal of `pdf` checked offline (the last seal if there are several); never raises on a bad PDF."""
    present, xml_problems = _facturx(pdf)
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # a PDF damaged enough that its structure cannot be read
        return SealReport(
            sealed=False,
            facturx_present=present,
            facturx_problems=xml_problems,
            problems=(f"PDF illisible : {exc}",),
        )
    if not embedded:
        return SealReport(
            sealed=False,
            facturx_present=present,
            facturx_problems=xml_problems,
            problems=("Aucun cachet dans ce PDF.",),
        )
    sig = embedded[-1]
    roots = list(trust_roots)
    context = ValidationContext(trust_roots=roots, allow_fetching=False) if roots else None
    problems: list[str] = []
    try:
        status: PdfSignatureStatus | None = validate_pdf_signature(sig, signer_validation_context=context)
    except Exception as exc:  # a signature whose CMS or byte range cannot be processed
        status = None
        problems.append(f"Cachet invalide : {exc}")
    cert = sig.signer_cert
    if status is not None:
        intact = bool(status.intact and status.valid)
        # A DSS added after the seal (B-LT) is the only later change allowed. pyHanko's difference analysis
        # would also let metadata change (the Info title…): the later revisions are checked here to add a
        # DSS and nothing else.
        unchanged = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
            status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
            and status.modification_level == ModificationLevel.LTA_UPDATES
            and bool(status.docmdp_ok)
            and _only_dss_added(reader, sig.signed_revision)
        )
        trusted: bool | None = bool(status.trusted) if roots else None
    else:
        intact, unchanged, trusted = False, False, (False if roots else None)
    if not intact:
        problems.append("Le contenu scellé a été modifié : l'empreinte ne correspond plus au cachet.")
    elif not unchanged:
        problems.append("Le PDF a été complété après le cachet.")
    if trusted is False:
        problems.append("Le certificat du cachet n'est pas reconnu par les autorités de confiance données.")
    signed_at = sig.self_reported_timestamp
    stamp = status.timestamp_validity if status is not None else None
    token = _timestamp_token(sig.signer_info)
    if token is not None and (stamp is None or not (stamp.intact and stamp.valid)):
        problems.append("Le jeton d'horodatage du cachet est invalide.")
    stamped_at = stamp.timestamp.astimezone(UTC) if stamp is not None else None
    return SealReport(
        sealed=True,
        intact=intact,
        unchanged_since=unchanged,
        trusted=trusted,
        sealed_by=_common_name(cert),
        sealed_at=signed_at.astimezone(UTC) if signed_at else None,
        certificate_subject=cert.subject.human_friendly,
        certificate_sha256=hashlib.sha256(cert.dump()).hexdigest(),
        certificate_valid_until=cert["tbs_certificate"]["validity"]["not_after"].native,
        certificate_serial=format(cert.serial_number, "x"),
        level=("B-LT" if _has_revocation_info(reader) else "B-T") if token is not None else "B-B",
        timestamped_at=stamped_at,
        timestamp_authority=_tsa_name(token),
        facturx_present=present,
        facturx_problems=xml_problems,
        problems=tuple(problems),
    )


def _reachable(start: Any, reader: PdfFileReader) -> set[Any]:
    """The references reachable from the object `start` (followed through arrays, dictionaries, streams)."""
    from pyhanko.pdf_utils import generic

    seen: set[Any] = set()
    todo = [start]
    while todo:
        item = todo.pop()
        if isinstance(item, generic.IndirectObject):
            if item.reference in seen:
                continue
            seen.add(item.reference)
            todo.append(item.get_object())  # type: ignore[no-untyped-call]
        elif isinstance(item, generic.DictionaryObject):  # a stream is a dictionary too
            todo.extend(item.raw_get(k) for k in item)
        elif isinstance(item, generic.ArrayObject):
            todo.extend(item.raw_get(i) for i in range(len(item)))
    return seen


def _only_dss_added(reader: PdfFileReader, signed_revision: int) -> bool:
    """Whether every revision after `signed_revision` only adds or updates the DSS (and the catalogue's
    /DSS entry): the B-LT update, nothing else (no page, form, metadata or Info change)."""
    try:
        signed_root = reader.get_historical_root(signed_revision)
        signed_trailer = reader.get_historical_resolver(signed_revision).trailer_view
        root = reader.root
        if set(root.keys()) - {"/DSS"} != set(signed_root.keys()) or "/DSS" not in root:
            return False
        if any(root.raw_get(k) != signed_root.raw_get(k) for k in signed_root):
            return False
        if reader.trailer_view.raw_get("/Info") != signed_trailer.raw_get("/Info"):
            return False
        root_ref = reader.trailer_view.raw_get("/Root").reference
        allowed = _reachable(root.raw_get("/DSS"), reader) | {root_ref}
        later = range(signed_revision + 1, reader.xrefs.total_revisions)
        return all(reader.xrefs.explicit_refs_in_revision(r) <= allowed | _xref_stream(reader, r) for r in later)
    except Exception:  # a history pyHanko cannot read is no B-LT update
        return False


def _xref_stream(reader: PdfFileReader, revision: int) -> set[Any]:
    """The revision's own cross-reference stream, when it has one instead of a table (an update of a PDF
    that uses xref streams, as WeasyPrint writes them, carries its xref as an object)."""
    stream_ref = reader.xrefs.get_xref_container_info(revision).stream_ref
    return {stream_ref} if stream_ref is not None else set()


def _has_revocation_info(reader: PdfFileReader) -> bool:
    """Whether the PDF carries a DSS with revocation data (CRLs or OCSP answers)."""
    try:
        dss = reader.root.get("/DSS")
        if dss is None:
            return False
        dss = dss.get_object()
        return any(len(dss.get(k, ()).get_object()) > 0 for k in ("/CRLs", "/OCSPs") if k in dss)
    except Exception:  # a damaged DSS counts as none
        return False


def _timestamp_token(signer_info: Any) -> Any:
    """The RFC 3161 token over the signature (unsigned attribute signature-time-stamp-token), if any."""
    for attr in signer_info["unsigned_attrs"] or ():
        if attr["type"].native == "signature_time_stamp_token":
            return attr["values"][0]
    return None


def _tsa_name(token: Any) -> str | None:
    """The common name of the authority that signed a timestamp token (None without one)."""
    if token is None:
        return None
    from pyhanko.sign.general import extract_certificate_info

    try:
        return _common_name(extract_certificate_info(token["content"]).signer_cert)
    except Exception:  # a token whose signer certificate is missing
        return None


def _common_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    name = native.get("common_name") or native.get("organization_name") or cert.subject.human_friendly
    return str(name)
