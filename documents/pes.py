"""PES V2 (DGFiP, Hélios): a bordereau of titres de recettes with their ASAP, as XML bytes; Hélios's acquit
read back. Data in (the dataclasses below, built by the service layer), bytes out, validated against
DGFiP's XSD when its folder is given (`PesSchemas`: the schema stays outside the repository).

One `PES_Aller` per bordereau: `Enveloppe`, `EnTetePES` (IdPost, IdColl, CodCol, CodBud), `PES_RecetteAller`
with one `Piece` per invoice — its lines (HT, and the VAT when there is some: a zero VAT is left out), the
debtor's `Tiers` (SIRET, NatIdTiers 01), `Edition` 02 "ASAP CPP", the invoice number, service code and
commitment number — and `PES_PJ` with two PJ per piece, referenced from the piece by `PJRef`:

- type 006, the ASAP: a `PES_Facture` typed 09 (NS_Facture schema) carried in a `PES_Aller` of its own
  (Enveloppe, EnTetePES, PES_Facture — the only place the schema declares that element), with `RefTitre`
  back to the titre, the centre d'encaissement and the accountant's office as Tiers 25 and 26, the lines,
  the total and the optical slip lines;
- type 008, the Factur-X PDF of the invoice, as stored.

A credit note of an invoice whose titre was sent becomes an annulation-réduction titre (`Piece.annulation`):
in a bordereau of its own (TypBord 02), a titre correctif (TypPce 02, NatPce 06) whose every line carries
`RattachPiece` — NatPceOrig 01 (a titre), ExerRat (its exercice, that of the bordereau), IdPceOrig and
IdLigneOrig (the titre and line it reduces). It asks the debtor for nothing: no `Edition` (no ASAP, nothing
for DGFiP to send through Chorus Pro), no CPP references (NumeroFacture…); its one PJ is the avoir's
Factur-X PDF, untyped (no PJ type of the schema names an avoir; 008 completes an ASAP).

Every PJ is gzip-compressed (mtime 0: the same invoice gives the same bytes) then base64-encoded.
Texts are cut to the schema's lengths; names and addresses follow the postal norm (capitals, no accent).
"""

from __future__ import annotations

import base64
import gzip
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from lxml import etree

from models.errors import DomainError
from models.money import ZERO
from models.pes import (
    EDITION_ASAP_CPP,
    NAT_ID_SIRET,
    NAT_PCE_ANNULATION,
    NAT_PCE_FONCTIONNEMENT,
    NAT_PCE_ORIG_TITRE,
    STATE_CATEGORY,
    STATE_NAT_JUR,
    TYP_BORD_ANNULATION,
    TYP_BORD_ORDINAIRE,
    TYP_PCE_CORRECTIF,
    TYP_PCE_ORDINAIRE,
    TYP_TIERS_COMPTABLE,
    TYP_TIERS_DEBITEUR,
    TYP_TIERS_EMETTEUR,
    TYP_TIERS_ENCAISSEMENT,
    TYPE_FACTURE_ASAP,
    TYPE_PJ_ASAP_CPP_DOCUMENT,
    TYPE_PJ_PES_FACTURE,
)

NS_ALLER = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
# Hélios's acquit of a PES_Aller (PES_V2_Acquit_Autonome_V2.xsd; the first version's namespace is read too)
NS_ACQUIT = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
NS_ACQUIT_V1 = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"
TYP_FIC = "PESALR1"
APPLICATION = ("MAIRIE CONNECTEE", "Pack Mairie Connectee - back office")


