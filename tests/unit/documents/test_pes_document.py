"""documents.pes: a bordereau as a PES_Aller (data in, bytes out), valid by DGFiP's XSD; the PJ packed and
unpacked; zero VAT left out; Hélios's acquit read back."""

from __future__ import annotations

import gzip
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from documents import pes as doc
from models.pes import pj_id, talon_lines
from tests.pes_xsd import require_schema

D = Decimal
HEADER = doc.Header("062045", "28620062100022", "162", "00", "CDG 62 - Budget principal")
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def issuer() -> doc.Issuer:
    return doc.Issuer(
        siret="28620062100022",
        name="Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais",
        category="29",
        nat_jur="09",
        address=doc.Address("Rue Marcel Cachin", "62700", "Bruay-la-Buissière"),
        encaissement=doc.Office(
            "CENTRE D'ENCAISSEMENT",
            doc.Address(None, "35908", "RENNES CEDEX 9"),
            complement_name="DES FINANCES PUBLIQUES",
        ),
        accountant=doc.Office("SGC de Béthune", doc.Address("Rue Eugène Haynaut", "62400", "Béthune"), phone="0321"),
        payment_terms="Démarche non prévue par la collectivité.",
        appeal="Deux mois pour contester (article L. 1617-5 du CGCT).",
        general_conditions="Paiement à 30 jours.",
        email="numerique@cdg62.example",
        ref_bdf="621234",
        signatory=doc.Signatory("Claude", "Lefèvre", "Président"),
    )


def piece(number: int, rate: Decimal, ht: Decimal, vat: Decimal) -> doc.Piece:
    invoice = f"CDG62-FAC-2027-{number:05d}"
    return doc.Piece(
        number=number,
        debtor=doc.Tiers(
            "21620700100017",
            "Communauté de communes des Campagnes de l'Artois (établissement)",
            "24",
            "09",
            doc.Address("Mairie", "62140", "Regnauville"),
            "216207001",
        ),
        lines=(
            doc.Ligne(
                1,
                "Accompagnement et mise en service",
                "PMC",
                "706",
                rate,
                ht,
                vat,
                date(2027, 1, 1),
                date(2027, 12, 31),
            ),
        ),
        invoice_number=invoice,
        invoice_date=date(2027, 1, 15),
        subject="Pack Mairie Connectée — renouvellement 2027",
        asap_id=pj_id(HEADER.id_coll, 2027, 1, number, "A"),
        pdf=doc.PJ(
            pj_id(HEADER.id_coll, 2027, 1, number, "F"), f"{invoice}.pdf", "008", "Facture", PDF, "application/pdf"
        ),
        service_code="SERV-FIN",
        commitment_number="EJ-2027-118",
        talon=talon_lines("621234", 2027, 1, number, ht + vat),
    )


def bordereau(*pieces: doc.Piece) -> doc.Bordereau:
    return doc.Bordereau(2027, 1, date(2027, 1, 15), pieces)


def test_a_bordereau_validates_and_carries_its_pj() -> None:
    xsd = require_schema()
    schemas = doc.PesSchemas(xsd)  # the folder of version folders: the only one, 5.17, is taken
    assert schemas.version == "5.17"
    built = bordereau(piece(1, D("0"), D("50.00"), D("0")), piece(2, D("0.20"), D("100.00"), D("20.00")))
    xml = doc.build_pes_aller(HEADER, built, issuer(), "PESALR1_28620062100022_2027_0000001.xml", schemas)
    root = etree.fromstring(xml)
    block = root.find("PES_RecetteAller/Bordereau/BlocBordereau")
    assert block is not None
    assert block.find("MtBordHt").get("V") == "150.00" and block.find("MtBordTVA").get("V") == "20.00"
    first, second = root.findall("PES_RecetteAller/Bordereau/Piece")
    outside = first.find("LigneDePiece/BlocLignePiece/InfoLignePiece")
    assert outside.find("MtTVA") is None and outside.find("TxTva") is None  # no VAT: nothing written, not 0
    standard = second.find("LigneDePiece/BlocLignePiece/InfoLignePiece")
    assert standard.find("TxTva").get("V") == "20.00" and standard.find("MtTVA").get("V") == "20.00"
    name = first.find("LigneDePiece/Tiers/InfoTiers")
    # postal norm, 38 characters: the name continues in ComplNom
    assert name.find("Nom").get("V") == "COMMUNAUTE DE COMMUNES DES CAMPAGNES"
    assert name.find("ComplNom").get("V") == "DE L'ARTOIS ETABLISSEMENT"
    contents = doc.pj_contents(xml)
    assert contents[pj_id(HEADER.id_coll, 2027, 1, 1, "F")] == PDF
    asap = contents[pj_id(HEADER.id_coll, 2027, 1, 2, "A")]
    schemas.check_aller(asap, "ASAP")
    facture = etree.fromstring(asap).find("PES_Facture/FactureIndiv")
    assert facture.find("TotalAPayer/MtTotalTTC").get("V") == "120.00"
    assert facture.find("LigneFacture/MtTVA").get("V") == "20.00"


