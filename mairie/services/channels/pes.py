"""The pes_asap channel: an issuer's invoices become titres de recettes, sent to its public accountant's
Hélios as PES V2 files (`documents.pes`); Hélios's acquit brings each bordereau's fate back.

- `export(settings, issuer)`: the invoices pending for an issuer on `pes_asap` (issued, never sent by any
  channel, or whose titre Hélios rejected) are cut into bordereaux — a campaign's renewal invoices in
  bordereaux of at most `PES_BORDEREAU_MAX_PIECES` titres, first invoices in the day's bordereau — each
  numbered with its titres in one short transaction under the issuer's lock (gapless per issuer and
  exercice, like invoice numbers), then built from the stored rows, validated against the XSD and written
  to `<deposit dir>/<ISSUER>/pes_asap/` (`FileDrop`). A crash between the two leaves a `numbered`
  bordereau that the next export writes, with the same numbers and the same bytes: no titre twice, no gap.
- Then the credit notes (avoirs) of invoices whose titre was sent become annulation-réduction titres, in
  bordereaux of their own (TypBord 02, their own gapless sequence PESA; the titres keep the PEST one),
  numbered and written the same way. An avoir of a titre of a closed exercice is left out and reported
  (its annulation is a mandat, on the dépense side).
- `import_acquit(settings, content)`: a `PES_ACQUIT` accepts or rejects bordereaux (and PJ); a rejection is
  recorded with its reasons, the operators get a task by email, and the titres go again, with new numbers,
  in a new bordereau at the next export (after the settings are corrected, or the invoice cancelled by a
  credit note). `import_acquit_folder` does the same for every file dropped in
  `<deposit dir>/<ISSUER>/pes_asap/acquits/`.

An invoice leaves by one channel only: the export records `Invoice.sent_channel = "pes_asap"`, and never
takes an invoice that left otherwise (another `sent_channel`, or a document filed in another channel's
deposit folder), so a change of channel applies to the invoices not yet sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, or_, select

from documents import pes as doc
from mairie.adapters.files import FileDrop
from mairie.adapters.inbox import FolderInbox, Inbox
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.services.channels.folder import drop_for
from mairie.services.invoicing import period_label
from mairie.services.mail import enqueue_message
from mairie.settings import IssuerIdentity, Settings
from models import audit
from models import pes as rules
from models.clock import paris_today
from models.db import UnitOfWork
from models.entities import (
    ChorusDeposit,
    Collectivity,
    CreditNote,
    DocumentLineBase,
    Invoice,
    Issuer,
    PesBordereau,
    PesPiece,
)
from models.errors import InvalidInput, NotFound
from models.lifecycle import InvoiceStatus, PesBordereauStatus, PesPieceStatus, move
from models.money import ZERO
from models.numbering import next_value

CHANNEL = "pes_asap"
ACQUITS = "acquits"
# Invoices that may become titres: issued (whatever has been paid meanwhile), not cancelled by a credit note.
TITRE_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


def schemas_of(settings: Settings) -> doc.PesSchemas | None:
    """DGFiP's XSD of `MAIRIE_PES_XSD_DIR`, or None when the setting is unset (files are then unvalidated)."""
    return doc.PesSchemas(settings.pes_xsd_dir) if settings.pes_xsd_dir is not None else None


