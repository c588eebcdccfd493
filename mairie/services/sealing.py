"""Which certificate seals an issuer's documents, from its settings; sealing an issued PDF and recording it.

`MAIRIE_<ISSUER>__SEAL_PKCS12` and `…__SEAL_PASSWORD` name the issuer's PKCS#12 file (or `…__SEAL_KEY` and
`…__SEAL_CERTIFICATE` a PEM key and its PEM certificate with its chain). Unset in development: a test CA and
a certificate marked "CERTIFICAT DE TEST — développement" are made once in `<data_dir>/seal`
(`documents.seal_dev`). Unset outside development: `SealError`, naming the setting. `MAIRIE_SEAL_TSA_URL`
(or the issuer's `…__SEAL_TSA_URL`) adds an RFC 3161 timestamp to each seal (PAdES B-T);
`MAIRIE_SEAL_LONG_TERM` also embeds the certificates' revocation data (PAdES B-LT).

Who seals what: an invoice and a credit note, their issuer; the final convention, the syndicat (the party
that runs the service and sends it to the two others).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pyhanko.sign.signers import SimpleSigner
from sqlmodel import Session

from documents.seal import SealError, SealKey, certificate_of, check_certificate, seal_with, signer_of
from documents.seal_dev import CA_FILE, ensure_dev_sealer, ensure_test_crl
from mairie.settings import ISSUER_SETTINGS, IssuerIdentity, Settings
from models import audit


def _setting_key(settings: Settings, identity: IssuerIdentity) -> str:
    """SYNDICAT, CDG62, CDG59: how the issuer's settings are named (`MAIRIE_<KEY>__…`)."""
    return next((k for k in ISSUER_SETTINGS if getattr(settings, k) is identity), identity.code).upper()


def seal_key_for(settings: Settings, identity: IssuerIdentity) -> SealKey:
    """Where the issuer's sealing key is (its settings; in development the test certificate, made if absent),
    with its timestamp authority and, for B-LT, where the revocation data comes from."""
    key = _key_of(settings, identity)
    if not settings.seal_long_term:
        return key
    if not key.tsa_url:
        raise SealError(
            "MAIRIE_SEAL_LONG_TERM (cachets B-LT) demande une autorité d'horodatage : renseignez MAIRIE_SEAL_TSA_URL."
        )
    if key.pkcs12 is not None and key.pkcs12.parent == settings.seal_path and settings.environment == "development":
        # the test CA's own CRL, nothing fetched
        crl = ensure_test_crl(settings.seal_path)
        return replace(key, long_term=True, crls=(crl,), trust_roots=(settings.seal_path / CA_FILE,))
    return replace(key, long_term=True)  # fetched from the certificates' CRL and OCSP addresses


def _key_of(settings: Settings, identity: IssuerIdentity) -> SealKey:
    tsa = identity.seal_tsa_url or settings.seal_tsa_url
    if identity.seal_pkcs12 is not None:
        return SealKey(pkcs12=identity.seal_pkcs12, password=identity.seal_password, tsa_url=tsa, name=identity.name)
    if identity.seal_key is not None and identity.seal_certificate is not None:
        return SealKey(
            key_pem=identity.seal_key,
            chain_pem=identity.seal_certificate,
            password=identity.seal_password,
            tsa_url=tsa,
            name=identity.name,
        )
    if settings.environment == "development":
        folder, code = settings.seal_path, identity.code.lower()
        p12, pass_file = folder / f"{code}.p12", folder / f"{code}.pass"
        if p12.exists() and pass_file.exists():  # made by `mairie init`, which renews it before it expires
            return SealKey(pkcs12=p12, password=pass_file.read_text().strip(), tsa_url=tsa, name=identity.name)
        dev = ensure_dev_sealer(folder, identity.code, identity.name)
        return SealKey(pkcs12=dev.pkcs12, password=dev.password, tsa_url=tsa, name=identity.name)
    key = _setting_key(settings, identity)
    raise SealError(
        f"Certificat de cachet manquant pour {identity.name} : renseignez MAIRIE_{key}__SEAL_PKCS12 "
        f"et MAIRIE_{key}__SEAL_PASSWORD."
    )


def sealer_for(settings: Settings, identity: IssuerIdentity) -> SimpleSigner:
    """The issuer's sealing key and certificate, checked valid today (`SealError` in French otherwise)."""
    sealer = signer_of(seal_key_for(settings, identity))
    check_certificate(sealer)
    return sealer


def seal_keys(settings: Settings, codes: set[str]) -> dict[str, SealKey]:
    """The sealing key of each issuer code (for render workers, which seal what they render)."""
    by_code = {identity.code: identity for identity in settings.issuers()}
    return {code: seal_key_for(settings, by_code[code]) for code in sorted(codes)}


def seal_document(settings: Settings, identity: IssuerIdentity, pdf: bytes) -> bytes:
    """`pdf` sealed with the issuer's certificate (PAdES B-B, B-T with a timestamp authority)."""
    return seal_with(pdf, seal_key_for(settings, identity))


def record_seal(
    session: Session, key: SealKey, *, entity_type: str, entity_id: int | None, sha256: str, filename: str
) -> None:
    """The audit event of a seal: the sealed PDF's SHA-256, the PAdES level and the certificate used."""
    audit.record(
        session,
        actor="système",
        action="document.sealed",
        entity_type=entity_type,
        entity_id=entity_id,
        details={
            "sha256": sha256,
            "filename": filename,
            "level": key.level,
            "tsa_url": key.tsa_url,
            "certificate": certificate_of(key).as_json(),
        },
    )


def startup_problems(settings: Settings) -> list[str]:
    """Outside development, what is wrong with each issuer's sealing certificate (one French sentence each,
    naming the setting): missing, unreadable, expired, not yet valid, key not the certificate's, no
    signature key usage. Empty in development (test certificates are made as needed)."""
    if settings.environment == "development":
        return []
    problems = []
    for name in ISSUER_SETTINGS:
        identity: IssuerIdentity = getattr(settings, name)
        setting = f"MAIRIE_{name.upper()}__" + ("SEAL_PKCS12" if identity.seal_key is None else "SEAL_KEY")
        try:
            check_certificate(signer_of(seal_key_for(settings, identity)))
        except SealError as exc:
            message = str(exc)
            problems.append(message if setting in message else f"{setting} : {message}")
    return problems


def check_at_startup(settings: Settings) -> None:
    """Refuses to start (`SealError`) outside development when a sealing certificate cannot seal."""
    problems = startup_problems(settings)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SealError(
            "certificats de cachet refusés hors développement (docs/operations.md, « Sealing certificates ») :\n"
            + lines
        )


def ensure_dev_certificates(settings: Settings) -> list[Path]:
    """In development, the test PKCS#12 of every issuer without its own (made once, by `mairie init`);
    outside development, none."""
    if settings.environment != "development":
        return []
    return [
        ensure_dev_sealer(settings.seal_path, identity.code, identity.name).pkcs12
        for identity in settings.issuers()
        if not identity.has_seal_key
    ]


def dev_trust_root(settings: Settings) -> Path | None:
    """The development test CA's certificate (PEM), when development made one."""
    path = settings.seal_path / CA_FILE
    return path if settings.environment == "development" and path.exists() else None
