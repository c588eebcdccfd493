"""The probes of issue 17 that concern the web app, as regression tests: control and bidi characters in the
forms and the API, a question from a link whose turn has not come, strict quantities, ids beyond the
database's integer, 405 with Allow, the French messages of the size limits and of a too deep JSON, a body
that is not JSON, and the Idempotency-Key of POST /api/requests."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.services.approvals import link_for
from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings
from mairie.web.security import csrf_token
from models.entities import Approval, Convention, Question, ServiceRequest, WebGuard
from tests.integration.web.conftest import (
    API_KEY,
    approvals_of,
    csrf_of,
    hidden,
    path_of,
    shown,
    sign_fields,
    snapshot,
    token_of,
)

KEY = {"X-API-Key": API_KEY}
REFUSED = {  # a commune outside Nord and Pas-de-Calais: registered as refused, no PDF to render
    "collectivity": "01001",
    "items": [{"code": "messagerie-5go", "quantity": 3}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@abergement.example",
}


def _requests(settings: Settings) -> int:
    with unit_of_work(settings) as uow:
        return int(uow.session.exec(select(func.count()).select_from(ServiceRequest)).one())


def _page(client: TestClient, convention: QuotesOutcome) -> tuple[str, str]:
    url = path_of(convention.approval_url)
    return url, csrf_of(client.get(url).text)


# ------------------------------------------------------------------------------------------------
# Control and bidi characters
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("nom", "Jeanne \x1b[31mDupont", "Le nom"),
        ("nom", "Jeanne \u202eDupont", "Le nom"),
        ("qualite", "Maire\u2067", "La qualité"),
        ("deliberation", "Délibération\x00 2026-01", "La référence de la délibération"),
        ("nom", "Jeanne\nDupont", "Le nom"),
    ],
)
def test_the_signature_form_refuses_control_and_bidi_characters(
    client: TestClient, settings: Settings, convention: QuotesOutcome, field: str, value: str, label: str
) -> None:
    url, csrf = _page(client, convention)
    before = snapshot(settings)

    confirm = client.post(f"{url}/signer", data=sign_fields(csrf, **{field: value}))
    direct = client.post(
        f"{url}/signer/confirmer", data=sign_fields(csrf, documents="0" * 64, **{field: value}), follow_redirects=False
    )

    assert confirm.status_code == 422
    assert f"{label} contient un" in shown(confirm) and "retirez-le" in shown(confirm)
    assert value not in confirm.text  # the refused text is not shown again
    assert direct.status_code in (409, 422)  # documents digest checked first, then the fields
    assert snapshot(settings) == before


def test_a_signature_is_recorded_in_nfc(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    url, csrf = _page(client, convention)
    decomposed = "Me\u0301lanie Be\u0301thune"
    confirm = client.post(f"{url}/signer", data=sign_fields(csrf, nom=decomposed))
    done = client.post(
        f"{url}/signer/confirmer",
        data=sign_fields(csrf, nom=decomposed, documents=hidden(confirm.text, "documents")),
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert approvals_of(settings)["collectivity"].decided_name == "Mélanie Béthune"


def test_the_decline_form_refuses_controls_and_reads_crlf_as_line_feeds(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url, csrf = _page(client, convention)
    before = snapshot(settings)

    refused = client.post(f"{url}/refuser", data={"csrf": csrf, "nom": "", "motif": "Trop cher\x1b[8m caché"})
    reversed_name = client.post(f"{url}/refuser/confirmer", data={"csrf": csrf, "nom": "X\u202e", "motif": "Non"})

    assert refused.status_code == 422 and "Le motif contient un caractère de contrôle (U+001B)" in shown(refused)
    assert reversed_name.status_code == 422 and "Le nom contient un caractère invisible" in shown(reversed_name)
    assert snapshot(settings) == before
    done = client.post(
        f"{url}/refuser/confirmer", data={"csrf": csrf, "nom": "", "motif": "Trop cher.\r\nVoir le budget."}
    )
    assert done.status_code == 200
    assert approvals_of(settings)["collectivity"].decline_reason == "Trop cher.\nVoir le budget."


def test_the_question_form_refuses_controls(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    url, csrf = _page(client, convention)
    before = snapshot(settings)

    for question in ("Une question \x1b]0;titre\x07", "Question \u202eesrevni", "\x85suite"):
        response = client.post(f"{url}/question", data={"csrf": csrf, "question": question})
        assert response.status_code == 422
        assert "La question contient un" in shown(response)
    assert snapshot(settings) == before
    ok = client.post(f"{url}/question", data={"csrf": csrf, "question": "Ligne 1\r\n\tLigne 2"})
    assert ok.status_code == 200
    with unit_of_work(settings) as uow:
        assert [q.message for q in uow.session.exec(select(Question)).all()] == ["Ligne 1\n\tLigne 2"]


def test_a_link_whose_turn_has_not_come_cannot_ask_a_question(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    with unit_of_work(settings) as uow:
        conv = uow.session.exec(select(Convention)).one()
        cdg = uow.session.exec(select(Approval).where(Approval.party == "cdg")).one()
        assert cdg.status == "waiting"
        cdg_url = path_of(link_for(settings, conv, cdg))
    page = client.get(cdg_url)
    assert page.status_code == 409 and "Pas encore à vous de signer" in shown(page)
    before = snapshot(settings)

    csrf = csrf_token(settings, token_of(cdg_url))  # the page has no form: the CSRF token of its link
    response = client.post(f"{cdg_url}/question", data={"csrf": csrf, "question": "Et moi ?"})

    assert response.status_code == 409
    assert "ne permet pas encore, ou plus, de poser une question" in shown(response)
    assert snapshot(settings) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signatory_name", "Jeanne \u202eDupont"),
        ("signatory_name", "Jeanne \x1b[2JDupont"),
        ("signatory_capacity", "Maire\u200e"),
        ("commitment_number", "ENG\x0742"),
        ("mailbox_names", ["mairie\u2066"]),
    ],
)
def test_the_api_refuses_control_and_bidi_characters(
    client: TestClient, settings: Settings, field: str, value: Any
) -> None:
    before = snapshot(settings)
    response = client.post("/api/requests", json={**REFUSED, field: value}, headers=KEY)
    assert response.status_code == 422
    assert "contient un" in response.json()["error"] and "non autorisé" in response.json()["error"]
    assert snapshot(settings) == before


def test_a_lone_surrogate_is_refused_not_a_500(client: TestClient, settings: Settings) -> None:
    body = b'{"collectivity": "01001", "items": [{"code": "antivirus", "quantity": 1}], '
    body += b'"signatory_name": "Jeanne \\ud800", "signatory_email": "maire@abergement.example"}'
    response = client.post("/api/requests", content=body, headers={**KEY, "Content-Type": "application/json"})
    assert response.status_code == 422 and "caractère Unicode invalide" in response.json()["error"]
    assert _requests(settings) == 0


# ------------------------------------------------------------------------------------------------
# Strict typing, ids, methods, sizes, depth
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [True, "3", "1", 2.5])
def test_quantity_is_strict(client: TestClient, settings: Settings, quantity: Any) -> None:
    body = {**REFUSED, "items": [{"code": "messagerie-5go", "quantity": quantity}]}
    response = client.post("/api/requests", json=body, headers=KEY)
    assert response.status_code == 422
    assert response.json()["error"].startswith("articles › n° 1 › quantité : doit être un nombre entier")
    assert _requests(settings) == 0


@pytest.mark.parametrize("request_id", ["12743123921621680128", "2147483648", "0", "-1", "99999999999999999999999"])
def test_an_id_beyond_the_database_integer_is_422_not_500(client: TestClient, request_id: str) -> None:
    response = client.get(f"/api/requests/{request_id}", headers=KEY)
    assert response.status_code == 422
    assert response.json() == {"error": "L'identifiant de la demande doit être un nombre entier de 1 à 2147483647."}


def test_the_largest_id_is_simply_unknown(client: TestClient) -> None:
    response = client.get("/api/requests/2147483647", headers=KEY)
    assert response.status_code == 404 and response.json() == {"error": "aucune demande n° 2147483647"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/requests", "POST"),
        ("DELETE", "/api/requests/1", "GET"),
        ("PUT", "/api/requests/1", "GET"),
        ("GET", "/approbation/un-lien/signer", "POST"),
        ("DELETE", "/approbation/un-lien/question", "POST"),
    ],
)
def test_405_carries_allow(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path, headers=KEY)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert "Cette action n'est pas permise ici." in html.unescape(response.text)


def test_a_too_deep_json_is_422_in_french(client: TestClient, settings: Settings) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    nested_field = b'{"collectivity": ' + b"[" * 800 + b"]" * 800 + b"}"
    for body in (deep, nested_field, b'{"items": ' + b"{" * 30_000):
        response = client.post("/api/requests", content=body, headers={**KEY, "Content-Type": "application/json"})
        assert response.status_code == 422, body[:40]
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert "JSON" in error or "doit être un texte" in error, error
        assert "error" not in error.lower() and "parsing" not in error
    assert _requests(settings) == 0


def test_a_body_that_is_not_json_is_415(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/requests", content=b"collectivity=62700", headers={**KEY, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": "Envoyez le corps de la requête en JSON, avec l'en-tête Content-Type: application/json."
    }


def test_the_form_size_limits_answer_in_french(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url, csrf = _page(client, convention)
    before = snapshot(settings)

    too_big = client.post(f"{url}/question", data={"csrf": csrf, "question": "x" * 200_000})
    too_many = client.post(
        f"{url}/question",
        content="&".join(["csrf=" + csrf, *(f"f{i}=1" for i in range(1500))]).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    api_too_big = client.post(
        "/api/requests", content=b" " * 200_000, headers={**KEY, "Content-Type": "application/json"}
    )

    assert too_big.status_code == 413 and "trop volumineux (128 Kio au plus)" in shown(too_big)
    assert too_many.status_code == 400 and "trop volumineux (trop de champs) ou mal formé" in shown(too_many)
    assert api_too_big.status_code == 413 and "trop volumineux" in api_too_big.json()["error"]
    for response in (too_big, too_many):
        assert "Traceback" not in response.text and "exceeded" not in response.text.lower()
    assert snapshot(settings) == before


# ------------------------------------------------------------------------------------------------
# Idempotency-Key
# ------------------------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_give_the_same_answer_and_one_request(
    client: TestClient, settings: Settings
) -> None:
    headers = {**KEY, "Idempotency-Key": "portail-2026-000123"}
    first = client.post("/api/requests", json=REFUSED, headers=headers)
    again = client.post("/api/requests", json=dict(reversed(list(REFUSED.items()))), headers=headers)  # other key order

    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert _requests(settings) == 1

    other_body = client.post("/api/requests", json={**REFUSED, "signatory_name": "Paul Martin"}, headers=headers)
    assert other_body.status_code == 409
    assert "déjà servi pour une autre demande" in other_body.json()["error"]
    assert _requests(settings) == 1

    other_key = client.post("/api/requests", json=REFUSED, headers={**KEY, "Idempotency-Key": "portail-2026-000124"})
    assert other_key.status_code == 201 and other_key.json()["id"] != first.json()["id"]
    assert _requests(settings) == 2


def test_a_refused_submission_leaves_no_idempotency_key(client: TestClient, settings: Settings) -> None:
    headers = {**KEY, "Idempotency-Key": "essai-1"}
    before = snapshot(settings)

    unknown = client.post("/api/requests", json={**REFUSED, "collectivity": "75056"}, headers=headers)

    assert unknown.status_code == 404
    assert snapshot(settings) == before
    with unit_of_work(settings) as uow:
        assert uow.session.exec(select(WebGuard).where(WebGuard.bucket == "idempotency")).all() == []
    retried = client.post("/api/requests", json=REFUSED, headers=headers)  # the same key, corrected
    assert retried.status_code == 201


@pytest.mark.parametrize("key", ["", "a b", "é".encode(), "x" * 201])
def test_a_malformed_idempotency_key_is_422(client: TestClient, settings: Settings, key: str | bytes) -> None:
    response = client.post("/api/requests", json=REFUSED, headers={**KEY, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json() == {
        "error": "L'en-tête Idempotency-Key doit compter de 1 à 200 caractères ASCII visibles, sans espace."
    }
    assert _requests(settings) == 0