def env_prefix(settings: Settings, code: str) -> str:
    """`MAIRIE_CDG62__`: how an issuer's settings are named in the environment."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, IssuerIdentity) and value.code == code:
            return f"MAIRIE_{name.upper()}__"
    return f"MAIRIE_<{code}>__"


def pes_identity(settings: Settings, code: str) -> IssuerIdentity:
    """The issuer `code` (any case), which must be on pes_asap with its budget configured."""
    wanted = code.strip().upper()
    identity = next((i for i in settings.issuers() if i.code.upper() == wanted), None)
    if identity is None:
        known = ", ".join(i.code for i in settings.issuers())
        raise NotFound(f"émetteur inconnu « {code} » (émetteurs configurés : {known})")
    prefix = env_prefix(settings, identity.code)
    if identity.billing_channel != CHANNEL:
        raise InvalidInput(
            f"{identity.code} facture par « {identity.billing_channel} », pas par PES : réglez "
            f"{prefix}BILLING_CHANNEL=pes_asap pour envoyer ses titres à Hélios"
        )
    missing = identity.pes_missing()
    if missing:
        raise InvalidInput(
            f"{identity.code} : réglages PES manquants ({', '.join(prefix + m for m in missing)}) — le poste "
            "comptable, le code collectivité et le code budget sont donnés par le comptable public (docs/pes.md)"
        )
    return identity


def dgfip_gaps(settings: Settings, identity: IssuerIdentity) -> list[str]:
    """What DGFiP's ASAP rules need beyond the schema and the settings lack (the files are written anyway;
    Hélios would refuse the ASAP): in words, with the setting to fill in."""
    prefix = env_prefix(settings, identity.code)
    gaps = []
    if identity.pes_ref_bdf is None:
        gaps.append(f"numéro émetteur du budget pour le talon ({prefix}PES_REF_BDF)")
    if not (identity.pes_signatory_first_name and identity.pes_signatory_last_name):
        gaps.append(f"signataire de l'ASAP ({prefix}PES_SIGNATORY_FIRST_NAME, …_LAST_NAME)")
    if not (identity.pes_accountant_address and identity.pes_accountant_postcode and identity.pes_accountant_city):
        gaps.append(f"adresse du centre des finances publiques ({prefix}PES_ACCOUNTANT_ADDRESS, …_POSTCODE, …_CITY)")
    if settings.pes_xsd_dir is None:
        gaps.append("schéma PES de la DGFiP (MAIRIE_PES_XSD_DIR) : fichiers écrits sans validation")
    return gaps


def header_of(identity: IssuerIdentity) -> doc.Header:
    assert identity.pes_id_post and identity.pes_cod_col and identity.pes_cod_bud
    return doc.Header(
        id_post=identity.pes_id_post,
        id_coll=identity.pes_id_coll or identity.siret,
        cod_col=identity.pes_cod_col,
        cod_bud=identity.pes_cod_bud,
        libelle_col_bud=identity.pes_libelle_col_bud,
    )


def issuer_of(identity: IssuerIdentity) -> doc.Issuer:
    """The ordonnateur as its ASAP shows it, from its settings."""
    signatory = None
    if identity.pes_signatory_first_name and identity.pes_signatory_last_name:
        role = identity.pes_signatory_role or identity.signatory_capacity or "Ordonnateur"
        signatory = doc.Signatory(identity.pes_signatory_first_name, identity.pes_signatory_last_name, role)
    return doc.Issuer(
        siret=identity.siret,
        name=identity.name,
        category=identity.pes_cat_tiers or rules.ISSUER_CATEGORY.get(identity.kind, "29"),
        nat_jur=rules.NAT_JUR_PUBLIC,
        address=doc.Address(identity.address or None, identity.postcode, identity.city),
        encaissement=doc.Office(
            "CENTRE D'ENCAISSEMENT",
            doc.Address(
                None,
                identity.pes_encaissement_postcode,
                identity.pes_encaissement_city,
                locality=identity.pes_encaissement_tsa,
            ),
            complement_name="DES FINANCES PUBLIQUES",
        ),
        accountant=doc.Office(
            identity.pes_accountant_name,
            doc.Address(
                identity.pes_accountant_address,
                identity.pes_accountant_postcode or "",
                identity.pes_accountant_city or "",
            ),
            phone=identity.pes_accountant_phone,
            email=identity.pes_accountant_email,
        ),
        payment_terms=identity.pes_payment_terms,
        appeal=identity.pes_appeal,
        general_conditions=(
            f"Paiement à {identity.payment_term_days} jours à compter de la réception de l'avis "
            "(délai global de paiement des personnes publiques)."
        ),
        email=identity.email,
        phone=identity.pes_phone,
        vat_number=identity.vat_number,
        ref_bdf=identity.pes_ref_bdf,
        signatory=signatory,
        cod_serv=identity.pes_cod_serv,
        dematerialised=identity.pes_dematerialised,
    )


def imputation_of(identity: IssuerIdentity, item_code: str) -> tuple[str, str, str | None]:
    """(CodProdLoc, nature, fonction) of an item: `PES_PRODUCTS` for it, else the issuer's defaults."""
    override = identity.pes_products.get(item_code)
    if override:
        parts = override.split(":")
        return parts[0], parts[1], parts[2] if len(parts) > 2 else identity.pes_fonction
    return identity.pes_product_code, identity.pes_nature, identity.pes_fonction


# --------------------------------------------------------------------------------------------------
# Pending invoices
# --------------------------------------------------------------------------------------------------


def _pending_query(issuer_code: str) -> Any:
    live = select(PesPiece.invoice_id).where(
        PesPiece.status != PesPieceStatus.REJECTED, col(PesPiece.credit_note_id).is_(None)
    )
    # queued for (or deposited on) Chorus Pro through its API: that channel sends it, never a titre too
    on_chorus = select(ChorusDeposit.invoice_id).where(col(ChorusDeposit.invoice_id).is_not(None))
    return (
        select(Invoice)
        .where(
            Invoice.issuer_code == issuer_code,
            col(Invoice.document_sha256).is_not(None),
            col(Invoice.status).in_(TITRE_STATUSES),
            Invoice.total_ttc > 0,
            or_(col(Invoice.sent_channel).is_(None), Invoice.sent_channel == CHANNEL),
            # a document filed in another channel's deposit folder left by that channel
            or_(col(Invoice.deposited_path).is_(None), col(Invoice.deposited_path).contains(f"/{CHANNEL}/")),
            col(Invoice.id).not_in(live),
            col(Invoice.id).not_in(on_chorus),
        )
        .order_by(col(Invoice.issued_on), col(Invoice.number))
    )


def pending_invoices(session: Session, issuer_code: str) -> list[Invoice]:
    """The issuer's invoices waiting to become titres (see the module's docstring)."""
    return list(session.exec(_pending_query(issuer_code)).all())


def _unfit(session: Session, invoice: Invoice) -> str | None:
    """Why an invoice cannot be an Edition 02 titre (an operator must complete it first), or None."""
    collectivity = session.get(Collectivity, invoice.collectivity_id)
    if not invoice.buyer_siret:
        return f"{invoice.number} : SIRET du débiteur manquant (obligatoire pour un ASAP Chorus Pro)"
    if collectivity is None or not collectivity.postcode:
        return f"{invoice.number} : code postal du débiteur manquant"
    return None


# --------------------------------------------------------------------------------------------------
# Pending credit notes: annulation-réduction titres
# --------------------------------------------------------------------------------------------------

SENT_TITRE = (PesPieceStatus.SENT, PesPieceStatus.ACCEPTED)


