"""The approval web app: `create_app(settings)` builds it with the settings injected (none are read at
import). It serves only the token-scoped approval pages, the JSON API, `/health` and its stylesheet
(plus `/openapi.json`, and the API docs in development)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from mairie.database import engine
from mairie.links import LinkError
from mairie.schemas import RequestForm, validation_message
from mairie.settings import Settings
from mairie.web import api, pages
from mairie.web.rendering import HERE, make_templates, render
from models.errors import DomainError, InvalidTransition, NotFound, StorageUnavailable

log = logging.getLogger(__name__)

CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
TITLES = {
    403: "Lien non valable",
    404: "Lien ou document introuvable",
    405: "Action impossible",
    409: "Lien qui n'est plus valable",
    410: "Lien expiré",
    422: "Saisie incomplète",
    500: "Erreur inattendue",
    503: "Service momentanément indisponible",
}
ADVICE = {
    403: "Ouvrez le lien tel qu'il figure dans le courriel reçu, en entier et sans le modifier.",
    404: "Ouvrez le lien tel qu'il figure dans le courriel reçu, en entier et sans le modifier.",
    409: "Utilisez le lien du dernier courriel reçu de Mairie Connectée.",
    410: "Demandez un nouveau lien à l'équipe Mairie Connectée.",
    503: "Réessayez dans quelques minutes.",
}


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


def error_page(request: Request, status: int, message: str, title: str | None = None) -> Response:
    """The explanatory page for a link or an action that cannot go on; nothing was changed."""
    email = request.app.state.settings.operators_email
    advice = [ADVICE[status]] if status in ADVICE else []
    advice.append(f"Si le problème persiste, écrivez à {email} en joignant le courriel reçu.")
    context = {"title": title or TITLES.get(status, "Action impossible"), "message": message, "advice": advice}
    return render(request, "error.html", {**context, "status": status}, status_code=status)


def _answer(request: Request, status: int, message: str, title: str | None = None) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return error_page(request, status, message, title)


def _body_message(exc: RequestValidationError) -> str:
    """The same plain sentence as the CLI gives for the same input (`validation_message`)."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "Le corps de la requête n'est pas un JSON valide."
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return "L'identifiant de la demande doit être un nombre entier."
    if exc.body is None:
        return "Le corps de la requête est vide : envoyez la demande en JSON."
    try:
        RequestForm.model_validate(exc.body)
    except ValidationError as invalid:
        return validation_message(invalid)
    return "; ".join(str(e.get("msg", "")) for e in errors[:3]) or "Requête invalide."


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

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            try:  # the key is checked before the body, even when the body is not JSON
                api.check_api_key(request, request.headers.get("x-api-key"))
            except api.ApiError as refused:
                return api.api_error_response(refused)
        return _answer(request, 422, _body_message(exc))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "Cette adresse ne correspond à aucune page.", 405: "Cette action n'est pas permise ici."}
        return _answer(request, exc.status_code, messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("erreur inattendue sur %s", request.url.path)
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
    app = FastAPI(
        title="Mairie Connectée — approbation et API",
        version="1",
        description="Pages d'approbation des conventions tripartites et API de dépôt des demandes.",
        docs_url="/docs" if development else None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.in_process = in_process
    if after_decision is None:
        from mairie.services.followup import after_decision as default_after_decision

        after_decision = default_after_decision
    app.state.after_decision = after_decision
    app.state.templates = make_templates()
    _install_handlers(app)
    _install_security_headers(app)
    _install_routes(app, settings)
    return app
