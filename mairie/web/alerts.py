"""`POST /alertes/run-en-echec`: the Prefect automation's webhook (a run of a deployment failed or
crashed). Authenticated by the `X-Mairie-Alerte` token (`mairie.services.alerts.alert_token`); the body is
the automation's JSON (`flow_run_id`, `flow_run_name`, `deployment`, `state`, `message`). Answers 202 once
the operators' email is queued (and sent), 403 without the token, 400 for a body it cannot read. Not in the
public schema: only Prefect's server calls it (keep it off the reverse proxy, like `/api/`)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from mairie.services.alerts import ALERT_HEADER, RunFailure, report_run_failure, token_valid
from mairie.web.rendering import settings_of
from models.errors import DomainError

router = APIRouter()
MAX_ALERT = 16_384


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


@router.post("/alertes/run-en-echec", include_in_schema=False)
async def run_failed(request: Request) -> JSONResponse:
    settings = settings_of(request)
    if not token_valid(settings, request.headers.get(ALERT_HEADER)):
        return JSONResponse({"error": "jeton d'alerte absent ou faux"}, status_code=403)
    body = await request.body()
    try:
        data = json.loads(body[:MAX_ALERT]) if len(body) <= MAX_ALERT else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("flow_run_id"):
        return JSONResponse({"error": "corps attendu : un objet JSON avec flow_run_id"}, status_code=400)
    failure = RunFailure(
        flow_run_id=_text(data, "flow_run_id"),
        flow_run_name=_text(data, "flow_run_name"),
        deployment=_text(data, "deployment"),
        state=_text(data, "state"),
        message=_text(data, "message"),
    )
    try:
        url = await run_in_threadpool(report_run_failure, settings, failure)
    except DomainError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"status": "signalé", "run_url": url}, status_code=202)
