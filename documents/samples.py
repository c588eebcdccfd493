"""Realistic sample documents, so an operator or a designer can review a template.

The collectivity is a real Pas-de-Calais commune read from the reference data (Rebreuve-Ranchicourt,
INSEE 62693: name, SIREN, legal populations 2023); the mayor, the street address, the SIRET's NIC, the
Chorus Pro service code, the commitment number, the titre and bordereau numbers and the deliberations
the signatories give are made up. Prices come from `quote_preview` on the
real grid of 10 July 2025. The issuers are passed in (the CLI gives those of the settings).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from documents.data import (
    Avoir,
    Collectivity,
    Convention,
    Devis,
    Facture,
    Issuer,
    PendingLine,
    QuoteReference,
    ShownDocument,
    Signatory,
    Signature,
)
from models.catalog import GRIDS_DIR, Grid, load_grid_file
from models.eligibility import CollectivityProfile, Eligibility, Population, assess
from models.pricing import (
    BasketLine,
    PricedDocument,
    QuotePreview,
    VatRegime,
    first_year_drafts,
    price_lines,
    quote_preview,
)

COMMUNES_CSV = Path(__file__).resolve().parents[1] / "models" / "data" / "communes-59-62.csv"
# Real communes of each department (the reference data has no postcode: these are the real ones).
SAMPLE_COMMUNES = {"62": ("62693", "62150"), "59": ("59001", "59268")}
SAMPLE_DATE = date(2026, 11, 24)
KINDS = ("devis", "devis-accompagnement", "convention", "convention-projet", "facture", "facture-cdg", "avoir")
BASKET = (
    BasketLine("messagerie-5go", 6),
    BasketLine("nom-de-domaine", 1),
    BasketLine("page-internet", 1),
    BasketLine("sauvegarde-mes-n1", 1),
    BasketLine("sauvegarde-abo-n1", 1),
    BasketLine("stockage-go", 120),
    BasketLine("pack-antivirus-mdp", 5),
)


def sample_grid() -> Grid:
    """The price grid of 10 July 2025, as shipped."""
    return load_grid_file(GRIDS_DIR / "2025-07-10.json")


def sample_collectivity(department: str = "62") -> tuple[Collectivity, Population]:
    """A real commune of the department from the reference data (Rebreuve-Ranchicourt for 62, Abancourt
    for 59), and its legal population (total, 2023)."""
    insee, postcode = SAMPLE_COMMUNES[department]
    with COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["insee_code"] == insee)
    population = Population(int(row["population_totale"]), "total", int(row["vintage"]), "INSEE, populations légales")
    collectivity = Collectivity(
        name=f"Commune de {row['name']}",
        kind_label="commune",
        address="Mairie, 2 place de la Mairie",
        postcode=postcode,
        city=row["name"],
        siren=row["siren"],
        siret=row["siren"] + "00013",
        department=row["department"],
        insee_code=row["insee_code"],
        signatory=Signatory("M. Jean-Marc Delattre", "Maire", f"maire@{_slug(row['name'])}.example"),
        email=f"mairie@{_slug(row['name'])}.example",
        chorus_service_code="FACTURES",
    )
    return collectivity, population


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower().replace("é", "e").replace("è", "e"))


def _department(cdg: Issuer) -> str:
    return "59" if cdg.code.endswith("59") else "62"


def sample_preview(syndicat: Issuer, cdg: Issuer) -> tuple[QuotePreview, Eligibility]:
    """The two quotes of the sample request, priced on the real grid."""
    grid = sample_grid()
    collectivity, population = sample_collectivity(_department(cdg))
    profile = CollectivityProfile("commune", collectivity.name, collectivity.department, population)
    eligibility = assess(profile, grid, basket=[(b.code, b.quantity) for b in BASKET])
    preview = quote_preview(
        grid,
        BASKET,
        eligibility,
        syndicat=syndicat.code,
        syndicat_vat=VatRegime.standard(),
        cdg_vat=VatRegime.outside_scope(),
    )
    return preview, eligibility


def _quote(preview: QuotePreview, issuer_code: str) -> PricedDocument:
    return next(q for q in preview.quotes if q.issuer == issuer_code)


def sample_devis(syndicat: Issuer, cdg: Issuer, *, support: bool = False) -> Devis:
    """The services quote of the syndicat, or (support=True) the support quote of the CDG."""
    preview, eligibility = sample_preview(syndicat, cdg)
    collectivity, population = sample_collectivity(_department(cdg))
    grid = sample_grid()
    if support:
        return Devis(
            number=f"{cdg.code}-DEV-2026-00007",
            issue_date=SAMPLE_DATE,
            issuer=cdg,
            collectivity=collectivity,
            priced=_quote(preview, cdg.code),
            population=population,
            band_label=eligibility.band.label if eligibility.band else None,
            grid_title=grid.title,
        )
    return Devis(
        number=f"{syndicat.code}-DEV-2026-00042",
        issue_date=SAMPLE_DATE,
        issuer=syndicat,
        collectivity=collectivity,
        priced=_quote(preview, syndicat.code),
        grid_title=grid.title,
        pending=_pending(preview, eligibility, grid),
    )


def _pending(preview: QuotePreview, eligibility: Eligibility, grid: Grid) -> tuple[PendingLine, ...]:
    """The items waiting for an operator amount, with the reason eligibility gave."""
    reasons = {q.item_code: q.message for q in eligibility.on_quote if q.item_code}
    return tuple(
        PendingLine(grid.item(code).label, reasons.get(code, "Sur devis."))
        for code in preview.pending
        if grid.has_item(code)
    )


def sample_convention(syndicat: Issuer, cdg: Issuer, *, signed: bool = True) -> Convention:
    """The convention of the sample request; signed by the three parties, or a draft (signed=False)."""
    services, support = sample_devis(syndicat, cdg), sample_devis(syndicat, cdg, support=True)
    collectivity = services.collectivity
    shown = (
        ShownDocument("Devis des services", f"{services.number}.pdf", hashlib.sha256(b"devis-services").hexdigest()),
        ShownDocument("Devis d'accompagnement", f"{support.number}.pdf", hashlib.sha256(b"devis-cdg").hexdigest()),
        ShownDocument("Projet de convention", "LFN-CONV-2026-00012.pdf", hashlib.sha256(b"convention").hexdigest()),
    )
    signatures: tuple[Signature, ...] = ()
    if signed:
        signatures = (
            Signature("collectivite", collectivity.signatory.name, collectivity.signatory.capacity,
                      datetime(2026, 11, 26, 9, 14, 3, tzinfo=UTC), "2a01:cb08:8a3:4b00::1f",
                      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/132.0",
                      authority="délibération n° 2026-41 du conseil municipal du 18 novembre 2026", certified=True,
                      documents=shown),
            Signature("cdg", "Mme Sophie Vandenbussche", "Directrice générale, par délégation du Président",
                      datetime(2026, 11, 27, 15, 2, 41, tzinfo=UTC), "193.251.14.20", None,
                      operator="Claire Dumont (opératrice)",
                      authority="arrêté de délégation de signature n° 2025-118 du 1er septembre 2025",
                      documents=shown),
            Signature("syndicat", "M. Olivier Lefebvre", "Vice-président délégué",
                      datetime(2026, 11, 30, 10, 30, 0, tzinfo=UTC), "80.12.34.56", documents=shown),
        )
    return Convention(
        number="LFN-CONV-2026-00012",
        convention_date=SAMPLE_DATE,
        syndicat=syndicat,
        cdg=cdg,
        collectivity=collectivity,
        grid=sample_grid(),
        services_quote=QuoteReference(services.number, services.issue_date, syndicat, services.priced),
        support_quote=QuoteReference(support.number, support.issue_date, cdg, support.priced),
        signatures=signatures,
        documents=shown,
    )


def sample_facture(syndicat: Issuer, cdg: Issuer, *, support: bool = False) -> Facture:
    """The first invoice of the sample request (services of the syndicat, or support of the CDG)."""
    devis = sample_devis(syndicat, cdg, support=support)
    issuer = cdg if support else syndicat
    return Facture(
        number=f"{issuer.code}-FAC-2026-00031",
        issue_date=date(2026, 12, 7),
        delivery_date=date(2026, 12, 4),
        issuer=issuer,
        collectivity=devis.collectivity,
        priced=devis.priced,
        period_start=date(2026, 12, 4),
        period_end=date(2027, 12, 3),
        commitment_number="EJ-2026-000318",
        contract_reference="LFN-CONV-2026-00012",
        subject="Pack Mairie Connectée — première année",
        # What the PES channel will fill once Hélios numbers the titre (made up here, to show the mention).
        titre_number="2026-000412",
        bordereau_number="2026-000087",
    )


def sample_avoir(syndicat: Issuer, cdg: Issuer) -> Avoir:
    """A credit note on the sample invoice: one mailbox too many was invoiced."""
    facture = sample_facture(syndicat, cdg)
    drafts = first_year_drafts(sample_grid(), [BasketLine("messagerie-5go", 1)])
    priced = price_lines(syndicat.code, facture.priced.vat, drafts)
    return Avoir(
        number=f"{syndicat.code}-AVO-2026-00003",
        issue_date=date(2026, 12, 15),
        delivery_date=facture.delivery_date,
        issuer=syndicat,
        collectivity=facture.collectivity,
        priced=priced,
        invoice_number=facture.number,
        invoice_date=facture.issue_date,
        reason="un compte de messagerie 5 Go facturé en trop (6 demandés, 5 ouverts)",
        commitment_number=facture.commitment_number,
        contract_reference=facture.contract_reference,
    )


DocT = TypeVar("DocT", Facture, Avoir)


def with_rounding(doc: DocT, amount: Decimal) -> DocT:
    """The same document whose deliberated total differs from HT + VAT by `amount` (BT-114), as when the
    deliberated TTC prices do not divide evenly by the VAT rate."""
    priced = dataclasses.replace(doc.priced, total_ttc=doc.priced.total_ttc + amount)
    return dataclasses.replace(doc, priced=priced)
