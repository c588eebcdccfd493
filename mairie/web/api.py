"""The JSON API for systems that submit requests (a citizen-services portal, the syndicat's tools).

Behind an API key (`X-API-Key`, setting `api_key`; without it the API answers 503). Errors are JSON with
one plain French sentence: `{"error": "..."}`.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from mairie import submission
from mairie.schemas import RequestForm
from mairie.services.intake import request_state
from mairie.web.queries import request_summary
from mairie.web.rendering import settings_of

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clé d'API (réglage MAIRIE_API_KEY)")


class ApiError(Exception):
    """An API answer other than success, with its status and plain message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)


def check_api_key(request: Request, supplied: str | None) -> None:
    """503 when the API is off (no key set), 401 for a missing or wrong key."""
    expected = settings_of(request).api_key
    if not expected:
        raise ApiError(503, "API désactivée : aucune clé d'API n'est configurée (réglage MAIRIE_API_KEY).")
    if not supplied:
        raise ApiError(
            401, "Clé d'API manquante : envoyez-la dans l'en-tête X-API-Key.", {"WWW-Authenticate": "ApiKey"}
        )
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise ApiError(401, "Clé d'API refusée.", {"WWW-Authenticate": "ApiKey"})


def require_api_key(request: Request, key: str | None = Depends(api_key_header)) -> None:
    check_api_key(request, key)


router = APIRouter(prefix="/api", tags=["demandes"], dependencies=[Depends(require_api_key)])


class ErrorOut(BaseModel):
    error: str = Field(description="Explication en une phrase, en français")


class SubmittedOut(BaseModel):
    id: int
    reference: str = Field(description="Référence de la demande, ex. MC-DEM-2026-00001")
    status: str = Field(description="État de la demande (eligible, waiting_operator, quoted, refused…)")
    run_id: str | None = Field(description="Exécution Prefect (tâche ou flux) qui traite la demande, s'il y en a une")
    run_url: str | None = Field(description="Lien vers cette exécution dans l'interface Prefect")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Clé d'API manquante ou refusée"},
    503: {"model": ErrorOut, "description": "API désactivée, ou base de données injoignable"},
}


@router.post(
    "/requests",
    status_code=201,
    response_model=SubmittedOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="Déposer une demande de services",
)
def post_request(request: Request, form: RequestForm) -> SubmittedOut:
    """Register the request (same validation as the CLI), then start its processing."""
    settings = settings_of(request)
    done = submission.submit(settings, form, channel="api", in_process=request.app.state.in_process)
    current = request_state(settings, done.request.request_id)
    return SubmittedOut(
        id=done.request.request_id,
        reference=done.request.reference,
        status=current.status,
        run_id=done.run_id,
        run_url=done.run_url,
    )


@router.get(
    "/requests/{request_id}",
    responses={**ERRORS, 404: {"model": ErrorOut}},
    summary="État d'une demande, ses devis et sa convention",
)
def get_request(request: Request, request_id: int) -> dict[str, Any]:
    """State, quotes (amounts as strings "80.00") and convention with its approvals."""
    return request_summary(settings_of(request), request_id)
