"""The Chorus Pro channel through its API: an issuer whose channel is `facturx_chorus` and whose technical
account is set (`MAIRIE_<ISSUER>__CHORUS_LOGIN` / `…_PASSWORD`, with `MAIRIE_CHORUS__*`) deposits each
issued invoice and credit note there, then follows it (rules: `models.chorus`).

- Queue (`queue_document`): a `chorusdeposit` row in the transaction that issues the document (outbox-like);
  the folder channel leaves such documents alone.
- Deposit (`deposit_pending`): each row is claimed by a compare-and-set on its state, deposited, and its
  `numeroFluxDepot` recorded in a transaction of its own right after the answer — before anything else.
  A row claimed without its number (a crash, or a deposit without answer) is searched on Chorus Pro by
  the invoice number its file carries (`<number>.pdf`) before it is ever deposited again. Deposits are
  spaced by the setting `chorus.deposits_per_minute`. A buyer whose structure requires a service code or
  commitment number the invoice lacks is not deposited: operator task.
- Sync (`sync`): flux states and invoice statuses, each change with its date in the deposit's history and
  the audit of the invoice. A rejection (`IN_REJETE`, `REJETEE`) → operator task and email with Chorus
  Pro's reason, the invoice not payable (no reminder); `MISE_EN_PAIEMENT` → no more reminders.
- Reissue (`reissue`): a credit note cancels the rejected invoice, a new invoice (same lines, corrected
  buyer references) is issued and deposited in turn.
- Intake (`check_buyer`): the buyer's SIRET against the directory, and what its structure requires.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import update
from sqlmodel import Session, col, select

from mairie.adapters.chorus import (
    Account,
    ChorusApi,
    ChorusError,
    ChorusRefused,
    ChorusUnavailable,
    ChorusUncertain,
    HttpChorusClient,
)
from mairie.database import unit_of_work
from mairie.services.assessment import identifier_of
from mairie.services.mail import enqueue_message
from mairie.settings import IssuerIdentity, Settings
from models import audit
from models import chorus as rules
from models.chorus import DepositState
from models.db import UnitOfWork
from models.entities import ChorusDeposit, CreditNote, Invoice, InvoiceLine
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import InvoiceStatus
from models.types import utcnow

ACTOR = "Chorus Pro"
CHANNEL = "facturx_chorus"  # Invoice.sent_channel of an invoice deposited through the API


class ChorusJson(TypedDict):
    """What the invoice JSON carries under `chorus`."""

    flux: str | None
    flux_state: str | None
    invoice_id: int | None
    status: str | None
    status_at: str | None
    reason: str | None


# --------------------------------------------------------------------------------------------------
# Wiring
# --------------------------------------------------------------------------------------------------


def client_for(settings: Settings) -> HttpChorusClient:
    """The HTTP client of the settings (`MAIRIE_CHORUS__*`)."""
    c = settings.chorus
    if not c.configured:
        raise InvalidInput(
            "l'API Chorus Pro n'est pas configurée : MAIRIE_CHORUS__API_URL, MAIRIE_CHORUS__OAUTH_URL, "
            "MAIRIE_CHORUS__CLIENT_ID et MAIRIE_CHORUS__CLIENT_SECRET (voir docs/chorus-pro.md)"
        )
    assert c.api_url and c.oauth_url and c.client_id and c.client_secret
    return HttpChorusClient(
        c.api_url,
        c.oauth_url,
        c.client_id,
        c.client_secret,
        timeout=c.timeout_seconds,
        retries=c.retries,
        backoff=c.backoff_seconds,
        max_backoff=c.max_backoff_seconds,
    )


def account_of(identity: IssuerIdentity) -> Account:
    if not identity.chorus_login or not identity.chorus_password:
        raise InvalidInput(f"{identity.code} n'a pas de compte technique Chorus Pro (…_CHORUS_LOGIN / …_PASSWORD)")
    return Account(identity.chorus_login, identity.chorus_password)


def api_issuers(settings: Settings) -> list[IssuerIdentity]:
    """The issuers whose documents go through the API."""
    return [i for i in settings.issuers() if settings.deposits_through_chorus_api(i)]


def file_name_of(number: str) -> str:
    return f"{number}.pdf"


def _record(deposit: ChorusDeposit, what: str, value: str | None, at: datetime, reason: str | None = None) -> None:
    entry: dict[str, Any] = {"at": at.isoformat(), "what": what, "value": value}
    if reason:
        entry["reason"] = reason
    deposit.history = [*deposit.history, entry]


def _audit(session: Session, deposit: ChorusDeposit, action: str, details: dict[str, Any]) -> None:
    entity_type, entity_id = (
        ("invoice", deposit.invoice_id)
        if deposit.document_type == "invoice"
        else ("creditnote", deposit.credit_note_id)
    )
    audit.record(
        session,
        actor=ACTOR,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details={"number": deposit.number, **details},
    )


# --------------------------------------------------------------------------------------------------
# Queue
# --------------------------------------------------------------------------------------------------


def queue_document(uow: UnitOfWork, settings: Settings, document: Invoice | CreditNote) -> ChorusDeposit | None:
    """Queue the deposit of an issued document when its issuer deposits through the API (in the caller's
    transaction); None when it goes to the folder. Queued once: the file name is unique."""
    identity = uow.issuers.get(document.issuer_code)
    if not settings.deposits_through_chorus_api(identity):
        return None
    name = file_name_of(document.number)
    existing = uow.session.exec(select(ChorusDeposit).where(ChorusDeposit.file_name == name)).first()
    if existing is not None:
        return existing
    if isinstance(document, Invoice):
        kind, invoice_id, note_id = "invoice", document.id, None
    else:
        kind, invoice_id, note_id = "credit_note", document.invoice_id, document.id
    deposit = ChorusDeposit(
        issuer_code=identity.code,
        document_type=kind,
        invoice_id=invoice_id,
        credit_note_id=note_id,
        number=document.number,
        file_name=name,
    )
    _record(deposit, "queued", None, utcnow())
    uow.session.add(deposit)
    uow.session.flush()
    _audit(uow.session, deposit, "chorus.queued", {"file": name})
    return deposit


def rejected_on_chorus(session: Session, invoice_id: int) -> bool:
    """Whether Chorus Pro rejected this invoice (its credit note is then not deposited there)."""
    return any(rules.rejected(d.flux_state, d.status) for d in _deposits_of_invoice(session, invoice_id))


def _deposits_of_invoice(session: Session, invoice_id: int) -> list[ChorusDeposit]:
    return list(
        session.exec(
            select(ChorusDeposit)
            .where(ChorusDeposit.invoice_id == invoice_id, ChorusDeposit.document_type == "invoice")
            .order_by(col(ChorusDeposit.id))
        ).all()
    )


# --------------------------------------------------------------------------------------------------
# Deposit
# --------------------------------------------------------------------------------------------------


@dataclass
class DepositReport:
    deposited: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # flux found on Chorus Pro after a crash
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (number, reason): operator task
    retry_later: list[tuple[str, str]] = field(default_factory=list)  # (number, error)
    waiting: list[str] = field(default_factory=list)  # claimed, not found yet: searched again later

    def as_json(self) -> dict[str, Any]:
        return {
            "deposited": self.deposited,
            "recovered": self.recovered,
            "blocked": [{"number": n, "reason": r} for n, r in self.blocked],
            "retry_later": [{"number": n, "error": e} for n, e in self.retry_later],
            "waiting": self.waiting,
        }


class RateLimit:
    """At most `per_minute` calls a minute, evenly spaced (0: no limit)."""

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def deposit_pending(
    settings: Settings,
    api: ChorusApi | None = None,
    *,
    limit: int | None = None,
    rate: RateLimit | None = None,
    now: Callable[[], datetime] = utcnow,
) -> DepositReport:
    """Deposit what is queued (recovering first what a crash left claimed), at most `limit` documents."""
    report = DepositReport()
    if not api_issuers(settings):
        return report
    client = api or client_for(settings)
    rate = rate or RateLimit(settings.chorus.deposits_per_minute)
    try:
        _recover_claims(settings, client, report, now)
        requirements: dict[str, rules.StructureRequirements | str] = {}
        done = 0
        while limit is None or done < limit:
            claimed = _claim_next(settings, now())
            if claimed is None:
                break
            done += 1
            if not _deposit_one(settings, client, claimed, report, requirements, rate, now):
                break  # Chorus Pro unavailable: the rest waits for the next run
    finally:
        if api is None and isinstance(client, HttpChorusClient):
            client.close()
    return report


def _claim_next(settings: Settings, at: datetime) -> int | None:
    """Claim the oldest queued deposit that is due (compare-and-set: one run only gets it)."""
    while True:
        with unit_of_work(settings) as uow:
            candidate = uow.session.exec(
                select(ChorusDeposit.id)
                .where(ChorusDeposit.state == DepositState.QUEUED, ChorusDeposit.next_attempt_at <= at)
                .order_by(col(ChorusDeposit.id))
                .limit(1)
            ).first()
            if candidate is None:
                return None
            result = uow.session.execute(
                update(ChorusDeposit)
                .where(col(ChorusDeposit.id) == candidate, col(ChorusDeposit.state) == DepositState.QUEUED)
                .values(state=DepositState.CLAIMED, claimed_at=at, attempts=col(ChorusDeposit.attempts) + 1)
            )
            uow.commit()
            if getattr(result, "rowcount", 0) == 1:
                return int(candidate)


def _deposit_one(
    settings: Settings,
    api: ChorusApi,
    deposit_id: int,
    report: DepositReport,
    requirements: dict[str, rules.StructureRequirements | str],
    rate: RateLimit,
    now: Callable[[], datetime],
) -> bool:
    """Deposit one claimed row; False when Chorus Pro is unavailable (stop the batch)."""
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id)
        identity = uow.issuers.get(deposit.issuer_code)
        invoice = uow.invoices.get(deposit.invoice_id) if deposit.invoice_id is not None else None
        buyer = (invoice.buyer_siret, invoice.chorus_service_code, invoice.commitment_number) if invoice else None
        sha = _document_sha(uow.session, deposit)
        uow.session.expunge_all()
    account = account_of(identity)
    try:
        if deposit.document_type == "invoice" and buyer is not None and buyer[0]:
            missing = _missing(api, account, buyer[0], buyer[1], buyer[2], requirements)
            if missing:
                _block(settings, deposit_id, missing, now())
                report.blocked.append((deposit.number, missing))
                return True
        from mairie.services import paperwork

        content = paperwork.load(settings, sha)
        rate.wait()
        answer = api.deposit_flux(account, deposit.file_name, content)
    except ChorusUncertain as exc:
        _note_error(settings, deposit_id, str(exc))  # stays claimed: searched before any new deposit
        report.waiting.append(deposit.number)
        return True
    except ChorusUnavailable as exc:
        _requeue(settings, deposit_id, str(exc), now() + timedelta(minutes=1))
        report.retry_later.append((deposit.number, str(exc)))
        return False
    except ChorusRefused as exc:
        _block(settings, deposit_id, f"dépôt refusé par Chorus Pro : {exc.libelle or exc}", now())
        report.blocked.append((deposit.number, str(exc)))
        return True
    record_flux(settings, deposit_id, answer.flux_number, now())
    report.deposited.append(deposit.number)
    return True


def record_flux(
    settings: Settings, deposit_id: int, flux_number: str, at: datetime, *, recovered: bool = False
) -> None:
    """Record the flux number of a claimed deposit — the first thing done with a deposit's answer."""
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id, for_update=True)
        if deposit.flux_number is not None:
            return
        deposit.flux_number = flux_number
        deposit.state = DepositState.DEPOSITED
        deposit.deposited_at = at
        deposit.last_error = None
        _record(deposit, "deposited", flux_number, at)
        uow.session.add(deposit)
        if deposit.document_type == "invoice" and deposit.invoice_id is not None:
            # The invoice left by Chorus Pro: no other channel (PES) takes it from now on.
            invoice = uow.invoices.get(deposit.invoice_id)
            if invoice.sent_channel is None:
                invoice.sent_channel, invoice.sent_at = CHANNEL, at
                uow.session.add(invoice)
        _audit(uow.session, deposit, "chorus.deposited", {"flux": flux_number, "recovered": recovered})
        uow.commit()


