"""A renewal campaign over several collectivities: a band change (new INSEE vintage), a new grid version,
an ended service; run twice and after a simulated crash: one invoice per subscription, issuer and year."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlmodel import select

from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, conventions, provisioning, renewal
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.setup import initialise
from models.catalog import GRIDS_DIR
from models.entities import CommunePopulation, Invoice, NumberSequence, SubscriptionItem
from tests.conftest import mairie_siret

DAY = date(2026, 11, 24)
CAMPAIGN_DAY = date(2027, 1, 15)


def _live(settings, code: str, items: dict[str, int]) -> None:
    form = RequestForm(
        collectivity=code,
        siret=mairie_siret(code),
        items=[{"code": c, "quantity": q} for c, q in items.items()],
        signatory_name="Signataire",
        signatory_email=f"maire.{code}@exemple.fr",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=DAY)
    quotes = quoting.issue_quotes(settings, outcome.request_id, DAY)
    for party in ("collectivity", "cdg", "syndicat"):
        approvals.countersign_as_operator(
            settings, quotes.convention, party, "Opérateur", approvals.Decision("Signataire", "Maire", True)
        )
    [convention_id] = conventions.conventions_in_force_without_order(settings)
    order = provisioning.issue_order(settings, convention_id)
    provisioning.acknowledge(settings, order.number, "Technicien")
    provisioning.deliver(settings, order.number, "Technicien", DAY, today=DAY)


def _new_grid(tmp_path) -> None:
    data = json.loads((GRIDS_DIR / "2025-07-10.json").read_text(encoding="utf-8"))
    data["code"] = data["effective_from"] = "2027-01-01"
    data["title"] = "Grille 2027 (test)"
    for item in data["items"]:
        if item["code"] == "messagerie-5go":
            item["price_ttc"] = "18.00"
    folder = tmp_path / "grids"
    folder.mkdir()
    (folder / "2027-01-01.json").write_text(json.dumps(data), encoding="utf-8")


def test_campaign_over_several_collectivities(settings, tmp_path):
    _live(settings, "62113", {"messagerie-5go": 2})  # Berles-Monchel: 495 inhabitants in the 2023 vintage
    _live(settings, "62078", {"messagerie-5go": 1, "antivirus": 3, "nas-2-disques": 1})  # Balinghem, 1 242
    _live(settings, "62700", {"pack-antivirus-mdp": 2, "nom-de-domaine": 1})  # Regnauville, 220

    with unit_of_work(settings) as uow:
        # a new INSEE vintage in force on 1 January 2027 moves Berles-Monchel to the next band
        uow.session.add(
            CommunePopulation(
                insee_code="62113", vintage=2024, in_force_from=date(2027, 1, 1), municipal=501, total=512
            )
        )
        # Balinghem ends its antivirus at the end of 2026
        for item in uow.session.exec(select(SubscriptionItem).where(SubscriptionItem.item_code == "antivirus")):
            item.ended_on = date(2026, 12, 31)
            uow.session.add(item)
        uow.commit()
    _new_grid(tmp_path)
    settings = settings.model_copy(update={"grids_dir": tmp_path / "grids"})
    assert initialise(settings).grids_added == ["2027-01-01"]

    review = {line.collectivity: line for line in renewal.review(settings, 2027).lines}
    berles, balinghem, regnauville = review["Berles-Monchel"], review["Balinghem"], review["Regnauville"]
    assert berles.this_year == {"LFN": Decimal("36.00"), "CDG62": Decimal("100.00")}
    assert any("changement de strate" in r and "495 → 512" in r for r in berles.reasons)
    assert any("nouvelle grille" in r for r in berles.reasons)
    assert balinghem.this_year == {"LFN": Decimal("18.00"), "CDG62": Decimal("150.00")}  # no antivirus, no NAS
    assert any("service arrêté" in r and "antivirus" in r.lower() for r in balinghem.reasons)
    assert regnauville.this_year["LFN"] == (Decimal("16.80") + Decimal("42.05")) * 2 + Decimal("15.60")

    # a crash after the first subscription: the rerun completes without duplicates or gaps
    partial = renewal.issue(settings, 2027, today=CAMPAIGN_DAY, subscription_ids=[1])
    assert len(partial.issued) == 2
    rest = renewal.issue(settings, 2027, today=CAMPAIGN_DAY)
    assert len(rest.issued) == 4 and len(rest.existing) == 2
    assert renewal.issue(settings, 2027, today=CAMPAIGN_DAY).issued == []
    with unit_of_work(settings) as uow:
        invoices = uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all()
        for issuer in ("LFN", "CDG62"):
            numbers = sorted(i.number for i in invoices if i.issuer_code == issuer)
            assert numbers == [f"{issuer}-FAC-2027-{n:05d}" for n in range(1, 4)]
            assert uow.session.get(NumberSequence, (issuer, "FAC", 2027)).last_value == 3
