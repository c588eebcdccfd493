"""Rate limits kept in the database (issue 17): per address, per approval link, questions per link and per
hour, calls and submissions per API key, failed API keys slowed down then locked out; answered 429 with
Retry-After and a French sentence; shared by several app instances (as by several web processes), on
SQLite and PostgreSQL. The app's clock is replaced to cross windows without waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings
from mairie.web import create_app
from models.entities import OutboxMessage, Question, ServiceRequest, WebGuard
from tests.integration.web.conftest import API_KEY, BROWSER, csrf_of, new_convention, path_of, shown

KEY = {"X-API-Key": API_KEY}
T0 = 1_900_000_000.0  # an instant of the app's clock (40 s into a minute): windows are counted from the epoch
REFUSED = {  # a commune outside Nord and Pas-de-Calais: registered as refused, no PDF to render
    "collectivity": "01001",
    "items": [{"code": "messagerie-5go", "quantity": 3}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@abergement.example",
}
OFF = {
    "rate_ip_per_minute": 0,
    "rate_link_per_minute": 0,
    "rate_questions_per_link_per_hour": 0,
    "rate_api_key_per_minute": 0,
    "rate_api_submissions_per_key_per_hour": 0,
    "rate_api_failures_before_delay": 0,
    "rate_api_failures_before_lockout": 0,
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(settings: Settings, clock: Clock) -> Iterator[Callable[..., TestClient]]:
    """`limited(**limits)`: a client of an app whose only limits are `limits`, on the test's database."""
    clients: list[TestClient] = []

    def make(**limits: Any) -> TestClient:
        app = create_app(settings.model_copy(update={**OFF, **limits}), in_process=True)
        app.state.clock = clock
        client = TestClient(app, headers={"User-Agent": BROWSER})
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _count(settings: Settings, model: Any, *where: Any) -> int:
    with unit_of_work(settings) as uow:
        return int(uow.session.exec(select(func.count()).select_from(model).where(*where)).one())


def _retry_after(response: Any) -> int:
    value = int(response.headers["retry-after"])
    assert value >= 1
    return value


def test_per_address(limited: Callable[..., TestClient], clock: Clock) -> None:
    client = limited(rate_ip_per_minute=5)
    assert [client.get("/nulle-part").status_code for _ in range(5)] == [404] * 5

    refused = client.get("/nulle-part")
    api = client.get("/api/requests/1", headers=KEY)

    assert refused.status_code == 429 and api.status_code == 429
    assert "Trop de requêtes depuis votre adresse : réessayez dans" in shown(refused)
    assert api.json()["error"].startswith("Trop de requêtes depuis votre adresse : réessayez dans ")
    assert 1 <= _retry_after(refused) <= 60
    assert client.get("/health").status_code == 200  # monitoring is never limited
    clock.now += _retry_after(refused)
    assert client.get("/nulle-part").status_code == 404


def test_the_count_is_shared_by_several_app_instances(limited: Callable[..., TestClient], settings: Settings) -> None:
    """Two apps (as two web processes) share nothing in memory: the limit holds across them."""
    one, two = limited(rate_ip_per_minute=4), limited(rate_ip_per_minute=4)
    statuses = [client.get("/nulle-part").status_code for client in (one, two, one, two, one, two)]
    assert statuses == [404, 404, 404, 404, 429, 429]
    stored = _count(settings, WebGuard, WebGuard.bucket == "ip")
    assert stored == 1  # one counter, named by a digest
    with unit_of_work(settings) as uow:
        row = uow.session.exec(select(WebGuard).where(WebGuard.bucket == "ip")).one()
        assert row.count == 6 and "testclient" not in row.subject and len(row.subject) == 64


def test_per_approval_link(limited: Callable[..., TestClient], settings: Settings, clock: Clock) -> None:
    client = limited(rate_link_per_minute=3)
    a = path_of(new_convention(settings).approval_url)
    b = path_of(new_convention(settings, collectivity="62001", email="maire@ablain.example").approval_url)

    assert [client.get(a).status_code for _ in range(3)] == [200] * 3
    refused = client.get(f"{a}/documents/x.pdf")
    other_link = client.get(b)

    assert refused.status_code == 429 and "Trop de requêtes sur ce lien" in shown(refused)
    assert other_link.status_code == 200
    forged = client.get(a[:-3] + "xyz")  # a forged link is not counted as this link
    assert forged.status_code in (403, 404, 409)
    clock.now += 60
    assert client.get(a).status_code == 200


def test_questions_per_link_and_per_hour(limited: Callable[..., TestClient], settings: Settings, clock: Clock) -> None:
    """The probe: 30 questions from one link sent 30 emails to the operators in 4 s."""
    client = limited(rate_questions_per_link_per_hour=5)
    url = path_of(new_convention(settings).approval_url)
    csrf = csrf_of(client.get(url).text)

    statuses = [
        client.post(f"{url}/question", data={"csrf": csrf, "question": f"Question {i}"}, follow_redirects=False)
        for i in range(30)
    ]

    assert [r.status_code for r in statuses] == [303] * 5 + [429] * 25
    refused = statuses[5]
    assert "Vous avez déjà envoyé plusieurs questions depuis ce lien" in shown(refused)
    assert "Question 5" in shown(refused)  # the text typed is kept in the form
    assert 1 <= _retry_after(refused) <= 3600
    assert _count(settings, Question) == 5
    assert _count(settings, OutboxMessage, OutboxMessage.kind == "question_forwarded") == 5
    clock.now += 3600
    again = client.post(f"{url}/question", data={"csrf": csrf, "question": "Une de plus"}, follow_redirects=False)
    assert again.status_code == 303


