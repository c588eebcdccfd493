"""What the app exposes, its headers, its error pages, and how it reads the client's address."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings
from mairie.web import create_app
from mairie.web.security import client_ip, csrf_token, csrf_valid
from tests.conftest import make_settings, real_identities
from tests.integration.web.conftest import path_of, shown


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/admin",
        "/approbation",
        "/approbation/",
        "/approbation/x/y",
        "/approbation/x/documents",
        "/static/",
        "/static/../mairie.sqlite3",
        "/static/autre.css",
        "/api",
        "/api/conventions",
        "/api/requests/1/convention",
        "/redoc",
    ],
)
def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    """Only the token-scoped pages, the API, /health, the stylesheet (and the API docs in development)."""
    assert client.get(path).status_code == 404


def test_security_headers_on_pages_documents_and_errors(client: TestClient, convention: QuotesOutcome) -> None:
    url = path_of(convention.approval_url)
    for response in (
        client.get(url),
        client.get(f"{url}/documents/{convention.quotes[0].number}.pdf"),
        client.get("/approbation/faux"),
        client.get("/nulle-part"),
    ):
        headers = response.headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_unknown_paths_get_a_french_page(client: TestClient) -> None:
    response = client.get("/admin")
    assert response.status_code == 404
    assert "Cette adresse ne correspond à aucune page." in shown(response)
    assert client.get("/api/nulle-part").json() == {"error": "Cette adresse ne correspond à aucune page."}


def test_the_page_needs_nothing_from_outside(client: TestClient, convention: QuotesOutcome) -> None:
    html = client.get(path_of(convention.approval_url)).text
    assert "<script" not in html
    assert "http://" not in html.replace("http://testserver", "")
    assert "https://" not in html
    css = client.get("/static/approbation.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text
    assert ":focus-visible" in css.text


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "database": True}


def test_health_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503 and response.json()["database"] is False


def test_api_docs_only_in_development(tmp_path: Path) -> None:
    production = make_settings(
        tmp_path,
        environment="production",
        secret_key=secrets.token_urlsafe(32),
        api_key=secrets.token_urlsafe(24),
        **real_identities(),
    )
    with TestClient(create_app(production)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/redoc").status_code == 404
        assert client.get("/openapi.json").status_code == 200
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get("/docs").status_code == 200


def test_csrf_token_is_bound_to_the_link_and_the_secret(tmp_path: Path) -> None:
    one = make_settings(tmp_path, secret_key="a" * 40)
    other = make_settings(tmp_path, secret_key="b" * 40)
    token = "lien-1"
    assert csrf_valid(one, token, csrf_token(one, token))
    assert not csrf_valid(one, "lien-2", csrf_token(one, token))
    assert not csrf_valid(one, token, csrf_token(other, token))
    assert not csrf_valid(one, token, None) and not csrf_valid(one, token, "")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.7", None, [], "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", [], "203.0.113.7"),  # untrusted peer: the header is ignored
        ("10.0.0.2", "198.51.100.1", ["10.0.0.0/8"], "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", ["10.0.0.2"], "198.51.100.1"),  # spoofed left part ignored
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", ["10.0.0.0/8"], "198.51.100.1"),  # chain of proxies
        ("10.0.0.2", "", ["10.0.0.0/8"], "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1", ["pas-une-adresse"], "10.0.0.2"),
        (None, "198.51.100.1", ["10.0.0.0/8"], None),
    ],
)
def test_client_ip_reads_x_forwarded_for_only_from_trusted_proxies(
    peer: str | None, forwarded: str | None, trusted: list[str], expected: str | None
) -> None:
    assert client_ip(peer, forwarded, trusted) == expected


def test_x_forwarded_for_is_ignored_without_trusted_proxies(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    from tests.integration.web.conftest import approvals_of, sign_through_page

    client.headers["X-Forwarded-For"] = "198.51.100.99"
    sign_through_page(client, convention.approval_url)
    assert approvals_of(settings)["collectivity"].ip_address == "testclient"