def _pending_annulations_query(issuer_code: str) -> Any:
    live = select(PesPiece.credit_note_id).where(
        PesPiece.status != PesPieceStatus.REJECTED, col(PesPiece.credit_note_id).is_not(None)
    )
    return (
        select(CreditNote, PesPiece)
        .join(PesPiece, col(PesPiece.invoice_id) == col(CreditNote.invoice_id))
        .where(
            CreditNote.issuer_code == issuer_code,
            col(CreditNote.document_sha256).is_not(None),
            col(PesPiece.credit_note_id).is_(None),  # the invoice's own titre…
            col(PesPiece.status).in_(SENT_TITRE),  # …sent to Hélios (a rejected one was never integrated)
            col(CreditNote.id).not_in(live),
        )
        .order_by(col(CreditNote.issued_on), col(CreditNote.number))
    )


def pending_credit_notes(session: Session, issuer_code: str) -> list[tuple[CreditNote, PesPiece]]:
    """The issuer's avoirs waiting to become annulation-réduction titres, each with the titre it cancels:
    an avoir of an invoice whose titre was sent (or accepted), with no annulation titre that is not
    rejected (a rejected one goes again)."""
    return [(note, piece) for note, piece in session.exec(_pending_annulations_query(issuer_code)).all()]


def _annulation_unfit(uow: UnitOfWork, note: CreditNote, original: PesPiece) -> str | None:
    """Why an avoir cannot be an annulation titre of `original` (it waits, or the accountant's hand is
    needed), or None."""
    invoice = uow.invoices.get(note.invoice_id)
    closed = rules.closed_exercice(original.exercice, note.issued_on)
    if closed:
        return f"avoir {note.number} (facture {invoice.number}, titre n° {original.number}) : {closed}"
    try:
        _reductions(uow, note, invoice)
    except ValueError as exc:
        return f"avoir {note.number} (facture {invoice.number}) : {exc}"
    return None


def _reductions(uow: UnitOfWork, note: CreditNote, invoice: Invoice) -> tuple[rules.Reduction, ...]:
    assert invoice.id is not None and note.id is not None
    original = _amounts(uow.invoices.lines(invoice.id), invoice.total_vat, invoice.total_ttc)
    credited = _amounts(uow.credit_notes.lines(note.id), note.total_vat, note.total_ttc)
    return rules.reductions(original, credited)


def _annulation_groups(
    settings: Settings, issuer_code: str, only: Sequence[int] | None
) -> tuple[dict[int, list[int]], list[str]]:
    """The pending avoirs by exercice (that of the titre they cancel), in order; and those left out."""
    groups: dict[int, list[int]] = {}
    skipped = []
    with unit_of_work(settings) as uow:
        for note, original in pending_credit_notes(uow.session, issuer_code):
            assert note.id is not None
            if only is not None and note.invoice_id not in only:
                continue
            problem = _annulation_unfit(uow, note, original)
            if problem:
                skipped.append(problem)
                continue
            groups.setdefault(original.exercice, []).append(note.id)
    return groups, skipped


def _number_annulations(
    settings: Settings, identity: IssuerIdentity, exercice: int, note_ids: Sequence[int], day: date
) -> int | None:
    """Number an annulation-réduction bordereau (TypBord 02, sequence PESA) and its titres (PEST) for those
    of `note_ids` still pending, in one transaction under the issuer's lock, like `_number`."""
    header = header_of(identity)
    with unit_of_work(settings) as uow:
        _lock_issuer(uow, identity.code)
        pairs = list(
            uow.session.exec(
                _pending_annulations_query(identity.code).where(col(CreditNote.id).in_(list(note_ids)))
            ).all()
        )
        pairs = [(n, o) for n, o in pairs if o.exercice == exercice and not _annulation_unfit(uow, n, o)]
        if not pairs:
            return None
        typ_bord = rules.TYP_BORD_ANNULATION
        number = next_value(uow.session, identity.code, rules.BORDEREAU_SEQUENCES[typ_bord], exercice)
        bordereau = PesBordereau(
            issuer_code=identity.code,
            exercice=exercice,
            typ_bord=typ_bord,
            number=number,
            kind=rules.ANNULATION_KIND,
            dated_on=max([day, *(n.issued_on for n, _ in pairs)]),
            file_name=rules.file_name(header.id_coll, exercice, number, typ_bord),
            total_ht=ZERO,
            total_vat=ZERO,
        )
        uow.session.add(bordereau)
        uow.session.flush()
        assert bordereau.id is not None
        for note, original in pairs:
            piece = next_value(uow.session, identity.code, "PEST", exercice)
            uow.session.add(
                PesPiece(
                    bordereau_id=bordereau.id,
                    invoice_id=note.invoice_id,
                    credit_note_id=note.id,
                    original_id=original.id,
                    issuer_code=identity.code,
                    exercice=exercice,
                    number=piece,
                    asap_id="",  # an annulation titre has no ASAP
                    pdf_id=rules.pj_id(header.id_coll, exercice, number, piece, "V"),
                )
            )
        audit.record(
            uow.session,
            actor="système",
            action="pes.bordereau_numbered",
            entity_type="pes_bordereau",
            entity_id=bordereau.id,
            details={
                "issuer": identity.code,
                "exercice": exercice,
                "typ_bord": typ_bord,
                "number": number,
                "kind": rules.ANNULATION_KIND,
                "credit_notes": [n.number for n, _ in pairs],
                "titres": [o.number for _, o in pairs],
            },
        )
        uow.commit()
        return bordereau.id


