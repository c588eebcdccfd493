"""Stable JSON shapes of the CLI and API (amounts as strings, issuers by code)."""

from __future__ import annotations

from typing import Any

from mairie.formatting import amount_json
from mairie.services.assessment import Assessment
from models.eligibility import DEPARTMENT_NAMES, Population
from models.pricing import PricedDocument, QuotePreview


def population_json(p: Population | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"value": p.value, "kind": p.kind, "vintage": p.vintage, "source": p.source}


def eligibility_json(a: Assessment) -> dict[str, Any]:
    e = a.eligibility
    f = a.found
    other = f.profile("municipal" if e.population and e.population.kind == "total" else "total").population
    return {
        "collectivity": {
            "name": f.name,
            "kind": f.kind,
            "siren": f.siren,
            "insee_code": f.insee_code,
            "epci_siren": f.epci_siren,
        },
        "date": a.on.isoformat(),
        "eligible": e.eligible,
        "department": e.department,
        "department_name": DEPARTMENT_NAMES.get(e.department),
        "cdg": e.cdg,
        "population": population_json(e.population),
        "other_population": population_json(other) if e.population and e.population.kind != "operator" else None,
        "band": None
        if e.band is None
        else {"label": e.band.label, "min": e.band.min_population, "max": e.band.max_population},
        "support_fee": amount_json(e.support_fee),
        "on_quote": [{"code": r.code, "message": r.message, "item": r.item_code} for r in e.on_quote],
        "reasons": list(e.reasons),
        "grid": a.grid.code,
    }


def priced_json(doc: PricedDocument) -> dict[str, Any]:
    return {
        "issuer": doc.issuer,
        "vat_category": doc.vat.category,
        "vat_rate": f"{doc.vat.rate:.2f}",
        "vat_exemption_reason": doc.vat.exemption_reason,
        "lines": [
            {
                "code": line.code,
                "label": line.label,
                "unit": line.unit,
                "kind": line.kind,
                "quantity": line.quantity,
                "unit_price_ttc": amount_json(line.unit_price_ttc),
                "unit_price_ht": str(line.unit_price_ht),
                "total_ht": amount_json(line.total_ht),
                "total_vat": amount_json(line.total_vat),
                "total_ttc": amount_json(line.total_ttc),
            }
            for line in doc.lines
        ],
        "total_ht": amount_json(doc.total_ht),
        "total_vat": amount_json(doc.total_vat),
        "total_ttc": amount_json(doc.total_ttc),
        "notes": list(doc.notes),
    }


def preview_json(a: Assessment, preview: QuotePreview | None) -> dict[str, Any]:
    return {
        "date": a.on.isoformat(),
        "grid": a.grid.code,
        "collectivity": {"name": a.found.name, "siren": a.found.siren, "insee_code": a.found.insee_code},
        "eligible": a.eligibility.eligible,
        "reasons": list(a.eligibility.reasons),
        "quotes": [] if preview is None else [priced_json(q) for q in preview.quotes],
        "on_quote": [{"code": r.code, "message": r.message, "item": r.item_code} for r in a.eligibility.on_quote],
        "pending": [] if preview is None else list(preview.pending),
    }