def _get(session: Session, deposit_id: int, *, for_update: bool = False) -> ChorusDeposit:
    query = select(ChorusDeposit).where(ChorusDeposit.id == deposit_id)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).one()


def _document_sha(session: Session, deposit: ChorusDeposit) -> str:
    if deposit.document_type == "invoice":
        assert deposit.invoice_id is not None
        sha = session.exec(select(Invoice.document_sha256).where(Invoice.id == deposit.invoice_id)).one()
    else:
        sha = session.exec(select(CreditNote.document_sha256).where(CreditNote.id == deposit.credit_note_id)).one()
    if not sha:
        raise NotFound(f"{deposit.number} n'a pas de document à déposer")
    return sha


def _requeue(settings: Settings, deposit_id: int, error: str, at: datetime) -> None:
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id, for_update=True)
        if deposit.state == DepositState.CLAIMED:
            deposit.state = DepositState.QUEUED
            deposit.claimed_at = None
        deposit.last_error = error
        deposit.next_attempt_at = at
        uow.session.add(deposit)
        uow.commit()


def _note_error(settings: Settings, deposit_id: int, error: str) -> None:
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id, for_update=True)
        deposit.last_error = error
        uow.session.add(deposit)
        uow.commit()


def _block(settings: Settings, deposit_id: int, reason: str, at: datetime) -> None:
    """Not deposited: the deposit waits for an operator (task and email with the reason)."""
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id, for_update=True)
        deposit.state = DepositState.BLOCKED
        deposit.reason = reason
        _record(deposit, "blocked", None, at, reason)
        uow.session.add(deposit)
        _audit(uow.session, deposit, "chorus.blocked", {"reason": reason})
        _tell_operators(uow, settings, deposit, "blocked", "non déposée", reason, None)
        uow.commit()


