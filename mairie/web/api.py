"""The JSON API for systems that submit requests (a citizen-services portal, the syndicat's tools).

Behind an API key (`X-API-Key`, setting `api_key`; without it the API answers 503). Errors are JSON with
one plain French sentence: `{"error": "..."}`.

Guarded by rate limits kept in the database (`mairie.web.limits`): calls per key, submissions per key, and
the failed keys of an address — slowed down after a few, then every call from that address refused for a
while (429 with `Retry-After`). `POST /api/requests` honours an `Idempotency-Key` header
(`mairie.web.idempotency`).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from mairie import submission
from mairie.schemas import RequestForm
from mairie.services.intake import request_state
from mairie.web import idempotency, limits
from mairie.web.limits import RateLimited, subject_of, wait_text
from mairie.web.queries import request_summary
from mairie.web.rendering import settings_of
from mairie.web.security import visitor_ip

# The largest id the database stores (PostgreSQL `integer`): a larger one names no request.
MAX_ID = 2**31 - 1

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clé d'API (réglage MAIRIE_API_KEY)")


class ApiError(Exception):
    """An API answer other than success, with its status and plain message; `delay`: seconds to wait
    before answering (a failed key, after a few)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, delay: float = 0) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.delay = delay


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)


def _too_many(exc: RateLimited) -> ApiError:
    return ApiError(429, str(exc), {"Retry-After": str(exc.retry_after)})


def _failed_key(request: Request, message: str) -> ApiError:
    """Count a missing or wrong key of this address: 401, slowed after a few, then a lockout (429)."""
    settings = settings_of(request)
    headers = {"WWW-Authenticate": "ApiKey"}
    before_delay, before_lockout = settings.rate_api_failures_before_delay, settings.rate_api_failures_before_lockout
    if not before_delay and not before_lockout:
        return ApiError(401, message, headers)
    now = request.app.state.clock()
    address = subject_of(visitor_ip(request) or "")
    failures, _left = limits.count(settings, limits.api_failures(settings), address, now)
    if before_lockout and failures >= before_lockout:
        lockout = settings.rate_api_lockout_minutes * 60
        limits.block(settings, "api-fail", address, now + lockout)
        return ApiError(
            429,
            f"{message} Trop d'essais de clé d'API refusés depuis votre adresse : l'API vous est fermée pendant "
            f"{wait_text(lockout)}.",
            {**headers, "Retry-After": str(lockout)},
        )
    delay = settings.rate_api_failure_delay_seconds if before_delay and failures > before_delay else 0
    return ApiError(401, message, headers, delay=delay)


def check_api_key(request: Request, supplied: str | None) -> None:
    """503 when the API is off (no key set); 429 while this address is locked out after failed keys; 401
    for a missing or wrong key (counted); 429 over the calls allowed per key. Checked once per request."""
    if getattr(request.state, "api_key_checked", False):
        return
    settings = settings_of(request)
    expected = settings.api_key
    if not expected:
        raise ApiError(503, "API désactivée : aucune clé d'API n'est configurée (réglage MAIRIE_API_KEY).")
    now = request.app.state.clock()
    if settings.rate_api_failures_before_lockout:
        locked = limits.blocked_for(settings, "api-fail", subject_of(visitor_ip(request) or ""), now)
        if locked:
            raise ApiError(
                429,
                "Trop d'essais de clé d'API refusés depuis votre adresse : l'API vous est fermée encore "
                f"{wait_text(locked)}. Réessayez ensuite avec la bonne clé.",
                {"Retry-After": str(locked)},
            )
    if not supplied:
        raise _failed_key(request, "Clé d'API manquante : envoyez-la dans l'en-tête X-API-Key.")
    if not hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), expected.encode()):
        raise _failed_key(request, "Clé d'API refusée.")
    try:
        limits.hit(
            settings,
            limits.per_api_key(settings),
            subject_of(expected),
            now,
            lambda left: f"Trop d'appels à l'API avec cette clé : réessayez dans {wait_text(left)}.",
        )
    except RateLimited as exc:
        raise _too_many(exc) from None
    request.state.api_key_checked = True


async def guard(request: Request, supplied: str | None) -> None:
    """`check_api_key` off the event loop; a failed key is answered only after its delay."""
    try:
        await run_in_threadpool(check_api_key, request, supplied)
    except ApiError as exc:
        if exc.delay:
            await asyncio.sleep(exc.delay)
        raise


async def require_api_key(request: Request, key: str | None = Depends(api_key_header)) -> None:
    await guard(request, key)


router = APIRouter(prefix="/api", tags=["demandes"], dependencies=[Depends(require_api_key)])


class ErrorOut(BaseModel):
    error: str = Field(description="Explication en une phrase, en français")