def test_the_asap_of_an_outside_vat_titre_writes_its_zero_vat_where_the_schema_requires_it() -> None:
    asap = doc.build_asap(
        HEADER, bordereau(piece(1, D("0"), D("50.00"), D("0"))), piece(1, D("0"), D("50.00"), D("0")), issuer()
    )
    line = etree.fromstring(asap).find("PES_Facture/FactureIndiv/LigneFacture")
    assert line.find("MtTVA").get("V") == "0.00" and line.find("TauxTVA").get("V") == "0.00"


def test_what_the_schema_refuses_is_refused_with_its_reason() -> None:
    schemas = doc.PesSchemas(require_schema() / "5.17")
    wrong = doc.Header("12", HEADER.id_coll, HEADER.cod_col, HEADER.cod_bud)  # a codique has 6 or 7 digits
    with pytest.raises(doc.PesInvalid, match="IdPost"):
        doc.build_pes_aller(wrong, bordereau(piece(1, D("0"), D("5.00"), D("0"))), issuer(), "x.xml", schemas)
    with pytest.raises(ValueError):
        doc.build_pes_aller(HEADER, bordereau(), issuer(), "x.xml")


def test_a_missing_schema_folder_says_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(doc.PesSchemaMissing, match=r"PES_Aller\.xsd"):
        doc.PesSchemas(tmp_path)


def test_pj_are_gzip_then_base64_and_the_same_bytes_give_the_same_text() -> None:
    text = doc.pack(PDF)
    assert gzip.decompress(__import__("base64").b64decode(text)) == PDF
    assert doc.unpack(text) == PDF and doc.pack(PDF) == text


def test_postal_norm_and_lengths() -> None:
    assert doc.postal("Hénin-Beaumont (Mairie), 1er étage") == "HENIN-BEAUMONT MAIRIE 1ER ETAGE"
    assert len(doc.clip("mot " * 100, 160)) <= 160
    assert doc.split_name("Commune d'Arras") == ("COMMUNE D'ARRAS", None)


ACQUIT = """<?xml version="1.0" encoding="UTF-8"?>
<n:PES_ACQUIT xmlns:n="{ns}">
  <Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/>
    <NomFic V="PESALR1_28620062100022_2027_0000001"/></Parametres>
    <Emetteur><Sigle V="HELIOS"/><Adresse V="DGFIP"/></Emetteur></Enveloppe>
  <EnTetePES><DteStr V="2027-01-16"/><IdPost V="062045"/><IdColl V="28620062100022"/>
    <CodCol V="162"/><CodBud V="00"/></EnTetePES>
  <ACQUIT><EnTeteAcquit><IdVer V="2"/></EnTeteAcquit>
    <ElementACQUIT><DomaineAck V="6"/><EtatAck V="0"/><NumBord V="1"/><ExerciceBord V="2027"/>
      <Erreur><NumAnoAck V="ERREUR_AUTRE"/><LibelleAnoAck V="Bordereau refusé"/></Erreur>
      <DetailPiece><NumPiece V="2"/><Erreur><LibelleAnoAck V="Tiers inconnu"/></Erreur>
        <DetailLigne><NumLigne V="1"/><Erreur><NumAnoAck V="ERREUR_CODIFICATION"/></Erreur></DetailLigne></DetailPiece>
    </ElementACQUIT>
    <ElementACQUIT><DomaineAck V="4"/><EtatAck V="1"/>
      <IdUnique V="28620062100022REC2027000000100000001A"/></ElementACQUIT>
  </ACQUIT>
</n:PES_ACQUIT>"""


def test_an_acquit_is_read_with_its_reasons() -> None:
    xml = ACQUIT.format(ns=doc.NS_ACQUIT).encode()
    acquit = doc.parse_acquit(xml, doc.PesSchemas(require_schema()))
    assert (acquit.file_name, acquit.id_coll, acquit.cod_col, acquit.cod_bud) == (
        "PESALR1_28620062100022_2027_0000001",
        "28620062100022",
        "162",
        "00",
    )
    rejected, pj = acquit.elements
    assert (rejected.domain, rejected.accepted, rejected.bordereau, rejected.exercice) == ("6", False, 1, 2027)
    assert rejected.errors == ("ERREUR_AUTRE : Bordereau refusé",)
    assert rejected.pieces == ((2, ("Tiers inconnu", "ligne 1 : ERREUR_CODIFICATION")),)
    assert (pj.domain, pj.accepted, pj.id_unique) == ("4", True, "28620062100022REC2027000000100000001A")
    # the first version's namespace is read too (not validated: its schema is another one)
    assert doc.parse_acquit(ACQUIT.format(ns=doc.NS_ACQUIT_V1).encode()).elements[0].bordereau == 1