def _missing(
    api: ChorusApi,
    account: Account,
    siret: str,
    service_code: str | None,
    commitment_number: str | None,
    cache: dict[str, rules.StructureRequirements | str],
) -> str | None:
    """What an invoice lacks for its buyer's structure, in French (None: nothing)."""
    if siret not in cache:
        cache[siret] = structure_requirements(api, account, siret)
    found = cache[siret]
    if isinstance(found, str):
        return found
    missing = rules.missing_for_structure(found, service_code, commitment_number)
    return f"il manque {', '.join(missing)} exigé par la structure Chorus Pro {siret}" if missing else None


def structure_requirements(api: ChorusApi, account: Account, siret: str) -> rules.StructureRequirements | str:
    """The buyer's structure by SIRET and what it requires, or why it cannot receive invoices (French)."""
    structure = api.find_structure(account, siret)
    if structure is None:
        return f"le SIRET {siret} n'est pas une structure de l'annuaire Chorus Pro"
    details = api.structure_details(account, structure.id_structure)
    services = (
        tuple(s.code for s in api.structure_services(account, structure.id_structure) if s.active)
        if details.service_code_required or details.service_or_commitment
        else ()
    )
    return rules.StructureRequirements(
        structure.id_structure,
        service_code=details.service_code_required,
        commitment_number=details.commitment_required,
        service_or_commitment=details.service_or_commitment,
        active_services=services,
    )


