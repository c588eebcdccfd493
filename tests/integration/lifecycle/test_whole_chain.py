"""From the request to the first invoices, then a renewal, payments, reminders and a credit note —
through the real loopback SMTP server, with the links taken from the emails."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from facturx import get_xml_from_pdf
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, credit_notes, dunning, payments, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.mail import dispatch
from models.entities import AuditEvent, Invoice, NumberSequence, OutboxMessage
from models.errors import InvalidInput, InvalidTransition
from tests.integration.lifecycle.conftest import link_in, mails_to, token_of

DAY = date(2026, 11, 24)
MAYOR = "maire@regnauville.example"


def _request(settings):
    form = RequestForm(
        collectivity="62700",
        items=[
            {"code": "messagerie-5go", "quantity": 3},
            {"code": "nom-de-domaine", "quantity": 1},
            {"code": "pack-antivirus-mdp", "quantity": 2},
            {"code": "sauvegarde-mes-n1", "quantity": 1},
        ],
        signatory_name="Jeanne Dupont",
        signatory_email=MAYOR,
        siret="21620700100019",
        domain_names=["regnauville.fr"],
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    assert outcome.status == "eligible"
    return quoting.issue_quotes(settings, outcome.request_id, DAY)


def _sign(settings, server, address, name, capacity):
    mail = mails_to(server, address)[-1]
    token = token_of(link_in(mail, "/approbation/"))
    return approvals.sign(
        settings, token, approvals.Decision(name, capacity, True), approvals.Evidence("127.0.0.1", "pytest")
    )


def test_request_to_first_invoices_and_renewal(settings, mail_server):
    quotes = _request(settings)
    assert [q.number for q in quotes.quotes] == ["LFN-DEV-2026-00001", "CDG62-DEV-2026-00001"]
    dispatch(settings)
    (mayor_mail,) = mails_to(mail_server, MAYOR)
    assert sorted(mayor_mail.attachments) == [
        "CDG62-DEV-2026-00001.pdf",
        "LFN-CONV-2026-00001-projet.pdf",
        "LFN-DEV-2026-00001.pdf",
    ]

    # The mayor, then the CDG, then the syndicat sign, each from the link of their own email.
    assert _sign(settings, mail_server, MAYOR, "Jeanne Dupont", "Maire").status == "signed"
    dispatch(settings)
    assert _sign(settings, mail_server, settings.cdg62.signatory_email, "René Hocq", "Président").status == "signed"
    dispatch(settings)
    final = _sign(settings, mail_server, settings.syndicat.signatory_email, "Christophe Coulon", "Président")
    assert final.in_force
    dispatch(settings)
    in_force_mails = [m for m in mail_server.messages() if "LFN-CONV-2026-00001.pdf" in m.attachments]
    assert {a for m in in_force_mails for a in m.to} >= {
        MAYOR,
        settings.cdg62.signatory_email,
        settings.syndicat.signatory_email,
    }

    # Provisioning order to the syndicat, JSON and CSV attached.
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    assert provisioning.issue_order(settings, convention_id).created is False
    dispatch(settings)
    (order_mail,) = mails_to(mail_server, settings.syndicat.provisioning_email)
    assert sorted(order_mail.attachments) == [f"{order.number}.csv", f"{order.number}.json"]
    assert order.payload["domain_names"] == ["regnauville.fr"]

    with pytest.raises(InvalidTransition, match="accusez réception avant de livrer"):
        provisioning.deliver(settings, order.number, "Technicien LFN", DAY)
    assert provisioning.acknowledge(settings, order.number, "Technicien LFN").created is True
    assert provisioning.acknowledge(settings, order.number, "Autre").created is False  # acknowledged once
    delivered = provisioning.deliver(settings, order.number, "Technicien LFN", DAY, today=DAY)
    assert delivered.status == "delivered"
    numbers = sorted(i.number for i in delivered.invoices)
    assert numbers == ["CDG62-FAC-2026-00001", "LFN-FAC-2026-00001"]
    dispatch(settings)
    invoice_mails = [m for m in mails_to(mail_server, MAYOR) if m.attachments and "-FAC-" in m.attachments[0]]
    assert sorted(m.attachments[0] for m in invoice_mails) == [f"{n}.pdf" for n in numbers]
    lfn = next(i for i in delivered.invoices if i.issuer == "LFN")
    # live on 24 November (DAY): yearly items for November and December (× 2 / 12, each line to the cent),
    # the one-off and the first-year pack in full
    months = Decimal(2) / 12
    yearly = (Decimal("16.80") * 3 * months).quantize(Decimal("0.01")) + (Decimal("15.60") * months).quantize(
        Decimal("0.01")
    )
    assert lfn.total_ttc == yearly + Decimal("31.20") * 2 + Decimal("110.40")
    cdg_first = next(i for i in delivered.invoices if i.issuer == "CDG62")
    assert cdg_first.total_ttc == Decimal("8.33")  # 50,00 € × 2 / 12
    deposited = settings.deposit_path / "LFN" / "facturx_chorus" / "LFN-FAC-2026-00001.pdf"
    assert b"CrossIndustryInvoice" in get_xml_from_pdf(deposited.read_bytes(), check_xsd=True)[1]

    # The renewal campaign of 2027: yearly items again, the pack at each licence's price, no one-off.
    review = renewal.review(settings, 2027)
    (line,) = review.lines
    expected_lfn = Decimal("16.80") * 3 + Decimal("15.60") + (Decimal("16.80") + Decimal("42.05")) * 2
    assert line.this_year == {"LFN": expected_lfn, "CDG62": Decimal("50.00")}
    assert line.last_year["LFN"] == lfn.total_ttc
    assert any("renouvellement au prix annuel" in r for r in line.reasons)
    first = renewal.issue(settings, 2027, today=date(2027, 1, 15))
    again = renewal.issue(settings, 2027, today=date(2027, 1, 15))
    assert len(first.issued) == 2 and again.issued == [] and len(again.existing) == 2
    dispatch(settings)

    # Payments: partial, too much (refused), then settled; reminders skip the paid invoice.
    renewal_lfn = next(i for i in first.issued if i.issuer == "LFN")
    renewal_cdg = next(i for i in first.issued if i.issuer == "CDG62")
    later = date(2027, 2, 1)  # the day the operator records them (a payment is never dated after today)
    payments.record_payment(settings, renewal_lfn.number, Decimal("10.00"), date(2027, 1, 20), today=later)
    with pytest.raises(InvalidInput, match="dépasse le reste à payer"):
        payments.record_payment(settings, renewal_lfn.number, renewal_lfn.total_ttc, date(2027, 1, 21), today=later)
    rest = renewal_lfn.total_ttc - Decimal("10.00")
    payments.record_payment(settings, renewal_lfn.number, rest, date(2027, 1, 22), today=later)
    report = dunning.run_reminders(settings, date(2027, 2, 22))
    # renewal CDG invoice: due 14/02, 8 days late → level 1; the unpaid first invoices (due 24/12/2026, 60 days
    # late) get only the highest level reached (no burst of three); the paid renewal invoice gets nothing.
    assert sorted(report.sent) == sorted([f"{renewal_cdg.number}:1", "LFN-FAC-2026-00001:3", "CDG62-FAC-2026-00001:3"])
    again = dunning.run_reminders(settings, date(2027, 2, 23))
    assert again.sent == []  # each level once
    assert sorted(again.handed_over) == ["CDG62-FAC-2026-00001", "LFN-FAC-2026-00001"]  # after the final notice
    dispatch(settings)

    # A credit note on the CDG renewal invoice, in the CDG's AVO sequence.
    credit = credit_notes.credit_invoice(settings, renewal_cdg.number, "erreur de strate", date(2027, 2, 25))
    assert credit.credit_note == "CDG62-AVO-2027-00001"

    with unit_of_work(settings) as uow:
        s = uow.session
        numbers = sorted(s.exec(select(Invoice.number)).all())
        assert numbers == ["CDG62-FAC-2026-00001", "CDG62-FAC-2027-00001", "LFN-FAC-2026-00001", "LFN-FAC-2027-00001"]
        assert s.get(NumberSequence, ("LFN", "FAC", 2027)).last_value == 1
        assert s.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")).all() == []
        actions = set(s.exec(select(AuditEvent.action)).all())
        assert {
            "request.eligible",
            "quotes.issued",
            "convention.signed",
            "convention.in_force",
            "order.sent",
            "order.acknowledged",
            "order.delivered",
            "invoice.issued",
            "payment.recorded",
            "invoice.reminder",
            "invoice.credited",
        } <= actions
