"""Read-only view of a request for the JSON API: its state, quotes and convention."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from mairie.database import unit_of_work
from mairie.formatting import amount_json
from mairie.services.intake import request_state
from mairie.settings import Settings
from models.entities import Approval, Convention, Quote


def request_summary(settings: Settings, request_id: int) -> dict[str, Any]:
    """`GET /api/requests/{id}`: state, quotes (amounts as strings) and convention with its approvals."""
    state = request_state(settings, request_id)  # NotFound for an unknown id
    with unit_of_work(settings) as uow:
        session = uow.session
        quotes = session.exec(
            select(Quote).where(Quote.request_id == request_id, Quote.status != "superseded").order_by(Quote.id)  # type: ignore[arg-type]
        ).all()
        convention = session.exec(
            select(Convention).where(Convention.request_id == request_id).order_by(Convention.version.desc())  # type: ignore[attr-defined]
        ).first()
        approvals = []
        if convention is not None:
            approvals = list(
                session.exec(
                    select(Approval).where(Approval.convention_id == convention.id).order_by(Approval.position)  # type: ignore[arg-type]
                ).all()
            )
        return {
            "id": state.request_id,
            "reference": state.reference,
            "status": state.status,
            "collectivity": state.collectivity,
            "pending": list(state.pending),
            "refusal_reasons": list(state.refusal_reasons),
            "quotes": [_quote_json(q) for q in quotes],
            "convention": None if convention is None else _convention_json(convention, approvals),
        }


def _quote_json(quote: Quote) -> dict[str, Any]:
    return {
        "number": quote.number,
        "issuer": quote.issuer_code,
        "status": quote.status,
        "issued_on": quote.issued_on.isoformat(),
        "valid_until": quote.valid_until.isoformat(),
        "total_ht": amount_json(quote.total_ht),
        "total_vat": amount_json(quote.total_vat),
        "total_ttc": amount_json(quote.total_ttc),
        "sha256": quote.document_sha256,
    }


def _convention_json(convention: Convention, approvals: list[Approval]) -> dict[str, Any]:
    return {
        "reference": convention.reference,
        "status": convention.status,
        "version": convention.version,
        "in_force_on": convention.in_force_on.isoformat() if convention.in_force_on else None,
        "expires_at": convention.expires_at.isoformat() if convention.expires_at else None,
        "approvals": [
            {
                "party": a.party,
                "status": a.status,
                "signatory": a.signatory_name,
                "decided_name": a.decided_name,
                "decided_at": a.decided_at.isoformat() if a.decided_at else None,
                "recorded_by_operator": a.recorded_by_operator,
            }
            for a in approvals
        ],
    }
