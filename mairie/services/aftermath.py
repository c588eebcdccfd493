"""What follows a decision taken on the approval page, after its commit: send the emails it queued, and
when the convention came into force, start the follow-up run (handoff) at once.

Both are best effort: the decision is already saved, the outbox schedule resends what could not go, and
the scheduled `suivi-conventions` run hands off what the immediate start could not (Prefect down)."""

from __future__ import annotations

import logging

from mairie.settings import Settings

log = logging.getLogger(__name__)
FOLLOW_UP = "suivi-conventions/suivi-conventions"


def after_decision(settings: Settings, in_force: bool) -> None:
    from mairie.services.mail import dispatch

    try:
        dispatch(settings)
    except Exception:  # the outbox keeps the messages; the scheduled run retries
        log.warning("envoi différé des courriels après une décision", exc_info=True)
    if in_force:
        start_follow_up(settings)


def start_follow_up(settings: Settings) -> bool:
    """Start the follow-up deployment without waiting; False when Prefect cannot be reached."""
    try:
        from prefect.deployments import run_deployment

        from mairie.stack import prefect_of_running_stack

        with prefect_of_running_stack(settings) as api:
            if not api:
                return False
            run_deployment(FOLLOW_UP, timeout=0)
            return True
    except Exception:
        log.warning(
            "Prefect injoignable : la remise au syndicat attendra la prochaine exécution planifiée", exc_info=True
        )
        return False