def _recover_claims(settings: Settings, api: ChorusApi, report: DepositReport, now: Callable[[], datetime]) -> None:
    """Claims left without their flux number: found on Chorus Pro → recorded; not found → queued again
    once `redeposit_after_minutes` have passed (the flux may not be integrated before)."""
    with unit_of_work(settings) as uow:
        stale = uow.session.exec(
            select(ChorusDeposit).where(
                ChorusDeposit.state == DepositState.CLAIMED, col(ChorusDeposit.flux_number).is_(None)
            )
        ).all()
        claims = [(d.id, d.number, d.issuer_code, d.claimed_at) for d in stale]
    for deposit_id, number, issuer_code, claimed_at in claims:
        assert deposit_id is not None
        age = (now() - (claimed_at or now())).total_seconds() / 60
        if (
            rules.recovery(
                age,
                found_flux=False,
                claim_timeout_minutes=settings.chorus.claim_timeout_minutes,
                redeposit_after_minutes=0,
            )
            == "wait"
        ):
            continue
        account = account_of(_issuer(settings, issuer_code))
        try:
            found = [i for i in api.search_supplier_invoices(account, invoice_number=number) if i.flux_number]
        except ChorusError as exc:
            report.retry_later.append((number, str(exc)))
            continue
        decision = rules.recovery(
            age,
            found_flux=bool(found),
            claim_timeout_minutes=settings.chorus.claim_timeout_minutes,
            redeposit_after_minutes=settings.chorus.redeposit_after_minutes,
        )
        if decision == "record":
            flux = found[-1].flux_number
            assert flux is not None
            record_flux(settings, deposit_id, flux, now(), recovered=True)
            report.recovered.append(number)
        elif decision == "redeposit":
            _requeue(settings, deposit_id, "flux introuvable sur Chorus Pro après l'incident : nouveau dépôt", now())
        else:
            report.waiting.append(number)


