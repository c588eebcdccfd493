"""The yearly renewal campaign: a review (dry run) of every live subscription, then — after an operator's
approval — one invoice per subscription, issuer and year.

Each subscription is invoiced in its own transaction (numbers, rows, PDFs, outbox), and the unique
(subscription, issuer, year) constraint makes every re-run, resume after a crash or retried task a no-op
for what was already issued: no duplicate, no gap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from documents.pool import RenderPool
from mairie.database import unit_of_work
from mairie.services import buyers, paperwork
from mairie.services.assessment import assess_collectivity, identifier_of
from mairie.services.channels.folder import file_deposits
from mairie.services.invoicing import (
    InvoiceDraft,
    IssuedInvoice,
    Started,
    as_issued,
    complete_unfinished,
    finish_unfinished,
    record_invoice,
    render_processes,
    start_unfinished,
)
from mairie.settings import Settings
from models import audit
from models.buyer import describe_missing, missing_for_invoice
from models.catalog import Grid, grid_in_force
from models.db import UnitOfWork
from models.directory import find
from models.eligibility import Eligibility
from models.entities import AuditEvent, Collectivity, Invoice, Subscription
from models.errors import InvalidInput
from models.lifecycle import InvoiceStatus, SubscriptionStatus
from models.reference_data import stored_grids
from models.renewal import LiveItem, LiveWindow, RenewalPlan, plan_renewal
from models.renewal import renewal_date as campaign_date
from models.text import clean_text


def renewal_date(settings: Settings, year: int) -> date:
    """The campaign date of a billing year, from the settings (default 15 January)."""
    return campaign_date(year, settings.renewal_month, settings.renewal_day)


@dataclass(frozen=True)
class ReviewLine:
    subscription_id: int
    collectivity: str
    siren: str
    last_year: dict[str, Decimal | None]
    this_year: dict[str, Decimal]
    reasons: tuple[str, ...]
    pending: tuple[str, ...]
    already_issued: tuple[str, ...]  # issuers whose invoice for the year exists


@dataclass
class CampaignReview:
    year: int
    renewal_date: date
    grid: str
    lines: list[ReviewLine] = field(default_factory=list)

    def totals(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for line in self.lines:
            for issuer, amount in line.this_year.items():
                result[issuer] = result.get(issuer, Decimal("0.00")) + amount
        return result

    def last_totals(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for line in self.lines:
            for issuer, amount in line.last_year.items():
                if amount is not None:
                    result[issuer] = result.get(issuer, Decimal("0.00")) + amount
        return result


def _live(window: LiveWindow) -> list[Any]:
    """`LiveWindow.contains` as SQL: the campaign reads ids only, for every French commune at once."""
    return [
        Subscription.status == SubscriptionStatus.ACTIVE,
        col(Subscription.started_on) < window.started_before,
        or_(col(Subscription.ended_on).is_(None), col(Subscription.ended_on) >= window.started_before),
    ]


def live_subscriptions(session: Session, year: int, on: date) -> list[Subscription]:
    """The subscriptions a campaign renews, whole rows (the review reads them)."""
    query = select(Subscription).where(*_live(LiveWindow(year, on))).order_by(col(Subscription.id))
    return list(session.exec(query).all())


def live_subscription_ids(
    session: Session, year: int, on: date, first_id: int | None = None, last_id: int | None = None
) -> list[int]:
    """Their ids only: what the campaign iterates over (a few MB for every French commune), optionally
    those of one slice (ids from `first_id` to `last_id`, both included)."""
    query = select(Subscription.id).where(*_live(LiveWindow(year, on)))
    if first_id is not None:
        query = query.where(col(Subscription.id) >= first_id)
    if last_id is not None:
        query = query.where(col(Subscription.id) <= last_id)
    return [int(i) for i in session.exec(query.order_by(col(Subscription.id))).all() if i is not None]


@dataclass(frozen=True)
class Slice:
    """Consecutive live subscriptions of a campaign, by id bounds (both included): what one child run of
    `renouvellement-lot` issues. Bounds, not a list: the same ids give the same slices on every run."""

    index: int
    first_id: int
    last_id: int
    subscriptions: int


def slices_of(ids: list[int], size: int) -> list[Slice]:
    """Cut sorted subscription ids into slices of at most `size`."""
    if size < 1:
        raise ValueError("slice size must be at least 1")
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    return [Slice(n, chunk[0], chunk[-1], len(chunk)) for n, chunk in enumerate(chunks)]


def _verdict(settings: Settings, session: Session, collectivity: Collectivity, grid: Grid, on: date) -> Eligibility:
    return assess_collectivity(session, settings, identifier_of(collectivity), on, grid=grid).eligibility


def plan_for(
    settings: Settings, uow: UnitOfWork, subscription: Subscription, year: int, grids: list[Grid]
) -> tuple[Collectivity, RenewalPlan]:
    """The renewal plan of one subscription (pure rules over what the database says)."""
    on = renewal_date(settings, year)
    previous_on = renewal_date(settings, year - 1)
    grid = grid_in_force(grids, on)
    previous_candidates = [g for g in grids if g.effective_from <= previous_on]
    previous_grid = grid_in_force(previous_candidates, previous_on) if previous_candidates else None
    assert subscription.id is not None
    collectivity = uow.collectivities.get(subscription.collectivity_id)
    items = uow.subscriptions.items(subscription.id)
    cdg = uow.issuers.get(subscription.cdg_code)
    session = uow.session
    verdict = _verdict(settings, session, collectivity, grid, on)
    previous = _verdict(settings, session, collectivity, previous_grid or grid, previous_on)
    plan = plan_renewal(
        items=[LiveItem(i.item_code, i.quantity, i.started_on, i.ended_on, i.operator_amount) for i in items],
        year=year,
        renewal_date=on,
        grid=grid,
        previous_grid=previous_grid,
        verdict=verdict,
        previous_verdict=previous,
        support_amount=subscription.support_amount,
        syndicat=settings.syndicat.code,
        syndicat_vat=paperwork.vat_of(settings.syndicat),
        cdg_vat=paperwork.vat_of(cdg),
        full_first_year=settings.full_first_year,
        subscription_started_on=subscription.started_on,
        subscription_ended_on=subscription.ended_on,
    )
    return collectivity, plan


def _last_year(session: Session, subscription: Subscription, year: int) -> dict[str, Decimal | None]:
    rows = session.exec(
        select(Invoice).where(Invoice.subscription_id == subscription.id, Invoice.billing_year == year - 1)
    ).all()
    return {row.issuer_code: row.total_ttc for row in rows}


def review(settings: Settings, year: int, progress: Callable[[int, int], None] | None = None) -> CampaignReview:
    """The dry run: per collectivity, last year's and this year's totals per issuer, and why they differ."""
    on = renewal_date(settings, year)
    with unit_of_work(settings) as uow:
        session = uow.session
        grids = stored_grids(session)
        result = CampaignReview(year=year, renewal_date=on, grid=grid_in_force(grids, on).code)
        subscriptions = live_subscriptions(session, year, on)
        exclusions = recorded_exclusions(session, year)
        for index, subscription in enumerate(subscriptions, start=1):
            collectivity, plan = plan_for(settings, uow, subscription, year, grids)
            assert subscription.id is not None
            issued = tuple(
                d.issuer for d in plan.documents if uow.invoices.of_year(subscription.id, d.issuer, year) is not None
            )
            result.lines.append(
                ReviewLine(
                    subscription_id=subscription.id,
                    collectivity=collectivity.name,
                    siren=collectivity.siren,
                    last_year=_last_year(session, subscription, year),
                    this_year={d.issuer: d.total_ttc for d in plan.documents},
                    reasons=plan.reasons + _excluded_reason(exclusions.get(collectivity.siren)),
                    pending=plan.pending,
                    already_issued=issued,
                )
            )
            if progress:
                progress(index, len(subscriptions))
        return result


EXCLUDED = "campaign.excluded"
INCLUDED = "campaign.included"


@dataclass(frozen=True)
class Exclusion:
    """A collectivity an operator left out of a year's campaign (or put back), as recorded."""

    year: int
    collectivity: str
    siren: str
    excluded: bool  # False: put back in the campaign
    reason: str
    operator: str
    changed: bool  # False: it was so already, nothing recorded


