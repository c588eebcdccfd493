"""Failures reach a person: the Prefect automation created by `mairie up` and `mairie prefect-alerts`
calls the web app (`POST /alertes/run-en-echec`) when a run of any deployment fails or crashes; this use
case writes the operators' email in the outbox (the project's SMTP settings, its retries and backoff) and
sends it. One email per run and state: the automation firing twice sends nothing twice.

The call is authenticated by a token derived from `MAIRIE_SECRET_KEY` (`alert_token`), given to Prefect in
the webhook block's headers: nobody without the secret can make the app send email.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from mairie.database import unit_of_work
from mairie.services.mail import dispatch, enqueue_message
from mairie.settings import Settings
from models.errors import InvalidInput
from models.text import without_unsafe

ALERT_HEADER = "X-Mairie-Alerte"
STATE_LABELS = {"failed": "en échec", "crashed": "interrompu", "timedout": "expiré"}


@dataclass(frozen=True)
class RunFailure:
    """What the automation says of the run that stopped."""

    flow_run_id: str
    flow_run_name: str
    deployment: str
    state: str  # Prefect's state name: Failed, Crashed, TimedOut
    message: str = ""


def alert_token(settings: Settings) -> str:
    """The token the automation sends: an HMAC of a fixed label under the secret key."""
    return hmac.new(settings.secret_key.encode(), b"mairie-connectee:alertes-prefect", hashlib.sha256).hexdigest()


def token_valid(settings: Settings, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(str(given), alert_token(settings))


def _short(text: str, limit: int) -> str:
    cleaned = " ".join(without_unsafe(text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def report_run_failure(settings: Settings, failure: RunFailure) -> str:
    """Queue and send the operators' email about a run that stopped; returns the run's UI link."""
    try:
        run_id = str(uuid.UUID(failure.flow_run_id))
    except ValueError:
        raise InvalidInput(f"identifiant de run invalide : {failure.flow_run_id[:60]!r}") from None
    state = _short(failure.state, 30) or "Failed"
    run_url = f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{run_id}"
    context = {
        "deployment_name": _short(failure.deployment, 120) or "(sans déploiement)",
        "flow_run_name": _short(failure.flow_run_name, 120) or run_id,
        "state_label": STATE_LABELS.get(state.lower(), state),
        "message": _short(failure.message, 1000),
        "run_url": run_url,
    }
    with unit_of_work(settings) as uow:
        enqueue_message(
            uow.session,
            settings,
            "run_failed",
            context,
            to=[settings.operators_email],
            dedup_key=f"run-failed:{run_id}:{state.lower()}",
        )
        uow.commit()
    dispatch(settings)
    return run_url