def _issuer(settings: Settings, code: str) -> IssuerIdentity:
    return next(i for i in settings.issuers() if i.code == code)


# --------------------------------------------------------------------------------------------------
# Sync
# --------------------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    checked: int = 0
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (number, what, value)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (number, reason)
    in_payment: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)  # every followed deposit by its latest status

    def as_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changes": [{"number": n, "what": w, "value": v} for n, w, v in self.changes],
            "rejected": [{"number": n, "reason": r} for n, r in self.rejected],
            "in_payment": self.in_payment,
            "errors": [{"number": n, "error": e} for n, e in self.errors],
            "statuses": self.statuses,
        }


def sync(settings: Settings, api: ChorusApi | None = None, *, now: Callable[[], datetime] = utcnow) -> SyncReport:
    """Follow every deposited flux and invoice once: record each change, act on rejections and payments."""
    report = SyncReport()
    if not api_issuers(settings):
        return report
    client = api or client_for(settings)
    try:
        with unit_of_work(settings) as uow:
            ids = [
                d.id
                for d in uow.session.exec(
                    select(ChorusDeposit)
                    .where(ChorusDeposit.state == DepositState.DEPOSITED)
                    .order_by(col(ChorusDeposit.id))
                ).all()
            ]
        for deposit_id in ids:
            assert deposit_id is not None
            try:
                _sync_one(settings, client, deposit_id, report, now)
            except ChorusUnavailable as exc:
                report.errors.append((str(deposit_id), str(exc)))
                break  # unavailable: the next run goes on
            except ChorusError as exc:
                report.errors.append((str(deposit_id), str(exc)))
        with unit_of_work(settings) as uow:
            for deposit in uow.session.exec(select(ChorusDeposit)).all():
                key = deposit.status or deposit.flux_state or deposit.state
                report.statuses[key] = report.statuses.get(key, 0) + 1
    finally:
        if api is None and isinstance(client, HttpChorusClient):
            client.close()
    return report