def recorded_exclusions(session: Session, year: int) -> dict[str, str]:
    """SIREN → the operator's reason, for the collectivities left out of the year's campaign beforehand
    (the audit trail keeps each decision; the last one per collectivity counts)."""
    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.action).in_((EXCLUDED, INCLUDED)), AuditEvent.entity_type == "collectivity")
        .order_by(col(AuditEvent.id))
    ).all()
    state: dict[str, str | None] = {}
    for event in events:
        details = event.details or {}
        if details.get("year") != year or not details.get("siren"):
            continue
        state[str(details["siren"])] = str(details.get("reason") or "") if event.action == EXCLUDED else None
    return {siren: reason for siren, reason in state.items() if reason is not None}


def _excluded_reason(reason: str | None) -> tuple[str, ...]:
    return () if reason is None else (f"exclue de la campagne par un opérateur : {reason}",)


def exclude_from_campaign(
    settings: Settings, year: int, identifier: str, *, reason: str, operator: str, exclude: bool = True
) -> Exclusion:
    """Leave a collectivity (INSEE code, SIREN or SIRET) out of the year's renewal campaign before it is
    issued — or put it back with `exclude=False`. Recorded in the audit trail; the campaign's review shows
    it and its issue skips it (`mairie campaign exclude`, the `exclusion-campagne` deployment)."""
    if not 2000 <= year <= 2100:
        raise InvalidInput(f"année {year} invalide")
    reason = " ".join(clean_text(reason, "le motif").split())
    operator = " ".join(clean_text(operator, "l'opérateur").split())
    if exclude and not reason:
        raise InvalidInput("indiquez le motif de l'exclusion")
    if not 2 <= len(operator) <= 200:
        raise InvalidInput("indiquez votre nom (2 à 200 caractères)")
    with unit_of_work(settings) as uow:
        found = find(uow.session, identifier, renewal_date(settings, year))
        collectivity = uow.collectivities.by_siren(found.siren)
        if collectivity is None:
            raise InvalidInput(f"{found.name} (SIREN {found.siren}) n'a pas d'abonnement : rien à exclure")
        already = collectivity.siren in recorded_exclusions(uow.session, year)
        outcome = Exclusion(year, collectivity.name, collectivity.siren, exclude, reason, operator, already != exclude)
        if outcome.changed:
            audit.record(
                uow.session,
                actor=operator,
                action=EXCLUDED if exclude else INCLUDED,
                entity_type="collectivity",
                entity_id=collectivity.id,
                details={"year": year, "siren": collectivity.siren, "reason": reason},
            )
            uow.commit()
        return outcome


