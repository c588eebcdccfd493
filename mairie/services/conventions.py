"""A convention's own life: brought into force when the last party has signed (the final PDF with its
evidence page, sealed with the syndicat's certificate, emailed to all), rendered as signed so far, and its
state for operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select

from documents.seal import seal_with
from mairie.database import unit_of_work
from mairie.services import paperwork, sealing
from mairie.services.mail import enqueue_message
from mairie.settings import Settings
from models import audit
from models.clock import paris_today
from models.db import UnitOfWork
from models.directory import grid_on
from models.entities import Approval, Convention, ProvisioningOrder, ServiceRequest
from models.lifecycle import ConventionStatus
from models.parties import PARTY_LABELS
from notifications.contexts import team_contact


def enter_into_force(uow: UnitOfWork, settings: Settings, convention: Convention, request: ServiceRequest) -> None:
    """All three have signed: render the final convention with its evidence page, seal it with the
    syndicat's certificate and send it to all."""
    assert convention.id is not None
    today = paris_today()
    convention.in_force_on = today
    approvals = uow.approvals.of(convention.id)
    pdf = render_convention_pdf(uow, settings, convention, request, approvals)
    key = sealing.seal_key_for(settings, uow.issuers.get(convention.syndicat_code))
    filename = f"{convention.reference}.pdf"
    stored = paperwork.keep(uow.session, settings, seal_with(pdf, key), kind="convention", filename=filename)
    convention.final_sha256 = stored.sha256
    uow.session.add(convention)
    sealing.record_seal(
        uow.session, key, entity_type="convention", entity_id=convention.id, sha256=stored.sha256, filename=filename
    )
    collectivity = uow.collectivities.get(convention.collectivity_id)
    recipients = [a.signatory_email for a in approvals]
    enqueue_message(
        uow.session,
        settings,
        "convention_in_force",
        {
            "collectivity_name": collectivity.name,
            "convention_number": convention.reference,
            "effective_on": today,
            "signatures": [
                {"party": PARTY_LABELS[a.party], "name": a.decided_name, "signed_at": a.decided_at} for a in approvals
            ],
            "document_sha256": stored.sha256,
            "contact": team_contact(settings.operators_email),
        },
        to=recipients,
        cc=[settings.operators_email],
        attachments=[stored],
        dedup_key=f"in-force:{convention.reference}",
        related=("convention", convention.id),
    )
    audit.record(
        uow.session,
        actor="système",
        action="convention.in_force",
        entity_type="convention",
        entity_id=convention.id,
        details={"final_sha256": stored.sha256},
    )


def render_convention_pdf(
    uow: UnitOfWork, settings: Settings, convention: Convention, request: ServiceRequest, approvals: list[Approval]
) -> bytes:
    """The convention as signed so far (all three signatures → the final document with its evidence page)."""
    assert request.id is not None
    collectivity = uow.collectivities.get(convention.collectivity_id)
    syndicat, cdg = uow.issuers.get(convention.syndicat_code), uow.issuers.get(convention.cdg_code)
    grid = grid_on(uow.session, convention.dated_on)
    refs = {}
    for quote in uow.quotes.current(request.id):
        assert quote.id is not None
        identity = syndicat if quote.issuer_code == syndicat.code else cdg
        priced = paperwork.priced_from_stored(quote, uow.quotes.lines(quote.id), paperwork.vat_of(identity))
        refs["services" if identity is syndicat else "support"] = paperwork.doc.QuoteReference(
            number=quote.number, issue_date=quote.issued_on, issuer=paperwork.issuer_doc(identity), priced=priced
        )
    shown = paperwork.shown_documents(convention.document_hashes)
    return paperwork.documents.render_convention(
        paperwork.doc.Convention(
            number=convention.reference,
            convention_date=convention.dated_on,
            syndicat=paperwork.issuer_doc(syndicat),
            cdg=paperwork.issuer_doc(cdg),
            collectivity=paperwork.collectivity_doc(collectivity, request),
            grid=grid,
            services_quote=refs["services"],
            support_quote=refs["support"],
            payment_term_days=settings.payment_term_days,
            signatures=paperwork.signatures_of(approvals),
            documents=shown,
        )
    )


def conventions_in_force_without_order(settings: Settings) -> list[int]:
    """Conventions in force whose provisioning order is not issued yet (picked up by the lifecycle)."""
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(select(Convention.id).where(Convention.status == ConventionStatus.IN_FORCE)).all()
        ordered = set(uow.session.exec(select(ProvisioningOrder.convention_id)).all())
        return [r for r in rows if r is not None and r not in ordered]


@dataclass(frozen=True)
class PartyState:
    party: str
    status: str
    name: str | None
    at: datetime | None
    operator: str | None


@dataclass(frozen=True)
class ConventionState:
    convention: str
    status: str
    approvals: tuple[PartyState, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "convention": self.convention,
            "status": str(self.status),
            "approvals": [
                {"party": str(a.party), "status": str(a.status), "name": a.name, "at": a.at, "operator": a.operator}
                for a in self.approvals
            ],
        }


def convention_status(settings: Settings, reference: str) -> ConventionState:
    """Where a convention stands: its status and each party's decision, in signing order."""
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(reference)
        assert convention.id is not None
        return ConventionState(
            convention.reference,
            convention.status,
            tuple(
                PartyState(a.party, a.status, a.decided_name, a.decided_at, a.recorded_by_operator)
                for a in uow.approvals.of(convention.id)
            ),
        )
