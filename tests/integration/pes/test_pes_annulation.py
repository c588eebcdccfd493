"""A credit note (avoir) of an invoice whose titre went to Hélios becomes an annulation-réduction titre: a
bordereau of its own (TypBord 02, numbered apart), a titre correctif (TypPce 02, NatPce 06) whose lines
each name the line of the titre they reduce (RattachPiece), the avoir's PDF as its PJ — valid by DGFiP's
XSD. An avoir of a titre of a closed exercice is left out and reported; a rejected annulation goes again;
a crash between numbering and writing is completed with the same numbers and bytes."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import col, select

from documents import pes as doc
from documents.pes import pj_contents
from mairie.database import unit_of_work
from mairie.services import credit_notes, paperwork
from mairie.services.channels import pes as channel
from mairie.services.story import collectivity_story
from models.entities import CreditNote, Invoice, NumberSequence, OutboxMessage, PesBordereau, PesPiece
from models.lifecycle import PesBordereauStatus, PesPieceStatus
from tests.integration.pes.conftest import CAMPAIGN_DAY, World, validate
from tests.integration.pes.test_pes_acquit import acquit_xml
from tests.integration.pes.test_pes_crash import Crash, CrashingDrop

D = Decimal
CREDIT_DAY = date(2027, 1, 20)


def v(element: etree._Element, path: str) -> str:
    found = element.find(path)
    assert found is not None, path
    return found.get("V", "")


def invoice_of(settings, issuer: str, kind: str, insee: str) -> Invoice:
    """The issuer's invoice of that kind for the commune `insee`."""
    with unit_of_work(settings) as uow:
        for invoice in uow.session.exec(
            select(Invoice).where(Invoice.issuer_code == issuer, Invoice.kind == kind).order_by(col(Invoice.number))
        ):
            if uow.collectivities.get(invoice.collectivity_id).insee_code == insee:
                uow.session.expunge(invoice)
                return invoice
    raise AssertionError(f"no {kind} invoice of {issuer} for {insee}")


def rows(settings, model, *where):
    with unit_of_work(settings) as uow:
        found = list(uow.session.exec(select(model).where(*where).order_by(col(model.id))))
        uow.session.expunge_all()
        return found


def piece_of(settings, invoice: Invoice, *, annulation: bool) -> PesPiece:
    pieces = rows(settings, PesPiece, PesPiece.invoice_id == invoice.id)
    return [p for p in pieces if (p.credit_note_id is not None) == annulation][-1]