class SubmittedOut(BaseModel):
    id: int
    reference: str = Field(description="Référence de la demande, ex. MC-DEM-2026-00001")
    status: str = Field(description="État de la demande (eligible, waiting_operator, quoted, refused…)")
    run_id: str | None = Field(description="Exécution Prefect (tâche ou flux) qui traite la demande, s'il y en a une")
    run_url: str | None = Field(description="Lien vers cette exécution dans l'interface Prefect")
    existing: bool = Field(
        default=False,
        description="Vrai quand une demande identique était déjà en cours : c'est elle (réponse 200), rien n'est créé",
    )


RETRY_AFTER = {"Retry-After": {"description": "Secondes à attendre avant de réessayer", "schema": {"type": "integer"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Clé d'API manquante ou refusée"},
    413: {"model": ErrorOut, "description": "Corps de la requête trop volumineux"},
    415: {"model": ErrorOut, "description": "Corps de la requête qui n'est pas en JSON"},
    422: {"model": ErrorOut, "description": "Requête invalide (corps, identifiant ou en-tête)"},
    429: {
        "model": ErrorOut,
        "description": "Trop de requêtes (par adresse, par clé, ou après des clés refusées)",
        "headers": RETRY_AFTER,
    },
    503: {"model": ErrorOut, "description": "API désactivée, ou base de données injoignable"},
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description=(
            "Facultatif : une clé choisie par le client (1 à 200 caractères ASCII visibles). La même clé avec le "
            "même corps renvoie la réponse de la première requête sans rien créer ; avec un autre corps : 409."
        ),
        max_length=200,
        pattern=idempotency.KEY_PATTERN,
    ),
]


def _submit(request: Request, form: RequestForm) -> SubmittedOut:
    settings = settings_of(request)
    try:
        limits.hit(
            settings,
            limits.submissions(settings),
            subject_of(settings.api_key or ""),
            request.app.state.clock(),
            lambda left: f"Trop de demandes déposées avec cette clé d'API : réessayez dans {wait_text(left)}.",
        )
    except RateLimited as exc:
        raise _too_many(exc) from None
    done = submission.submit(settings, form, channel="api", in_process=request.app.state.in_process)
    current = request_state(settings, done.request.request_id)
    return SubmittedOut(
        id=done.request.request_id,
        reference=done.request.reference,
        status=current.status,
        run_id=done.run_id,
        run_url=done.run_url,
        existing=done.request.existing,
    )


@router.post(
    "/requests",
    status_code=201,
    response_model=SubmittedOut,
    responses={
        **ERRORS,
        200: {"model": SubmittedOut, "description": "Une demande identique est déjà en cours : la voici"},
        404: {"model": ErrorOut, "description": "Commune ou collectivité inconnue"},
        409: {"model": ErrorOut, "description": "Clé d'idempotence déjà utilisée pour un autre corps, ou en cours"},
    },
    summary="Déposer une demande de services",
)
def post_request(request: Request, form: RequestForm, idempotency_key: IdempotencyKey = None) -> Any:
    """Register the request (same validation as the CLI), then start its processing. With an
    `Idempotency-Key`, a repeated request gets the first answer again."""
    if idempotency_key is None:
        out = _submit(request, form)
        return JSONResponse(out.model_dump(mode="json"), status_code=200 if out.existing else 201)
    settings = settings_of(request)
    key = idempotency.subject(settings.api_key or "", idempotency_key)
    stored = idempotency.reserve(settings, key, idempotency.fingerprint_of(form.model_dump(mode="json")))
    if stored is not None:
        return _replay(stored, idempotency.fingerprint_of(form.model_dump(mode="json")))
    try:
        out = _submit(request, form)
    except BaseException:
        idempotency.forget(settings, key)
        raise
    body = out.model_dump(mode="json")
    status = 200 if out.existing else 201
    idempotency.answer(settings, key, status, body)
    return JSONResponse(body, status_code=status)


def _replay(stored: idempotency.Stored, fingerprint: str) -> JSONResponse:
    if stored.answer is None:
        raise ApiError(
            409,
            "Une requête avec cette clé d'idempotence est en cours de traitement : réessayez dans quelques secondes.",
            {"Retry-After": "5"},
        )
    if stored.fingerprint != fingerprint:
        raise ApiError(
            409,
            "Cette clé d'idempotence a déjà servi pour une autre demande : utilisez une nouvelle clé pour une "
            "nouvelle demande.",
        )
    return JSONResponse(
        stored.answer["body"], status_code=int(stored.answer["status"]), headers={"Idempotent-Replayed": "true"}
    )


@router.get(
    "/requests/{request_id}",
    responses={**ERRORS, 404: {"model": ErrorOut, "description": "Aucune demande de cet identifiant"}},
    summary="État d'une demande, ses devis et sa convention",
)
def get_request(
    request: Request,
    request_id: Annotated[
        int, Path(ge=1, le=MAX_ID, description=f"Identifiant de la demande (entier de 1 à {MAX_ID})")
    ],
) -> dict[str, Any]:
    """State, quotes (amounts as strings "80.00") and convention with its approvals."""
    return request_summary(settings_of(request), request_id)