def _sync_one(
    settings: Settings, api: ChorusApi, deposit_id: int, report: SyncReport, now: Callable[[], datetime]
) -> None:
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id)
        account = account_of(uow.issuers.get(deposit.issuer_code))
        flux_number, flux_state, chorus_id, known = (
            deposit.flux_number,
            deposit.flux_state,
            deposit.chorus_invoice_id,
            len([h for h in deposit.history if h.get("what") == "status"]),
        )
    assert flux_number is not None
    report.checked += 1
    flux = None
    if flux_state not in rules.FLUX_FINAL:
        flux = api.flux_report(account, flux_number)
    found = None
    if chorus_id is None and ((flux.state if flux else flux_state) in rules.FLUX_INTEGRATED):
        found = next(
            (
                i
                for i in api.search_supplier_invoices(account, flux_number=flux_number)
                if i.number == _number(settings, deposit_id)
            ),
            None,
        )
    history = None
    chorus_id = chorus_id or (found.chorus_invoice_id if found else None)
    if chorus_id is not None:
        history = api.invoice_history(account, chorus_id)
    with unit_of_work(settings) as uow:
        deposit = _get(uow.session, deposit_id, for_update=True)
        at = now()
        deposit.synced_at = at
        if flux is not None and flux.state and flux.state != deposit.flux_state:
            deposit.flux_state = flux.state
            deposit.flux_state_at = _parse(flux.state_at) or at
            reason = flux.libelle if flux.state in rules.FLUX_REJECTED else None
            _record(deposit, "flux", flux.state, deposit.flux_state_at, reason)
            _audit(
                uow.session, deposit, "chorus.flux_state", {"flux": flux_number, "state": flux.state, "reason": reason}
            )
            report.changes.append((deposit.number, "flux", flux.state))
            if flux.state in rules.FLUX_REJECTED:
                _reject(uow, settings, deposit, reason or "flux rejeté par Chorus Pro", report)
        if found is not None and deposit.chorus_invoice_id is None:
            deposit.chorus_invoice_id = found.chorus_invoice_id
            _record(deposit, "invoice_id", str(found.chorus_invoice_id), at)
        if history is not None and deposit.state == DepositState.DEPOSITED:
            for change in history.changes[known:]:
                _status_change(uow, settings, deposit, change.code, _parse(change.at) or at, change.comment, report)
        uow.session.add(deposit)
        uow.commit()


def _number(settings: Settings, deposit_id: int) -> str:
    with unit_of_work(settings) as uow:
        return _get(uow.session, deposit_id).number


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def _status_change(
    uow: UnitOfWork,
    settings: Settings,
    deposit: ChorusDeposit,
    status: str,
    at: datetime,
    comment: str | None,
    report: SyncReport,
) -> None:
    deposit.status = status
    deposit.status_at = at
    _record(deposit, "status", status, at, comment)
    _audit(uow.session, deposit, "chorus.status", {"status": status, "at": at.isoformat(), "comment": comment})
    report.changes.append((deposit.number, "status", status))
    if status in rules.INVOICE_REJECTED:
        _reject(uow, settings, deposit, comment or "facture rejetée par le destinataire", report)
    elif rules.in_payment(status):
        deposit.state = DepositState.CLOSED
        if deposit.invoice_id is not None:
            from mairie.services.payments import cancel_queued_reminders

            cancel_queued_reminders(uow.session, uow.invoices.get(deposit.invoice_id))
        report.in_payment.append(deposit.number)


def _reject(uow: UnitOfWork, settings: Settings, deposit: ChorusDeposit, reason: str, report: SyncReport) -> None:
    """Rejected: not payable any more, no reminder, an operator task with Chorus Pro's reason."""
    if deposit.state == DepositState.CLOSED:
        return
    deposit.state = DepositState.CLOSED
    deposit.reason = reason
    _audit(uow.session, deposit, "chorus.rejected", {"reason": reason})
    if deposit.invoice_id is not None:
        from mairie.services.payments import cancel_queued_reminders

        cancel_queued_reminders(uow.session, uow.invoices.get(deposit.invoice_id))
    label = rules.STATUS_LABELS.get(deposit.status or deposit.flux_state or "", "rejetée")
    _tell_operators(uow, settings, deposit, "rejected", label, reason, deposit.status_at or deposit.flux_state_at)
    report.rejected.append((deposit.number, reason))


def _tell_operators(
    uow: UnitOfWork,
    settings: Settings,
    deposit: ChorusDeposit,
    what: str,
    label: str,
    reason: str,
    at: datetime | None,
) -> None:
    invoice = uow.invoices.get(deposit.invoice_id) if deposit.invoice_id is not None else None
    collectivity = uow.collectivities.get(invoice.collectivity_id) if invoice is not None else None
    enqueue_message(
        uow.session,
        settings,
        "chorus_task",
        {
            "collectivity_name": collectivity.name if collectivity else "—",
            "identifier": identifier_of(collectivity) if collectivity else "—",
            "issuer_name": uow.issuers.get(deposit.issuer_code).name,
            "invoice_number": deposit.number,
            "what": what,
            "status_label": label,
            "reason": reason,
            "status_at": at,
        },
        to=[settings.operators_email],
        dedup_key=f"chorus-{what}:{deposit.file_name}:{len(deposit.history)}",
        related=("invoice", deposit.invoice_id),
    )


