"""No secret in the logs (issue 17): `mairie web` runs as `mairie up` starts it (a real uvicorn server on
loopback, its access log on), a whole approval round goes through it — a submission by the API, its
state, an API key put in a query string, the three parties' pages, documents, confirmations and
signatures, a question, a forged link — then its log is searched for every token, key and secret used.

The probe it keeps: the access log printed every approval token in full (137 in one run) and the API key
passed in a query string.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from mairie.services.setup import initialise
from mairie.settings import Settings
from mairie.stack import start_web
from mairie.web.security import csrf_token
from tests.conftest import mairie_siret, make_settings
from tests.integration.web.conftest import csrf_of, hidden, link_in, outbox, sign_fields, token_of

API_KEY = "cle-api-journal-Zq3xT9wL2pV7mK4nR8sB"
SECRET = "secret-journal-Hc5Jv8Nq2Wx6Lp9Tz3Rb7Kd4Mf1Gs0Ya"
GOOD = {
    "collectivity": "62700",
    "siret": mairie_siret("62700"),
    "items": [{"code": "messagerie-5go", "quantity": 3}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@regnauville.example",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(settings: Settings, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIRIE_", "PREFECT_"))}
    env.update(
        MAIRIE_DATA_DIR=str(settings.data_dir),
        MAIRIE_DATABASE_URL=settings.sqlalchemy_url,
        MAIRIE_API_KEY=API_KEY,
        MAIRIE_SECRET_KEY=SECRET,
        MAIRIE_PUBLIC_URL=settings.public_url,
        MAIRIE_SMTP_PORT="9",  # nothing listens: the emails stay in the outbox
        PREFECT_HOME=str(home),
        PYTHONUNBUFFERED="1",
    )
    return env


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mairie web stopped: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    pytest.fail(f"mairie web did not answer in {timeout} s: {log.read_text(errors='replace')[-2000:]}")


def _sign(client: httpx.Client, url: str, name: str, capacity: str) -> str:
    """Open the page, a document, confirm and sign; returns the link's CSRF token."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    csrf = csrf_of(page.text)
    document = re.search(r'href="([^"]+/documents/[^"]+\.pdf)"', page.text)
    assert document, "no document on the page"
    assert client.get(document.group(1)).status_code == 200
    confirm = client.post(f"{url}/signer", data=sign_fields(csrf, nom=name, qualite=capacity))
    assert confirm.status_code == 200, confirm.text
    done = client.post(
        f"{url}/signer/confirmer",
        data=sign_fields(csrf, nom=name, qualite=capacity, documents=hidden(confirm.text, "documents")),
    )
    assert done.status_code == 200, done.text  # the redirect (303, ?enregistre=signature) followed
    return csrf


def test_the_logs_of_a_whole_round_hold_no_token_and_no_key(tmp_path: Path) -> None:
    port = _free_port()
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'mairie.sqlite3'}",
        api_key=API_KEY,
        secret_key=SECRET,
        public_url=f"http://127.0.0.1:{port}",
    )
    initialise(settings)
    log = tmp_path / "web.log"
    (tmp_path / "prefect").mkdir()
    process = start_web(settings, _environment(settings, tmp_path / "prefect"), log)
    secrets_used = {API_KEY, SECRET}
    try:
        _wait_for(f"{settings.public_url}/health", process, log)
        with httpx.Client(base_url=settings.public_url, timeout=60, follow_redirects=True) as client:
            created = client.post("/api/requests", json=GOOD, headers={"X-API-Key": API_KEY})
            assert created.status_code == 201, created.text
            request_id = created.json()["id"]
            assert client.get(f"/api/requests/{request_id}", headers={"X-API-Key": API_KEY}).status_code == 200
            in_query = client.get(f"/api/requests/{request_id}", params={"api_key": API_KEY, "X-API-Key": API_KEY})
            assert in_query.status_code == 401  # the key goes in the header only, and the log never shows it

            mayor = link_in(outbox(settings, "quotes_to_signatory")[-1])
            csrf = _sign(client, mayor, "Jeanne Dupont", "Maire")
            assert client.post(f"{mayor}/question", data={"csrf": csrf, "question": "Et après ?"}).status_code == 200
            secrets_used |= {token_of(mayor), csrf}
            forged = mayor[:-6] + "AAAAAA"
            assert client.get(forged).status_code in (403, 409)
            secrets_used.add(token_of(forged))

            for email, name, capacity in (
                (settings.cdg62.signatory_email, "Paul Martin", "Président"),
                (settings.syndicat.signatory_email, "Anne Leroy", "Présidente"),
            ):
                link = link_in(next(m for m in outbox(settings, "signature_request") if m.recipients == [email]))
                secrets_used |= {token_of(link), _sign(client, link, name, capacity)}
            assert (
                client.get(f"/api/requests/{request_id}", headers={"X-API-Key": API_KEY}).json()["convention"]["status"]
                == "in_force"
            )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    text = log.read_text(errors="replace")
    # The log is there and is the access log of this run, tokens masked
    assert '"POST /api/requests HTTP/1.1" 201' in text, text[-3000:]
    assert '"GET /approbation/[masqué] HTTP/1.1" 200' in text
    assert '"POST /approbation/[masqué]/signer/confirmer HTTP/1.1" 303' in text
    assert '"GET /approbation/[masqué]?[masqué] HTTP/1.1" 200' in text  # the page after a decision
    assert f'"GET /api/requests/{request_id}?[masqué] HTTP/1.1" 401' in text
    assert len(secrets_used) >= 8
    leaked = sorted(s for s in secrets_used if s in text or s[-20:] in text)
    assert leaked == []
    for token in (s for s in secrets_used if s.count(".") == 2):  # a link's token: payload.timestamp.signature
        assert token.rsplit(".", 1)[1] not in text
    assert csrf_token(settings, token_of(mayor)) not in text