def _annulation_document(
    uow: UnitOfWork, settings: Settings, identity: IssuerIdentity, piece: PesPiece, invoice: Invoice
) -> doc.Piece:
    """An annulation-réduction titre from the stored rows: its avoir's lines on the lines of the titre it
    cancels, the avoir's Factur-X PDF as its PJ."""
    note = uow.session.get(CreditNote, piece.credit_note_id)
    original = uow.session.get(PesPiece, piece.original_id)
    if note is None or original is None:
        raise NotFound(f"titre d'annulation {piece.number} ({piece.exercice}) : avoir ou titre d'origine introuvable")
    assert note.id is not None
    by_position = {line.position: line for line in uow.credit_notes.lines(note.id)}
    lines = []
    for number, reduction in enumerate(_reductions(uow, note, invoice), start=1):
        line = _ligne(identity, invoice, by_position[reduction.amount.position], number, reduction.amount)
        lines.append(replace(line, original_line=reduction.original_line))
    return doc.Piece(
        number=piece.number,
        debtor=_debtor(uow, invoice),
        lines=tuple(lines),
        invoice_number=note.number,
        invoice_date=note.issued_on,
        subject=(
            f"Annulation du titre {original.number}/{original.exercice} — avoir {note.number} "
            f"de la facture {invoice.number}"
        ),
        asap_id="",
        pdf=doc.PJ(
            piece.pdf_id,
            f"{note.number}.pdf",
            None,
            f"Avoir {note.number} annulant la facture {invoice.number} (Factur-X)",
            paperwork.load(settings, note.document_sha256 or ""),
            "application/pdf",
        ),
        annulation=doc.Rattachement(original.exercice, original.number),
    )


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenBordereau:
    issuer: str
    exercice: int
    number: int
    kind: str  # campaign | daily | annulation
    typ_bord: str  # TypBord: 01 ordinary, 02 annulation-réduction (numbered apart)
    pieces: int
    total_ttc: Decimal
    file_name: str
    path: str
    created: bool  # False: written by an earlier export (or completed here after a crash)


@dataclass
class ExportReport:
    issuer: str
    bordereaux: list[WrittenBordereau] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # invoices and credit notes left waiting, and why
    gaps: list[str] = field(default_factory=list)  # what DGFiP's rules need that the settings lack
    schema_version: str | None = None  # the XSD version every file was validated against

    @property
    def paths(self) -> list[str]:
        return [b.path for b in self.bordereaux]


def export(
    settings: Settings,
    issuer: str,
    *,
    today: date | None = None,
    drop: FileDrop | None = None,
    only: Sequence[int] | None = None,
) -> ExportReport:
    """Write the issuer's pending bordereaux (first those a crash left numbered); returns what was written.
    `only` restricts the export to those invoice ids (a test's crash, a partial run)."""
    identity = pes_identity(settings, issuer)
    drop = drop or drop_for(settings)
    schemas = schemas_of(settings)
    day = today or paris_today()
    report = ExportReport(
        identity.code, gaps=dgfip_gaps(settings, identity), schema_version=schemas.version if schemas else None
    )
    for leftover in _numbered(settings, identity.code):
        report.bordereaux.append(_write(settings, leftover, drop, schemas, created=False))
    groups, report.skipped = _groups(settings, identity.code, only)
    for (exercice, kind), ids in groups.items():
        for chunk in rules.cut(ids, identity.pes_bordereau_max_pieces):
            bordereau_id = _number(settings, identity, exercice, kind, chunk, day)
            if bordereau_id is not None:
                report.bordereaux.append(_write(settings, bordereau_id, drop, schemas, created=True))
    # after the titres: an avoir whose titre this very export wrote goes at once
    annulations, skipped = _annulation_groups(settings, identity.code, only)
    report.skipped += skipped
    for exercice, note_ids in annulations.items():
        for chunk in rules.cut(note_ids, identity.pes_bordereau_max_pieces):
            bordereau_id = _number_annulations(settings, identity, exercice, chunk, day)
            if bordereau_id is not None:
                report.bordereaux.append(_write(settings, bordereau_id, drop, schemas, created=True))
    return report


def _numbered(settings: Settings, issuer_code: str) -> list[int]:
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(
            select(PesBordereau.id)
            .where(PesBordereau.issuer_code == issuer_code, PesBordereau.status == PesBordereauStatus.NUMBERED)
            .order_by(col(PesBordereau.exercice), col(PesBordereau.number))
        ).all()
    return [int(r) for r in rows if r is not None]


def _groups(
    settings: Settings, issuer_code: str, only: Sequence[int] | None
) -> tuple[dict[tuple[int, str], list[int]], list[str]]:
    """The pending invoices by (exercice, bordereau kind), in order; and those that cannot leave yet."""
    groups: dict[tuple[int, str], list[int]] = {}
    skipped = []
    with unit_of_work(settings) as uow:
        for invoice in pending_invoices(uow.session, issuer_code):
            assert invoice.id is not None
            if only is not None and invoice.id not in only:
                continue
            problem = _unfit(uow.session, invoice)
            if problem:
                skipped.append(problem)
                continue
            key = (rules.exercice_of(invoice.issued_on), rules.bordereau_kind(invoice.kind))
            groups.setdefault(key, []).append(invoice.id)
    return groups, skipped


def _lock_issuer(uow: UnitOfWork, code: str) -> None:
    """Queue the issuer's exports and acquit imports (row lock on PostgreSQL; SQLite's writers queue anyway)."""
    if uow.session.exec(select(Issuer).where(Issuer.code == code).with_for_update()).first() is None:
        raise NotFound(f"émetteur {code} absent de la base : lancez « mairie init »")


