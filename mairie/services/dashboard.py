"""The business at a glance, as data: what is overdue, what waits and for whom, what was invoiced and
collected. The `tableau-de-bord` deployment publishes it as table artifacts; nothing here writes.

One read-only transaction; every amount is Decimal (TTC), every date a Paris date.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlmodel import Session, col, func, select

from mairie.database import unit_of_work
from mairie.services.intake import request_state
from mairie.services.payments import amount_due
from mairie.settings import Settings
from models.clock import PARIS, paris_day, paris_today
from models.entities import (
    Approval,
    Collectivity,
    Convention,
    Invoice,
    ProvisioningOrder,
    ProvisioningOrderItem,
    Reminder,
    ServiceRequest,
)
from models.lifecycle import ApprovalStatus, ConventionStatus, InvoiceStatus, OrderStatus, RequestStatus
from models.parties import PARTY_LABELS
from notifications.outbox import undelivered

ZERO = Decimal("0.00")
# Age of an overdue invoice, in days after its due date: (upper bound, label); the last has no bound.
AGE_BANDS: tuple[tuple[int | None, str], ...] = (
    (30, "1 à 30 jours"),
    (60, "31 à 60 jours"),
    (90, "61 à 90 jours"),
    (None, "plus de 90 jours"),
)
OPEN_INVOICE = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID)
WAITING_CONVENTION = (
    ConventionStatus.AWAITING_COLLECTIVITY,
    ConventionStatus.AWAITING_CDG,
    ConventionStatus.AWAITING_SYNDICAT,
)


def age_band(days_late: int) -> str:
    """The band of an invoice `days_late` days past its due date (1 or more)."""
    for bound, label in AGE_BANDS:
        if bound is None or days_late <= bound:
            return label
    raise AssertionError("the last band has no bound")


@dataclass(frozen=True)
class OverdueInvoice:
    number: str
    issuer: str
    collectivity: str
    due_on: date
    days_late: int
    age: str  # one of AGE_BANDS' labels
    amount_due: Decimal
    reminders: int  # reminder levels sent (7, 21, 45 days: 1 to 3)
    handed_to_accountant: bool


@dataclass(frozen=True)
class OverdueBand:
    issuer: str
    age: str
    invoices: int
    amount_due: Decimal


@dataclass(frozen=True)
class WaitingConvention:
    reference: str
    collectivity: str
    waiting_for: str  # the party whose turn it is, and its signatory
    signatory_email: str
    since: date | None  # when its link was sent
    next_reminder: date | None  # None: every reminder sent
    expires_on: date | None


@dataclass(frozen=True)
class OpenOrder:
    number: str
    collectivity: str
    status: str
    sent_on: date
    acknowledged: bool
    items_left: tuple[str, ...]  # "code × quantity" not delivered yet


@dataclass(frozen=True)
class UndeliveredEmail:
    id: int
    kind: str
    to: tuple[str, ...]
    subject: str
    attempts: int
    error: str


@dataclass(frozen=True)
class AwaitingAmount:
    reference: str
    request_id: int
    collectivity: str
    since: date
    pending: tuple[str, ...]  # item codes, and "accompagnement"
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class IssuerYear:
    issuer: str
    year: int  # the year the invoices were issued (their number's year)
    invoices: int
    invoiced: Decimal
    credited: Decimal
    collected: Decimal
    outstanding: Decimal


@dataclass
class Dashboard:
    today: date
    overdue: list[OverdueInvoice] = field(default_factory=list)
    conventions: list[WaitingConvention] = field(default_factory=list)
    orders: list[OpenOrder] = field(default_factory=list)
    emails: list[UndeliveredEmail] = field(default_factory=list)
    amounts: list[AwaitingAmount] = field(default_factory=list)
    totals: list[IssuerYear] = field(default_factory=list)

    def overdue_by_age(self) -> list[OverdueBand]:
        """Overdue invoices counted and summed per issuer and age band (bands in order)."""
        grouped: dict[tuple[str, str], list[OverdueInvoice]] = defaultdict(list)
        for invoice in self.overdue:
            grouped[(invoice.issuer, invoice.age)].append(invoice)
        order = {label: i for i, (_, label) in enumerate(AGE_BANDS)}
        return [
            OverdueBand(issuer, age, len(rows), sum((r.amount_due for r in rows), ZERO))
            for (issuer, age), rows in sorted(grouped.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
        ]


def dashboard(settings: Settings, today: date | None = None) -> Dashboard:
    """Everything the operators watch, as of `today` (default: today in Paris)."""
    day = today or paris_today()
    result = Dashboard(today=day)
    with unit_of_work(settings) as uow:
        session = uow.session
        names = {c.id: c.name for c in session.exec(select(Collectivity)).all()}
        result.overdue = _overdue(session, names, day)
        result.conventions = _conventions(session, settings, names)
        result.orders = _orders(session)
        result.emails = [
            UndeliveredEmail(m.id or 0, m.kind, tuple(m.recipients), m.subject, m.attempts, m.last_error or "")
            for m in undelivered(session)
        ]
        result.totals = _totals(session)
        waiting = session.exec(
            select(ServiceRequest)
            .where(ServiceRequest.status == RequestStatus.WAITING_OPERATOR)
            .order_by(col(ServiceRequest.requested_on), col(ServiceRequest.id))
        ).all()
        requests = [(r.id, r.reference, names.get(r.collectivity_id, ""), r.requested_on) for r in waiting]
    for request_id, reference, collectivity, since in requests:
        assert request_id is not None
        state = request_state(settings, request_id)
        reasons = tuple(r["message"] for r in state.on_quote)
        result.amounts.append(AwaitingAmount(reference, request_id, collectivity, since, state.pending, reasons))
    return result


def _overdue(session: Session, names: dict[int | None, str], day: date) -> list[OverdueInvoice]:
    invoices = session.exec(
        select(Invoice)
        .where(col(Invoice.status).in_(OPEN_INVOICE), col(Invoice.due_on) < day)
        .order_by(col(Invoice.due_on), col(Invoice.number))
    ).all()
    levels: dict[int | None, int] = dict(
        session.exec(select(Reminder.invoice_id, func.count(col(Reminder.id))).group_by(col(Reminder.invoice_id))).all()
    )
    rows = []
    for invoice in invoices:
        due = amount_due(invoice)
        if due <= ZERO:
            continue
        late = (day - invoice.due_on).days
        rows.append(
            OverdueInvoice(
                number=invoice.number,
                issuer=invoice.issuer_code,
                collectivity=names.get(invoice.collectivity_id, ""),
                due_on=invoice.due_on,
                days_late=late,
                age=age_band(late),
                amount_due=due,
                reminders=int(levels.get(invoice.id, 0)),
                handed_to_accountant=invoice.handed_to_accountant_at is not None,
            )
        )
    return rows


def _conventions(session: Session, settings: Settings, names: dict[int | None, str]) -> list[WaitingConvention]:
    rows = []
    conventions = session.exec(
        select(Convention).where(col(Convention.status).in_(WAITING_CONVENTION)).order_by(col(Convention.id))
    ).all()
    for convention in conventions:
        pending = session.exec(
            select(Approval).where(Approval.convention_id == convention.id, Approval.status == ApprovalStatus.PENDING)
        ).first()
        since = next_reminder = None
        waiting_for, email = "—", ""
        if pending is not None:
            waiting_for = f"{PARTY_LABELS.get(pending.party, pending.party)} — {pending.signatory_name}"
            email = pending.signatory_email
            if pending.link_sent_at is not None:
                sent = pending.link_sent_at.astimezone(PARIS)
                since = sent.date()
                days = sorted(settings.signature_reminder_days)
                if pending.reminders_sent < len(days):
                    next_reminder = (sent + timedelta(days=days[pending.reminders_sent])).date()
        expires = paris_day(convention.expires_at) if convention.expires_at else None
        rows.append(
            WaitingConvention(
                convention.reference,
                names.get(convention.collectivity_id, ""),
                waiting_for,
                email,
                since,
                next_reminder,
                expires,
            )
        )
    return rows


def _orders(session: Session) -> list[OpenOrder]:
    rows = []
    orders = session.exec(
        select(ProvisioningOrder)
        .where(ProvisioningOrder.status != OrderStatus.DELIVERED)
        .order_by(col(ProvisioningOrder.sent_at))
    ).all()
    for order in orders:
        items = session.exec(
            select(ProvisioningOrderItem).where(
                ProvisioningOrderItem.order_id == order.id, col(ProvisioningOrderItem.delivered_on).is_(None)
            )
        ).all()
        collectivity = (order.payload.get("collectivity") or {}).get("name", "")
        rows.append(
            OpenOrder(
                order.number,
                collectivity,
                str(order.status),
                paris_day(order.sent_at),
                order.acknowledged_at is not None,
                tuple(f"{i.item_code} × {i.quantity}" for i in items),
            )
        )
    return rows


def _totals(session: Session) -> list[IssuerYear]:
    grouped: dict[tuple[str, int], list[Invoice]] = defaultdict(list)
    for invoice in session.exec(select(Invoice).where(Invoice.status != InvoiceStatus.NUMBERED)).all():
        grouped[(invoice.issuer_code, invoice.issued_on.year)].append(invoice)
    rows = []
    for (issuer, year), invoices in sorted(grouped.items()):
        rows.append(
            IssuerYear(
                issuer,
                year,
                len(invoices),
                sum((i.total_ttc for i in invoices), ZERO),
                sum((i.amount_credited for i in invoices), ZERO),
                sum((i.amount_paid for i in invoices), ZERO),
                sum((amount_due(i) for i in invoices), ZERO),
            )
        )
    return rows