class PesInvalid(DomainError):
    """A PES file the schema refuses (what we built, or an acquit we read)."""

    def __init__(self, what: str, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__(f"{what} non conforme au schéma PES : " + " ; ".join(self.errors[:5]))


class PesSchemaMissing(DomainError):
    """The schema folder does not hold DGFiP's PES V2 XSD."""


# --------------------------------------------------------------------------------------------------
# Data in
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """`EnTetePES`: the accountant's office (IdPost, its codique) and the budget (IdColl, CodCol, CodBud)."""

    id_post: str
    id_coll: str
    cod_col: str
    cod_bud: str
    libelle_col_bud: str | None = None


@dataclass(frozen=True)
class Address:
    """A postal address: `line` the street (Adr2), `complement` (Adr1), `locality` (Adr3: lieu-dit, TSA)."""

    line: str | None
    postcode: str
    city: str
    complement: str | None = None
    locality: str | None = None


@dataclass(frozen=True)
class Tiers:
    """The debtor of a titre: a public body identified by its SIRET (NatIdTiers 01)."""

    siret: str
    name: str
    category: str  # CatTiers
    nat_jur: str  # NatJur
    address: Address
    reference: str | None = None  # RefTiers: the ordonnateur's own reference (the SIREN here)


@dataclass(frozen=True)
class Ligne:
    """One titre line (and the same line of the ASAP): `ht` + `vat` is what it asks; `rate` a fraction
    (0.20); `vat` 0 writes no VAT in the titre."""

    number: int
    label: str
    product_code: str  # CodProdLoc
    nature: str  # the budget account
    rate: Decimal
    ht: Decimal
    vat: Decimal
    start: date
    end: date
    fonction: str | None = None
    original_line: int | None = None  # an annulation's line: the line of the titre it reduces (IdLigneOrig)

    @property
    def ttc(self) -> Decimal:
        return self.ht + self.vat


@dataclass(frozen=True)
class PJ:
    """A PJ carried in `PES_PJ`, referenced by `PJRef` from its piece."""

    id_unique: str
    file_name: str
    type_pj: str | None  # TypePJ, left out when None
    description: str
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class Rattachement:
    """The titre an annulation-réduction titre reduces: its exercice (ExerRat) and number (IdPceOrig)."""

    exercice: int
    piece: int


@dataclass(frozen=True)
class Piece:
    """A titre de recette: one invoice, mono-debtor, Edition 02. `asap_id` names its ASAP PJ (built here);
    `pdf` is the invoice's Factur-X PDF.

    With `annulation`, an annulation-réduction titre of a credit note: `invoice_number` is the avoir's,
    `pdf` its Factur-X PDF, `asap_id` unused (no ASAP), each line naming its `original_line`."""

    number: int
    debtor: Tiers
    lines: tuple[Ligne, ...]
    invoice_number: str
    invoice_date: date
    subject: str  # ObjPce, and the ASAP's Objet
    asap_id: str
    pdf: PJ
    service_code: str | None = None
    commitment_number: str | None = None
    talon: tuple[str, str] | None = None
    annulation: Rattachement | None = None

    @property
    def ht(self) -> Decimal:
        return sum((line.ht for line in self.lines), ZERO)

    @property
    def vat(self) -> Decimal:
        return sum((line.vat for line in self.lines), ZERO)

    @property
    def ttc(self) -> Decimal:
        return self.ht + self.vat


@dataclass(frozen=True)
class Bordereau:
    exercice: int
    number: int
    dated_on: date
    pieces: tuple[Piece, ...]
    cumulative: Decimal | None = None  # MtCumulAnnuel, required when dematerialised
    typ_bord: str = TYP_BORD_ORDINAIRE  # 02: every piece is an annulation-réduction titre

    @property
    def ht(self) -> Decimal:
        return sum((piece.ht for piece in self.pieces), ZERO)

    @property
    def vat(self) -> Decimal:
        return sum((piece.vat for piece in self.pieces), ZERO)


@dataclass(frozen=True)
class Office:
    """The centre d'encaissement (Tiers 25) or the accountant's office (Tiers 26) of the ASAP."""

    name: str
    address: Address
    complement_name: str | None = None
    phone: str | None = None
    hours: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Signatory:
    first_name: str
    last_name: str
    role: str


@dataclass(frozen=True)
class Issuer:
    """The ordonnateur as the ASAP prints it, with what DGFiP's ASAP rules ask of it. Parts left None are
    left out of the file (the schema allows it; DGFiP's rules need them: `docs/pes.md`)."""

    siret: str
    name: str
    category: str
    nat_jur: str
    address: Address
    encaissement: Office
    accountant: Office
    payment_terms: str  # ModalitesReglement
    appeal: str  # ModalitesContestation (voies et délais de recours)
    general_conditions: str  # ConditionsGen
    email: str | None = None
    phone: str | None = None
    vat_number: str | None = None
    ref_bdf: str | None = None  # RefBdf: the emitter number of the budget (slip)
    signatory: Signatory | None = None
    cod_serv: str | None = None  # CodServ: the ordonnateur's service
    dematerialised: bool = False  # InfoDematerialisee: the bordereaux are signed before transmission


# --------------------------------------------------------------------------------------------------
# Text and numbers as the schema wants them
# --------------------------------------------------------------------------------------------------


def clip(text: str, length: int) -> str:
    """One line, at most `length` characters (cut at a word when possible)."""
    value = " ".join(text.split())
    if len(value) <= length:
        return value
    cut = value[:length].rsplit(" ", 1)[0]
    return cut if len(cut) >= length // 2 else value[:length]


def postal(text: str, length: int = 38) -> str:
    """The postal norm: capitals, no accent, no punctuation but the apostrophe and the hyphen."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").upper()
    plain = re.sub(r"[^A-Z0-9' -]+", " ", plain)
    return clip(plain, length)


def split_name(name: str, length: int = 38) -> tuple[str, str | None]:
    """A name in `Nom` and, for what does not fit, `ComplNom` (38 characters each)."""
    value = postal(name, 2 * length + 1)
    if len(value) <= length:
        return value, None
    head = clip(value, length)
    rest = value[len(head) :].strip()
    return head, clip(rest, length) or None


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _rate(rate: Decimal) -> str:
    return f"{rate * 100:.2f}"


def pack(content: bytes) -> str:
    """A PJ's `Fichier`: gzip (no timestamp, so the same content gives the same text) then base64."""
    return base64.b64encode(gzip.compress(content, mtime=0)).decode("ascii")


def unpack(text: str) -> bytes:
    """The original bytes of a PJ's `Fichier`."""
    return gzip.decompress(base64.b64decode(text))


# --------------------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------------------


def _v(parent: etree._Element, tag: str, value: object) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.set("V", str(value))
    return element


def _opt(parent: etree._Element, tag: str, value: object | None) -> None:
    if value is not None and str(value).strip():
        _v(parent, tag, value)


def _root(header: Header, file_name: str, dated_on: date) -> etree._Element:
    root = etree.Element(f"{{{NS_ALLER}}}PES_Aller", nsmap={"n": NS_ALLER})
    envelope = etree.SubElement(root, "Enveloppe")
    parameters = etree.SubElement(envelope, "Parametres")
    _v(parameters, "Version", 2)
    _v(parameters, "TypFic", TYP_FIC)
    _v(parameters, "NomFic", clip(file_name, 100))
    emitter = etree.SubElement(envelope, "Emetteur")
    _v(emitter, "Sigle", APPLICATION[0])
    _v(emitter, "Adresse", APPLICATION[1])
    head = etree.SubElement(root, "EnTetePES")
    _v(head, "DteStr", dated_on.isoformat())
    _v(head, "IdPost", header.id_post)
    _v(head, "IdColl", header.id_coll)
    _v(head, "CodCol", header.cod_col)
    _v(head, "CodBud", header.cod_bud)
    _opt(head, "LibelleColBud", header.libelle_col_bud and postal(header.libelle_col_bud))
    return root


def _address(parent: etree._Element, address: Address, *, street: bool = True) -> None:
    """`Adresse` (TAdresse, or NS_Facture's TAdresseFacture: same elements in the same order)."""
    block = etree.SubElement(parent, "Adresse")
    _v(block, "TypAdr", 1)
    if street:
        _opt(block, "Adr1", address.complement and postal(address.complement))
        _opt(block, "Adr2", address.line and postal(address.line))
    _opt(block, "Adr3", address.locality and postal(address.locality))
    _v(block, "CP", address.postcode)
    _v(block, "Ville", postal(address.city))
    _v(block, "CodRes", 0)


def _tiers(parent: etree._Element, debtor: Tiers) -> None:
    tiers = etree.SubElement(parent, "Tiers")
    info = etree.SubElement(tiers, "InfoTiers")
    _v(info, "IdTiers", debtor.siret)
    _v(info, "NatIdTiers", NAT_ID_SIRET)
    _opt(info, "RefTiers", debtor.reference)
    _v(info, "CatTiers", debtor.category)
    _v(info, "NatJur", debtor.nat_jur)
    _v(info, "TypTiers", TYP_TIERS_DEBITEUR)
    name, more = split_name(debtor.name)
    _v(info, "Nom", name)
    _opt(info, "ComplNom", more)
    _address(tiers, debtor.address)


def _pj_ref(parent: etree._Element, pj_id: str, name: str, type_pj: str | None) -> None:
    ref = etree.SubElement(parent, "PJRef")
    _v(ref, "Support", "01")
    _v(ref, "IdUnique", pj_id)
    _v(ref, "NomPJ", clip(name, 100))
    _opt(ref, "TypePJ", type_pj)


def asap_name(piece: Piece) -> str:
    return f"ASAP_{piece.invoice_number}.xml"


def _piece(parent: etree._Element, piece: Piece, issuer: Issuer) -> None:
    element = etree.SubElement(parent, "Piece")
    block = etree.SubElement(element, "BlocPiece")
    _opt(block, "CodServ", issuer.cod_serv)
    _v(block, "IdPce", piece.number)
    if piece.annulation is not None:
        # a titre correctif asks the debtor for nothing: no Edition, no ASAP, no CPP references
        _v(block, "TypPce", TYP_PCE_CORRECTIF)
        _v(block, "NatPce", NAT_PCE_ANNULATION)
        _v(block, "ObjPce", clip(piece.subject, 160))
        _pj_ref(block, piece.pdf.id_unique, piece.pdf.file_name, piece.pdf.type_pj)
    else:
        _v(block, "TypPce", TYP_PCE_ORDINAIRE)
        _v(block, "NatPce", NAT_PCE_FONCTIONNEMENT)
        _v(block, "Edition", EDITION_ASAP_CPP)
        _v(block, "ObjPce", clip(piece.subject, 160))
        _pj_ref(block, piece.asap_id, asap_name(piece), TYPE_PJ_PES_FACTURE)
        _pj_ref(block, piece.pdf.id_unique, piece.pdf.file_name, TYPE_PJ_ASAP_CPP_DOCUMENT)
        _v(block, "NumeroFacture", piece.invoice_number)
        _opt(block, "NumeroEngagement", piece.commitment_number and clip(piece.commitment_number, 50))
        _opt(block, "CodeService", piece.service_code and clip(piece.service_code, 100))
    for line in piece.lines:
        row = etree.SubElement(element, "LigneDePiece")
        bloc = etree.SubElement(row, "BlocLignePiece")
        info = etree.SubElement(bloc, "InfoLignePiece")
        _v(info, "IdLigne", line.number)
        _v(info, "ObjLignePce", clip(line.label, 160))
        _v(info, "CodProdLoc", line.product_code)
        _v(info, "Nature", line.nature)
        _opt(info, "Fonction", line.fonction)
        if line.vat > 0:
            _v(info, "TxTva", _rate(line.rate))
        _v(info, "Majo", 0)
        _v(info, "TvaIntraCom", 0)
        _v(info, "MtHT", _amount(line.ht))
        if line.vat > 0:
            _v(info, "MtTVA", _amount(line.vat))
        if piece.annulation is not None:
            if line.original_line is None:
                raise ValueError(f"ligne {line.number} du titre d'annulation {piece.number} sans ligne d'origine")
            attached = etree.SubElement(bloc, "RattachPiece")
            _v(attached, "NatPceOrig", NAT_PCE_ORIG_TITRE)
            _v(attached, "ExerRat", piece.annulation.exercice)
            _v(attached, "IdPceOrig", piece.annulation.piece)
            _v(attached, "IdLigneOrig", line.original_line)
        _tiers(row, piece.debtor)


def _facture_tiers(
    parent: etree._Element,
    tag: str,
    *,
    kind: str,
    name: str,
    category: str,
    nat_jur: str,
    address: Address | None,
    siret: str | None = None,
    complement_name: str | None = None,
    street: bool = True,
) -> etree._Element:
    tiers = etree.SubElement(parent, tag)
    info = etree.SubElement(tiers, "InfoTiers")
    _opt(info, "IdTiers", siret)
    _v(info, "CatTiers", category)
    _v(info, "NatJur", nat_jur)
    _v(info, "TypTiers", kind)
    nom, more = split_name(name)
    _v(info, "Nom", nom)
    _opt(info, "ComplNom", complement_name or more)
    if address is not None:
        _address(tiers, address, street=street)
    return tiers


def _emitter(parent: etree._Element, issuer: Issuer) -> None:
    emitter = _facture_tiers(
        parent,
        "Emetteur",
        kind=TYP_TIERS_EMETTEUR,
        name=issuer.name,
        category=issuer.category,
        nat_jur=issuer.nat_jur,
        address=issuer.address,
        siret=issuer.siret,
    )
    if issuer.vat_number:
        tva = etree.SubElement(emitter, "InfoTVAEmetteur")
        _v(tva, "NumTVA", issuer.vat_number)
    suppl = etree.SubElement(emitter, "InfoSuppl")
    _opt(suppl, "NumTel", issuer.phone and clip(issuer.phone, 20))
    _opt(suppl, "AdresseMelEmetteur", issuer.email and clip(issuer.email, 50))
    _opt(suppl, "RefBdf", issuer.ref_bdf)
    if issuer.signatory is not None:
        signer = etree.SubElement(emitter, "Signataire")
        person = etree.SubElement(signer, "Personne")
        _v(person, "Nom", postal(issuer.signatory.last_name))
        _v(person, "Prenom", postal(issuer.signatory.first_name))
        _v(signer, "Role", clip(issuer.signatory.role, 50))


def _office(parent: etree._Element, office: Office, kind: str) -> None:
    encaissement = kind == TYP_TIERS_ENCAISSEMENT
    tiers = etree.SubElement(parent, "Tiers")
    info = etree.SubElement(tiers, "InfoTiers")
    _v(info, "CatTiers", STATE_CATEGORY)
    _v(info, "NatJur", STATE_NAT_JUR)
    _v(info, "TypTiers", kind)
    nom, more = split_name(office.name)
    _v(info, "Nom", nom)
    _opt(info, "ComplNom", (office.complement_name and postal(office.complement_name)) or more)
    if not encaissement and (office.phone or office.hours or office.email):
        suppl = etree.SubElement(tiers, "InfoSupplTiers")
        _opt(suppl, "NumTel2", office.phone and clip(office.phone, 20))
        _opt(suppl, "HorairesOuv2", office.hours and clip(office.hours, 38))
        _opt(suppl, "AdresseMelCFP", office.email and clip(office.email, 50))
    if encaissement or office.address.line:
        # the centre d'encaissement has no street (Adr1 and Adr2 refused), only its TSA, postcode and city
        _address(tiers, office.address, street=not encaissement)


def _asap_line(parent: etree._Element, line: Ligne) -> None:
    element = etree.SubElement(parent, "LigneFacture")
    if line.start == line.end:
        _v(element, "Date", line.start.isoformat())
    else:
        _v(element, "DateDebut", line.start.isoformat())
        _v(element, "DateFin", line.end.isoformat())
    _v(element, "Libelle", clip(line.label, 200))
    _v(element, "MtBase", _amount(line.ht))
    _v(element, "MtHT", _amount(line.ht))
    _v(element, "TauxTVA", _rate(line.rate))
    _v(element, "MtTVA", _amount(line.vat))
    _v(element, "MtTTC", _amount(line.ttc))
    _v(element, "Ordre", line.number)


def _pes_facture(parent: etree._Element, bordereau: Bordereau, piece: Piece, issuer: Issuer) -> None:
    facture = etree.SubElement(parent, "PES_Facture")
    _v(facture, "IdVer", 2)
    _v(facture, "Annee", bordereau.exercice)
    _v(facture, "TypeFact", TYPE_FACTURE_ASAP)
    _v(facture, "Date", bordereau.dated_on.isoformat())
    _emitter(facture, issuer)
    _office(facture, issuer.encaissement, TYP_TIERS_ENCAISSEMENT)
    _office(facture, issuer.accountant, TYP_TIERS_COMPTABLE)
    indiv = etree.SubElement(facture, "FactureIndiv")
    _v(indiv, "DateEmission", bordereau.dated_on.isoformat())
    _v(indiv, "NumeroFacture", piece.invoice_number)
    debtor = piece.debtor
    _facture_tiers(
        indiv,
        "Debiteur",
        kind=TYP_TIERS_DEBITEUR,
        name=debtor.name,
        category=debtor.category,
        nat_jur=debtor.nat_jur,
        address=debtor.address,
        siret=debtor.siret,
    )
    _v(indiv, "Objet", clip(piece.subject, 160))
    for line in piece.lines:
        _asap_line(indiv, line)
    total = etree.SubElement(indiv, "TotalAPayer")
    _v(total, "MtTotalHT", _amount(piece.ht))
    _v(total, "MtTotalTVA", _amount(piece.vat))
    _v(total, "MtTotalTTC", _amount(piece.ttc))
    ref = etree.SubElement(indiv, "RefTitre")
    _v(ref, "Exercice", bordereau.exercice)
    _v(ref, "NumBordereau", bordereau.number)
    _v(ref, "NumTitre", piece.number)
    _v(ref, "NumLigne", 1)
    if piece.talon is not None:
        talon = etree.SubElement(indiv, "TalonOptique2Lignes")
        _v(talon, "Ligne1", piece.talon[0])
        _v(talon, "Ligne2", piece.talon[1])
    _v(indiv, "ModalitesReglement", clip(issuer.payment_terms, 250))
    _v(indiv, "ModalitesContestation", clip(issuer.appeal, 420))
    _v(indiv, "ModeRecouvrement", 1)  # an ASAP with its slip, no TIP
    _v(indiv, "ConditionsGen", clip(issuer.general_conditions, 250))
    etree.SubElement(facture, "Nomenclatures")  # required, empty for an ASAP


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def build_asap(
    header: Header, bordereau: Bordereau, piece: Piece, issuer: Issuer, schemas: PesSchemas | None = None
) -> bytes:
    """The ASAP of one titre: a `PES_Aller` holding its `PES_Facture` (what PJ 006 carries)."""
    root = _root(header, asap_name(piece), bordereau.dated_on)
    _pes_facture(root, bordereau, piece, issuer)
    xml = _bytes(root)
    if schemas is not None:
        schemas.check_aller(xml, f"ASAP de la facture {piece.invoice_number}")
    return xml


def build_pes_aller(
    header: Header, bordereau: Bordereau, issuer: Issuer, file_name: str, schemas: PesSchemas | None = None
) -> bytes:
    """The `PES_Aller` file of a bordereau, with the ASAP and the PDF of each titre in `PES_PJ`; validated
    (the file and every ASAP) when `schemas` is given."""
    if not bordereau.pieces:
        raise ValueError("un bordereau contient au moins une pièce")
    annulation = bordereau.typ_bord == TYP_BORD_ANNULATION
    if any((piece.annulation is not None) != annulation for piece in bordereau.pieces):
        raise ValueError("un bordereau d'annulation-réduction ne contient que des titres d'annulation, et eux seuls")
    if annulation and any(p.annulation and p.annulation.exercice != bordereau.exercice for p in bordereau.pieces):
        raise ValueError("un titre d'annulation réduit un titre de l'exercice de son bordereau (ExerRat = Exer)")
    root = _root(header, file_name, bordereau.dated_on)
    recette = etree.SubElement(root, "PES_RecetteAller")
    head = etree.SubElement(recette, "EnTeteRecette")
    _v(head, "IdVer", 2)
    _v(head, "InfoDematerialisee", 1 if issuer.dematerialised else 0)
    element = etree.SubElement(recette, "Bordereau")
    element.set("Id", f"BORD{header.id_coll}{bordereau.exercice}{bordereau.number:07d}")
    block = etree.SubElement(element, "BlocBordereau")
    _v(block, "Exer", bordereau.exercice)
    _v(block, "IdBord", bordereau.number)
    _v(block, "DteBordEm", bordereau.dated_on.isoformat())
    _v(block, "TypBord", bordereau.typ_bord)
    _v(block, "NbrPce", len(bordereau.pieces))
    if issuer.dematerialised and bordereau.cumulative is not None:
        _v(block, "MtCumulAnnuel", _amount(bordereau.cumulative))
    _v(block, "MtBordHt", _amount(bordereau.ht))
    if bordereau.vat > 0:
        _v(block, "MtBordTVA", _amount(bordereau.vat))
    for piece in bordereau.pieces:
        _piece(element, piece, issuer)
    pjs = etree.SubElement(root, "PES_PJ")
    _v(etree.SubElement(pjs, "EnTetePES_PJ"), "IdVer", 1)
    for piece in bordereau.pieces:
        if piece.annulation is not None:
            _pj(pjs, piece.pdf)
            continue
        asap = build_asap(header, bordereau, piece, issuer, schemas)
        _pj(
            pjs,
            PJ(
                piece.asap_id,
                asap_name(piece),
                TYPE_PJ_PES_FACTURE,
                f"ASAP de la facture {piece.invoice_number}",
                asap,
                "text/xml",
            ),
        )
        _pj(pjs, piece.pdf)
    xml = _bytes(root)
    if schemas is not None:
        schemas.check_aller(xml, f"bordereau {bordereau.number} ({bordereau.exercice})")
    return xml


def _pj(parent: etree._Element, pj: PJ) -> None:
    element = etree.SubElement(parent, "PJ")
    content = etree.SubElement(etree.SubElement(element, "Contenu"), "Fichier")
    content.set("MIMEType", pj.mime_type)
    content.text = pack(pj.content)
    _v(element, "IdUnique", pj.id_unique)
    _v(element, "NomPJ", clip(pj.file_name, 100))
    _opt(element, "TypePJ", pj.type_pj)
    _v(element, "Description", clip(pj.description, 250))


def pj_contents(xml: bytes) -> dict[str, bytes]:
    """Every PJ of a `PES_Aller` file, unpacked, by `IdUnique`."""
    root = etree.fromstring(xml)
    found = {}
    for pj in root.iterfind("PES_PJ/PJ"):
        identifier = pj.find("IdUnique")
        content = pj.find("Contenu/Fichier")
        if identifier is not None and content is not None and content.text:
            found[identifier.get("V", "")] = unpack(content.text)
    return found


# --------------------------------------------------------------------------------------------------
# The schema (outside the repository)
# --------------------------------------------------------------------------------------------------

ALLER_XSD = Path("PES_V2/Rev0/PES_Aller.xsd")
ACQUIT_XSD = Path("PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd")


@lru_cache(maxsize=8)
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


@dataclass(frozen=True)
class PesSchemas:
    """DGFiP's PES V2 XSD of one version. `folder` holds `PES_V2/` (e.g. `…/pes-xsd/5.17`); a folder holding
    exactly one such version folder is accepted too."""

    folder: Path
    base: Path = field(init=False)

    def __post_init__(self) -> None:
        root = Path(self.folder)
        candidates = [root] if (root / ALLER_XSD).is_file() else []
        if not candidates and root.is_dir():
            candidates = sorted(p for p in root.iterdir() if (p / ALLER_XSD).is_file())
        if len(candidates) != 1:
            found = ", ".join(p.name for p in candidates) or "aucun"
            raise PesSchemaMissing(
                f"{root} ne contient pas les schémas PES V2 de la DGFiP ({ALLER_XSD} introuvable ; "
                f"versions trouvées : {found}) : indiquez le dossier de la version acceptée par votre Hélios"
            )
        object.__setattr__(self, "base", candidates[0])

    @property
    def version(self) -> str:
        return self.base.name

    def check_aller(self, xml: bytes, what: str) -> None:
        _check(_schema(self.base / ALLER_XSD), xml, what)

    def check_acquit(self, xml: bytes, what: str) -> None:
        _check(_schema(self.base / ACQUIT_XSD), xml, what)


def _check(schema: etree.XMLSchema, xml: bytes, what: str) -> None:
    document = etree.fromstring(xml)
    if not schema.validate(document):
        raise PesInvalid(what, [f"ligne {e.line} : {e.message}" for e in schema.error_log])


# --------------------------------------------------------------------------------------------------
# Hélios's acquit
# --------------------------------------------------------------------------------------------------

# DomaineAck (CommunAck.xsd)
DOMAIN_TECHNIQUE, DOMAIN_PJ, DOMAIN_RECETTE = "0", "4", "6"


@dataclass(frozen=True)
class AcquitElement:
    """One `ElementACQUIT`: a bordereau (NumBord, ExerciceBord), a PJ (IdUnique) or the whole file."""

    domain: str
    accepted: bool
    bordereau: int | None = None
    exercice: int | None = None
    id_unique: str | None = None
    errors: tuple[str, ...] = ()
    pieces: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (NumPiece, its errors and its lines')


@dataclass(frozen=True)
class Acquit:
    file_name: str  # NomFic of the acquitted file
    id_coll: str
    cod_col: str
    cod_bud: str
    elements: tuple[AcquitElement, ...]


def _errors(parent: etree._Element) -> tuple[str, ...]:
    found = []
    for error in parent.iterfind("Erreur"):
        code = error.find("NumAnoAck")
        label = error.find("LibelleAnoAck")
        parts = [e.get("V", "") for e in (code, label) if e is not None and e.get("V")]
        found.append(" : ".join(parts) or "erreur sans libellé")
    return tuple(found)


def _int(parent: etree._Element, tag: str) -> int | None:
    element = parent.find(tag)
    value = element.get("V") if element is not None else None
    return int(value) if value and value.strip().isdigit() else None


def _text(parent: etree._Element, path: str) -> str:
    element = parent.find(path)
    return element.get("V", "") if element is not None else ""


def parse_acquit(xml: bytes, schemas: PesSchemas | None = None) -> Acquit:
    """Read Hélios's `PES_ACQUIT` (validated against its XSD when `schemas` is given)."""
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise PesInvalid("acquit", [f"XML illisible : {exc}"]) from None
    if root.tag not in (f"{{{NS_ACQUIT}}}PES_ACQUIT", f"{{{NS_ACQUIT_V1}}}PES_ACQUIT"):
        raise PesInvalid("acquit", [f"élément racine {root.tag} : un PES_ACQUIT d'Hélios est attendu"])
    if schemas is not None and root.tag == f"{{{NS_ACQUIT}}}PES_ACQUIT":
        schemas.check_acquit(xml, "acquit")
    elements = []
    for item in root.iterfind("ACQUIT/ElementACQUIT"):
        state = _text(item, "EtatAck").strip().lower()
        pieces = []
        for detail in item.iterfind("DetailPiece"):
            errors = list(_errors(detail))
            for line in detail.iterfind("DetailLigne"):
                errors += [f"ligne {_int(line, 'NumLigne')} : {e}" for e in _errors(line)]
            pieces.append((_int(detail, "NumPiece") or 0, tuple(errors)))
        elements.append(
            AcquitElement(
                domain=_text(item, "DomaineAck"),
                accepted=state in ("1", "true"),
                bordereau=_int(item, "NumBord"),
                exercice=_int(item, "ExerciceBord"),
                id_unique=_text(item, "IdUnique") or None,
                errors=_errors(item),
                pieces=tuple(pieces),
            )
        )
    return Acquit(
        file_name=_text(root, "Enveloppe/Parametres/NomFic"),
        id_coll=_text(root, "EnTetePES/IdColl"),
        cod_col=_text(root, "EnTetePES/CodCol"),
        cod_bud=_text(root, "EnTetePES/CodBud"),
        elements=tuple(elements),
    )
