"""A campaign of both CDGs on pes_asap leaves PES files that validate against DGFiP's XSD and carry every
invoice as a titre with its ASAP and its PDF; the syndicat, on Chorus Pro, sends none."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import col, select

from documents.pes import pj_contents
from mairie.database import unit_of_work
from mairie.services import paperwork
from mairie.services.channels import pes as channel
from mairie.services.story import collectivity_story
from models.entities import Invoice, NumberSequence, PesBordereau, PesPiece
from models.errors import InvalidInput
from models.lifecycle import PesBordereauStatus, PesPieceStatus
from tests.integration.pes.conftest import CAMPAIGN_DAY, World, validate

D = Decimal


def v(element: etree._Element, path: str) -> str:
    found = element.find(path)
    assert found is not None, path
    return found.get("V", "")


def invoices_of(settings, issuer: str, kind: str | None = None) -> list[Invoice]:
    with unit_of_work(settings) as uow:
        query = select(Invoice).where(Invoice.issuer_code == issuer).order_by(col(Invoice.number))
        if kind:
            query = query.where(Invoice.kind == kind)
        rows = list(uow.session.exec(query).all())
        uow.session.expunge_all()  # readable after the unit of work (its rollback would expire them)
        return rows


def test_both_cdgs_export_valid_files_with_every_invoice_as_a_titre(any_copy: World, xsd: Path) -> None:
    settings = any_copy.settings.model_copy(
        update={"cdg62": any_copy.settings.cdg62.model_copy(update={"pes_bordereau_max_pieces": 2})}
    )
    reports = {code: channel.export(settings, code, today=CAMPAIGN_DAY) for code in ("CDG62", "CDG59")}
    assert reports["CDG62"].schema_version == "5.17" and reports["CDG62"].gaps == []
    # CDG 62: a daily bordereau for the three first invoices of 2026 — cut at 2 —, then the campaign's three
    # renewal invoices of 2027 in bordereaux of at most 2; CDG 59 (200 by bordereau): one of each
    assert [(b.exercice, b.number, b.kind, b.pieces) for b in reports["CDG62"].bordereaux] == [
        (2026, 1, "daily", 2),
        (2026, 2, "daily", 1),
        (2027, 1, "campaign", 2),
        (2027, 2, "campaign", 1),
    ]
    assert [(b.exercice, b.number, b.kind, b.pieces) for b in reports["CDG59"].bordereaux] == [
        (2026, 1, "daily", 3),
        (2027, 1, "campaign", 3),
    ]

    for code, report in reports.items():
        invoices = {i.number: i for i in invoices_of(settings, code)}
        seen = []
        for written in report.bordereaux:
            path = Path(written.path)
            assert path.parent == settings.deposit_path / code / "pes_asap"
            xml = path.read_bytes()
            validate(xml, xsd)  # the PES_Aller, against the official schema
            root = etree.fromstring(xml)
            head = root.find("EnTetePES")
            assert head is not None
            identity = settings.cdg62 if code == "CDG62" else settings.cdg59
            assert (v(head, "IdPost"), v(head, "IdColl"), v(head, "CodCol"), v(head, "CodBud")) == (
                identity.pes_id_post,
                identity.siret,
                identity.pes_cod_col,
                identity.pes_cod_bud,
            )
            assert v(root, "PES_RecetteAller/EnTeteRecette/IdVer") == "2"
            block = root.find("PES_RecetteAller/Bordereau/BlocBordereau")
            assert block is not None
            assert (int(v(block, "Exer")), int(v(block, "IdBord"))) == (written.exercice, written.number)
            assert block.find("MtBordTVA") is None  # the CDGs are outside the scope of VAT: no 0 written
            attachments = pj_contents(xml)
            bordereau_ht = D(0)
            for piece in root.iterfind("PES_RecetteAller/Bordereau/Piece"):
                number = v(piece, "BlocPiece/NumeroFacture")
                invoice = invoices[number]
                seen.append(number)
                assert v(piece, "BlocPiece/Edition") == "02" and v(piece, "BlocPiece/TypPce") == "01"
                lines = piece.findall("LigneDePiece")
                assert lines
                amount = sum(D(v(li, "BlocLignePiece/InfoLignePiece/MtHT")) for li in lines)
                assert amount == invoice.total_ttc  # what the titre collects is what the invoice asks
                assert all(li.find("BlocLignePiece/InfoLignePiece/MtTVA") is None for li in lines)
                bordereau_ht += amount
                for line in lines:
                    assert v(line, "Tiers/InfoTiers/IdTiers") == invoice.buyer_siret
                    assert v(line, "Tiers/InfoTiers/NatIdTiers") == "01"
                    assert v(line, "Tiers/InfoTiers/TypTiers") == "01"
                refs = {v(r, "TypePJ"): v(r, "IdUnique") for r in piece.iterfind("BlocPiece/PJRef")}
                assert set(refs) == {"006", "008"}
                assert all(re.fullmatch(r"[0-9A-Za-z]{1,50}", i) for i in refs.values())
                # the Factur-X PDF taken back out of its PJ is, byte for byte, the stored one
                assert attachments[refs["008"]] == paperwork.load(settings, invoice.document_sha256 or "")
                # the ASAP (PJ 006) is a PES_Facture typed 09, valid too, pointing back to its titre
                asap = attachments[refs["006"]]
                validate(asap, xsd)
                facture = etree.fromstring(asap).find("PES_Facture")
                assert facture is not None and v(facture, "TypeFact") == "09"
                kinds = sorted(v(t, "InfoTiers/TypTiers") for t in facture.iterfind("Tiers"))
                assert kinds == ["25", "26"]
                indiv = facture.find("FactureIndiv")
                assert indiv is not None
                assert v(indiv, "NumeroFacture") == number
                assert (int(v(indiv, "RefTitre/Exercice")), int(v(indiv, "RefTitre/NumBordereau"))) == (
                    written.exercice,
                    written.number,
                )
                assert v(indiv, "RefTitre/NumTitre") == v(piece, "BlocPiece/IdPce")
                assert D(v(indiv, "TotalAPayer/MtTotalTTC")) == invoice.total_ttc
                assert all(re.fullmatch(r"[0-9]+", v(indiv, f"TalonOptique2Lignes/Ligne{n}")) for n in (1, 2))
            assert D(v(block, "MtBordHt")) == bordereau_ht
            assert int(v(block, "NbrPce")) == written.pieces
        assert sorted(seen) == sorted(invoices)  # every invoice once, none twice
        # the folder holds only what is to be sent to Hélios; the filed PDFs are apart, in factures/
        folder = settings.deposit_path / code / "pes_asap"
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert files == sorted(Path(b.path).name for b in report.bordereaux)
        assert sorted(p.stem for p in (folder / "factures").iterdir()) == sorted(invoices)

    with unit_of_work(settings) as uow:
        for code in ("CDG62", "CDG59"):
            pieces = uow.session.exec(select(PesPiece).where(PesPiece.issuer_code == code)).all()
            for exercice in (2026, 2027):
                numbers = sorted(p.number for p in pieces if p.exercice == exercice)
                assert numbers == list(range(1, len(numbers) + 1))  # gapless per issuer and exercice
                sequence = uow.session.get(NumberSequence, (code, "PEST", exercice))
                assert sequence is not None and sequence.last_value == len(numbers)
            assert all(p.status == PesPieceStatus.SENT for p in pieces)
        invoices = uow.session.exec(select(Invoice)).all()
        assert {i.sent_channel for i in invoices if i.issuer_code != "LFN"} == {"pes_asap"}
        assert {i.sent_channel for i in invoices if i.issuer_code == "LFN"} == {None}
        assert not uow.session.exec(select(PesPiece).where(PesPiece.issuer_code == "LFN")).all()

    # nothing left: a second export writes nothing
    assert channel.export(settings, "CDG62", today=CAMPAIGN_DAY).bordereaux == []


def test_the_syndicat_on_chorus_pro_sends_no_pes(copy: World) -> None:
    with pytest.raises(InvalidInput, match="facturx_chorus"):
        channel.export(copy.settings, "LFN")
    assert not (copy.settings.deposit_path / "LFN" / "pes_asap").exists()


def test_a_vat_issuer_writes_its_vat_and_its_product_codes(copy: World, xsd: Path) -> None:
    """The syndicat's 20 % VAT, were it on pes_asap: each titre books exactly the invoice's VAT (BT-110) and
    collects exactly its amount due (BT-115), rounding amount included; the NAS goes to its own product code
    and account."""
    settings = copy.settings.model_copy(
        update={
            "syndicat": copy.settings.syndicat.model_copy(
                update={
                    "billing_channel": "pes_asap",
                    "pes_id_post": "062045",
                    "pes_cod_col": "301",
                    "pes_cod_bud": "00",
                    "pes_products": {"nas-2-disques": "NAS:7078"},
                }
            )
        }
    )
    with unit_of_work(settings) as uow:  # its invoices were filed in its Chorus Pro folder: as if they were not
        for invoice in uow.session.exec(select(Invoice).where(Invoice.issuer_code == "LFN")):
            invoice.deposited_path = None
            uow.session.add(invoice)
        uow.commit()
    report = channel.export(settings, "LFN", today=CAMPAIGN_DAY)
    invoices = {i.number: i for i in invoices_of(settings, "LFN")}
    assert sum(b.pieces for b in report.bordereaux) == len(invoices) == 12
    imputations = set()
    rounded = 0
    for written in report.bordereaux:
        xml = Path(written.path).read_bytes()
        validate(xml, xsd)
        root = etree.fromstring(xml)
        vat_total = D(0)
        for piece in root.iterfind("PES_RecetteAller/Bordereau/Piece"):
            invoice = invoices[v(piece, "BlocPiece/NumeroFacture")]
            infos = [i for i in piece.iterfind("LigneDePiece/BlocLignePiece/InfoLignePiece")]
            ht = sum(D(v(i, "MtHT")) for i in infos)
            vat = sum(D(v(i, "MtTVA")) for i in infos)
            assert vat == invoice.total_vat and ht + vat == invoice.total_ttc
            assert all(v(i, "TxTva") == "20.00" for i in infos)
            imputations |= {(v(i, "CodProdLoc"), v(i, "Nature")) for i in infos}
            vat_total += vat
            rounded += ht != invoice.total_ht  # the invoice's rounding (BT-114) sits in the titre's HT
        assert D(v(root, "PES_RecetteAller/Bordereau/BlocBordereau/MtBordTVA")) == vat_total
    assert imputations == {("PMC", "706"), ("NAS", "7078")}
    assert rounded == 1  # Anhiers' first invoice: the data does exercise a rounding amount


def test_an_invoice_that_left_by_another_channel_is_never_sent_again(copy: World) -> None:
    """Invoices filed for Chorus Pro before the issuer switched to pes_asap stay with Chorus Pro; those
    issued since go to Hélios."""
    settings = copy.settings
    first = invoices_of(settings, "CDG62", kind="first")
    with unit_of_work(settings) as uow:
        a = uow.invoices.get(first[0].id or 0)
        a.deposited_path = str(settings.deposit_path / "CDG62" / "facturx_chorus" / f"{a.number}.pdf")
        b = uow.invoices.get(first[1].id or 0)
        b.sent_channel = "facturx_chorus"
        uow.session.add_all([a, b])
        uow.commit()
    report = channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    with unit_of_work(settings) as uow:
        sent = {uow.invoices.get(p.invoice_id).number for p in uow.session.exec(select(PesPiece))}
        assert uow.invoices.get(first[1].id or 0).sent_channel == "facturx_chorus"
    assert first[0].number not in sent and first[1].number not in sent
    assert first[2].number in sent
    assert sum(b.pieces for b in report.bordereaux) == len(invoices_of(settings, "CDG62")) - 2


def test_invoice_json_carries_its_titre(copy: World) -> None:
    settings = copy.settings
    before = collectivity_story(settings, "62700")
    by_issuer = {i["issuer"]: i for i in before["invoices"] if i["kind"] == "first"}
    assert by_issuer["CDG62"]["pes"] == {"bordereau": None, "piece": None, "state": "pending"}
    assert by_issuer["LFN"]["pes"] is None
    channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    after = collectivity_story(settings, "62700")
    with unit_of_work(settings) as uow:
        for story in after["invoices"]:
            if story["issuer"] != "CDG62":
                assert story["pes"] is None
                continue
            invoice = uow.invoices.by_number(story["number"])
            piece = uow.session.exec(select(PesPiece).where(PesPiece.invoice_id == invoice.id)).one()
            bordereau = uow.session.get(PesBordereau, piece.bordereau_id)
            assert bordereau is not None and bordereau.status == PesBordereauStatus.WRITTEN
            assert story["pes"] == {"bordereau": bordereau.number, "piece": piece.number, "state": "sent"}


def test_an_issuer_on_pes_asap_without_its_budget_is_told_what_to_set(copy: World) -> None:
    settings = copy.settings.model_copy(
        update={"cdg59": copy.settings.cdg59.model_copy(update={"pes_cod_col": None, "pes_cod_bud": None})}
    )
    with pytest.raises(InvalidInput, match="MAIRIE_CDG59__PES_COD_COL, MAIRIE_CDG59__PES_COD_BUD"):
        channel.export(settings, "CDG59")
