"""schemathesis against the app's own OpenAPI schema (`/openapi.json`), every phase (examples, coverage,
fuzzing, stateful; valid and invalid bodies, ids, headers, other methods):

- every check of schemathesis passes (status codes, headers and content types documented, responses
  matching their schema, 405 with `Allow`, the key required), but for its two data checks, which this
  test replaces with exact ones (below);
- no answer is a 5xx;
- a refused call (4xx) changes nothing in the database: every table, the rate-limit and idempotency
  table included, is counted before and after each call;
- a body that the published schema accepts is refused (422) only for what no JSON schema can say: a
  SIREN or SIRET checksum, an item asked twice, an address that email-validator refuses, a billing
  SIRET of another collectivity, a postcode that is not the commune's, a billing SIRET or address left
  out for a collectivity that has none on file (`positive_data_acceptance` would also count those);
- a body the API accepts is, as the API normalises it (surrounding spaces stripped, codes and names in
  lower case, spaces of a SIRET removed), valid for the published schema (`negative_data_rejection`
  would count the normalisation itself as accepting invalid data).

The number of examples is bounded (`MAX_EXAMPLES` per operation and phase) and the seed fixed, so that
the run takes well under a minute and is the same every time; the rate limits are off here (they have
their own tests) and the API key is sent with every case (schemathesis also sends some without it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from schemathesis.engine import Status, events
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mairie.database import engine
from mairie.schemas import RequestForm
from mairie.services.setup import initialise
from mairie.settings import Settings
from mairie.web import create_app
from mairie.web.idempotency import KEY_PATTERN
from tests.conftest import make_settings
from tests.integration.web.conftest import API_KEY, SECRET

MAX_EXAMPLES = 15
SEED = 20261201
LIMITS_OFF = {
    "rate_ip_per_minute": 0,
    "rate_link_per_minute": 0,
    "rate_questions_per_link_per_hour": 0,
    "rate_api_key_per_minute": 0,
    "rate_api_submissions_per_key_per_hour": 0,
    "rate_api_failures_before_delay": 0,
    "rate_api_failures_before_lockout": 0,
}
# Why a schema-valid body may still be refused: what JSON Schema cannot express.
BEYOND_SCHEMA = re.compile(
    r"clé de contrôle|demandé deux fois|adresse électronique invalide|n.appartient pas à"
    # what depends on the collectivity named: its postcodes, and whether its SIRET and address are on file
    r"|code postal \d{5} inconnu pour cette commune|indiquez le SIRET de l.établissement facturé"
    r"|indiquez l.adresse de facturation"
)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    answer: bytes = b""
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)


def table_state(settings: Settings) -> dict[str, int]:
    """The number of rows of every table (one query)."""
    tables = SQLModel.metadata.sorted_tables
    counts = [sa_select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables]
    with engine(settings).connect() as connection:
        return dict(connection.execute(sa_select(*counts)).one()._mapping)


class Recorder:
    """Wraps the app: records each call with the database's state before and after it."""

    def __init__(self, app: ASGIApp, state: Callable[[], dict[str, int]]) -> None:
        self.app = app
        self.state = state
        self.calls: list[Call] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        call = Call(scope["method"], scope["path"], headers, b"", before=self.state())
        body: list[bytes] = []
        answer: list[bytes] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        call.body, call.answer, call.after = b"".join(body), b"".join(answer), self.state()
        self.calls.append(call)


@pytest.fixture
def fuzz_settings(tmp_path: Path) -> Settings:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'mairie.sqlite3'}",
        api_key=API_KEY,
        secret_key=SECRET,
        public_url="http://testserver",
        **LIMITS_OFF,
    )
    initialise(settings)
    return settings


def _schema_failures(schema: Any) -> tuple[list[str], int]:
    """Run every phase; the failed checks and errors schemathesis reports, and the number of cases."""
    failures: list[str] = []
    cases = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                failures += [
                    f"{event.label}: {check.name}: {check.failure_info.failure if check.failure_info else ''}"
                    for check in checks
                    if check.status != Status.SUCCESS
                ]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"error: {event}")
    return failures, cases


def test_the_api_keeps_its_own_schema(fuzz_settings: Settings) -> None:
    app = Recorder(
        create_app(fuzz_settings, in_process=True, after_decision=lambda _s, _in_force: None),
        lambda: table_state(fuzz_settings),
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.update(headers={"X-API-Key": API_KEY})
    schema.config.seed = SEED
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    schema.config.checks.update(excluded_check_names=["positive_data_acceptance", "negative_data_rejection"])
    published = schema.raw_schema

    failures, cases = _schema_failures(schema)

    assert failures == []
    calls = [c for c in app.calls if c.path.startswith("/api/")]
    statuses = {c.status for c in calls}
    assert cases >= 50 and {201, 401, 404, 405, 422} <= statuses, statuses  # the run tested something
    assert [(c.method, c.path, c.status, c.answer[:200]) for c in calls if c.status >= 500] == []
    changed = [(c.method, c.path, c.status, c.answer[:200]) for c in calls if c.status >= 400 and c.before != c.after]
    assert changed == []
    form = {"$ref": "#/components/schemas/RequestForm", "components": published["components"]}
    validator = jsonschema.Draft202012Validator(form)
    refused_valid, accepted_invalid = [], []
    for call in calls:
        if call.method != "POST" or call.path != "/api/requests" or call.status not in (201, 422):
            continue
        try:
            body = json.loads(call.body)
        except ValueError:
            continue
        key = call.headers.get("idempotency-key")
        valid_request = key is None or re.fullmatch(KEY_PATTERN, key) is not None
        if call.status == 422 and valid_request and validator.is_valid(body):
            if not BEYOND_SCHEMA.search(json.loads(call.answer)["error"]):
                refused_valid.append((body, call.answer))
        elif call.status == 201:
            normalised = RequestForm.model_validate(body).model_dump(mode="json")
            accepted_invalid += [(body, error.message) for error in validator.iter_errors(normalised)]
    assert sorted({answer.decode() for _, answer in refused_valid}) == []
    assert accepted_invalid == []