@dataclass
class CampaignResult:
    year: int
    issued: list[IssuedInvoice] = field(default_factory=list)
    existing: list[IssuedInvoice] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # buyer's identity incomplete: nothing numbered
    taken: list[int] = field(default_factory=list)  # subscriptions another run held at that moment (skipped)


# Subscriptions numbered before their invoices are rendered together (a window): enough to keep every
# rendering process busy while the next window is numbered, few enough that a crash leaves little to
# complete (two windows at most: the one rendering and the one being numbered). The first window of a run
# is FIRST_WINDOW, each next one twice the last up to WINDOW: the workers start on the first invoices at
# once instead of waiting for a whole window to be numbered.
WINDOW = 32
FIRST_WINDOW = 4


def issue(
    settings: Settings,
    year: int,
    *,
    exclude: Iterable[str] = (),
    subscription_ids: Iterable[int] | None = None,
    first_id: int | None = None,
    last_id: int | None = None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    pool: RenderPool | None = None,
) -> CampaignResult:
    """Issue the renewal invoices of the year. `exclude` lists SIRENs (or INSEE codes) the operator left
    out; `subscription_ids`, or the bounds `first_id`–`last_id` (a `Slice`), restrict it to some
    subscriptions. Running it again issues only what is missing.

    Any number of runs may share one list: each subscription is claimed with `SELECT … FOR UPDATE SKIP
    LOCKED` (PostgreSQL) in its numbering transaction, so a run skips at once a subscription another run is
    numbering (`CampaignResult.taken`) and finds it issued afterwards; on SQLite the single writer lock
    serialises the transactions instead.

    Two steps per invoice (`invoicing`): numbering, one short transaction per subscription; then rendering,
    storing and emailing, one transaction per invoice, the PDFs rendered by a pool of recycled processes
    when the campaign is large (`invoicing.render_processes`), or by the caller's `pool` (one pool kept
    across several calls)."""
    excluded = {e.strip() for e in exclude if e.strip()}
    with unit_of_work(settings) as uow:  # and those an operator excluded beforehand (`exclude_from_campaign`)
        excluded |= set(recorded_exclusions(uow.session, year))
    on = renewal_date(settings, year)
    day = today or on
    if day.year != year:
        raise InvalidInput(f"les factures de renouvellement {year} sont datées de {year} (pas du {day:%d/%m/%Y})")
    result = CampaignResult(year)
    whole = subscription_ids is None and first_id is None and last_id is None
    with unit_of_work(settings) as uow:
        targets = live_subscription_ids(uow.session, year, on, first_id, last_id)
        grids = stored_grids(uow.session)
        if subscription_ids is not None:
            wanted = set(subscription_ids)
            targets = [t for t in targets if t in wanted]
        # invoices a crashed run numbered and did not render: all of them, or those of these subscriptions
        # (a slice leaves the other slices' invoices to the runs rendering them)
        unfinished = None if whole else _numbered_of(uow.session, year, targets)
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(RenderPool(render_processes(settings, 2 * len(targets))))
        if targets:
            pool.start()  # the workers warm up while the first window is numbered
        if unfinished is None or unfinished:
            complete_unfinished(settings, unfinished, pool=pool)
        # A window's PDFs render while the next window is numbered: the workers never wait for the numbering.
        window: list[tuple[IssuedInvoice, bool]] = []
        size = 2 * min(FIRST_WINDOW, WINDOW)  # invoices of the window being numbered (two per subscription)
        rendering: _Window | None = None  # the window whose PDFs are stored next
        ahead: _Window | None = None  # the one queued behind it
        try:
            for index, subscription_id in enumerate(targets, start=1):
                window += _number_one(settings, subscription_id, year, day, excluded, result, grids)
                if len(window) >= size or index == len(targets):
                    ahead = _Window(window, start_unfinished(settings, [issued.id for issued, _c in window], pool))
                    if rendering is not None:
                        _complete(settings, rendering, result)
                    rendering, ahead, window, size = ahead, None, [], min(2 * size, 2 * WINDOW)
                if progress:
                    progress(index, len(targets))
            if rendering is not None:
                _complete(settings, rendering, result)
                rendering = None
        finally:  # on an error, what no worker began is dropped (still numbered: the next run completes it)
            for left in (rendering, ahead):
                if left is not None:
                    left.started.rendering.cancel()
    file_deposits(settings)
    return result