def test_an_avoir_of_a_sent_titre_becomes_a_valid_annulation_titre(any_copy: World, xsd: Path) -> None:
    settings = any_copy.settings
    channel.export(settings, "CDG62", today=CAMPAIGN_DAY)  # 2026: 3 first invoices; 2027: 3 renewals
    # Balinghem's 2027 support fee is cancelled (same exercice as its titre); Berles-Monchel's 2026 first
    # invoice too, but its titre is of 2026, an exercice closed by then
    renewal = invoice_of(settings, "CDG62", "renewal", "62078")
    first = invoice_of(settings, "CDG62", "first", "62113")
    note = credit_notes.credit_invoice(settings, renewal.number, "Erreur sur la tranche de population", CREDIT_DAY)
    closed = credit_notes.credit_invoice(settings, first.number, "Adhésion annulée", CREDIT_DAY)

    report = channel.export(settings, "CDG62", today=CREDIT_DAY)
    [written] = report.bordereaux
    assert (written.exercice, written.number, written.typ_bord, written.kind, written.pieces) == (
        2027,
        1,  # the first annulation bordereau: its own sequence (ordinary 2027 bordereau 1 exists too)
        "02",
        "annulation",
        1,
    )
    assert written.total_ttc == renewal.total_ttc
    assert Path(written.path).name == f"PESALR1_{settings.cdg62.siret}_2027_AR0000001.xml"
    [skipped] = report.skipped
    assert closed.credit_note in skipped and "exercice clos 2026" in skipped and "mandat" in skipped

    xml = Path(written.path).read_bytes()
    validate(xml, xsd)
    root = etree.fromstring(xml)
    block = root.find("PES_RecetteAller/Bordereau/BlocBordereau")
    assert block is not None
    assert (v(block, "Exer"), v(block, "IdBord"), v(block, "TypBord")) == ("2027", "1", "02")
    assert D(v(block, "MtBordHt")) == renewal.total_ttc and block.find("MtBordTVA") is None
    [piece] = root.iterfind("PES_RecetteAller/Bordereau/Piece")
    original = piece_of(settings, renewal, annulation=False)
    annulation = piece_of(settings, renewal, annulation=True)
    assert annulation.original_id == original.id and annulation.status == PesPieceStatus.SENT
    assert int(v(piece, "BlocPiece/IdPce")) == annulation.number == 4  # after the 3 titres of 2027 (PEST)
    assert (v(piece, "BlocPiece/TypPce"), v(piece, "BlocPiece/NatPce")) == ("02", "06")
    for absent in ("Edition", "NumeroFacture", "NumeroEngagement", "CodeService"):
        assert piece.find(f"BlocPiece/{absent}") is None, absent  # nothing asked of the debtor, no ASAP
    assert note.credit_note in v(piece, "BlocPiece/ObjPce") and str(original.number) in v(piece, "BlocPiece/ObjPce")

    # each line reduces the same line of the original titre, by its whole amount (the avoir is total)
    original_xml = Path(rows(settings, PesBordereau, PesBordereau.id == original.bordereau_id)[0].deposited_path or "")
    original_piece = next(
        p
        for p in etree.fromstring(original_xml.read_bytes()).iterfind("PES_RecetteAller/Bordereau/Piece")
        if int(v(p, "BlocPiece/IdPce")) == original.number
    )
    billed = {
        v(li, "BlocLignePiece/InfoLignePiece/IdLigne"): v(li, "BlocLignePiece/InfoLignePiece/MtHT")
        for li in original_piece.iterfind("LigneDePiece")
    }
    lines = piece.findall("LigneDePiece")
    assert len(lines) == len(billed)
    for line in lines:
        attached = line.find("BlocLignePiece/RattachPiece")
        assert attached is not None
        assert (v(attached, "NatPceOrig"), v(attached, "ExerRat"), v(attached, "IdPceOrig")) == (
            "01",
            "2027",
            str(original.number),
        )
        assert billed[v(attached, "IdLigneOrig")] == v(line, "BlocLignePiece/InfoLignePiece/MtHT")
        assert v(line, "Tiers/InfoTiers/IdTiers") == renewal.buyer_siret
    # its one PJ: the avoir's PDF, byte for byte, untyped (no PJ type names an avoir)
    [ref] = piece.iterfind("BlocPiece/PJRef")
    assert ref.find("TypePJ") is None
    [stored] = rows(settings, CreditNote, CreditNote.number == note.credit_note)
    assert pj_contents(xml) == {v(ref, "IdUnique"): paperwork.load(settings, stored.document_sha256 or "")}

    # the invoice's JSON tells its titre and its annulation
    story = {i["number"]: i for i in collectivity_story(settings, "62078")["invoices"]}
    assert story[renewal.number]["pes"] == {
        "bordereau": 1,
        "piece": original.number,
        "state": "sent",
        "annulation": {"bordereau": 1, "piece": annulation.number, "state": "sent"},
    }
    # nothing twice: the next export writes nothing, the closed exercice is still reported
    again = channel.export(settings, "CDG62", today=CREDIT_DAY)
    assert again.bordereaux == [] and again.skipped == report.skipped
    with unit_of_work(settings) as uow:
        assert uow.session.get(NumberSequence, ("CDG62", "PESA", 2027)).last_value == 1
        assert uow.session.get(NumberSequence, ("CDG62", "PESB", 2027)).last_value == 1
        assert uow.session.get(NumberSequence, ("CDG62", "PEST", 2027)).last_value == 4


def test_an_avoir_of_an_invoice_never_sent_is_no_annulation(copy: World) -> None:
    """Credited before any export: the invoice never becomes a titre, so there is nothing to cancel."""
    settings = copy.settings
    renewal = invoice_of(settings, "CDG59", "renewal", "59001")
    credit_notes.credit_invoice(settings, renewal.number, "Doublon", CAMPAIGN_DAY)
    report = channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    assert all(b.typ_bord == "01" for b in report.bordereaux) and report.skipped == []
    assert rows(settings, PesPiece, PesPiece.invoice_id == renewal.id) == []


