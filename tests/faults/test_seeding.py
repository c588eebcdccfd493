"""The bulk seeding of `bench/_seed.py` leaves, for what the renewal campaign reads, exactly the state the
real chain leaves (request → quotes → three signatures → order → acknowledgement → delivery → first
invoices): same review line, same renewal invoices (rows, lines, Factur-X XML), same email."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from facturx import get_xml_from_pdf
from sqlmodel import select

from bench._seed import Establishment, SeedEntry, plan_entries, seed, seed_live, siret_of, synthetic_siren
from mairie.database import unit_of_work
from mairie.schemas import OperatorAmounts, RequestForm
from mairie.services import approvals, conventions, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.mail import dispatch
from mairie.settings import Settings
from models.entities import Collectivity, Invoice, InvoiceLine, NumberSequence, OutboxMessage, Subscription
from models.pricing import BasketLine
from notifications.mailserver import LoopbackMailServer
from tests.faults.conftest import campaign_settings
from tests.integration.lifecycle.conftest import link_in, mails_to, token_of

DAY = date(2026, 11, 24)
RENEWAL = date(2027, 1, 15)


def _sign(settings: Settings, server: LoopbackMailServer, address: str, name: str, capacity: str) -> None:
    mail = mails_to(server, address)[-1]
    token = token_of(link_in(mail, "/approbation/"))
    approvals.sign(settings, token, approvals.Decision(name, capacity, True), approvals.Evidence("127.0.0.1", "pytest"))
    dispatch(settings)


def _chain(settings: Settings, server: LoopbackMailServer, entry: SeedEntry) -> None:
    """The real chain for one entry, as the whole-chain test drives it."""
    if entry.establishment is not None:  # an operator registers the establishment first
        e = entry.establishment
        with unit_of_work(settings) as uow:
            uow.session.add(
                Collectivity(
                    kind="public_establishment",
                    name=e.name,
                    siren=e.siren,
                    department=e.department,
                    population_override=e.population,
                )
            )
            uow.commit()
    form = RequestForm(
        collectivity=entry.identifier,
        items=[{"code": b.code, "quantity": b.quantity} for b in entry.basket],
        signatory_name=entry.signatory_name,
        signatory_email=entry.signatory_email,
        signatory_capacity=entry.signatory_capacity,
        siret=entry.siret,
        address_line=entry.address_line,
        postcode=entry.postcode,
        city=entry.city,
        commitment_number=entry.commitment_number,
        domain_names=list(entry.domain_names),
        mailbox_names=list(entry.mailbox_names),
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    if outcome.status == "waiting_operator":
        svc.settle_request(settings, outcome.request_id, OperatorAmounts(support_amount=entry.support_amount), DAY)
    quoting.issue_quotes(settings, outcome.request_id, DAY)
    dispatch(settings)
    _sign(settings, server, entry.signatory_email, entry.signatory_name, entry.signatory_capacity)
    for identity in (_cdg_of(settings, entry), settings.syndicat):
        _sign(settings, server, identity.signatory_email, "Signataire", "Président")
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien LFN")
    provisioning.deliver(settings, order.number, "Technicien LFN", DAY, today=DAY)
    dispatch(settings)


def _cdg_of(settings: Settings, entry: SeedEntry):  # type: ignore[no-untyped-def]
    department = entry.establishment.department if entry.establishment else entry.identifier[:2]
    return settings.cdg_for_department(department)


def _campaign(settings: Settings) -> dict[str, object]:
    """What the campaign of 2027 produces for the only subscription: review line, invoices, emails, XML."""
    (line,) = renewal.review(settings, 2027).lines
    result = renewal.issue(settings, 2027, today=RENEWAL)
    assert result.pending == [] and result.excluded == []
    with unit_of_work(settings) as uow:
        s = uow.session
        invoices = s.exec(select(Invoice).where(Invoice.billing_year == 2027).order_by(Invoice.number)).all()
        # the PDF bytes carry the time of rendering (Factur-X metadata): compared through their XML instead
        ignored = {"id", "collectivity_id", "subscription_id", "emailed_message_id", "created_at", "deposited_path",
                   "document_sha256"}  # fmt: skip
        rows = []
        for invoice in invoices:
            lines = s.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)).all()
            rows.append(
                {
                    "invoice": invoice.model_dump(exclude=ignored),
                    "lines": sorted(
                        (li.model_dump(exclude={"id", "invoice_id"}) for li in lines), key=lambda d: d["position"]
                    ),
                    "xml": get_xml_from_pdf(Path(invoice.deposited_path).read_bytes(), check_xsd=True)[1],
                }
            )
        mails = [
            (m.dedup_key, m.recipients, m.subject, m.body_text, [a["filename"] for a in m.attachments])
            for m in s.exec(select(OutboxMessage).where(OutboxMessage.kind == "invoice_issued")).all()
            if m.dedup_key.startswith("invoice:") and "-2027-" in m.dedup_key
        ]
        sequences = {
            (q.issuer_code, q.doc_kind): q.last_value
            for q in s.exec(select(NumberSequence).where(NumberSequence.year == 2026)).all()
        }
        subscription = s.exec(select(Subscription)).one()
        support_amount, started_on = subscription.support_amount, subscription.started_on
    review = {k: v for k, v in vars(line).items() if k != "subscription_id"}
    return {
        "review": review,
        "invoices": rows,
        "mails": sorted(mails),
        "sequences": sequences,
        "support_amount": support_amount,
        "started_on": started_on,
    }


def _basket(**items: int) -> tuple[BasketLine, ...]:
    return tuple(BasketLine(code.replace("_", "-"), qty) for code, qty in items.items())


CASES = {
    # a small commune of 62 with the pack (renews as its two licences), a one-off backup, a domain
    "regnauville": SeedEntry(
        identifier="62700",
        basket=_basket(
            messagerie_5go=3,
            nom_de_domaine=1,
            pack_antivirus_mdp=2,
            sauvegarde_mes_n1=1,
            sauvegarde_abo_n1=1,
            page_internet=1,
            stockage_go=20,
        ),
        delivered_on=DAY,
        requested_on=DAY,
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
        siret="21620700100019",
        commitment_number="ENG-2026-00042",
        domain_names=("regnauville.fr",),
        mailbox_names=("accueil", "maire", "secretariat"),
    ),
    # a commune of 59 above 3 500 inhabitants: support "sur devis", set by an operator
    "abscon": SeedEntry(
        identifier="59002",
        basket=_basket(messagerie_5go=8, messagerie_illimitee=2, nom_de_domaine=1, page_internet=1, antivirus=4),
        delivered_on=DAY,
        requested_on=DAY,
        signatory_name="Marc Caron",
        signatory_email="maire@abscon.example",
        siret=siret_of("215900028"),
        support_amount=Decimal("400.00"),
    ),
    # a public establishment beyond the communes: synthetic SIREN, operator population and fee
    "ccas": SeedEntry(
        identifier=synthetic_siren(1534),
        basket=_basket(messagerie_5go=2, nom_de_domaine=1, page_internet=1),
        delivered_on=DAY,
        requested_on=DAY,
        signatory_name="Claire Leroy",
        signatory_email="president@ccas-de-regnauville.example",
        signatory_capacity="Président",
        siret=siret_of(synthetic_siren(1534)),
        address_line="Mairie, place de l'Église",  # an establishment has no default address: it gives one
        postcode="62140",
        city="Regnauville",
        support_amount=Decimal("100.00"),
        establishment=Establishment(synthetic_siren(1534), "CCAS de Regnauville", "62", 220),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_seeded_subscription_renews_exactly_like_the_chain(tmp_path: Path, case: str) -> None:
    entry = CASES[case]
    with LoopbackMailServer(tmp_path / "mail-chain") as server:
        chain = campaign_settings(tmp_path / "chain", f"sqlite:///{tmp_path / 'chain.sqlite3'}", server.port)
        _chain(chain, server, entry)
        expected = _campaign(chain)
    seeded = campaign_settings(tmp_path / "seed", f"sqlite:///{tmp_path / 'seed.sqlite3'}", 1)
    seed(seeded, [entry], year=2026)
    got = _campaign(seeded)
    assert got["review"] == expected["review"]
    assert got["invoices"] == expected["invoices"]
    assert got["mails"] == expected["mails"]
    assert got == expected
    if case == "regnauville":
        assert any("renouvellement au prix annuel" in r for r in got["review"]["reasons"])  # type: ignore[index]


def test_realistic_population(tmp_path: Path) -> None:
    entries = plan_entries(1534 + 12, year=2026)
    assert len({e.identifier for e in entries}) == len(entries)
    assert sum(e.establishment is None for e in entries) == 1534
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", 1)
    report = seed_live(settings, 40)
    assert (report.communes, report.establishments, len(report.subscriptions)) == (40, 0, 40)
    review = renewal.review(settings, 2027)
    assert len(review.lines) == 40 and all(not line.pending for line in review.lines)
    mailboxes = [sum(b.quantity for b in e.basket if b.code.startswith("messagerie")) for e in entries[:1534]]
    assert min(mailboxes) == 1 and max(mailboxes) == 10
