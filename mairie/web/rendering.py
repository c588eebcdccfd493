"""Templates (Jinja2, autoescaped) and the settings of the running app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from mairie.settings import Settings

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


def make_templates() -> Jinja2Templates:
    """Templates with autoescaping on every file and undefined variables as errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=env)


def settings_of(request: Request) -> Settings:
    """The settings the app was created with (injected by `create_app`, never read at import)."""
    settings: Settings = request.app.state.settings
    return settings


def public_url_for(request: Request, name: str, **params: str) -> str:
    """An absolute URL on the public base (MAIRIE_PUBLIC_URL), never on the request's own scheme and host:
    behind a TLS reverse proxy the app sees http://127.0.0.1, the browser must get https://public-name."""
    base = settings_of(request).public_url.rstrip("/")
    return base + str(request.app.url_path_for(name, **params))


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    full = {
        "operators_email": settings_of(request).operators_email,
        "stylesheet_url": public_url_for(request, "stylesheet"),
        **context,
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
