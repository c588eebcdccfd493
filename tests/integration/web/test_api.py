"""The JSON API: API key, validation identical to the CLI with plain French errors, submission, state."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm, validation_message
from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings, get_settings
from mairie.web import create_app
from models.entities import ServiceRequest
from tests.conftest import mairie_siret, make_settings
from tests.integration.web.conftest import API_KEY, snapshot

KEY = {"X-API-Key": API_KEY}
GOOD = {
    "collectivity": "62700",
    "siret": mairie_siret("62700"),
    "items": [{"code": "messagerie-5go", "quantity": 3}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@regnauville.example",
}


def stored_requests(settings: Settings) -> int:
    with unit_of_work(settings) as uow:
        return int(uow.session.exec(select(func.count()).select_from(ServiceRequest)).one())


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "mauvaise-cle"}, {"X-API-Key": ""}])
def test_missing_or_wrong_key_is_401(client: TestClient, settings: Settings, headers: dict[str, str]) -> None:
    for response in (
        client.post("/api/requests", json=GOOD, headers=headers),
        client.post("/api/requests", content=b"{pas du json", headers={**headers, "Content-Type": "application/json"}),
        client.get("/api/requests/1", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"].startswith("Clé d'API")
    assert stored_requests(settings) == 0


def test_api_is_off_without_a_key_in_the_settings(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url)
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/requests", json=GOOD, headers=KEY)
    assert response.status_code == 503
    assert response.json() == {"error": "API désactivée : aucune clé d'API n'est configurée (réglage MAIRIE_API_KEY)."}


def _expected_message(body: dict[str, Any]) -> str:
    try:
        RequestForm.model_validate(body)
    except Exception as exc:
        return validation_message(exc)
    raise AssertionError("the body was valid")


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "signatory_email": "pas-une-adresse"},
        {**GOOD, "items": []},
        {**GOOD, "items": [{"code": "messagerie-5go", "quantity": 0}]},
        {**GOOD, "siret": "12345678901234"},
        {**GOOD, "champ_inconnu": 1},
        {k: v for k, v in GOOD.items() if k != "signatory_name"},
    ],
    ids=["email", "no-item", "quantity", "siret", "extra-field", "missing-name"],
)
def test_invalid_body_is_422_with_the_cli_message_and_nothing_stored(
    client: TestClient, settings: Settings, body: dict[str, Any]
) -> None:
    before = snapshot(settings)

    response = client.post("/api/requests", json=body, headers=KEY)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": _expected_message(body)}
    assert "Traceback" not in response.text
    assert snapshot(settings) == before


def test_not_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/requests", content=b"{pas du json", headers={**KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json() == {"error": "Le corps de la requête n'est pas un JSON valide."}


def test_unknown_item_is_422_and_nothing_stored(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/requests", json={**GOOD, "items": [{"code": "licorne", "quantity": 1}]}, headers=KEY)

    assert response.status_code == 422
    assert "licorne" in response.json()["error"]
    assert stored_requests(settings) == 0


def test_unknown_commune_is_404(client: TestClient, settings: Settings) -> None:
    response = client.post("/api/requests", json={**GOOD, "collectivity": "75056"}, headers=KEY)

    assert response.status_code == 404
    assert "aucune commune de code INSEE 75056" in response.json()["error"]
    assert stored_requests(settings) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_submission_is_201_then_the_request_can_be_followed(
    prefect_harness: None, client: TestClient, settings: Settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Processing in this process runs the intake flow, whose tasks read the settings from the environment.
    monkeypatch.setenv("MAIRIE_DATABASE_URL", db_url)
    monkeypatch.setenv("MAIRIE_SMTP_PORT", str(_free_port()))  # nothing listens: emails stay queued
    get_settings.cache_clear()

    response = client.post("/api/requests", json=GOOD, headers=KEY)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "reference", "status", "run_id", "run_url", "existing"}
    assert created["existing"] is False
    assert created["reference"].startswith("MC-DEM-") and created["status"] == "quoted"
    state = client.get(f"/api/requests/{created['id']}", headers=KEY)
    assert state.status_code == 200
    body = state.json()
    assert body["status"] == "quoted"
    assert [(q["issuer"], q["total_ht"], q["total_vat"], q["total_ttc"]) for q in body["quotes"]] == [
        ("LFN", "42.00", "8.40", "50.40"),
        ("CDG62", "50.00", "0.00", "50.00"),
    ]
    assert body["convention"]["status"] == "awaiting_collectivity"
    assert [a["party"] for a in body["convention"]["approvals"]] == ["collectivity", "cdg", "syndicat"]


def test_state_of_a_request_through_the_api(client: TestClient, convention: QuotesOutcome) -> None:
    body = client.get(f"/api/requests/{convention.request_id}", headers=KEY).json()

    assert body["reference"] == convention.reference
    assert [q["number"] for q in body["quotes"]] == [q.number for q in convention.quotes]
    assert body["convention"]["reference"] == convention.convention
    assert body["convention"]["approvals"][0]["status"] == "pending"


def test_unknown_or_malformed_request_id(client: TestClient) -> None:
    missing = client.get("/api/requests/999", headers=KEY)
    assert missing.status_code == 404 and missing.json() == {"error": "aucune demande n° 999"}
    malformed = client.get("/api/requests/abc", headers=KEY)
    assert malformed.status_code == 422
    assert malformed.json() == {"error": "L'identifiant de la demande doit être un nombre entier."}


def test_openapi_schema_documents_the_api_and_its_key(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert set(schema["paths"]) == {"/api/requests", "/api/requests/{request_id}", "/health"}
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert "RequestForm" in schema["components"]["schemas"]