def _number(
    settings: Settings, identity: IssuerIdentity, exercice: int, kind: str, invoice_ids: Sequence[int], day: date
) -> int | None:
    """Number a bordereau and its titres for those of `invoice_ids` still pending, in one transaction under
    the issuer's lock (a concurrent export that took them meanwhile leaves none). Returns its id."""
    header = header_of(identity)
    with unit_of_work(settings) as uow:
        _lock_issuer(uow, identity.code)
        invoices = list(
            uow.session.exec(_pending_query(identity.code).where(col(Invoice.id).in_(list(invoice_ids)))).all()
        )
        if not invoices:
            return None
        number = next_value(uow.session, identity.code, rules.BORDEREAU_SEQUENCES[rules.TYP_BORD_ORDINAIRE], exercice)
        bordereau = PesBordereau(
            issuer_code=identity.code,
            exercice=exercice,
            typ_bord=rules.TYP_BORD_ORDINAIRE,
            number=number,
            kind=kind,
            dated_on=max([day, *(i.issued_on for i in invoices)]),
            file_name=rules.file_name(header.id_coll, exercice, number),
            total_ht=ZERO,
            total_vat=ZERO,
        )
        uow.session.add(bordereau)
        uow.session.flush()
        assert bordereau.id is not None
        now = datetime.now(UTC)
        for invoice in invoices:
            assert invoice.id is not None
            piece = next_value(uow.session, identity.code, "PEST", exercice)
            uow.session.add(
                PesPiece(
                    bordereau_id=bordereau.id,
                    invoice_id=invoice.id,
                    issuer_code=identity.code,
                    exercice=exercice,
                    number=piece,
                    asap_id=rules.pj_id(header.id_coll, exercice, number, piece, "A"),
                    pdf_id=rules.pj_id(header.id_coll, exercice, number, piece, "F"),
                )
            )
            invoice.sent_channel, invoice.sent_at = CHANNEL, now
            uow.session.add(invoice)
        audit.record(
            uow.session,
            actor="système",
            action="pes.bordereau_numbered",
            entity_type="pes_bordereau",
            entity_id=bordereau.id,
            details={
                "issuer": identity.code,
                "exercice": exercice,
                "number": number,
                "kind": kind,
                "invoices": [i.number for i in invoices],
            },
        )
        uow.commit()
        return bordereau.id


def _write(
    settings: Settings, bordereau_id: int, drop: FileDrop, schemas: doc.PesSchemas | None, *, created: bool
) -> WrittenBordereau:
    """Build a numbered bordereau's file from its rows, validate it, write it, mark it written (once)."""
    with unit_of_work(settings) as uow:
        bordereau = uow.session.exec(
            select(PesBordereau).where(PesBordereau.id == bordereau_id).with_for_update()
        ).one()
        pieces = _pieces(uow.session, bordereau_id)
        if bordereau.status != PesBordereauStatus.NUMBERED:
            return _written(uow.session, bordereau, pieces, created=False)
        identity = uow.issuers.get(bordereau.issuer_code)
        built = bordereau_document(uow, settings, identity, bordereau, pieces)
        xml = doc.build_pes_aller(header_of(identity), built, issuer_of(identity), bordereau.file_name, schemas)
        # kept in the document store too (any machine can hand it over again), then filed for Hélios
        kept = paperwork.keep(
            uow.session, settings, xml, kind="pes", filename=bordereau.file_name, content_type="application/xml"
        )
        bordereau.deposited_path = drop.write(f"{identity.code}/{CHANNEL}/{bordereau.file_name}", xml)
        bordereau.file_sha256 = kept.sha256
        bordereau.total_ht, bordereau.total_vat = built.ht, built.vat
        move(bordereau, PesBordereauStatus.WRITTEN)
        uow.session.add(bordereau)
        for piece in pieces:
            move(piece, PesPieceStatus.SENT)
            uow.session.add(piece)
        audit.record(
            uow.session,
            actor="système",
            action="pes.bordereau_written",
            entity_type="pes_bordereau",
            entity_id=bordereau.id,
            details={
                "file": bordereau.file_name,
                "sha256": bordereau.file_sha256,
                "pieces": len(pieces),
                "schema": schemas.version if schemas else None,
            },
        )
        uow.commit()
        return _written(uow.session, bordereau, pieces, created=created)


def _pieces(session: Session, bordereau_id: int) -> list[PesPiece]:
    return list(
        session.exec(select(PesPiece).where(PesPiece.bordereau_id == bordereau_id).order_by(col(PesPiece.number)))
    )


def _piece_total(session: Session, piece: PesPiece) -> Decimal:
    """What a titre asks (its invoice's total), or takes off (an annulation: its avoir's total)."""
    document = (
        session.get(CreditNote, piece.credit_note_id)
        if piece.credit_note_id is not None
        else session.get(Invoice, piece.invoice_id)
    )
    return document.total_ttc if document is not None else ZERO


def _written(session: Session, bordereau: PesBordereau, pieces: list[PesPiece], *, created: bool) -> WrittenBordereau:
    total = sum((_piece_total(session, p) for p in pieces), ZERO)
    return WrittenBordereau(
        issuer=bordereau.issuer_code,
        exercice=bordereau.exercice,
        number=bordereau.number,
        kind=bordereau.kind,
        typ_bord=bordereau.typ_bord,
        pieces=len(pieces),
        total_ttc=total,
        file_name=bordereau.file_name,
        path=bordereau.deposited_path or "",
        created=created,
    )


