"""The folder channel: each committed invoice and credit note is filed in
`<deposit dir>/<ISSUER>/<channel>/<number>.pdf` (`pes_asap/factures/` for pes_asap), after its commit, and
again by any later run after a crash (the database is the authority: a leftover file of the same name is
replaced). A document queued for the Chorus Pro API (`channels.chorus`) is not filed here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlmodel import col, select

from mairie.adapters.files import FileDrop, LocalFolder
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.settings import Settings
from models.entities import ChorusDeposit, CreditNote, Invoice


def drop_for(settings: Settings) -> FileDrop:
    """The deposit folder of the settings (`MAIRIE_DEPOSIT_DIR`)."""
    return LocalFolder(settings.deposit_path)


def deposit_name(issuer_code: str, channel: str, number: str) -> str:
    """Where a document is filed, relative to the deposit folder. For pes_asap the PDFs are kept apart, in
    `pes_asap/factures/`: the folder itself holds only the PES files to send (they carry the PDFs)."""
    if channel == "pes_asap":
        return f"{issuer_code}/{channel}/factures/{number}.pdf"
    return f"{issuer_code}/{channel}/{number}.pdf"


def file_deposits(
    settings: Settings, batch: int = 500, drop: FileDrop | None = None, invoice_ids: Sequence[int] | None = None
) -> list[str]:
    """File every committed invoice and credit note not yet in its deposit folder, a batch per
    transaction — or only the invoices of `invoice_ids` (a campaign files each window as it is stored).
    Returns the numbers filed."""
    drop = drop or drop_for(settings)
    if invoice_ids is not None:
        return _file_all(settings, Invoice, batch, drop, invoice_ids) if invoice_ids else []
    return _file_all(settings, Invoice, batch, drop) + _file_all(settings, CreditNote, batch, drop)


Filed = TypeVar("Filed", Invoice, CreditNote)
_TYPE: dict[type[Invoice] | type[CreditNote], str] = {Invoice: "invoice", CreditNote: "credit_note"}


def _file_all(
    settings: Settings, table: type[Filed], batch: int, drop: FileDrop, ids: Sequence[int] | None = None
) -> list[str]:
    """File the documents of one table (those of `ids` only, when given), `batch` rows per transaction,
    until none is left."""
    filed: list[str] = []
    while True:
        with unit_of_work(settings) as uow:
            link = ChorusDeposit.invoice_id if table is Invoice else ChorusDeposit.credit_note_id
            on_api = select(link).where(col(link).is_not(None), ChorusDeposit.document_type == _TYPE[table])
            query = (
                select(table)
                .where(col(table.deposited_path).is_(None), col(table.document_sha256).is_not(None))
                .where(col(table.id).not_in(on_api))  # deposited through the Chorus Pro API instead
            )
            if ids is not None:
                query = query.where(col(table.id).in_(list(ids)))
            rows = uow.session.exec(query.order_by(col(table.id)).limit(batch)).all()
            for row in rows:
                identity = uow.issuers.get(row.issuer_code)
                content = paperwork.load(settings, row.document_sha256 or "")
                row.deposited_path = drop.write(
                    deposit_name(identity.code, identity.billing_channel, row.number), content
                )
                uow.session.add(row)
                filed.append(row.number)
            uow.commit()
        if len(rows) < batch:
            return filed