@dataclass
class _Window:
    numbered: list[tuple[IssuedInvoice, bool]]
    started: Started


def _numbered_of(session: Session, year: int, subscription_ids: list[int]) -> list[int]:
    """Ids of the year's invoices of these subscriptions still `numbered` (no document yet)."""
    if not subscription_ids:
        return []
    query = select(Invoice.id, Invoice.subscription_id).where(
        Invoice.billing_year == year,
        Invoice.status == InvoiceStatus.NUMBERED,
        col(Invoice.subscription_id) >= subscription_ids[0],
        col(Invoice.subscription_id) <= subscription_ids[-1],
    )
    wanted = set(subscription_ids)
    return [int(i) for i, sub in session.exec(query).all() if i is not None and sub in wanted]


def _number_one(
    settings: Settings,
    subscription_id: int,
    year: int,
    day: date,
    excluded: set[str],
    result: CampaignResult,
    grids: list[Grid],
) -> list[tuple[IssuedInvoice, bool]]:
    """Step 1 for one subscription: number its invoices with their lines, one short transaction (the
    issuers' sequence rows are locked only for that), so that campaign processes on PostgreSQL render
    side by side. Returns its invoices, each with whether it was numbered here."""
    numbered: list[tuple[IssuedInvoice, bool]] = []
    with unit_of_work(settings) as uow:
        # Claim the subscription: another run numbering it holds its row, and this one skips it at once
        # (that run issues it); on SQLite, BEGIN IMMEDIATE already serialises the transactions.
        subscription = uow.session.exec(
            select(Subscription).where(Subscription.id == subscription_id).with_for_update(skip_locked=True)
        ).first()
        if subscription is None:
            result.taken.append(subscription_id)
            return []
        collectivity, plan = plan_for(settings, uow, subscription, year, grids)
        if collectivity.siren in excluded or (collectivity.insee_code or "") in excluded:
            result.excluded.append(collectivity.siren)
            return []
        if plan.pending:
            result.pending.append(f"{collectivity.name} ({collectivity.siren}) : {', '.join(plan.pending)}")
        # held here, the convention and the request are not read again for each invoice (the session's
        # identity map keeps only what is referenced)
        convention = uow.conventions.get(subscription.convention_id)
        request = uow.requests.get(convention.request_id)
        missing = missing_for_invoice(buyers.buyer_of(collectivity, request))
        if missing and plan.documents:
            buyers.hold(
                uow, settings, collectivity, [d.issuer for d in plan.documents], f"renouvellement {year}", missing
            )
            uow.commit()
            result.held.append(f"{collectivity.name} ({collectivity.siren}) : {describe_missing(missing)}")
            return []
        for priced in plan.documents:
            draft = InvoiceDraft(
                priced=priced,
                kind="renewal",
                year=year,
                issued_on=day,
                delivery_date=renewal_date(settings, year),
            )
            invoice, created = record_invoice(uow, settings, subscription, draft)
            numbered.append((as_issued(invoice, created), created))
        uow.commit()
    return numbered


def _complete(settings: Settings, window: _Window, result: CampaignResult) -> None:
    """Step 2 for a window of numbered invoices, rendering since `start_unfinished`: store and email those
    not complete yet."""
    completed = finish_unfinished(settings, window.started)
    try:  # while the next window renders
        file_deposits(settings, invoice_ids=list(completed))
    except OSError as exc:  # the deposit folder: the campaign goes on, the sweep at its end files or raises
        logging.getLogger(__name__).warning("dépôt des factures reporté à la fin de la campagne : %s", exc)
    for issued, created in window.numbered:
        if issued.id in completed:  # its document now, whoever rendered it
            issued = dataclasses.replace(issued, sha256=completed[issued.id].sha256)
        (result.issued if created else result.existing).append(issued)