def bordereau_document(
    uow: UnitOfWork, settings: Settings, identity: IssuerIdentity, bordereau: PesBordereau, pieces: list[PesPiece]
) -> doc.Bordereau:
    """What a bordereau's file carries, from the stored rows (amounts as the invoices store them)."""
    built = []
    for piece in pieces:
        invoice = uow.invoices.get(piece.invoice_id)
        assert invoice.id is not None
        if piece.credit_note_id is not None:
            built.append(_annulation_document(uow, settings, identity, piece, invoice))
        else:
            built.append(_piece_document(uow, settings, identity, bordereau, piece, invoice))
    cumulative = None
    if identity.pes_dematerialised:
        earlier = uow.session.exec(
            select(PesBordereau).where(
                PesBordereau.issuer_code == bordereau.issuer_code,
                PesBordereau.exercice == bordereau.exercice,
                PesBordereau.typ_bord == bordereau.typ_bord,
                PesBordereau.number < bordereau.number,
                PesBordereau.status != PesBordereauStatus.REJECTED,
            )
        ).all()
        current = sum((p.ht for p in built), ZERO)
        cumulative = sum((b.total_ht for b in earlier), ZERO) + current
    return doc.Bordereau(
        bordereau.exercice, bordereau.number, bordereau.dated_on, tuple(built), cumulative, bordereau.typ_bord
    )


def _amounts(lines: Sequence[DocumentLineBase], vat: Decimal, ttc: Decimal) -> tuple[rules.TitreAmount, ...]:
    return rules.titre_amounts(
        [rules.AmountLine(li.position, li.total_ht, Decimal(li.vat_rate), li.total_ttc) for li in lines], vat, ttc
    )


def _debtor(uow: UnitOfWork, invoice: Invoice) -> doc.Tiers:
    collectivity = uow.collectivities.get(invoice.collectivity_id)
    return doc.Tiers(
        siret=invoice.buyer_siret or "",
        name=collectivity.name,
        category=rules.debtor_category(collectivity.kind, collectivity.name),
        nat_jur=rules.NAT_JUR_PUBLIC,
        address=doc.Address(
            collectivity.address or "Mairie", collectivity.postcode, collectivity.city or collectivity.name
        ),
        reference=collectivity.siren,
    )


def _ligne(
    identity: IssuerIdentity, invoice: Invoice, line: DocumentLineBase, number: int, amount: rules.TitreAmount
) -> doc.Ligne:
    product, nature, fonction = imputation_of(identity, line.item_code)
    return doc.Ligne(
        number=number,
        label=_line_label(line),
        product_code=product,
        nature=nature,
        fonction=fonction,
        rate=amount.rate,
        ht=amount.ht,
        vat=amount.vat,
        start=line.period_start or invoice.delivery_date,
        end=line.period_end or line.period_start or invoice.delivery_date,
    )


def _piece_document(
    uow: UnitOfWork,
    settings: Settings,
    identity: IssuerIdentity,
    bordereau: PesBordereau,
    piece: PesPiece,
    invoice: Invoice,
) -> doc.Piece:
    assert invoice.id is not None
    lines = uow.invoices.lines(invoice.id)
    amounts = _amounts(lines, invoice.total_vat, invoice.total_ttc)
    by_position = {line.position: line for line in lines}
    titre_lines = [
        _ligne(identity, invoice, by_position[amount.position], number, amount)
        for number, amount in enumerate(amounts, start=1)
    ]
    header = header_of(identity)
    pdf = paperwork.load(settings, invoice.document_sha256 or "")
    total = sum((a.ttc for a in amounts), ZERO)
    return doc.Piece(
        number=piece.number,
        debtor=_debtor(uow, invoice),
        lines=tuple(titre_lines),
        invoice_number=invoice.number,
        invoice_date=invoice.issued_on,
        subject=f"Pack Mairie Connectée — {period_label(invoice)} — facture {invoice.number}",
        asap_id=piece.asap_id,
        pdf=doc.PJ(
            piece.pdf_id,
            f"{invoice.number}.pdf",
            rules.TYPE_PJ_ASAP_CPP_DOCUMENT,
            f"Facture {invoice.number} (Factur-X)",
            pdf,
            "application/pdf",
        ),
        service_code=invoice.chorus_service_code,
        commitment_number=invoice.commitment_number,
        talon=rules.talon_lines(
            identity.pes_ref_bdf or header.cod_col + header.cod_bud,
            bordereau.exercice,
            bordereau.number,
            piece.number,
            total,
        ),
    )


def _line_label(line: DocumentLineBase) -> str:
    quantity = f" × {line.quantity}" if line.quantity != 1 else ""
    return f"{line.label}{quantity}"


# --------------------------------------------------------------------------------------------------
# Acquits
# --------------------------------------------------------------------------------------------------


@dataclass
class AcquitReport:
    issuer: str
    file_name: str  # the acquitted file (NomFic)
    accepted: list[int] = field(default_factory=list)  # bordereau numbers
    rejected: list[int] = field(default_factory=list)
    reasons: dict[int, list[str]] = field(default_factory=dict)  # bordereau number → reasons
    pj_rejected: list[str] = field(default_factory=list)  # "IdUnique : reason"
    unknown: list[str] = field(default_factory=list)  # elements naming nothing we sent
    resend: list[str] = field(default_factory=list)  # invoices (and avoirs) to go in a new bordereau


def _issuer_of_acquit(settings: Settings, acquit: doc.Acquit) -> IssuerIdentity:
    for identity in settings.issuers():
        if identity.pes_cod_col is None:
            continue
        if (
            (identity.pes_id_coll or identity.siret) == acquit.id_coll
            and identity.pes_cod_col == acquit.cod_col
            and identity.pes_cod_bud == acquit.cod_bud
        ):
            return identity
    raise NotFound(
        f"acquit d'un budget inconnu (IdColl {acquit.id_coll}, CodCol {acquit.cod_col}, CodBud {acquit.cod_bud}) : "
        "aucun émetteur n'a ces réglages PES"
    )