def test_a_refused_question_text_does_not_use_the_quota(
    limited: Callable[..., TestClient], settings: Settings, convention: QuotesOutcome
) -> None:
    client = limited(rate_questions_per_link_per_hour=1)
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    for bad in ("", "   ", "x\x1b"):
        assert client.post(f"{url}/question", data={"csrf": csrf, "question": bad}).status_code == 422
    ok = client.post(f"{url}/question", data={"csrf": csrf, "question": "Enfin"}, follow_redirects=False)
    assert ok.status_code == 303


def test_calls_per_api_key(limited: Callable[..., TestClient]) -> None:
    client = limited(rate_api_key_per_minute=3)
    assert [client.get("/api/requests/999", headers=KEY).status_code for _ in range(3)] == [404] * 3
    refused = client.get("/api/requests/999", headers=KEY)
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("Trop d'appels à l'API avec cette clé : réessayez dans ")
    assert 1 <= _retry_after(refused) <= 60


def test_submissions_per_api_key(limited: Callable[..., TestClient], settings: Settings) -> None:
    """The probe: 200 valid submissions made 200 requests and 200 emails to one address."""
    client = limited(rate_api_submissions_per_key_per_hour=3)
    statuses = [client.post("/api/requests", json=REFUSED, headers=KEY).status_code for _ in range(6)]
    assert statuses == [201, 201, 201, 429, 429, 429]
    assert _count(settings, ServiceRequest) == 3
    refused = client.post("/api/requests", json=REFUSED, headers=KEY)
    assert "Trop de demandes déposées avec cette clé d'API" in refused.json()["error"]
    assert 1 <= _retry_after(refused) <= 3600


def test_failed_keys_are_slowed_down_then_locked_out(limited: Callable[..., TestClient], clock: Clock) -> None:
    """The probe: 200 wrong-key attempts in 1.8 s, all answered."""
    client = limited(
        rate_api_failures_before_delay=5,
        rate_api_failure_delay_seconds=0.2,
        rate_api_failures_before_lockout=20,
        rate_api_failure_window_minutes=15,
        rate_api_lockout_minutes=15,
    )
    answers = []
    for _ in range(30):
        started = time.monotonic()
        response = client.get("/api/requests/1", headers={"X-API-Key": "mauvaise-cle"})
        answers.append((response.status_code, time.monotonic() - started))

    assert [status for status, _ in answers] == [401] * 19 + [429] * 11
    assert all(elapsed < 0.2 for _, elapsed in answers[:5])  # the first failures are answered at once
    assert all(elapsed >= 0.2 for _, elapsed in answers[5:19])  # then each one waits
    assert all(elapsed < 0.2 for _, elapsed in answers[19:])  # the lockout is answered at once
    locked = client.get("/api/requests/1", headers=KEY)  # even the right key, from that address
    assert locked.status_code == 429
    assert "Trop d'essais de clé d'API refusés depuis votre adresse" in locked.json()["error"]
    assert 1 <= _retry_after(locked) <= 15 * 60
    missing_key_json = client.post(
        "/api/requests", content=b"{pas du json", headers={"Content-Type": "application/json"}
    )
    assert missing_key_json.status_code == 429  # the key check (and its lockout) comes before the body
    clock.now += 15 * 60
    assert client.get("/api/requests/999", headers=KEY).status_code == 404


def test_a_failure_window_forgets_old_failures(limited: Callable[..., TestClient], clock: Clock) -> None:
    client = limited(rate_api_failures_before_lockout=3, rate_api_failure_window_minutes=1)
    wrong = {"X-API-Key": "mauvaise-cle"}
    assert [client.get("/api/requests/1", headers=wrong).status_code for _ in range(2)] == [401, 401]
    clock.now += 60
    assert [client.get("/api/requests/1", headers=wrong).status_code for _ in range(2)] == [401, 401]
    assert client.get("/api/requests/1", headers=wrong).status_code == 429


def test_old_counters_are_pruned(
    limited: Callable[..., TestClient], settings: Settings, convention: QuotesOutcome, clock: Clock
) -> None:
    client = limited(rate_ip_per_minute=100, rate_link_per_minute=100)
    client.get(path_of(convention.approval_url))
    assert _count(settings, WebGuard) == 2  # the address and the link
    clock.now += 3600
    client.get("/nulle-part")  # a new window for the address: the link's old counter goes
    with unit_of_work(settings) as uow:
        assert [row.bucket for row in uow.session.exec(select(WebGuard)).all()] == ["ip"]
