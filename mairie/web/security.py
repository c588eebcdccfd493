"""What protects the approval page's forms and what it records as evidence.

- The CSRF token of a form is an HMAC of the link's token with the secret key: only a page served for
  that link carries it, and it is worthless for any other link.
- The client's IP address is the TCP peer's, unless that peer is a trusted reverse proxy (setting
  `trusted_proxies`), in which case the rightmost untrusted address of `X-Forwarded-For` is taken.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Request

from mairie.services.approvals import Evidence
from mairie.settings import Settings

CSRF_CONTEXT = b"mairie-connectee/approval-form/v1\x00"
USER_AGENT_MAX = 500


def csrf_token(settings: Settings, token: str) -> str:
    """The hidden-field value that the forms of link `token` must send back."""
    key = settings.secret_key.encode()
    return hmac.new(key, CSRF_CONTEXT + token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(settings: Settings, token: str, submitted: str | None) -> bool:
    """True when `submitted` is the CSRF token of link `token` (constant-time comparison)."""
    if not submitted:
        return False
    return hmac.compare_digest(csrf_token(settings, token), submitted)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request, settings: Settings) -> bool:
    """False when the browser says the form was posted from another site. An absent or "null" Origin is
    accepted: with `Referrer-Policy: no-referrer` browsers send "null" even for our own forms, and the
    CSRF token is the real check anyway."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    allowed = {_origin(settings.public_url), _origin(str(request.base_url))}
    return origin.lower() in allowed


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            continue
    return networks


def _trusted(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str | None:
    """The visitor's address: the peer's, or — when the peer is a trusted proxy — the rightmost address of
    X-Forwarded-For that is not itself a trusted proxy."""
    networks = _networks(trusted_proxies)
    if peer is None or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


def visitor_ip(request: Request) -> str | None:
    """The visitor's address for this request (`client_ip` with the app's trusted proxies)."""
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else None
    trusted = getattr(settings, "trusted_proxies", None) or ()
    return client_ip(peer, request.headers.get("x-forwarded-for"), trusted)


def evidence_of(request: Request, settings: Settings) -> Evidence:
    """IP address and user agent of the request, as recorded with a decision."""
    agent = request.headers.get("user-agent")
    return Evidence(ip_address=visitor_ip(request), user_agent=agent[:USER_AGENT_MAX] if agent else None)