def import_acquit(settings: Settings, content: bytes, source: str = "", *, issuer: str | None = None) -> AcquitReport:
    """Record Hélios's acquit (see the module's docstring); the operators' email is queued in the same
    transaction (dispatch it after). `issuer`, when given, is the issuer it must be of (a watched folder's)."""
    acquit = doc.parse_acquit(content, schemas_of(settings))
    identity = _issuer_of_acquit(settings, acquit)
    if issuer is not None and identity.code != issuer:
        raise InvalidInput(f"acquit de {identity.code} déposé dans le dossier de {issuer} : rien n'est importé")
    report = AcquitReport(identity.code, acquit.file_name)
    with unit_of_work(settings) as uow:
        _lock_issuer(uow, identity.code)
        changed: list[PesBordereau] = []
        for element in acquit.elements:
            if element.domain == doc.DOMAIN_PJ:
                _pj_acquit(uow.session, identity.code, element, report)
                continue
            bordereau = _acquitted_bordereau(uow.session, identity.code, acquit, element)
            if bordereau is None:
                if not element.accepted or element.bordereau is not None:
                    report.unknown.append(_describe(element))
                continue
            if _settle(uow.session, bordereau, element, source or acquit.file_name, report):
                changed.append(bordereau)
        for bordereau in changed:
            if bordereau.status == PesBordereauStatus.REJECTED:
                _tell_operators(uow, settings, identity, bordereau, rejected=True)
        touched = [p.split(" : ")[0] for p in report.pj_rejected]
        parents = uow.session.exec(
            select(PesPiece.bordereau_id).where(
                or_(col(PesPiece.asap_id).in_(touched), col(PesPiece.pdf_id).in_(touched))
            )
        ).all()
        for parent_id in sorted(set(parents)):
            parent = uow.session.get(PesBordereau, parent_id)
            if parent is not None and parent.status != PesBordereauStatus.REJECTED:
                _tell_operators(uow, settings, identity, parent, rejected=False)
        audit.record(
            uow.session,
            actor="Hélios",
            action="pes.acquit",
            entity_type="issuer",
            entity_id=None,
            details={
                "issuer": identity.code,
                "file": acquit.file_name,
                "source": source,
                "accepted": report.accepted,
                "rejected": report.rejected,
                "pj_rejected": report.pj_rejected,
            },
        )
        uow.commit()
    return report


def _describe(element: doc.AcquitElement) -> str:
    what = f"bordereau {element.bordereau} ({element.exercice})" if element.bordereau else "fichier"
    state = "accepté" if element.accepted else "rejeté"
    return f"{what} {state} : inconnu ici" + (f" — {'; '.join(element.errors)}" if element.errors else "")


def _acquitted_bordereau(
    session: Session, issuer_code: str, acquit: doc.Acquit, element: doc.AcquitElement
) -> PesBordereau | None:
    # the bordereau of the acquitted file (NomFic, with or without its extension)
    names = {acquit.file_name, f"{acquit.file_name.removesuffix('.xml')}.xml"}
    if element.bordereau is not None:
        query = select(PesBordereau).where(
            PesBordereau.issuer_code == issuer_code, PesBordereau.number == element.bordereau
        )
        if element.exercice is not None:
            query = query.where(PesBordereau.exercice == element.exercice)
        found = list(session.exec(query).all())
        if len(found) > 1:
            # an ordinary and an annulation bordereau share the number (each type has its own sequence):
            # the acquitted file tells which; when it does not, nothing is guessed (reported unknown)
            found = [b for b in found if b.file_name in names]
        return found[0] if len(found) == 1 else None
    # a whole file refused (technical domain, signature…): the bordereau of that file
    return session.exec(
        select(PesBordereau).where(PesBordereau.issuer_code == issuer_code, col(PesBordereau.file_name).in_(names))
    ).first()


def _settle(
    session: Session, bordereau: PesBordereau, element: doc.AcquitElement, source: str, report: AcquitReport
) -> bool:
    """Accept or reject a written bordereau and its titres; an acquit read twice changes nothing the second
    time. Returns whether it changed."""
    target = PesBordereauStatus.ACCEPTED if element.accepted else PesBordereauStatus.REJECTED
    (report.accepted if element.accepted else report.rejected).append(bordereau.number)
    if not element.accepted:
        detail = [f"titre {n} : {e}" for n, errors in element.pieces for e in errors]
        report.reasons[bordereau.number] = [*element.errors, *detail] or ["rejet sans motif donné"]
    if bordereau.status == target:
        return False
    move(bordereau, target)  # a numbered bordereau (never written) or one already settled otherwise: refused
    bordereau.acquitted_at = datetime.now(UTC)
    bordereau.acquit_file = source[:200]
    bordereau.errors = report.reasons.get(bordereau.number, [])
    session.add(bordereau)
    piece_errors = {number: list(errors) for number, errors in element.pieces}
    for piece in _pieces(session, bordereau.id or 0):
        move(piece, PesPieceStatus.ACCEPTED if element.accepted else PesPieceStatus.REJECTED)
        if not element.accepted:
            piece.errors = piece_errors.get(piece.number, [])
            document = (
                session.get(CreditNote, piece.credit_note_id)
                if piece.credit_note_id is not None
                else session.get(Invoice, piece.invoice_id)
            )
            if document is not None:
                report.resend.append(document.number)
        session.add(piece)
    return True


