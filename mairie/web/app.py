"""The approval web app: `create_app(settings)` builds it with the settings injected (none are read at
import). It serves only the token-scoped approval pages, the JSON API, `/health` and its stylesheet
(plus `/openapi.json`, and the API docs in development).

Around every request: the security headers; rate limits per address and per approval link, kept in the
database (`mairie.web.limits`; 429 with `Retry-After`); a body of at most `MAX_BODY` bytes (413); logs that
never show a link's token or a query string (`mairie.web.logs`). Every error is one French sentence — an
HTML page for the approval pages, `{"error": …}` for the API — with its documented status (422 for any
invalid body, however deep; 405 with `Allow`)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mairie.database import engine
from mairie.links import LinkError, read_approval_token
from mairie.schemas import RequestForm, errors_message, item_codes, validation_message
from mairie.settings import Settings
from mairie.web import alerts, api, limits, logs, pages
from mairie.web.limits import RateLimited, subject_of, wait_text
from mairie.web.rendering import HERE, make_templates, render
from mairie.web.security import visitor_ip
from models.errors import DomainError, InvalidTransition, NotFound, StorageUnavailable

log = logging.getLogger(__name__)

# The largest body accepted (the longest form — a 4 000-character question, percent-encoded — and the
# largest API request are far below).
MAX_BODY = 128 * 1024
_APPROVAL_PATH = re.compile(r"^/approbation/([^/]+)")

CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
TITLES = {
    403: "Lien non valable",
    404: "Lien ou document introuvable",
    405: "Action impossible",
    400: "Formulaire illisible",
    409: "Lien qui n'est plus valable",
    410: "Lien expiré",
    413: "Envoi trop volumineux",
    422: "Saisie incomplète",
    429: "Trop de demandes",
    500: "Erreur inattendue",
    503: "Service momentanément indisponible",
}
ADVICE = {
    403: "Ouvrez le lien tel qu'il figure dans le courriel reçu, en entier et sans le modifier.",
    404: "Ouvrez le lien tel qu'il figure dans le courriel reçu, en entier et sans le modifier.",
    409: "Utilisez le lien du dernier courriel reçu de Mairie Connectée.",
    410: "Demandez un nouveau lien à l'équipe Mairie Connectée.",
    413: "Rouvrez le lien reçu par courriel, puis recommencez avec un texte plus court.",
    429: "Patientez quelques minutes, puis rouvrez le lien reçu par courriel.",
    503: "Réessayez dans quelques minutes.",
}
FORM_UNREADABLE = (
    "Le formulaire envoyé n'a pas pu être lu : il est trop volumineux (trop de champs) ou mal formé. "
    "Rien n'a été enregistré ; rouvrez le lien reçu par courriel, puis recommencez."
)
FORM_INVALID = (
    "Le formulaire envoyé est incomplet ou mal formé : rien n'a été enregistré. Rouvrez le lien reçu par "
    "courriel, puis recommencez."
)
BODY_TOO_LARGE = (
    f"Le formulaire ou le corps de la requête est trop volumineux ({MAX_BODY // 1024} Kio au plus) : "
    "rien n'a été enregistré."
)
JSON_UNREADABLE = "Le corps de la requête n'est pas un JSON valide (ou il est imbriqué trop profondément)."
NOT_JSON = "Envoyez le corps de la requête en JSON, avec l'en-tête Content-Type: application/json."


def _status_of(exc: DomainError) -> int:
    if isinstance(exc, StorageUnavailable):
        return 503
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InvalidTransition):
        return 409
    return 422


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _is_json(request: Request) -> bool:
    """True when the request says its body is JSON (application/json or application/…+json)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def error_page(
    request: Request,
    status: int,
    message: str,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The explanatory page for a link or an action that cannot go on; nothing was changed."""
    email = request.app.state.settings.operators_email
    advice = [ADVICE[status]] if status in ADVICE else []
    advice.append(f"Si le problème persiste, écrivez à {email} en joignant le courriel reçu.")
    context = {"title": title or TITLES.get(status, "Action impossible"), "message": message, "advice": advice}
    response = render(request, "error.html", {**context, "status": status}, status_code=status)
    response.headers.update(headers or {})
    return response


def _answer(
    request: Request, status: int, message: str, title: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    return error_page(request, status, message, title, headers)


def _body_message(exc: RequestValidationError) -> str:
    """The same plain sentence as the CLI gives for the same input (`validation_message`)."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "Le corps de la requête n'est pas un JSON valide."
    path = [e for e in errors if e.get("loc", ("",))[0] == "path"]
    if path:
        if any(e.get("type") in ("greater_than_equal", "less_than_equal") for e in path):
            return f"L'identifiant de la demande doit être un nombre entier de 1 à {api.MAX_ID}."
        return "L'identifiant de la demande doit être un nombre entier."
    if any(e.get("loc", ("",))[0] == "header" for e in errors):
        return "L'en-tête Idempotency-Key doit compter de 1 à 200 caractères ASCII visibles, sans espace."
    if exc.body is None:
        return "Le corps de la requête est vide : envoyez la demande en JSON."
    try:
        RequestForm.model_validate(exc.body)
    except ValidationError as invalid:
        return validation_message(invalid)
    except RecursionError:
        return JSON_UNREADABLE
    return errors_message(errors)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LinkError)
    def _link(request: Request, exc: LinkError) -> Response:
        return _answer(request, exc.status, str(exc))

    @app.exception_handler(pages.FormRefused)
    def _form(request: Request, exc: pages.FormRefused) -> Response:
        message = (
            "Ce formulaire n'a pas été accepté : il ne provient pas de la page de ce lien, ou son jeton de "
            "sécurité manque. Rouvrez le lien reçu par courriel, puis recommencez."
        )
        return error_page(request, 403, message, "Formulaire refusé")

    @app.exception_handler(api.ApiError)
    def _api(request: Request, exc: api.ApiError) -> Response:
        return api.api_error_response(exc)

    @app.exception_handler(DomainError)
    def _domain(request: Request, exc: DomainError) -> Response:
        return _answer(request, _status_of(exc), str(exc), "Action impossible")

    @app.exception_handler(RateLimited)
    def _limited(request: Request, exc: RateLimited) -> Response:
        return _answer(request, 429, str(exc), headers={"Retry-After": str(exc.retry_after)})

    async def _key_first(request: Request) -> Response | None:
        """The API key is checked before the body, even when the body is not JSON."""
        try:
            await api.guard(request, request.headers.get("x-api-key"))
        except api.ApiError as refused:
            return api.api_error_response(refused)
        except DomainError as exc:
            return _answer(request, _status_of(exc), str(exc))
        return None

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if not _is_api(request):
            return error_page(request, 422, FORM_INVALID, "Formulaire refusé")
        refused = await _key_first(request)
        if refused is not None:
            return refused
        if exc.body is not None and not _is_json(request):
            return _answer(request, 415, NOT_JSON)
        return _answer(request, 422, await run_in_threadpool(_body_message, exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body Starlette or FastAPI could not read (JSON too deep, too many fields)
            if not _is_api(request):
                return error_page(request, 400, FORM_UNREADABLE)
            refused = await _key_first(request)
            return refused or _answer(request, 422, JSON_UNREADABLE)
        messages = {
            404: "Cette adresse ne correspond à aucune page.",
            405: "Cette action n'est pas permise ici.",
            413: BODY_TOO_LARGE,
        }
        message = messages.get(exc.status_code, "Cette requête ne peut pas être traitée.")
        return _answer(request, exc.status_code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("erreur inattendue sur %s", logs.redact_path(request.url.path), exc_info=exc)
        return _answer(request, 500, "Une erreur inattendue s'est produite ; rien n'a été enregistré.")


def _install_security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        path = request.url.path
        headers = response.headers
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if not path.startswith(("/docs", "/redoc")):
            headers.setdefault("Content-Security-Policy", CSP)
        if path.startswith("/static/"):
            headers.setdefault("Cache-Control", "public, max-age=3600")
        else:
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        if path.startswith("/approbation/"):
            headers.setdefault("X-Robots-Tag", "noindex, nofollow")
        return response


def _check_limits(request: Request) -> None:
    """Count the request against the limits per address and per approval link (RateLimited over them)."""
    settings: Settings = request.app.state.settings
    now = request.app.state.clock()
    limits.hit(
        settings,
        limits.per_ip(settings),
        subject_of(visitor_ip(request) or ""),
        now,
        lambda left: f"Trop de requêtes depuis votre adresse : réessayez dans {wait_text(left)}.",
    )
    match = _APPROVAL_PATH.match(request.url.path)
    if match is None or not limits.per_link(settings).active or len(match.group(1)) > pages.TOKEN_MAX:
        return
    try:
        claim = read_approval_token(settings, match.group(1))
    except LinkError:  # answered by the page itself; a forged link is counted by its address only
        return
    limits.hit(
        settings,
        limits.per_link(settings),
        subject_of(str(claim.approval_id), claim.nonce),
        now,
        lambda left: f"Trop de requêtes sur ce lien : réessayez dans {wait_text(left)}.",
    )


def _install_rate_limits(app: FastAPI) -> None:
    @app.middleware("http")
    async def _limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if path == "/health" or path.startswith("/static/"):
            return await call_next(request)
        try:
            await run_in_threadpool(_check_limits, request)
        except RateLimited as exc:
            return _answer(request, 429, str(exc), headers={"Retry-After": str(exc.retry_after)})
        except (StorageUnavailable, SQLAlchemyError):
            # The database is down or not initialised: the request itself will say so (503).
            log.warning("limites de débit non comptées : base de données indisponible")
        return await call_next(request)


class BodyLimit:
    """Reads the whole body before the app does, and answers 413 when it exceeds `max_bytes` (declared or
    streamed): neither the form parser nor the JSON decoder ever sees an oversized body."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: the app will see it on its own receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = _answer(request, 413, BODY_TOO_LARGE)
        await response(scope, receive, send)


def _install_openapi(app: FastAPI, settings: Settings) -> None:
    """The OpenAPI schema, with the item codes of every grid the app knows (an extra grid folder adds some)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        codes = list(item_codes())
        if settings.grids_dir is not None:
            from models.catalog import bundled_grid_files, load_grid_file

            try:
                for path in bundled_grid_files(settings.grids_dir):
                    codes += [i.code for i in load_grid_file(path).items if i.code not in codes]
            except Exception:  # a broken grid file is `mairie init`'s to report; keep the bundled codes
                log.warning("grilles de %s illisibles : codes d'articles de la grille livrée", settings.grids_dir)
        item = schema.get("components", {}).get("schemas", {}).get("RequestedItem")
        if item is not None:
            item["properties"]["code"]["enum"] = codes
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_routes(app: FastAPI, settings: Settings) -> None:
    stylesheet = (HERE / "static" / "approbation.css").read_bytes()

    @app.get("/static/approbation.css", name="stylesheet", include_in_schema=False)
    def _stylesheet() -> Response:
        return Response(stylesheet, media_type="text/css; charset=utf-8")

    @app.get("/health", tags=["service"], summary="État du service")
    def health() -> JSONResponse:
        """200 when the database answers, 503 otherwise."""
        try:
            with engine(settings).connect() as connection:
                connection.execute(text("select 1"))
        except Exception:
            return JSONResponse({"status": "indisponible", "database": False}, status_code=503)
        return JSONResponse({"status": "ok", "database": True})

    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(alerts.router)


def create_app(
    settings: Settings,
    *,
    in_process: bool | None = None,
    after_decision: Callable[[Settings, bool], object] | None = None,
) -> FastAPI:
    """The app for `settings`. `in_process` says how API submissions are processed: True in this process,
    False through the Prefect API, None to decide from the Prefect settings (see `submission.submit`).
    `after_decision` runs once a decision's response is sent (default: send its emails, start the
    follow-up when the convention came into force)."""
    development = settings.environment == "development"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logs.install()  # again: uvicorn has configured its loggers and handlers by now
        yield

    logs.install()
    app = FastAPI(
        title="Mairie Connectée — approbation et API",
        version="1",
        description="Pages d'approbation des conventions tripartites et API de dépôt des demandes.",
        docs_url="/docs" if development else None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = limits.clock
    app.state.in_process = in_process
    if after_decision is None:
        from mairie.services.followup import after_decision as default_after_decision

        after_decision = default_after_decision
    app.state.after_decision = after_decision
    app.state.templates = make_templates()
    _install_handlers(app)
    # Middleware added last runs first: security headers, then rate limits, then the body limit.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    _install_rate_limits(app)
    _install_security_headers(app)
    _install_routes(app, settings)
    _install_openapi(app, settings)
    return app