def test_a_rejected_annulation_goes_again_and_the_acquit_tells_the_two_bordereaux_1_apart(
    any_copy: World, xsd: Path
) -> None:
    settings = any_copy.settings
    channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    renewal = invoice_of(settings, "CDG59", "renewal", "59004")
    note = credit_notes.credit_invoice(settings, renewal.number, "Services non rendus", CREDIT_DAY)
    [written] = channel.export(settings, "CDG59", today=CREDIT_DAY).bordereaux
    annulation = rows(settings, PesBordereau, PesBordereau.file_name == written.file_name)[0]
    ordinary = rows(
        settings, PesBordereau, PesBordereau.exercice == 2027, PesBordereau.typ_bord == "01", PesBordereau.number == 1
    )[0]
    assert annulation.number == ordinary.number == 1 and annulation.exercice == ordinary.exercice

    # an acquit of "bordereau 1/2027" whose file is neither: nothing is guessed
    vague = acquit_xml(settings.cdg59, "AUTRE.xml", [{"domain": 6, "ok": False, "bordereau": 1, "exercice": 2027}])
    assert channel.import_acquit(settings, vague).unknown
    assert {b.status for b in rows(settings, PesBordereau, PesBordereau.exercice == 2027)} == {
        PesBordereauStatus.WRITTEN
    }

    content = acquit_xml(
        settings.cdg59,
        annulation.file_name,
        [
            {
                "domain": 6,
                "ok": False,
                "bordereau": 1,
                "exercice": 2027,
                "errors": [("ERREUR_AUTRE", "Titre d'origine non trouvé")],
            }
        ],
    )
    validate(content, xsd, "PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd")
    report = channel.import_acquit(settings, content, source="ACK_AR.xml")
    assert report.rejected == [1] and report.resend == [note.credit_note]
    assert rows(settings, PesBordereau, PesBordereau.id == annulation.id)[0].status == PesBordereauStatus.REJECTED
    assert rows(settings, PesBordereau, PesBordereau.id == ordinary.id)[0].status == PesBordereauStatus.WRITTEN
    [mail] = rows(settings, OutboxMessage, OutboxMessage.kind == "pes_rejected")
    assert "bordereau d'annulation 1/2027 rejeté" in mail.subject
    assert f"annulation par l'avoir {note.credit_note} de la facture {renewal.number}" in mail.body_text

    # the next export sends it again: a new annulation bordereau, a new titre number, still valid
    [resent] = channel.export(settings, "CDG59", today=CREDIT_DAY).bordereaux
    assert (resent.typ_bord, resent.exercice, resent.number) == ("02", 2027, 2)
    validate(Path(resent.path).read_bytes(), xsd)
    pieces = rows(settings, PesPiece, col(PesPiece.credit_note_id).is_not(None))
    assert [p.status for p in pieces] == [PesPieceStatus.REJECTED, PesPieceStatus.SENT]
    assert pieces[1].number == pieces[0].number + 1 and pieces[1].pdf_id != pieces[0].pdf_id


def test_a_crash_after_numbering_an_annulation_is_completed_with_the_same_bytes(any_copy: World) -> None:
    settings = any_copy.settings
    channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    renewal = invoice_of(settings, "CDG62", "renewal", "62700")
    credit_notes.credit_invoice(settings, renewal.number, "Erreur de quantité", CREDIT_DAY)
    with pytest.raises(Crash):
        channel.export(settings, "CDG62", today=CREDIT_DAY, drop=CrashingDrop(settings.deposit_path))
    [left] = rows(settings, PesBordereau, PesBordereau.typ_bord == "02")
    assert left.status == PesBordereauStatus.NUMBERED

    report = channel.export(settings, "CDG62", today=CREDIT_DAY)
    assert [(b.typ_bord, b.number, b.created) for b in report.bordereaux] == [("02", 1, False)]
    written = Path(report.bordereaux[0].path).read_bytes()
    with unit_of_work(settings) as uow:
        bordereau = uow.session.get(PesBordereau, left.id)
        assert bordereau is not None and bordereau.file_sha256 == hashlib.sha256(written).hexdigest()
        identity = uow.issuers.get("CDG62")
        pieces = list(uow.session.exec(select(PesPiece).where(PesPiece.bordereau_id == left.id)))
        again = doc.build_pes_aller(
            channel.header_of(identity),
            channel.bordereau_document(uow, settings, identity, bordereau, pieces),
            channel.issuer_of(identity),
            bordereau.file_name,
        )
        assert uow.session.get(NumberSequence, ("CDG62", "PESA", 2027)).last_value == 1
    assert again == written
    assert channel.export(settings, "CDG62", today=CREDIT_DAY).bordereaux == []


def test_an_avoir_numbered_meanwhile_by_another_export_is_not_numbered_twice(any_copy: World) -> None:
    """Two exports at once: the second, numbering under the issuer's lock, finds the avoir taken."""
    settings = any_copy.settings
    channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    renewal = invoice_of(settings, "CDG59", "renewal", "59007")
    credit_notes.credit_invoice(settings, renewal.number, "Résiliation", CREDIT_DAY)
    groups, skipped = channel._annulation_groups(settings, "CDG59", None)
    assert skipped == [] and list(groups) == [2027]
    identity = settings.cdg59
    first = channel._number_annulations(settings, identity, 2027, groups[2027], CREDIT_DAY)
    assert first is not None
    assert channel._number_annulations(settings, identity, 2027, groups[2027], CREDIT_DAY) is None
    assert len(rows(settings, PesPiece, col(PesPiece.credit_note_id).is_not(None))) == 1
    with unit_of_work(settings) as uow:
        assert uow.session.get(NumberSequence, ("CDG59", "PESA", 2027)).last_value == 1
