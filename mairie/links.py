"""Signed, expiring links for approvals and provisioning acknowledgements (itsdangerous).

A link carries the convention id, the approval id, the approval's nonce and a digest of the documents
shown. The signature binds them together; the database check then refuses a link whose nonce was rotated
(new document version) or whose documents changed. The secret comes from the settings and is refused at a
placeholder in production (see `Settings`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mairie.settings import Settings

APPROVAL_SALT = "mairie-connectee/approval/v1"
ORDER_SALT = "mairie-connectee/provisioning/v1"


class LinkError(Exception):
    """A link that signs nothing: altered, forged, expired or voided. The message is for the visitor."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def documents_digest(hashes: Mapping[str, str]) -> str:
    """One SHA-256 over the (name, SHA-256) pairs of the documents shown, order-independent."""
    joined = "\n".join(f"{name}:{sha}" for name, sha in sorted(hashes.items()))
    return hashlib.sha256(joined.encode()).hexdigest()


@dataclass(frozen=True)
class ApprovalClaim:
    convention_id: int
    approval_id: int
    nonce: str
    digest: str


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=salt)


def approval_token(settings: Settings, claim: ApprovalClaim) -> str:
    return _serializer(settings, APPROVAL_SALT).dumps(
        {"c": claim.convention_id, "a": claim.approval_id, "n": claim.nonce, "d": claim.digest}
    )


def approval_url(settings: Settings, claim: ApprovalClaim) -> str:
    return f"{settings.public_url.rstrip('/')}/approbation/{approval_token(settings, claim)}"


def _canonical(token: str) -> bool:
    """The signature's last base64 character has spare bits: only the canonical spelling is accepted, so
    one link has one spelling."""
    from itsdangerous.encoding import base64_decode, base64_encode

    signature = token.rsplit(".", 1)[-1]
    try:
        return base64_encode(base64_decode(signature)).decode() == signature
    except Exception:  # malformed: not canonical
        return False


def read_approval_token(settings: Settings, token: str) -> ApprovalClaim:
    """Check signature and age; raise LinkError with a plain message otherwise."""
    if not _canonical(token):
        raise LinkError("Ce lien n'est pas valide : il a été modifié ou il est incomplet.")
    max_age = settings.link_max_age_days * 86400
    try:
        data = _serializer(settings, APPROVAL_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkError("Ce lien a expiré. Demandez un nouveau lien à l'équipe Mairie Connectée.", status=410) from None
    except BadSignature:
        raise LinkError("Ce lien n'est pas valide : il a été modifié ou il est incomplet.") from None
    try:
        return ApprovalClaim(int(data["c"]), int(data["a"]), str(data["n"]), str(data["d"]))
    except (KeyError, TypeError, ValueError):
        raise LinkError("Ce lien n'est pas valide.") from None


def order_token(settings: Settings, order_id: int, nonce: str) -> str:
    return _serializer(settings, ORDER_SALT).dumps({"o": order_id, "n": nonce})


def read_order_token(settings: Settings, token: str) -> tuple[int, str]:
    try:
        data = _serializer(settings, ORDER_SALT).loads(token, max_age=settings.link_max_age_days * 86400 * 4)
        return int(data["o"]), str(data["n"])
    except SignatureExpired:
        raise LinkError("Ce lien a expiré.", status=410) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise LinkError("Ce lien n'est pas valide.") from None
