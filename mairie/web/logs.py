"""No secret in the web app's logs: the token of an approval link (the link signs for a mayor) and every
query string (a client may put its API key there) are masked in uvicorn's access log, in uvicorn's error
log and in the app's own log, tracebacks included.

`install()` puts one filter on those loggers and on the handlers of the root and uvicorn loggers (which
see what every other logger propagates). A filter set on a logger survives uvicorn's logging set-up
(`logging.config.dictConfig` replaces a logger's handlers, not its filters); the app installs it when it is
built and again at start-up, once uvicorn has configured logging and its handlers exist.
"""

from __future__ import annotations

import logging
import re

MASK = "[masqué]"
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "mairie.web.app", "mairie.services.aftermath")
HANDLERS_OF = ("", "uvicorn", "uvicorn.access", "uvicorn.error")
# A path segment after /approbation/ is a link's token, whatever it looks like (also a forged one).
_TOKEN = re.compile(r"(/approbation/)[^/?#\s\"']+")
_QUERY = re.compile(r"\?[^\s\"']*")


def redact_path(text: str) -> str:
    """`text` with approval tokens and query strings masked (for a path, a URL or a log line)."""
    return _QUERY.sub("?" + MASK, _TOKEN.sub(r"\g<1>" + MASK, text))


def redact_text(text: str) -> str:
    """`text` with approval tokens masked (free text: a question mark there is not a query string, unless
    it follows a path)."""
    text = _TOKEN.sub(r"\g<1>" + MASK, text)
    return re.sub(r"((?:/|https?://)[^\s?\"']*)\?[^\s\"']*", r"\g<1>?" + MASK, text)


class RedactSecrets(logging.Filter):
    """Masks tokens and query strings in a record's message, arguments and traceback; lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_path(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


_FILTER = RedactSecrets()


def _add(filterer: logging.Filterer) -> None:
    if not any(isinstance(f, RedactSecrets) for f in filterer.filters):
        filterer.addFilter(_FILTER)


def install() -> None:
    """Put the filter on every logger that can see a request's path, and on the handlers that print what
    the others propagate (idempotent)."""
    for name in LOGGERS:
        _add(logging.getLogger(name))
    for name in HANDLERS_OF:
        for handler in logging.getLogger(name).handlers:
            _add(handler)
