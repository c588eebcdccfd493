"""Chorus Pro through its API, against the local sandbox over HTTP on loopback: deposits, every status path,
rejection and reissue, token expiry, 429 and 503 storms, a crash between a deposit's answer and its record,
and the directory check at the request."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from mairie.adapters.chorus import Account, FluxDeposit, HttpChorusClient
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import dunning
from mairie.services import intake as svc
from mairie.services.channels import chorus
from mairie.services.story import collectivity_story
from models.entities import AuditEvent, ChorusDeposit, Invoice, OutboxMessage
from models.errors import InvalidInput
from tests.conftest import mairie_siret
from tests.integration.chorus.conftest import DAY, command, live


def _deposits(settings) -> dict[str, ChorusDeposit]:
    with unit_of_work(settings) as uow:
        rows = {d.number: d for d in uow.session.exec(select(ChorusDeposit)).all()}
        uow.session.expunge_all()
        return rows


def _set(sandbox, number: str, status: str, comment: str | None = None) -> None:
    command(sandbox, "/sandbox/status", {"numeroFacture": number, "statut": status, "commentaire": comment})


def test_deposit_every_status_and_reminders(settings, sandbox, mail_server):
    lfn, cdg = live(settings, "62700", {"messagerie-5go": 1})
    assert {d.state for d in _deposits(settings).values()} == {"queued"}
    assert not (settings.deposit_path / "LFN").exists()  # the folder channel leaves them to the API

    report = chorus.deposit_pending(settings)
    assert sorted(report.deposited) == sorted([lfn, cdg])
    assert chorus.deposit_pending(settings).deposited == []  # never twice
    assert len(sandbox.state.flux) == 2
    with unit_of_work(settings) as uow:  # they left by Chorus Pro: no other channel takes them
        sent = {i.number: i.sent_channel for i in uow.session.exec(select(Invoice))}
    assert sent == {lfn: "facturx_chorus", cdg: "facturx_chorus"}
    first = chorus.sync(settings)
    assert (lfn, "flux", "IN_INTEGRE") in first.changes and (lfn, "status", "DEPOSEE") in first.changes

    for status in ("MISE_A_DISPOSITION", "SUSPENDUE", "SERVICE_FAIT", "MANDATEE", "MISE_EN_PAIEMENT"):
        _set(sandbox, lfn, status, "pièce manquante" if status == "SUSPENDUE" else None)
        assert (lfn, "status", status) in chorus.sync(settings).changes
    deposits = _deposits(settings)
    assert deposits[lfn].state == "closed" and deposits[lfn].status == "MISE_EN_PAIEMENT"
    assert [h["value"] for h in deposits[lfn].history if h["what"] == "status"] == [
        "DEPOSEE",
        "MISE_A_DISPOSITION",
        "SUSPENDUE",
        "SERVICE_FAIT",
        "MANDATEE",
        "MISE_EN_PAIEMENT",
    ]
    assert deposits[cdg].status == "DEPOSEE"
    with unit_of_work(settings) as uow:
        audited = uow.session.exec(select(AuditEvent).where(AuditEvent.action == "chorus.status")).all()
        assert sum(1 for a in audited if a.details["number"] == lfn) == 6

    status = chorus.status_of(settings, lfn)
    assert status["chorus"]["flux"] == deposits[lfn].flux_number and status["reminders"] is False
    story = collectivity_story(settings, "62700")
    keys = {i["number"]: i["chorus"] for i in story["invoices"]}
    assert set(keys[lfn]) == {"flux", "flux_state", "invoice_id", "status", "status_at", "reason"}
    assert keys[lfn]["status"] == "MISE_EN_PAIEMENT" and keys[cdg]["status"] == "DEPOSEE"

    # in payment on Chorus Pro: no reminder; the CDG's invoice, only deposited, is reminded
    late = DAY + timedelta(days=settings.payment_term_days + 8)
    sent = dunning.run_reminders(settings, late).sent
    assert sent == [f"{cdg}:1"]


def test_rejection_then_reissue(settings, sandbox, mail_server):
    lfn, _cdg = live(settings, "62700", {"messagerie-5go": 1})
    chorus.deposit_pending(settings)
    chorus.sync(settings)
    _set(sandbox, lfn, "REJETEE", "Numéro d'engagement absent ou inconnu")
    report = chorus.sync(settings)
    assert report.rejected == [(lfn, "Numéro d'engagement absent ou inconnu")]
    assert chorus.sync(settings).rejected == []  # told once
    with unit_of_work(settings) as uow:
        task = uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "chorus_task")).one()
        assert settings.operators_email in task.recipients and "Numéro d'engagement absent" in task.body_text
        assert lfn in task.subject
    late = DAY + timedelta(days=settings.payment_term_days + 50)
    assert not any(s.startswith(lfn) for s in dunning.run_reminders(settings, late).sent)  # not payable

    result = chorus.reissue(settings, lfn, operator="Opératrice", on=date(2026, 12, 2), commitment_number="EJ-2026-17")
    assert chorus.reissue(settings, lfn, operator="Opératrice", on=date(2026, 12, 2)) == result  # idempotent
    assert result.credit_note.startswith("LFN-AVO-2026-") and result.queued
    with unit_of_work(settings) as uow:
        new = uow.invoices.by_number(result.invoice)
        old = uow.invoices.by_number(lfn)
        assert new.replaces_invoice_id == old.id and new.commitment_number == "EJ-2026-17"
        assert new.total_ttc == old.total_ttc and old.status == "credited"
    assert chorus.deposit_pending(settings).deposited == [result.invoice]  # the credit note is not deposited
    chorus.sync(settings)
    assert _deposits(settings)[result.invoice].status == "DEPOSEE"
    assert chorus.status_of(settings, lfn)["replaced_by"] == result.invoice


def test_flux_rejected_with_its_reason(settings, sandbox, mail_server):
    lfn, _cdg = live(settings, "62700", {"messagerie-5go": 1})
    chorus.deposit_pending(settings)
    flux = next(f for f in sandbox.state.flux.values() if f.file_name == f"{lfn}.pdf")
    flux.content = b"%PDF-1.7 not a Factur-X"
    report = chorus.sync(settings)
    assert [n for n, _ in report.rejected] == [lfn]
    assert "illisible" in report.rejected[0][1]
    deposit = _deposits(settings)[lfn]
    assert deposit.flux_state == "IN_REJETE" and not chorus.dunned(deposit)


def test_buyer_requirements_block_the_deposit(settings, sandbox, mail_server):
    lfn, _cdg = live(settings, "62700", {"messagerie-5go": 1})
    sandbox.state.structures[mairie_siret("62700")].commitment = True  # the directory changed since the request
    report = chorus.deposit_pending(settings)
    assert {n for n, _ in report.blocked} == {lfn, _cdg} and report.deposited == []
    assert "numéro d'engagement" in report.blocked[0][1]
    assert sandbox.state.flux == {}


def test_request_checked_against_the_directory(settings, sandbox):
    base = {
        "items": [{"code": "messagerie-5go", "quantity": 1}],
        "signatory_name": "Signataire",
        "signatory_email": "maire@exemple.fr",
    }
    # 62008 (Achicourt? no matter): its INSEE code ends in 8, so the sandbox's structure requires a commitment number
    code = "62008" if mairie_siret("62008") in sandbox.state.structures else "62018"
    form = RequestForm.model_validate({"collectivity": code, "siret": mairie_siret(code), **base})
    with pytest.raises(InvalidInput, match="exige le numéro d'engagement"):
        svc.register_request(settings, form, channel="cli", on=DAY)
    ok = RequestForm.model_validate(
        {"collectivity": code, "siret": mairie_siret(code), "commitment_number": "EJ-1", **base}
    )
    assert svc.register_request(settings, ok, channel="cli", on=DAY).status in ("eligible", "waiting_operator")


def test_token_expiry_and_storms(settings, sandbox, mail_server):
    lfn, cdg = live(settings, "62700", {"messagerie-5go": 1})
    client = chorus.client_for(settings)
    command(sandbox, "/sandbox/faults", {"status": 429, "count": 3})
    report = chorus.deposit_pending(settings, client, limit=1)
    assert report.deposited == [lfn]
    command(sandbox, "/sandbox/expire-tokens")
    command(sandbox, "/sandbox/faults", {"status": 503, "count": 2})
    assert chorus.deposit_pending(settings, client).deposited == [cdg]
    assert client.token_requests == 2  # one at first, one after the revocation (401)
    # a storm longer than the retries: nothing lost, nothing deposited twice; the next run goes on
    chorus.sync(settings, client)
    command(sandbox, "/sandbox/faults", {"status": 503, "count": 50})
    assert chorus.sync(settings, client).errors
    sandbox.state.faults.clear()
    assert {d.status for d in _deposits(settings).values()} == {"DEPOSEE"}
    assert len(sandbox.state.flux) == 2
    client.close()


class CrashAfterAnswer:
    """A client whose process dies between the deposit's answer and its record."""

    def __init__(self, real: HttpChorusClient) -> None:
        self.real = real

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def deposit_flux(self, account: Account, file_name: str, content: bytes) -> FluxDeposit:
        self.real.deposit_flux(account, file_name, content)
        raise SystemExit("killed after the answer")


