"""PAdES seals of the issued PDFs (pyHanko), and their verification without the database.

`seal` appends a PAdES B-B signature to a PDF as an incremental update: the bytes of the PDF it is given
(a Factur-X PDF/A-3b with its embedded XML) are kept as they are, and the signature covers all of them.
`verify` says who sealed a PDF, when, whether it is intact and unchanged since, and whether its embedded
Factur-X XML is still there and valid (Factur-X XSD and the EN 16931 rules of `documents.facturx_rules`).

`load_sealer` opens an issuer's PKCS#12 file; `documents.seal_dev` makes the development test CA and
sealing certificates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

SEAL_FIELD = "CachetEmetteur"


class _KeepMetadataWriter(IncrementalPdfFileWriter):
    """An incremental writer that leaves the document's metadata as it is.

    pyHanko's writer otherwise rewrites the XMP packet on every update (new producer and modification
    date, properties re-serialised as attributes with generated namespace prefixes: `fx:` of Factur-X
    becomes `ns0:`), which a PDF/A or Factur-X checker may refuse. The seal's own time is in the
    signature; the sealed PDF keeps the original XMP and Info dictionary byte for byte."""

    def _update_meta(self) -> None:
        return None


class SealError(Exception):
    """A seal that cannot be made (certificate expired, not yet valid, unreadable key file); French message."""


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


def check_certificate(sealer: signers.Signer, *, now: datetime | None = None) -> None:
    """Refuses (`SealError`, in French) a sealing certificate that is expired or not valid yet at `now`."""
    cert = sealer.signing_cert
    if cert is None:
        raise SealError("Aucun certificat de cachet.")
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


def seal(pdf: bytes, signer: signers.Signer, *, name: str | None = None, now: datetime | None = None) -> bytes:
    """`pdf` with a PAdES B-B seal appended as an incremental update (the original bytes are kept intact).

    Refuses an expired or not-yet-valid certificate (`SealError`, French message)."""
    check_certificate(signer, now=now)
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=name,
        reason="Cachet de l'émetteur : document authentique et non modifié",
        location="France",
    )
    writer = _KeepMetadataWriter(BytesIO(pdf), strict=False)
    out = BytesIO()
    signers.PdfSigner(meta, signer=signer).sign_pdf(writer, output=out)
    return out.getvalue()


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
        unchanged = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
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
        facturx_present=present,
        facturx_problems=xml_problems,
        problems=tuple(problems),
    )


def _common_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    name = native.get("common_name") or native.get("organization_name") or cert.subject.human_friendly
    return str(name)
