"""Which certificate seals an issuer's documents, from its settings (not wired into invoicing yet).

`MAIRIE_<ISSUER>__SEAL_PKCS12` and `…__SEAL_PASSWORD` name the issuer's PKCS#12 file. Unset in
development: a test CA and a certificate marked "CERTIFICAT DE TEST — développement" are made once in
`<data_dir>/seal` (`documents.seal_dev`). Unset outside development: `SealError`, naming the setting.
"""

from __future__ import annotations

from pathlib import Path

from pyhanko.sign.signers import SimpleSigner

from documents.seal import SealError, check_certificate, load_sealer
from documents.seal_dev import CA_FILE, ensure_dev_sealer
from mairie.settings import IssuerIdentity, Settings


def sealer_for(settings: Settings, identity: IssuerIdentity) -> SimpleSigner:
    """The issuer's sealing key and certificate, checked valid today (`SealError` in French otherwise)."""
    key = next((k for k in ("syndicat", "cdg62", "cdg59") if getattr(settings, k) is identity), identity.code).upper()
    if identity.seal_pkcs12 is not None:
        sealer = load_sealer(identity.seal_pkcs12, identity.seal_password)
    elif settings.environment == "development":
        dev = ensure_dev_sealer(settings.seal_path, identity.code, identity.name)
        sealer = load_sealer(dev.pkcs12, dev.password)
    else:
        raise SealError(
            f"Certificat de cachet manquant pour {identity.name} : renseignez MAIRIE_{key}__SEAL_PKCS12 "
            f"et MAIRIE_{key}__SEAL_PASSWORD."
        )
    check_certificate(sealer)
    return sealer


def ensure_dev_certificates(settings: Settings) -> list[Path]:
    """In development, the test PKCS#12 of every issuer without its own (made once, by `mairie init`);
    outside development, none."""
    if settings.environment != "development":
        return []
    return [
        ensure_dev_sealer(settings.seal_path, identity.code, identity.name).pkcs12
        for identity in settings.issuers()
        if identity.seal_pkcs12 is None
    ]


def dev_trust_root(settings: Settings) -> Path | None:
    """The development test CA's certificate (PEM), when development made one."""
    path = settings.seal_path / CA_FILE
    return path if settings.environment == "development" and path.exists() else None
