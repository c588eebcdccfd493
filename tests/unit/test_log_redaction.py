"""The log filter of the web app (mairie/web/logs.py): tokens of approval links and query strings masked in
a record's message, arguments and traceback, whatever logger or handler carries it."""

from __future__ import annotations

import io
import logging

from mairie.web.logs import MASK, RedactSecrets, install, redact_path, redact_text

TOKEN = "eyJjIjoxLCJhIjoyfQ.aBcDeF.Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"


def test_paths_lose_their_token_and_query() -> None:
    assert redact_path(f"/approbation/{TOKEN}") == f"/approbation/{MASK}"
    assert redact_path(f"/approbation/{TOKEN}/signer/confirmer") == f"/approbation/{MASK}/signer/confirmer"
    assert redact_path("/api/requests/1?api_key=secret&x=1") == f"/api/requests/1?{MASK}"
    assert redact_path(f"/approbation/{TOKEN}?enregistre=signature") == f"/approbation/{MASK}?{MASK}"
    assert redact_path("/health") == "/health"


def test_free_text_keeps_its_question_marks() -> None:
    assert redact_text("Une question ? Oui.") == "Une question ? Oui."
    assert redact_text(f"lien https://approbation.example/approbation/{TOKEN}?a=b envoyé") == (
        f"lien https://approbation.example/approbation/{MASK}?{MASK} envoyé"
    )


def _record(message: str, args: tuple[object, ...], exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, message, args, exc_info)


def test_the_filter_masks_arguments_and_tracebacks() -> None:
    try:
        raise RuntimeError(f"échec sur /approbation/{TOKEN}")
    except RuntimeError as exc:
        record = _record(
            '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", f"/approbation/{TOKEN}?k=v", "1.1", 200), exc
        )
    assert RedactSecrets().filter(record) is True
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(record)
    printed = handler.stream.getvalue()  # type: ignore[attr-defined]
    assert TOKEN not in printed and "k=v" not in printed
    assert f'"GET /approbation/{MASK}?{MASK} HTTP/1.1" 200' in printed
    assert f"RuntimeError: échec sur /approbation/{MASK}" in printed


def test_install_covers_child_loggers_through_the_root_handlers() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install()
        logging.getLogger("mairie.services.quelconque").warning("lien %s", f"/approbation/{TOKEN}")
    finally:
        root.removeHandler(handler)
    assert TOKEN not in stream.getvalue() and MASK in stream.getvalue()
