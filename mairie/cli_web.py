"""`mairie web`: serve the approval pages and the JSON API with uvicorn."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from mairie.settings import get_settings


def web(
    host: str = typer.Option("127.0.0.1", help="Adresse d'écoute (derrière un proxy inverse en production)."),
    port: int = typer.Option(8090, help="Port d'écoute."),
) -> None:
    """Servir la page d'approbation et l'API JSON (MAIRIE_PUBLIC_URL doit pointer vers ce service)."""
    import uvicorn

    from documents.seal import SealError
    from mairie.services.sealing import check_at_startup
    from mairie.web import create_app

    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        typer.echo(f"Erreur : réglage invalide{' ' + where if where else ''} : {message}", err=True)
        raise typer.Exit(2) from None
    try:  # the page seals the final convention when the last party signs
        check_at_startup(settings)
    except SealError as exc:
        typer.echo(f"Erreur : {exc}", err=True)
        raise typer.Exit(2) from None
    # The app reads X-Forwarded-For itself, only from the proxies listed in `trusted_proxies`:
    # uvicorn's own proxy-header handling is turned off so that it cannot override that choice.
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=False, server_header=False)
