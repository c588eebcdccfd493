"""What any decision triggers at once, wherever it was taken (approval page, CLI, operator deployment):
the emails it queued leave, and when the convention came into force, the provisioning order goes to the
syndicat (and to its webhook when one is configured).

All of it after the decision's commit and best effort: the decision is saved whatever happens here, the
outbox schedule resends what could not go, and the `suivi-conventions` schedule hands off what this could
not (both call the same functions), so nothing depends on a Prefect server being up."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mairie.database import unit_of_work
from mairie.services import provisioning
from mairie.services.conventions import conventions_in_force_without_order
from mairie.services.mail import dispatch
from mairie.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class FollowUp:
    orders: list[str] = field(default_factory=list)
    sent: int = 0


def hand_off(settings: Settings, convention_id: int) -> provisioning.OrderOutcome:
    """Issue the provisioning order of a convention in force (once), then post it to the syndicat's
    webhook when the order is new and a webhook is configured."""
    order = provisioning.issue_order(settings, convention_id)
    if order.created:
        try:
            provisioning.post_webhook(settings, order.payload)
        except Exception:  # the order and its email are stored; the syndicat's team has them
            log.warning("webhook du syndicat injoignable pour le bon %s", order.number, exc_info=True)
    return order


def hand_off_now(settings: Settings, reference: str) -> provisioning.OrderOutcome:
    """Hand off one convention named by its reference now, without waiting for the schedule (`mairie
    convention handoff`, the `remise-convention` deployment): its order when it is in force (the same one
    again if already issued), a plain refusal otherwise."""
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(reference.strip())
        convention_id = convention.id
    assert convention_id is not None
    return hand_off(settings, convention_id)


def hand_off_pending(settings: Settings) -> list[provisioning.OrderOutcome]:
    """Hand off every convention in force that has no provisioning order yet."""
    return [hand_off(settings, convention_id) for convention_id in conventions_in_force_without_order(settings)]


def after_decision(settings: Settings, in_force: bool) -> FollowUp:
    """Run once a decision is committed: the handoff when the convention came into force, then the
    emails. Never raises: a failure here is logged and caught up by the schedules."""
    report = FollowUp()
    if in_force:
        try:
            report.orders = [order.number for order in hand_off_pending(settings)]
        except Exception:
            log.warning("remise au syndicat différée (reprise par « suivi-conventions »)", exc_info=True)
    try:
        report.sent = len(dispatch(settings).sent)
    except Exception:  # the outbox keeps the messages; the scheduled run retries
        log.warning("envoi différé des courriels après une décision", exc_info=True)
    return report
