"""From stored entities to documents: builds the `documents` dataclasses, renders, stores the PDF
content-addressed and records it (`StoredDocument`). Rendering happens inside the caller's transaction,
so a failure rolls the numbering back with everything else."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session

import documents
from documents import data as doc
from documents.store import ContentStore, DocumentStore, StoreError
from mairie.adapters.document_store import DatabaseStore
from mairie.settings import IssuerIdentity, Settings
from models.catalog import Grid
from models.db import get_engine
from models.eligibility import KIND_LABELS, Population
from models.entities import Approval, Collectivity, DocumentLineBase, ServiceRequest, StoredDocument
from models.pricing import PricedDocument, PricedLine, VatRegime, vat_regime_of

PDF = "application/pdf"


@lru_cache(maxsize=4)
def store_for(root: Path) -> DocumentStore:
    """The file store of a folder (`MAIRIE_DOCUMENT_STORE=files`)."""
    return DocumentStore(root)


@lru_cache(maxsize=4)
def _database_store(url: str, fallback: Path) -> DatabaseStore:
    return DatabaseStore(get_engine(url), fallback=store_for(fallback))


def store_of(settings: Settings) -> ContentStore:
    """The document store the settings choose (`MAIRIE_DOCUMENT_STORE`: database or files)."""
    if settings.document_store == "files":
        return store_for(settings.documents_path)
    return _database_store(settings.sqlalchemy_url, settings.documents_path)


@dataclass(frozen=True)
class Stored:
    sha256: str
    filename: str
    content_type: str = PDF


def keep(
    session: Session, settings: Settings, content: bytes, *, kind: str, filename: str, content_type: str = PDF
) -> Stored:
    """Store a document content-addressed (never overwritten) and record it once, in the caller's
    transaction: with the database store the bytes commit, or roll back, with the record."""
    suffix = Path(filename).suffix.lower() or ".bin"
    stored = store_of(settings).put(content, suffix, transaction=session)
    if session.get(StoredDocument, stored.sha256) is None:
        session.add(
            StoredDocument(
                sha256=stored.sha256, kind=kind, filename=filename, content_type=content_type, size=stored.size
            )
        )
    return Stored(stored.sha256, filename, content_type)


def load(settings: Settings, sha256: str) -> bytes:
    """The bytes of a stored document (hash checked by the store; `StoreError` if absent or altered)."""
    return store_of(settings).get(sha256)


@dataclass
class CopyReport:
    """What `copy_files_to_database` did: hashes copied, already in the database, refused (and why)."""

    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def copy_files_to_database(settings: Settings, folder: Path | None = None) -> CopyReport:
    """Copy every document of a file store (`documents_dir` by default) into the database store, each
    checked against its SHA-256 first. Idempotent: run it again, nothing changes; the folder is left as is
    (delete it once the copy is verified). `mairie documents copy-to-database`."""
    files = DocumentStore(folder or settings.documents_path)
    target = DatabaseStore(get_engine(settings.sqlalchemy_url))
    report = CopyReport()
    for path in sorted(files.root.glob("??/*")):
        sha = path.name.split(".", 1)[0]
        if path.name.startswith(".") or len(sha) != 64:
            continue  # a temporary file of an interrupted write, or not the store's
        try:
            content = files.get(sha, path.suffix)
        except StoreError as exc:
            report.refused.append((sha, str(exc)))
            continue
        if sha in target:
            report.present.append(sha)
            continue
        target.put(content, path.suffix)
        report.copied.append(sha)
    return report


def issuer_doc(identity: IssuerIdentity) -> doc.Issuer:
    """The issuer as its documents print it: identity, ordonnateur, accountant, deliberations, appeal notice
    and (the syndicat's) convention terms, all from the settings (`documents.data.Issuer.from_identity`)."""
    return doc.Issuer.from_identity(identity)


def collectivity_doc(row: Collectivity, request: ServiceRequest) -> doc.Collectivity:
    return doc.Collectivity(
        name=row.name,
        kind_label=KIND_LABELS.get(row.kind, row.kind),
        address=row.address or "Mairie",
        postcode=row.postcode,
        city=row.city or row.name,
        siren=row.siren,
        siret=row.siret or "",
        department=row.department,
        signatory=doc.Signatory(request.signatory_name, request.signatory_capacity or "Maire", request.signatory_email),
        insee_code=row.insee_code,
        email=request.signatory_email,
        chorus_service_code=request.chorus_service_code or row.chorus_service_code,
    )


def line_columns(line: PricedLine) -> dict[str, Any]:
    """The columns a stored line (quote, invoice, credit note) keeps of a priced line — one place for all."""
    return {
        "position": line.position,
        "item_code": line.code,
        "label": line.label,
        "unit": line.unit,
        "kind": line.kind,
        "quantity": line.quantity,
        "unit_price_ttc": line.unit_price_ttc,
        "unit_price_ht": line.unit_price_ht,
        "vat_rate": line.vat_rate,
        "total_ht": line.total_ht,
        "total_vat": line.total_vat,
        "total_ttc": line.total_ttc,
        "family": line.family,
        "note": line.note,
        "period_start": line.period_start,
        "period_end": line.period_end,
        "months": line.months,
        "origin": line.origin,
    }


def priced_lines(lines: Sequence[DocumentLineBase]) -> tuple[PricedLine, ...]:
    """The priced lines of stored document lines (the amounts are those stored, never recomputed)."""
    return tuple(
        PricedLine(
            position=line.position,
            code=line.item_code,
            label=line.label,
            family=line.family,
            unit=line.unit,
            kind=line.kind,
            quantity=line.quantity,
            unit_price_ttc=line.unit_price_ttc,
            unit_price_ht=Decimal(line.unit_price_ht),
            vat_rate=Decimal(line.vat_rate),
            total_ht=line.total_ht,
            total_vat=line.total_vat,
            total_ttc=line.total_ttc,
            note=line.note,
            period_start=line.period_start,
            period_end=line.period_end,
            months=line.months,
            origin=line.origin,
        )
        for line in sorted(lines, key=lambda li: li.position)
    )


class StoredTotals(Protocol):
    issuer_code: str
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal


def priced_from_stored(header: StoredTotals, lines: Sequence[DocumentLineBase], vat: VatRegime) -> PricedDocument:
    """Rebuild the priced document of a stored quote, invoice or credit note from its own rows."""
    return PricedDocument(
        issuer=header.issuer_code,
        vat=vat,
        lines=priced_lines(lines),
        total_ht=header.total_ht,
        total_vat=header.total_vat,
        total_ttc=header.total_ttc,
        notes=tuple(getattr(header, "notes", ()) or ()),
    )


def vat_of(identity: IssuerIdentity) -> VatRegime:
    """An issuer's VAT regime, from its settings (`models.pricing.vat_regime_of`)."""
    return vat_regime_of(identity.vat_regime, identity.vat_rate, identity.vat_exemption_reason)


def render_devis(
    *,
    number: str,
    issued_on: date,
    issuer: IssuerIdentity,
    collectivity: doc.Collectivity,
    priced: PricedDocument,
    validity_days: int,
    grid: Grid,
    population: Population | None = None,
    band_label: str | None = None,
    pending: tuple[doc.PendingLine, ...] = (),
) -> bytes:
    return documents.render_devis(
        doc.Devis(
            number=number,
            issue_date=issued_on,
            issuer=issuer_doc(issuer),
            collectivity=collectivity,
            priced=priced,
            validity_days=validity_days,
            population=population,
            band_label=band_label,
            grid_title=grid.title,
            pending=pending,
        )
    )


def document_label(filename: str) -> str:
    """How the evidence page names a document shown to the signatories."""
    if "-DEV-" in filename:
        return f"Devis {filename.removesuffix('.pdf')}"
    return "Projet de convention"


def shown_documents(hashes: dict[str, str]) -> tuple[doc.ShownDocument, ...]:
    """Documents shown (file name → SHA-256), in file-name order, with their labels."""
    return tuple(
        doc.ShownDocument(label=document_label(name), filename=name, sha256=sha) for name, sha in sorted(hashes.items())
    )


def signatures_of(approvals: list[Approval]) -> tuple[doc.Signature, ...]:
    """The signatures recorded so far, as the convention prints them: who, when, from where, whether an
    operator recorded it for the party, and the deliberation or delegation the signatory gave."""
    # the documents' spelling of each party
    party: dict[str, doc.Party] = {"collectivity": "collectivite", "cdg": "cdg", "syndicat": "syndicat"}
    return tuple(
        doc.Signature(
            party=party[a.party],
            name=a.decided_name or a.signatory_name,
            capacity=a.decided_capacity or "",
            signed_at=a.decided_at,
            ip_address=a.ip_address or "",
            user_agent=a.user_agent,
            operator=a.recorded_by_operator,
            authority=a.deliberation_ref,
            certified=a.certified_authority,
            documents=shown_documents(a.document_hashes),
        )
        for a in sorted(approvals, key=lambda x: x.position)
        if a.status == "signed" and a.decided_at is not None
    )