def test_crash_between_answer_and_record(settings, sandbox, mail_server):
    lfn, _cdg = live(settings, "62700", {"messagerie-5go": 1})
    real = chorus.client_for(settings)
    with pytest.raises(SystemExit):
        chorus.deposit_pending(settings, CrashAfterAnswer(real), limit=1)  # type: ignore[arg-type]
    assert _deposits(settings)[lfn].state == "claimed" and _deposits(settings)[lfn].flux_number is None
    assert len(sandbox.state.flux) == 1
    with unit_of_work(settings) as uow:  # not known to have left until its flux number is recorded
        assert uow.session.exec(select(Invoice.sent_channel).where(Invoice.number == lfn)).one() is None
    # a restart within the claim time-out leaves it alone; after it, finds the flux by the invoice's number
    assert lfn in chorus.deposit_pending(settings, real).waiting or _deposits(settings)[lfn].state == "claimed"
    restarted = settings.model_copy(update={"chorus": settings.chorus.model_copy(update={"claim_timeout_minutes": 0})})
    report = chorus.deposit_pending(restarted, real)
    assert report.recovered == [lfn]
    assert len([f for f in sandbox.state.flux.values() if f.file_name == f"{lfn}.pdf"]) == 1
    assert _deposits(settings)[lfn].flux_number == next(
        f.number for f in sandbox.state.flux.values() if f.file_name == f"{lfn}.pdf"
    )
    real.close()


def test_reissued_invoice_context_and_folder_without_api(tmp_path, db_url, mail_server):
    """Without an account the folder channel stays as today."""
    from mairie.services.setup import initialise
    from tests.conftest import make_settings

    plain = make_settings(tmp_path, db_url, smtp_port=mail_server.port)
    initialise(plain)
    numbers = live(plain, "62700", {"messagerie-5go": 1})
    assert (plain.deposit_path / "LFN" / "facturx_chorus" / f"{numbers[0]}.pdf").is_file()
    with unit_of_work(plain) as uow:
        assert uow.session.exec(select(ChorusDeposit)).all() == []
        assert len(uow.session.exec(select(Invoice)).all()) == 2
