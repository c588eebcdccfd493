"""The operators' deployments (issue 18): each form drives the CLI's service and answers with an artifact;
the dashboard publishes the state of the business under stable keys."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from flows.dashboard import business_dashboard
from flows.forms import (
    Avoir,
    Collectivite,
    ExclusionCampagne,
    IdentiteFacturation,
    ImportPaiements,
    NouveauDevis,
    Paiement,
    RelanceCourriel,
    RemiseConvention,
    item_choices,
)
from flows.operations import (
    collectivity_file,
    correct_billing,
    credit_invoice,
    exclude_from_campaign,
    hand_off_convention,
    import_payments,
    record_payment,
    requote,
    retry_mail,
)
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from models.clock import paris_day
from models.entities import Approval, CreditNote, Invoice, OutboxMessage, Payment, ProvisioningOrder, Quote
from notifications.mailserver import FaultInjection
from tests.conftest import mairie_siret
from tests.flows.test_billing_flows import _live
from tests.flows.test_intake_flow import _artifacts

DAY = date(2026, 11, 24)


def _markdown(state, key: str) -> str:
    from prefect.client.orchestration import get_client

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    (artifact,) = [a for a in _artifacts(run.id) if a.key == key]
    return str(artifact.data)


def _invoices(settings, issuer: str = "LFN") -> list[tuple[str, Decimal, str]]:
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(select(Invoice).where(Invoice.issuer_code == issuer).order_by(Invoice.number)).all()
        return [(i.number, i.total_ttc, str(i.status)) for i in rows]


def _form(code: str, email: str, **items: int) -> RequestForm:
    return RequestForm(
        collectivity=code,
        siret=mairie_siret(code),
        items=[{"code": c.replace("_", "-"), "quantity": q} for c, q in items.items()],
        signatory_name="Jeanne Dupont",
        signatory_email=email,
    )


def test_payments_recorded_and_imported_from_the_folder(stack, mail_server):
    _live(stack, "62700")
    [(number, total, _)] = _invoices(stack)
    state = record_payment(
        Paiement(invoice=number, amount="1,00", paid_on=DAY, reference="VIR 1", operator="Alice"), return_state=True
    )
    assert state.is_completed(), state.message
    assert state.result()["status"] == "partially_paid"
    assert "Paiement enregistré sur " + number in _markdown(state, "paiement")

    stack.import_path.mkdir(parents=True, exist_ok=True)
    rest = total - Decimal("1.00")
    (stack.import_path / "releve.csv").write_text(
        f"invoice_number,amount,paid_on,reference\n{number},{rest},2026-11-30,VIR 2\n", encoding="utf-8"
    )
    state = import_payments(ImportPaiements(file="releve.csv", operator="Alice"), return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"file": "releve.csv", "recorded": 1, "already_recorded": []}
    again = import_payments(ImportPaiements(file="releve.csv", operator="Alice"), return_state=True)
    assert again.result() == {"file": "releve.csv", "recorded": 0, "already_recorded": [2]}
    assert _invoices(stack)[0][2] == "paid"
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(Payment)).all()) == 2  # nothing twice

    refused = import_payments(ImportPaiements(file="../mairie.sqlite3", operator="Alice"), return_state=True)
    assert refused.is_failed() and "sans chemin" in refused.message
    assert "Rien n'a été enregistré" in _markdown(refused, "import-paiements")
    missing = import_payments(ImportPaiements(file="absent.csv", operator="Alice"), return_state=True)
    assert missing.is_failed() and "releve.csv" in missing.message  # names the files that are there


def test_a_credit_note_and_a_refusal(stack, mail_server):
    _live(stack, "62700")
    [(number, total, _)] = _invoices(stack)
    state = credit_invoice(Avoir(invoice=number, reason="Facture émise en double"), return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["invoice"] == number and Decimal(state.result()["total_ttc"]) == total
    assert f"Avoir {state.result()['credit_note']} émis" in _markdown(state, "avoir")
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(CreditNote)).all()) == 1
    twice = credit_invoice(Avoir(invoice=number, reason="Encore"), return_state=True)
    assert twice.is_failed()
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(CreditNote)).all()) == 1


def test_requote_handoff_and_billing_identity(stack, mail_server):
    outcome = svc.register_request(
        stack, _form("62700", "maire@regnauville.example", messagerie_5go=2), channel="cli", on=DAY
    )
    first = quoting.issue_quotes(stack, outcome.request_id, DAY)
    state = requote(NouveauDevis(request=first.reference, operator="Alice"), return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["convention"] != first.convention
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(Quote)).all()) == 4  # two versions of two quotes

    convention = state.result()["convention"]
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            stack, convention, party, "Alice", approvals.Decision("Signataire", "Maire", True)
        )
    state = hand_off_convention(RemiseConvention(convention=convention), return_state=True)
    assert state.is_completed(), state.message
    again = hand_off_convention(RemiseConvention(convention=convention), return_state=True)
    assert again.result()["order"] == state.result()["order"] and again.result()["created"] is False
    with unit_of_work(stack) as uow:
        assert len(uow.session.exec(select(ProvisioningOrder)).all()) == 1

    state = correct_billing(
        IdentiteFacturation(collectivity="62700", address_line="2 rue de l'Église", operator="Alice"),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert "2 rue de l'Église" in _markdown(state, "identite-facturation")
    bad = correct_billing(
        IdentiteFacturation(collectivity="62700", siret="12345678901234", operator="Alice"), return_state=True
    )
    assert bad.is_failed() and "SIRET" in bad.message


def test_an_undelivered_email_is_sent_again(stack, mail_server):
    mail_server.handler.faults = FaultInjection(refuse_recipients=frozenset({"maire@regnauville.example"}))
    outcome = svc.register_request(
        stack, _form("62700", "maire@regnauville.example", antivirus=1), channel="cli", on=DAY
    )
    quoting.issue_quotes(stack, outcome.request_id, DAY)
    from mairie.services.mail import dispatch

    dispatch(stack)
    with unit_of_work(stack) as uow:
        [message_id] = uow.session.exec(select(OutboxMessage.id).where(OutboxMessage.status == "undelivered")).all()
    board = business_dashboard(today=DAY)
    assert board["emails"] == 1
    mail_server.handler.faults = FaultInjection()  # the address is fixed
    state = retry_mail(RelanceCourriel(message_id=message_id), return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["sent"] == 1
    assert [m for m in mail_server.messages() if "maire@regnauville.example" in m.to]
    refused = retry_mail(RelanceCourriel(message_id=message_id), return_state=True)  # not undelivered any more
    assert refused.is_failed()


def test_exclusion_from_the_campaign_is_reviewed_and_skipped(stack, mail_server):
    _live(stack, "62700")
    _live(stack, "62113")
    state = exclude_from_campaign(
        ExclusionCampagne(year=2027, collectivity="62700", reason="Résiliation au 31/12", operator="Alice"),
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert state.result()["changed"] is True
    again = exclude_from_campaign(
        ExclusionCampagne(year=2027, collectivity="62700", reason="Résiliation au 31/12", operator="Alice"),
        return_state=True,
    )
    assert again.result()["changed"] is False
    review = renewal.review(stack, 2027)
    [line] = [line for line in review.lines if line.siren == state.result()["siren"]]
    assert any("Résiliation au 31/12" in r for r in line.reasons)
    result = renewal.issue(stack, 2027, today=date(2027, 1, 15))
    assert result.excluded == [state.result()["siren"]]
    assert len(result.issued) == 2  # the other collectivity's, one per issuer


def test_the_dashboard_and_a_collectivity_file(stack, mail_server):
    _live(stack, "62700")  # first invoices issued on DAY, due 30 days later
    waiting = svc.register_request(stack, _form("62041", "maire@arras.example", antivirus=2), channel="cli", on=DAY)
    assert waiting.status == "waiting_operator"
    signing = svc.register_request(stack, _form("62113", "maire@62113.example", antivirus=1), channel="cli", on=DAY)
    quoting.issue_quotes(stack, signing.request_id, DAY)

    state = business_dashboard(today=date(2027, 3, 1), return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"overdue": 2, "conventions": 1, "orders": 0, "emails": 0, "amounts": 1}
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    artifacts = {a.key: a for a in _artifacts(run.id)}
    assert {
        "factures-en-retard",
        "retards-par-anciennete",
        "conventions-en-attente",
        "commandes-non-livrees",
        "courriels-non-remis",
        "demandes-sur-devis",
        "totaux-par-emetteur",
        "tableau-de-bord",
    } <= set(artifacts)
    bands = json.loads(str(artifacts["retards-par-anciennete"].data))
    assert [(b["émetteur"], b["ancienneté"], b["factures"]) for b in bands] == [
        ("CDG62", "61 à 90 jours", 1),
        ("LFN", "61 à 90 jours", 1),
    ]
    [amount] = json.loads(str(artifacts["demandes-sur-devis"].data))
    assert amount["collectivité"] == "Arras" and amount["montants à saisir"] == "accompagnement"
    [convention] = json.loads(str(artifacts["conventions-en-attente"].data))
    with unit_of_work(stack) as uow:
        pending = uow.session.exec(select(Approval).where(Approval.status == "pending")).one()
        sent = paris_day(pending.link_sent_at)
    assert convention["en attente de"].endswith("— Jeanne Dupont")
    assert convention["depuis le"] == f"{sent:%d/%m/%Y}"
    assert convention["prochaine relance"] == f"{sent + timedelta(days=stack.signature_reminder_days[0]):%d/%m/%Y}"
    assert json.loads(str(artifacts["commandes-non-livrees"].data))[0]["bon"] == "aucun"

    story = collectivity_file(Collectivite(identifier="regnauville"), return_state=True)
    assert story.is_completed(), story.message
    siren = story.result()["siren"]
    keys = {a.key for a in _artifacts(story.state_details.flow_run_id)}
    assert {f"fiche-{siren}", f"fiche-{siren}-factures"} <= keys
    unknown = collectivity_file(Collectivite(identifier="Atlantide"), return_state=True)
    assert unknown.is_failed() and "Atlantide" in unknown.message


def test_item_choices_show_label_and_price_and_read_back_as_codes():
    from flows.forms import DemandeDeServices, code_of

    entry = item_choices()["messagerie-5go"]
    assert entry.startswith("messagerie-5go — Messagerie") and "€ TTC" in entry
    form = DemandeDeServices.model_validate(
        {
            "collectivity": "62700",
            "items": [{"code": entry, "quantity": 2}],
            "signatory_name": "Jeanne Dupont",
            "signatory_email": "maire@regnauville.example",
        }
    )
    request = form.to_request_form()
    assert [(i.code, i.quantity) for i in request.items] == [("messagerie-5go", 2)]
    assert request.siret is None and request.postcode is None  # "" is "not given"
    assert code_of(entry) == "messagerie-5go"
    with pytest.raises(ValueError, match="inconnu de la grille"):
        DemandeDeServices.model_validate({**form.model_dump(), "items": [{"code": "licorne", "quantity": 1}]})
