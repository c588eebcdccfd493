"""Attacks on the approval links and forms: every one is refused with an explanatory page and a 4xx
status, and the database (approvals, conventions, audit trail, outbox, questions) is left unchanged."""

from __future__ import annotations

import string
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.links import APPROVAL_SALT, LinkError, read_approval_token
from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings
from mairie.web.security import csrf_token
from models.entities import Approval
from tests.integration.web.conftest import (
    csrf_of,
    hidden,
    new_convention,
    path_of,
    shown,
    sign_fields,
    snapshot,
    token_of,
)

POST_ACTIONS = ("signer", "signer/confirmer", "refuser", "refuser/confirmer", "question")


def attempt_everything(client: TestClient, token: str, csrf: str) -> list[int]:
    """Open the page and a document, then try every POST with complete, valid-looking forms."""
    base = f"/approbation/{token}"
    statuses = [client.get(base).status_code, client.get(f"{base}/documents/x.pdf").status_code]
    forms = {
        "signer": sign_fields(csrf),
        "signer/confirmer": sign_fields(csrf, documents="0" * 64),
        "refuser": {"csrf": csrf, "nom": "Intrus", "motif": "refus forgé"},
        "refuser/confirmer": {"csrf": csrf, "nom": "Intrus", "motif": "refus forgé"},
        "question": {"csrf": csrf, "question": "question forgée"},
    }
    for action in POST_ACTIONS:
        statuses.append(client.post(f"{base}/{action}", data=forms[action], follow_redirects=False).status_code)
    return statuses


def _alter(token: str, position: int) -> str:
    replacement = "A" if token[position] != "A" else "B"
    return token[:position] + replacement + token[position + 1 :]


def _signed_with(secret: str, claim_token: str, settings: Settings, age_days: float = 0) -> str:
    """The same claim, signed with `secret` and dated `age_days` ago."""
    claim = read_approval_token(settings, claim_token)

    class Dated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age_days * 86400)

    serializer = URLSafeTimedSerializer(secret, salt=APPROVAL_SALT, signer=Dated)
    return serializer.dumps({"c": claim.convention_id, "a": claim.approval_id, "n": claim.nonce, "d": claim.digest})