def test_what_is_not_an_acquit_is_refused() -> None:
    with pytest.raises(doc.PesInvalid, match="illisible"):
        doc.parse_acquit(b"<<<")
    with pytest.raises(doc.PesInvalid, match="PES_ACQUIT"):
        doc.parse_acquit(b"<PES_Aller/>")
    broken = ACQUIT.format(ns=doc.NS_ACQUIT).replace('<IdVer V="2"/>', "").encode()
    with pytest.raises(doc.PesInvalid, match="schéma"):
        doc.parse_acquit(broken, doc.PesSchemas(require_schema()))


def annulation(number: int, original: int, lines: tuple[tuple[int, Decimal, Decimal], ...]) -> doc.Piece:
    """An annulation-réduction titre of titre `original`: (original line, ht, vat) per line."""
    avoir = f"CDG62-AVO-2027-{number:05d}"
    base = piece(number, D("0.20"), D("1"), D("0"))
    return doc.Piece(
        number=number,
        debtor=base.debtor,
        lines=tuple(
            doc.Ligne(
                i,
                "Accompagnement et mise en service",
                "PMC",
                "706",
                D("0.20") if vat else D("0"),
                ht,
                vat,
                date(2027, 1, 1),
                date(2027, 12, 31),
                original_line=line,
            )
            for i, (line, ht, vat) in enumerate(lines, start=1)
        ),
        invoice_number=avoir,
        invoice_date=date(2027, 1, 20),
        subject=f"Annulation du titre {original}/2027 — avoir {avoir}",
        asap_id="",
        pdf=doc.PJ(pj_id(HEADER.id_coll, 2027, 1, number, "V"), f"{avoir}.pdf", None, "Avoir", PDF, "application/pdf"),
        annulation=doc.Rattachement(2027, original),
    )


def test_an_annulation_bordereau_validates_with_its_rattachements_and_no_asap() -> None:
    schemas = doc.PesSchemas(require_schema())
    built = doc.Bordereau(
        2027,
        1,
        date(2027, 1, 20),
        (annulation(7, 2, ((1, D("100.00"), D("20.00")), (3, D("12.50"), D("0")))),),
        typ_bord="02",
    )
    xml = doc.build_pes_aller(HEADER, built, issuer(), "PESALR1_28620062100022_2027_AR0000001.xml", schemas)
    root = etree.fromstring(xml)
    assert root.find("PES_RecetteAller/Bordereau/BlocBordereau/TypBord").get("V") == "02"
    assert root.find("PES_RecetteAller/Bordereau/BlocBordereau/MtBordTVA").get("V") == "20.00"
    block = root.find("PES_RecetteAller/Bordereau/Piece/BlocPiece")
    assert (block.find("TypPce").get("V"), block.find("NatPce").get("V")) == ("02", "06")
    assert block.find("Edition") is None and block.find("NumeroFacture") is None
    [ref] = block.findall("PJRef")
    assert ref.find("TypePJ") is None
    attached = [
        tuple(r.find(t).get("V") for t in ("NatPceOrig", "ExerRat", "IdPceOrig", "IdLigneOrig"))
        for r in root.iterfind("PES_RecetteAller/Bordereau/Piece/LigneDePiece/BlocLignePiece/RattachPiece")
    ]
    assert attached == [("01", "2027", "2", "1"), ("01", "2027", "2", "3")]
    assert doc.pj_contents(xml) == {ref.find("IdUnique").get("V"): PDF}  # the avoir only: no ASAP
    pj = root.find("PES_PJ/PJ")
    assert pj.find("TypePJ") is None


def test_ordinary_and_annulation_titres_never_share_a_bordereau() -> None:
    mixed = doc.Bordereau(
        2027, 1, date(2027, 1, 20), (piece(1, D("0"), D("50.00"), D("0")), annulation(2, 1, ((1, D("50"), D("0")),)))
    )
    with pytest.raises(ValueError, match="annulation"):
        doc.build_pes_aller(HEADER, mixed, issuer(), "x.xml")
    with pytest.raises(ValueError, match="ExerRat"):
        doc.build_pes_aller(
            HEADER,
            doc.Bordereau(2028, 1, date(2028, 1, 5), (annulation(2, 1, ((1, D("50"), D("0")),)),), typ_bord="02"),
            issuer(),
            "x.xml",
        )
