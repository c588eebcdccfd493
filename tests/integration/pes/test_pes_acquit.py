"""Hélios's acquit brings each bordereau's fate back: accepted, or rejected with its reasons — an operator
task by email, and the titres sent again, with new numbers, in a new bordereau."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import col, select

from documents.pes import NS_ACQUIT, PesInvalid
from mairie.adapters.inbox import MemoryInbox
from mairie.database import unit_of_work
from mairie.services.channels import pes as channel
from mairie.services.story import collectivity_story
from mairie.settings import IssuerIdentity
from models.entities import OutboxMessage, PesBordereau, PesPiece
from models.errors import InvalidTransition, NotFound
from models.lifecycle import PesBordereauStatus, PesPieceStatus
from tests.integration.pes.conftest import CAMPAIGN_DAY, World, validate


def _v(parent: etree._Element, tag: str, value: object) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.set("V", str(value))
    return element


def acquit_xml(identity: IssuerIdentity, file_name: str, elements: list[dict]) -> bytes:
    """A PES_ACQUIT as Hélios returns it (PES_V2_Acquit_Autonome_V2.xsd)."""
    root = etree.Element(f"{{{NS_ACQUIT}}}PES_ACQUIT", nsmap={"n": NS_ACQUIT})
    envelope = etree.SubElement(root, "Enveloppe")
    parameters = etree.SubElement(envelope, "Parametres")
    _v(parameters, "Version", 2)
    _v(parameters, "TypFic", "PESALR1")
    _v(parameters, "NomFic", file_name)
    emitter = etree.SubElement(envelope, "Emetteur")
    _v(emitter, "Sigle", "HELIOS")
    _v(emitter, "Adresse", "DGFIP")
    head = etree.SubElement(root, "EnTetePES")
    _v(head, "DteStr", "2027-01-16")
    _v(head, "IdPost", identity.pes_id_post)
    _v(head, "IdColl", identity.pes_id_coll or identity.siret)
    _v(head, "CodCol", identity.pes_cod_col)
    _v(head, "CodBud", identity.pes_cod_bud)
    acquit = etree.SubElement(root, "ACQUIT")
    _v(etree.SubElement(acquit, "EnTeteAcquit"), "IdVer", 2)
    for spec in elements:
        element = etree.SubElement(acquit, "ElementACQUIT")
        _v(element, "DomaineAck", spec["domain"])
        _v(element, "EtatAck", 1 if spec["ok"] else 0)
        if "bordereau" in spec:
            _v(element, "NumBord", spec["bordereau"])
            _v(element, "ExerciceBord", spec["exercice"])
        if "id_unique" in spec:
            _v(element, "IdUnique", spec["id_unique"])
        for code, label in spec.get("errors", []):
            error = etree.SubElement(element, "Erreur")
            _v(error, "NumAnoAck", code)
            _v(error, "LibelleAnoAck", label)
        for number, (code, label) in spec.get("pieces", {}).items():
            detail = etree.SubElement(element, "DetailPiece")
            _v(detail, "NumPiece", number)
            error = etree.SubElement(detail, "Erreur")
            _v(error, "NumAnoAck", code)
            _v(error, "LibelleAnoAck", label)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def bordereau(settings, issuer: str, exercice: int, number: int) -> PesBordereau:
    with unit_of_work(settings) as uow:
        row = uow.session.exec(
            select(PesBordereau).where(
                PesBordereau.issuer_code == issuer, PesBordereau.exercice == exercice, PesBordereau.number == number
            )
        ).one()
        uow.session.expunge(row)
        return row


def pieces_of(settings, bordereau_id: int) -> list[PesPiece]:
    with unit_of_work(settings) as uow:
        rows = list(
            uow.session.exec(
                select(PesPiece).where(PesPiece.bordereau_id == bordereau_id).order_by(col(PesPiece.number))
            )
        )
        uow.session.expunge_all()
        return rows


def rejection_mails(settings) -> list[OutboxMessage]:
    with unit_of_work(settings) as uow:
        rows = list(uow.session.exec(select(OutboxMessage).where(OutboxMessage.kind == "pes_rejected")))
        uow.session.expunge_all()
        return rows


def test_a_rejected_bordereau_tells_the_operators_and_its_titres_leave_again(any_copy: World, xsd: Path) -> None:
    settings = any_copy.settings
    channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    first, campaign = bordereau(settings, "CDG62", 2026, 1), bordereau(settings, "CDG62", 2027, 1)
    rejected_pieces = pieces_of(settings, first.id or 0)
    content = acquit_xml(
        settings.cdg62,
        first.file_name,
        [
            {
                "domain": 6,
                "ok": False,
                "bordereau": 1,
                "exercice": 2026,
                "errors": [("ERREUR_CODE_COLLECTIVITE_BUDGET", "Le code produit PMC est inconnu du budget")],
                "pieces": {rejected_pieces[1].number: ("ERREUR_AUTRE", "Tiers débiteur inconnu")},
            },
            {"domain": 6, "ok": True, "bordereau": 1, "exercice": 2027},
        ],
    )
    validate(content, xsd, "PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd")  # shaped as Hélios's own
    report = channel.import_acquit(settings, content, source="ACK_20270116.xml")
    assert report.issuer == "CDG62" and report.rejected == [1] and report.accepted == [1]
    assert report.reasons[1][0].startswith("ERREUR_CODE_COLLECTIVITE_BUDGET : Le code produit PMC")
    assert any("Tiers débiteur inconnu" in r for r in report.reasons[1])

    assert bordereau(settings, "CDG62", 2026, 1).status == PesBordereauStatus.REJECTED
    assert bordereau(settings, "CDG62", 2027, 1).status == PesBordereauStatus.ACCEPTED
    assert {p.status for p in pieces_of(settings, first.id or 0)} == {PesPieceStatus.REJECTED}
    assert {p.status for p in pieces_of(settings, campaign.id or 0)} == {PesPieceStatus.ACCEPTED}
    assert pieces_of(settings, first.id or 0)[1].errors == ["ERREUR_AUTRE : Tiers débiteur inconnu"]

    [mail] = rejection_mails(settings)
    assert mail.recipients == [settings.operators_email]
    assert "bordereau 1/2026 rejeté" in mail.subject
    with unit_of_work(settings) as uow:
        numbers = [uow.invoices.get(p.invoice_id).number for p in rejected_pieces]
    for needle in ("Le code produit PMC est inconnu", "Tiers débiteur inconnu", "mairie pes export CDG62", *numbers):
        assert needle in mail.body_text, needle
    assert sorted(report.resend) == sorted(numbers)

    # the same acquit read again changes nothing and tells nobody twice
    again = channel.import_acquit(settings, content, source="ACK_20270116.xml")
    assert again.rejected == [1] and again.resend == []
    assert len(rejection_mails(settings)) == 1

    story = {i["number"]: i for i in collectivity_story(settings, "62700")["invoices"]}
    regnauville = next(n for n in numbers if story.get(n))
    assert story[regnauville]["pes"]["state"] == "rejected"

    # the next export sends the titres again, in a new bordereau, with new numbers and new PJ ids
    resent = channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    assert [(b.exercice, b.number, b.pieces) for b in resent.bordereaux] == [(2026, 2, 3)]
    new_pieces = pieces_of(settings, bordereau(settings, "CDG62", 2026, 2).id or 0)
    assert [p.number for p in new_pieces] == [4, 5, 6]
    assert {p.invoice_id for p in new_pieces} == {p.invoice_id for p in rejected_pieces}
    assert not {p.asap_id for p in new_pieces} & {p.asap_id for p in rejected_pieces}
    validate(Path(resent.bordereaux[0].path).read_bytes(), xsd)
    story = {i["number"]: i for i in collectivity_story(settings, "62700")["invoices"]}
    assert story[regnauville]["pes"]["bordereau"] == 2 and story[regnauville]["pes"]["state"] == "sent"

    # an accepted bordereau cannot be rejected afterwards, nor a rejected one accepted
    flip = acquit_xml(
        settings.cdg62, campaign.file_name, [{"domain": 6, "ok": False, "bordereau": 1, "exercice": 2027}]
    )
    with pytest.raises(InvalidTransition):
        channel.import_acquit(settings, flip)


def test_a_rejected_pj_is_recorded_on_its_titre_and_told(copy: World) -> None:
    settings = copy.settings
    channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    first = bordereau(settings, "CDG59", 2026, 1)
    piece = pieces_of(settings, first.id or 0)[0]
    content = acquit_xml(
        settings.cdg59,
        first.file_name,
        [
            {"domain": 6, "ok": True, "bordereau": 1, "exercice": 2026},
            {"domain": 4, "ok": True, "id_unique": piece.pdf_id},
            {"domain": 4, "ok": False, "id_unique": piece.asap_id, "errors": [("ERREUR_PJ", "ASAP : talon invalide")]},
        ],
    )
    report = channel.import_acquit(settings, content)
    assert report.accepted == [1] and report.pj_rejected == [f"{piece.asap_id} : ERREUR_PJ : ASAP : talon invalide"]
    assert bordereau(settings, "CDG59", 2026, 1).status == PesBordereauStatus.ACCEPTED
    assert pieces_of(settings, first.id or 0)[0].errors == [
        f"PJ {piece.asap_id} rejetée : ERREUR_PJ : ASAP : talon invalide"
    ]
    [mail] = rejection_mails(settings)
    assert "pièces jointes rejetées" in mail.subject and "talon invalide" in mail.body_text


def test_a_whole_file_refused_rejects_its_bordereau(copy: World) -> None:
    settings = copy.settings
    channel.export(settings, "CDG59", today=CAMPAIGN_DAY)
    first = bordereau(settings, "CDG59", 2026, 1)
    content = acquit_xml(
        settings.cdg59,
        first.file_name.removesuffix(".xml"),
        [{"domain": 0, "ok": False, "errors": [("ERREUR_SCHEMA_INCOMPLET", "Balise MtHT absente")]}],
    )
    report = channel.import_acquit(settings, content)
    assert report.rejected == [1] and "Balise MtHT absente" in report.reasons[1][0]
    assert bordereau(settings, "CDG59", 2026, 1).status == PesBordereauStatus.REJECTED


def test_an_acquit_of_an_unknown_budget_or_not_an_acquit_is_refused(copy: World) -> None:
    settings = copy.settings
    stranger = settings.cdg62.model_copy(update={"pes_cod_col": "999"})
    with pytest.raises(NotFound, match="budget inconnu"):
        channel.import_acquit(
            settings, acquit_xml(stranger, "x", [{"domain": 6, "ok": True, "bordereau": 1, "exercice": 2026}])
        )
    with pytest.raises(PesInvalid, match="PES_ACQUIT"):
        channel.import_acquit(settings, b"<?xml version='1.0'?><facture/>")


def test_the_watched_folder_imports_acquits_and_sets_aside_what_it_cannot_read(copy: World) -> None:
    settings = copy.settings
    channel.export(settings, "CDG62", today=CAMPAIGN_DAY)
    first = bordereau(settings, "CDG62", 2026, 1)
    folder = settings.deposit_path / "CDG62" / "pes_asap" / "acquits"
    folder.mkdir(parents=True)
    (folder / "ACK_1.xml").write_bytes(
        acquit_xml(settings.cdg62, first.file_name, [{"domain": 6, "ok": True, "bordereau": 1, "exercice": 2026}])
    )
    (folder / "garbage.xml").write_bytes(b"not xml at all")
    results = {r.name: r for r in channel.import_acquit_folder(settings)}
    assert results["ACK_1.xml"].report is not None and results["ACK_1.xml"].report.accepted == [1]
    assert results["garbage.xml"].report is None and "illisible" in (results["garbage.xml"].error or "")
    assert (folder / "traites" / "ACK_1.xml").is_file()
    assert (folder / "erreurs" / "garbage.xml").is_file() and (folder / "erreurs" / "garbage.xml.txt").is_file()
    assert not list(folder.glob("*.xml"))
    assert channel.import_acquit_folder(settings) == []  # nothing new
    assert bordereau(settings, "CDG62", 2026, 1).status == PesBordereauStatus.ACCEPTED

    # an acquit dropped in another issuer's folder is set aside, not imported under the wrong issuer
    second = bordereau(settings, "CDG62", 2027, 1)
    wrong = MemoryInbox(
        {
            "ACK_2.xml": acquit_xml(
                settings.cdg62, second.file_name, [{"domain": 6, "ok": True, "bordereau": 1, "exercice": 2027}]
            )
        }
    )
    [result] = channel.import_acquit_folder(settings, {"CDG59": wrong})
    assert result.error and "déposé dans le dossier de CDG59" in result.error
    assert wrong.handled["ACK_2.xml"][0] is False
    assert bordereau(settings, "CDG62", 2027, 1).status == PesBordereauStatus.WRITTEN  # nothing imported