def _pj_acquit(session: Session, issuer_code: str, element: doc.AcquitElement, report: AcquitReport) -> None:
    if element.accepted or not element.id_unique:
        return
    piece = session.exec(
        select(PesPiece).where(
            PesPiece.issuer_code == issuer_code,
            or_(PesPiece.asap_id == element.id_unique, PesPiece.pdf_id == element.id_unique),
        )
    ).first()
    reason = "; ".join(element.errors) or "PJ rejetée sans motif donné"
    if piece is None:
        report.unknown.append(f"PJ {element.id_unique} rejetée : inconnue ici")
        return
    report.pj_rejected.append(f"{element.id_unique} : {reason}")
    note = f"PJ {element.id_unique} rejetée : {reason}"
    if note not in piece.errors:
        piece.errors = [*piece.errors, note]
        session.add(piece)


def _tell_operators(
    uow: UnitOfWork, settings: Settings, identity: IssuerIdentity, bordereau: PesBordereau, *, rejected: bool
) -> None:
    """The operators' task: what Hélios refused and what happens next (once per bordereau and outcome)."""
    titres = []
    for piece in _pieces(uow.session, bordereau.id or 0):
        if not rejected and not piece.errors:
            continue
        invoice = uow.invoices.get(piece.invoice_id)
        collectivity = uow.collectivities.get(invoice.collectivity_id)
        note = uow.session.get(CreditNote, piece.credit_note_id) if piece.credit_note_id is not None else None
        titres.append(
            {
                "invoice_number": invoice.number,
                "credit_note_number": note.number if note is not None else None,
                "collectivity_name": collectivity.name,
                "piece_number": piece.number,
                "reasons": list(piece.errors),
            }
        )
    enqueue_message(
        uow.session,
        settings,
        "pes_rejected",
        {
            "issuer_name": identity.name,
            "issuer_code": identity.code,
            "exercice": bordereau.exercice,
            "bordereau_number": bordereau.number,
            "annulation": bordereau.typ_bord == rules.TYP_BORD_ANNULATION,
            "file_name": bordereau.file_name,
            "bordereau_rejected": rejected,
            "reasons": list(bordereau.errors) if rejected else [],
            "titres": titres,
        },
        to=[settings.operators_email],
        dedup_key=f"pes-{'rejet' if rejected else 'pj'}:{identity.code}:{bordereau.exercice}:{_typed(bordereau)}"
        + ("" if rejected else ":" + hashlib.sha256(repr(titres).encode()).hexdigest()[:16]),
        related=("pes_bordereau", bordereau.id),
    )


def _typed(bordereau: PesBordereau) -> str:
    """A bordereau's number, told apart from the other type's same number (`AR3` for annulation 3)."""
    return f"AR{bordereau.number}" if bordereau.typ_bord == rules.TYP_BORD_ANNULATION else str(bordereau.number)


def acquit_inbox(settings: Settings, identity: IssuerIdentity) -> Inbox:
    """The watched folder of an issuer's acquits: `<deposit dir>/<ISSUER>/pes_asap/acquits/`."""
    return FolderInbox(settings.deposit_path / identity.code / CHANNEL / ACQUITS)


@dataclass(frozen=True)
class InboxResult:
    name: str
    report: AcquitReport | None
    error: str | None
    moved_to: str


def import_acquit_folder(settings: Settings, inboxes: dict[str, Inbox] | None = None) -> list[InboxResult]:
    """Import every acquit waiting in the watched folders of the issuers on pes_asap (or `inboxes`, by
    issuer code); each file is moved to `traites/` once imported, to `erreurs/` with the reason otherwise."""
    if inboxes is None:
        inboxes = {i.code: acquit_inbox(settings, i) for i in settings.issuers() if i.billing_channel == CHANNEL}
    results = []
    for code, inbox in inboxes.items():
        for name in inbox.waiting():
            try:
                report = import_acquit(settings, inbox.read(name), source=name, issuer=code)
            except (doc.PesInvalid, NotFound, InvalidInput) as exc:
                results.append(InboxResult(name, None, str(exc), inbox.done(name, ok=False, note=str(exc))))
                continue
            results.append(InboxResult(name, report, None, inbox.done(name, ok=True)))
    return results


# --------------------------------------------------------------------------------------------------
# What an invoice's JSON says
# --------------------------------------------------------------------------------------------------


def invoice_state(session: Session, invoice: Invoice, channel: str | None) -> dict[str, Any] | None:
    """`{bordereau, piece, state}` of an invoice's latest titre; `pending` (no numbers) for an invoice of an
    issuer on pes_asap not sent yet; None when the invoice has nothing to do with PES. When an avoir of it
    became an annulation-réduction titre, `annulation` says the same of the latest one."""
    latest = select(PesPiece).where(PesPiece.invoice_id == invoice.id).order_by(col(PesPiece.id).desc())
    piece = session.exec(latest.where(col(PesPiece.credit_note_id).is_(None))).first()
    if piece is not None:
        state = _piece_state(session, piece)
        annulation = session.exec(latest.where(col(PesPiece.credit_note_id).is_not(None))).first()
        if annulation is not None:
            state["annulation"] = _piece_state(session, annulation)
        return state
    if channel == CHANNEL and invoice.sent_channel is None and invoice.status in TITRE_STATUSES:
        return {"bordereau": None, "piece": None, "state": "pending"}
    return None


def _piece_state(session: Session, piece: PesPiece) -> dict[str, Any]:
    bordereau = session.get(PesBordereau, piece.bordereau_id)
    return {"bordereau": bordereau.number if bordereau else None, "piece": piece.number, "state": str(piece.status)}