# --------------------------------------------------------------------------------------------------
# What the rest of the application reads
# --------------------------------------------------------------------------------------------------


def latest_deposits(session: Session, invoice_ids: Iterable[int]) -> dict[int, ChorusDeposit]:
    """The latest deposit of each invoice (its own, not its credit note's)."""
    ids = list(invoice_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(ChorusDeposit)
        .where(col(ChorusDeposit.invoice_id).in_(ids), ChorusDeposit.document_type == "invoice")
        .order_by(col(ChorusDeposit.id))
    ).all()
    return {row.invoice_id: row for row in rows if row.invoice_id is not None}


def dunned(deposit: ChorusDeposit | None) -> bool:
    """Whether reminders may concern the invoice of this deposit (none: not on the API, yes)."""
    return deposit is None or rules.dunned(deposit.flux_state, deposit.status)


def chorus_json(deposit: ChorusDeposit | None) -> ChorusJson | None:
    """The invoice JSON's `chorus` key (None when the invoice is not deposited through the API)."""
    if deposit is None:
        return None
    return {
        "flux": deposit.flux_number,
        "flux_state": deposit.flux_state,
        "invoice_id": deposit.chorus_invoice_id,
        "status": deposit.status,
        "status_at": deposit.status_at.isoformat() if deposit.status_at else None,
        "reason": deposit.reason,
    }


def status_of(settings: Settings, number: str) -> dict[str, Any]:
    """`mairie chorus status`: an invoice's Chorus Pro state and history."""
    with unit_of_work(settings) as uow:
        invoice = uow.invoices.by_number(number)
        assert invoice.id is not None
        deposits = _deposits_of_invoice(uow.session, invoice.id)
        latest = deposits[-1] if deposits else None
        replacement = uow.session.exec(select(Invoice.number).where(Invoice.replaces_invoice_id == invoice.id)).first()
        return {
            "number": invoice.number,
            "issuer": invoice.issuer_code,
            "channel": "api" if latest else "dossier",
            "deposit_state": latest.state if latest else None,
            "file": latest.file_name if latest else None,
            "chorus": chorus_json(latest),
            "payable": dunned(latest) or (latest is not None and rules.in_payment(latest.status)),
            "reminders": dunned(latest),
            "history": latest.history if latest else [],
            "last_error": latest.last_error if latest else None,
            "replaced_by": replacement,
        }


# --------------------------------------------------------------------------------------------------
# Reissue after a rejection
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reissue:
    rejected: str
    credit_note: str
    invoice: str
    queued: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "rejected": self.rejected,
            "credit_note": self.credit_note,
            "invoice": self.invoice,
            "queued": self.queued,
        }