def test_forged_link_signed_with_another_secret(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    forged = _signed_with("un-autre-secret-" * 3, token_of(convention.approval_url), settings)
    before = snapshot(settings)

    page = client.get(f"/approbation/{forged}")

    assert page.status_code == 403
    assert "Ce lien n'est pas valide" in shown(page) and "Rien n'a été enregistré" in shown(page)
    assert set(attempt_everything(client, forged, csrf_token(settings, forged))) == {403}
    assert snapshot(settings) == before


@pytest.mark.parametrize("where", ["payload", "timestamp", "signature"])
def test_altered_link_one_character_changed(
    client: TestClient, settings: Settings, convention: QuotesOutcome, where: str
) -> None:
    token = token_of(convention.approval_url)
    payload, stamp, signature = token.rsplit(".", 2)
    position = {
        "payload": len(payload) // 2,
        "timestamp": len(payload) + 1 + len(stamp) // 2,
        "signature": len(payload) + len(stamp) + 2 + len(signature) // 2,
    }[where]
    altered = _alter(token, position)
    before = snapshot(settings)

    statuses = attempt_everything(client, altered, csrf_token(settings, altered))

    assert set(statuses) == {403}
    assert snapshot(settings) == before


def test_expired_link(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    old = _signed_with(settings.secret_key, token_of(convention.approval_url), settings, settings.link_max_age_days + 1)
    before = snapshot(settings)

    page = client.get(f"/approbation/{old}")

    assert page.status_code == 410
    assert "Ce lien a expiré" in shown(page) and "Lien expiré" in shown(page)
    assert set(attempt_everything(client, old, csrf_token(settings, old))) == {410}
    assert snapshot(settings) == before


def test_a_link_still_young_enough_works(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    recent = _signed_with(settings.secret_key, token_of(convention.approval_url), settings, 1)

    assert client.get(f"/approbation/{recent}").status_code == 200


def test_replayed_confirmation_records_one_signature(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    fields = sign_fields(csrf, documents=hidden(client.post(f"{url}/signer", data=sign_fields(csrf)).text, "documents"))
    first = client.post(f"{url}/signer/confirmer", data=fields, follow_redirects=False)
    assert first.status_code == 303
    after_first = snapshot(settings)

    replay = client.post(f"{url}/signer/confirmer", data=fields, follow_redirects=False)
    other_name = client.post(
        f"{url}/signer/confirmer", data={**fields, "nom": "Autre Personne"}, follow_redirects=False
    )
    decline = client.post(f"{url}/refuser/confirmer", data={"csrf": csrf, "nom": "X", "motif": "trop tard"})

    assert replay.status_code == 303 and "enregistre" not in replay.headers["location"]
    assert other_name.status_code == 303
    assert "Convention déjà signée" in shown(decline)
    assert snapshot(settings) == after_first


def test_a_link_of_convention_a_opens_nothing_of_convention_b(client: TestClient, settings: Settings) -> None:
    a = new_convention(settings)
    b = new_convention(settings, collectivity="62001", email="maire@ablain.example")
    before = snapshot(settings)
    a_path, b_path = path_of(a.approval_url), path_of(b.approval_url)

    for name in [f"{q.number}.pdf" for q in b.quotes] + [f"{b.convention}-projet.pdf", f"{b.convention}.pdf"]:
        response = client.get(f"{a_path}/documents/{name}")
        assert response.status_code == 404
        assert "pas rattaché à ce lien" in shown(response)
    a_csrf = csrf_of(client.get(a_path).text)
    for action in POST_ACTIONS:
        assert client.post(f"{b_path}/{action}", data=sign_fields(a_csrf)).status_code == 403
    assert client.get(f"{a_path}/documents/..%2F..%2Fmairie.sqlite3").status_code == 404
    assert snapshot(settings) == before


def test_voided_link_after_the_nonce_is_rotated(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    with unit_of_work(settings) as uow:
        approval = uow.session.exec(select(Approval).where(Approval.party == "collectivity")).one()
        approval.link_nonce = "nouveau-nonce-apres-nouvelle-version"
        uow.session.add(approval)
        uow.commit()
    before = snapshot(settings)

    page = client.get(url)

    assert page.status_code == 409
    assert "n'est plus valable" in shown(page)
    assert set(attempt_everything(client, token_of(url), csrf)) == {409}
    assert snapshot(settings) == before


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-hex"])
def test_posts_without_the_link_csrf_token_are_refused(
    client: TestClient, settings: Settings, convention: QuotesOutcome, csrf: str | None
) -> None:
    url = path_of(convention.approval_url)
    before = snapshot(settings)
    for action in POST_ACTIONS:
        fields = {k: v for k, v in sign_fields(csrf or "").items() if csrf is not None or k != "csrf"}
        response = client.post(f"{url}/{action}", data=fields)
        assert response.status_code == 403
        assert "Formulaire refusé" in shown(response)
    assert snapshot(settings) == before


def test_posts_from_another_site_are_refused(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    before = snapshot(settings)

    response = client.post(
        f"{url}/question", data={"csrf": csrf, "question": "?"}, headers={"Origin": "https://evil.example"}
    )
    same_site = client.post(f"{url}/signer", data=sign_fields(csrf), headers={"Origin": "http://testserver"})
    # With Referrer-Policy: no-referrer, browsers send "Origin: null" for the page's own forms.
    no_referrer = client.post(f"{url}/signer", data=sign_fields(csrf), headers={"Origin": "null"})

    assert response.status_code == 403
    assert same_site.status_code == 200 and no_referrer.status_code == 200
    assert snapshot(settings) == before


def test_get_never_changes_state(client: TestClient, settings: Settings, convention: QuotesOutcome) -> None:
    url = path_of(convention.approval_url)
    before = snapshot(settings)

    for _ in range(3):
        assert client.get(url).status_code == 200
    for action in POST_ACTIONS:
        response = client.get(f"{url}/{action}", params={"nom": "Jeanne Dupont", "qualite": "Maire", "habilite": "oui"})
        assert response.status_code == 405
    assert client.head(url).status_code in (200, 405)

    assert snapshot(settings) == before


def test_overlong_tokens_are_refused_before_any_work(client: TestClient, settings: Settings) -> None:
    before = snapshot(settings)
    assert client.get("/approbation/" + "a" * 5000).status_code == 403
    assert snapshot(settings) == before


URLSAFE = string.ascii_letters + string.digits + "-_."


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_thousand_random_or_mutated_tokens_change_nothing(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    valid = token_of(convention.approval_url)
    before = snapshot(settings)
    random_tokens = st.text(alphabet=URLSAFE, min_size=0, max_size=300).filter(lambda t: t not in ("", ".", ".."))
    mutated = st.builds(
        lambda i, ch: valid[: i % len(valid)] + ch + valid[i % len(valid) + 1 :],
        st.integers(min_value=0, max_value=10_000),
        st.sampled_from(URLSAFE),
    )
    truncated = st.integers(min_value=1, max_value=len(valid) - 1).map(lambda n: valid[:n])
    extended = st.text(alphabet=URLSAFE, min_size=1, max_size=10).map(lambda s: valid + s)

    @hypothesis_settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(token=st.one_of(random_tokens, mutated, truncated, extended))
    def attack(token: str) -> None:
        try:
            read_approval_token(settings, token)
        except LinkError:
            pass
        else:  # the same link spelled differently (base64 padding bits): not an attack
            assume(False)
        statuses = attempt_everything(client, token, csrf_token(settings, token))
        assert all(400 <= status < 500 for status in statuses), statuses
        assert snapshot(settings) == before

    attack()