def reissue(
    settings: Settings,
    number: str,
    *,
    operator: str,
    on: date,
    service_code: str | None = None,
    commitment_number: str | None = None,
) -> Reissue:
    """Cancel an invoice rejected by Chorus Pro with a credit note and issue it again (same lines, the
    buyer's references corrected), deposited in turn. Run again after a crash, it finishes what is left."""
    from mairie.services.credit_notes import credit_invoice
    from mairie.services.invoicing import complete_invoice
    from models.numbering import next_number
    from models.terms import due_on

    if len(operator.strip()) < 2:
        raise InvalidInput("indiquez le nom de l'opérateur (--operator)")
    with unit_of_work(settings) as uow:
        invoice = uow.invoices.by_number(number)
        assert invoice.id is not None
        deposit = latest_deposits(uow.session, [invoice.id]).get(invoice.id)
        if deposit is None or not rules.rejected(deposit.flux_state, deposit.status):
            raise InvalidTransition(f"la facture {number} n'est pas rejetée par Chorus Pro : rien à réémettre")
        reason = deposit.reason or "rejet Chorus Pro"
        credited = invoice.status == InvoiceStatus.CREDITED
    if not credited:
        credit_invoice(settings, number, f"Facture rejetée par Chorus Pro : {reason}", on, actor=operator.strip())
    with unit_of_work(settings) as uow:
        original = uow.invoices.by_number(number)
        assert original.id is not None
        note = uow.credit_notes.of_invoice(original.id)[-1]
        note_number = note.number
        existing = uow.session.exec(select(Invoice).where(Invoice.replaces_invoice_id == original.id)).first()
        if existing is not None:
            return Reissue(number, note.number, existing.number, _queued(uow.session, existing))
        context = uow.invoices.context(original)
        if service_code:
            context.collectivity.chorus_service_code = service_code.strip()
            uow.session.add(context.collectivity)
        new = Invoice(
            number=next_number(uow.session, original.issuer_code, "FAC", on.year),
            issuer_code=original.issuer_code,
            collectivity_id=original.collectivity_id,
            subscription_id=None,  # the subscription's invoice of that year stays the original
            replaces_invoice_id=original.id,
            kind=original.kind,
            billing_year=original.billing_year,
            issued_on=on,
            due_on=due_on(on, settings.payment_term_days),
            delivery_date=original.delivery_date,
            total_ht=original.total_ht,
            total_vat=original.total_vat,
            total_ttc=original.total_ttc,
            buyer_siret=context.collectivity.siret,
            chorus_service_code=(service_code or "").strip() or original.chorus_service_code,
            commitment_number=(commitment_number or "").strip() or original.commitment_number,
            status=InvoiceStatus.NUMBERED,
        )
        uow.session.add(new)
        uow.session.flush()
        assert new.id is not None
        for line in uow.invoices.lines(original.id):
            columns = line.model_dump(exclude={"id", "invoice_id"})
            uow.session.add(InvoiceLine.model_validate({**columns, "invoice_id": new.id}))
        audit.record(
            uow.session,
            actor=operator.strip(),
            action="invoice.reissued",
            entity_type="invoice",
            entity_id=new.id,
            details={"replaces": original.number, "credit_note": note.number, "reason": reason},
        )
        uow.session.flush()
        complete_invoice(uow, settings, new)  # renders, emails and queues its deposit
        uow.commit()
        queued = _queued(uow.session, new)
        new_number = new.number
    from mairie.services.channels.folder import file_deposits
    from mairie.services.mail import dispatch

    file_deposits(settings)
    dispatch(settings)
    return Reissue(number, note_number, new_number, queued)


def _queued(session: Session, invoice: Invoice) -> bool:
    return session.exec(select(ChorusDeposit.id).where(ChorusDeposit.invoice_id == invoice.id)).first() is not None


# --------------------------------------------------------------------------------------------------
# Intake: the buyer against the directory
# --------------------------------------------------------------------------------------------------


def check_buyer(
    settings: Settings,
    siret: str,
    service_code: str | None,
    commitment_number: str | None,
    api: ChorusApi | None = None,
) -> None:
    """At the request, when the Chorus Pro API is configured: the buyer's SIRET must be a structure of the
    directory, and the service code / commitment number its structure requires must be given (clear
    French message otherwise). Nothing is checked without the API or without any issuer's account; an
    unreachable API does not stop a request (the deposit checks again)."""
    issuers = api_issuers(settings)
    if not issuers or not siret:
        return
    client = api or client_for(settings)
    try:
        found = structure_requirements(client, account_of(issuers[0]), siret)
    except ChorusUnavailable:
        return
    finally:
        if api is None and isinstance(client, HttpChorusClient):
            client.close()
    if isinstance(found, str):
        raise InvalidInput(
            f"{found} : vérifiez le SIRET de l'établissement facturé (en général la mairie), Chorus Pro "
            "refuserait les factures"
        )
    missing = rules.missing_for_structure(found, service_code, commitment_number)
    if missing:
        raise InvalidInput(
            f"la structure Chorus Pro du SIRET {siret} exige {', '.join(missing)} sur chaque facture : "
            "demandez-les à la collectivité (son service financier les connaît) et indiquez-les dans la demande"
        )
