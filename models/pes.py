"""PES V2 rules (titres de recettes for Hélios, DGFiP), pure: the amounts of a titre's lines, the debtor's
category, how pending invoices are cut into bordereaux, the names and identifiers a file carries, and when
a credit note becomes an annulation-réduction titre.

A titre collects exactly what its invoice asks (BT-115) and books exactly its VAT (BT-110): each invoice
line becomes a titre line whose total is the line's deliberated TTC, with the VAT of its rate (computed on
the sum of the nets, as the invoice prints it) shared among the lines of that rate. A titre line's HT is
that total less its VAT; for an issuer outside the scope of VAT it is the TTC itself (the schema: "MtHT:
montant HT ou TTC si TVA non remplie"), and no VAT is written at all (a zero VAT is left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

from models.money import CENT, ZERO, to_money, vat_breakdown

# TypBord, TypPce, NatPce: an ordinary bordereau of ordinary titres, operating section ("fonctionnement")
TYP_BORD_ORDINAIRE = "01"
TYP_PCE_ORDINAIRE = "01"
NAT_PCE_FONCTIONNEMENT = "01"
# TypBord 02 / TypPce 02 / NatPce 06: a bordereau of annulation-réduction of titres correctifs, each line
# attached (RattachPiece) to the line of the titre it cancels: NatPceOrig 01 (a titre), same exercice.
TYP_BORD_ANNULATION = "02"
TYP_PCE_CORRECTIF = "02"
NAT_PCE_ANNULATION = "06"
NAT_PCE_ORIG_TITRE = "01"
# Each type of bordereau has its own gapless sequence (IdBord: "unique par exercice et par type de
# bordereau … un contrôle de séquentialité du numéro est effectué"); titres share one (PEST).
BORDEREAU_SEQUENCES = {TYP_BORD_ORDINAIRE: "PESB", TYP_BORD_ANNULATION: "PESA"}
# Edition 02 "ASAP CPP": DGFiP sends the avis des sommes à payer to a public debtor through Chorus Pro
EDITION_ASAP_CPP = "02"
NAT_ID_SIRET = "01"
TYP_TIERS_DEBITEUR = "01"
TYP_TIERS_EMETTEUR = "20"
TYP_TIERS_ENCAISSEMENT = "25"  # the centre d'encaissement
TYP_TIERS_COMPTABLE = "26"  # the issuer's accountant's office (centre des finances publiques)
TYPE_PJ_PES_FACTURE = "006"
TYPE_PJ_ASAP_CPP_DOCUMENT = "008"  # "document complémentaire à l'ASAP CPP": the Factur-X PDF
TYPE_FACTURE_ASAP = "09"

# CatTiers (CommunPES.xsd) of a debtor by the collectivity's kind; NatJur 09 "collectivité territoriale /
# EPL / EPS" for all of them.
DEBTOR_CATEGORY = {"commune": "23", "epci": "24", "public_establishment": "29", "other": "29"}
CCAS_CATEGORY = "26"
# CatTiers of an issuer: a syndicat mixte is a grouping of local authorities (24), a CDG another local
# public establishment (29).
ISSUER_CATEGORY = {"syndicat": "24", "cdg": "29"}
NAT_JUR_PUBLIC = "09"
# The centre d'encaissement and the centre des finances publiques: the State (CatTiers 20, NatJur 07).
STATE_CATEGORY, STATE_NAT_JUR = "20", "07"

BORDEREAU_KINDS = {"renewal": "campaign", "first": "daily"}
ANNULATION_KIND = "annulation"


def debtor_category(kind: str, name: str = "") -> str:
    """The CatTiers of a debtor collectivity (a CCAS has its own)."""
    if kind == "public_establishment" and name.upper().startswith(("CCAS", "CENTRE COMMUNAL D'ACTION SOCIALE")):
        return CCAS_CATEGORY
    return DEBTOR_CATEGORY.get(kind, DEBTOR_CATEGORY["other"])


def bordereau_kind(invoice_kind: str) -> str:
    """A campaign's invoices go in campaign bordereaux, first invoices in the day's bordereau."""
    return BORDEREAU_KINDS.get(invoice_kind, "daily")


def exercice_of(issued_on: date) -> int:
    """The budget year a titre belongs to: the year its invoice was issued (Paris dates)."""
    return issued_on.year


T = TypeVar("T")


def cut(items: Sequence[T], size: int) -> list[list[T]]:
    """Bordereaux of at most `size` pieces, in order."""
    if size < 1:
        raise ValueError("a bordereau holds at least one piece")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True)
class AmountLine:
    """What a titre line is made from: an invoice line's position, net (BT-131), rate and deliberated TTC."""

    position: int
    net: Decimal
    rate: Decimal
    ttc: Decimal


@dataclass(frozen=True)
class TitreAmount:
    """A titre line's amounts: `ht` (MtHT) and `vat` (MtTVA, 0 when none is written); ht + vat = the line's
    deliberated TTC."""

    position: int
    rate: Decimal
    ht: Decimal
    vat: Decimal

    @property
    def ttc(self) -> Decimal:
        return self.ht + self.vat


def titre_amounts(lines: Sequence[AmountLine], invoice_vat: Decimal, amount_due: Decimal) -> tuple[TitreAmount, ...]:
    """The amounts of a titre's lines (see the module's docstring): Σ vat = `invoice_vat`, Σ (ht + vat) =
    `amount_due`, each line's ht + vat its deliberated TTC. Lines of no amount are left out (a titre line
    is never 0). Raises ValueError when the lines do not add up to the invoice (never for an invoice
    priced by `models.pricing`)."""
    billed = [line for line in lines if line.ttc > 0]
    if sum((line.ttc for line in billed), ZERO) != to_money(amount_due):
        raise ValueError("les lignes de la facture ne totalisent pas son montant à payer")
    breakdown = {b.rate: b.vat for b in vat_breakdown([(line.net, line.rate) for line in billed])}
    if sum(breakdown.values(), ZERO) != to_money(invoice_vat):
        raise ValueError("la TVA de la facture n'est pas celle de ses lignes")
    vat: dict[int, Decimal] = {}
    for rate, target in breakdown.items():
        same = [line for line in billed if line.rate == rate]
        for line in same:
            vat[line.position] = line.ttc - line.net if target > 0 else ZERO
        _share_gap(same, vat, target)
    return tuple(
        TitreAmount(line.position, line.rate, line.ttc - vat[line.position], vat[line.position]) for line in billed
    )


def _share_gap(lines: Sequence[AmountLine], vat: dict[int, Decimal], target: Decimal) -> None:
    """Move the cents between the lines' VAT shares and the rate's VAT (a cent or two, the invoice's
    rounding) onto the largest lines first, never leaving a line's VAT negative nor its HT at 0."""
    gap = target - sum((vat[line.position] for line in lines), ZERO)
    order = sorted(lines, key=lambda line: (-line.ttc, line.position))
    step = CENT if gap > 0 else -CENT
    while gap != 0:
        moved = False
        for line in order:
            new = vat[line.position] + step
            if new < 0 or line.ttc - new <= 0:
                continue
            vat[line.position] = new
            gap -= step
            moved = True
            if gap == 0:
                break
        if not moved:
            raise ValueError("la TVA ne peut pas être répartie sur les lignes du titre")


def file_name(id_coll: str, exercice: int, bordereau: int, typ_bord: str = TYP_BORD_ORDINAIRE) -> str:
    """The PES_Aller file of a bordereau (also its `NomFic`): `PESALR1_<IdColl>_<exercice>_<IdBord>.xml`,
    `…_AR<IdBord>.xml` for an annulation-réduction bordereau (its numbers are another sequence)."""
    marker = "AR" if typ_bord == TYP_BORD_ANNULATION else ""
    return f"PESALR1_{id_coll}_{exercice}_{marker}{bordereau:07d}.xml"


def closed_exercice(original_exercice: int, credit_note_issued_on: date) -> str | None:
    """Why a credit note cannot become an annulation-réduction titre of the titre it cancels, or None.

    An annulation titre reduces a titre of the current exercice (the schema: "Si 02 02 06 ExerRat = Exer du
    flux"); a titre of a closed exercice is cancelled by a mandat on the dépense side (compte 673), which
    this back office does not issue."""
    exercice = exercice_of(credit_note_issued_on)
    if original_exercice < exercice:
        return (
            f"titre de l'exercice clos {original_exercice} : son annulation est un mandat (compte 673, "
            f"exercice {exercice}) à émettre par l'ordonnateur dans son logiciel de dépenses, pas un titre "
            "d'annulation — voyez le comptable public"
        )
    return None


@dataclass(frozen=True)
class Reduction:
    """An annulation titre's line: `amount` (what it takes off) on line `original_line` of the original
    titre."""

    original_line: int
    amount: TitreAmount


def reductions(original: Sequence[TitreAmount], credited: Sequence[TitreAmount]) -> tuple[Reduction, ...]:
    """The lines of an annulation titre: each credited line (by its invoice line's position) on the line of
    the original titre that billed it (titre lines are numbered 1… in the order of `titre_amounts`).
    Raises ValueError when a credited line is on no line of the titre, or takes off more than it holds."""
    lines = {amount.position: (number, amount) for number, amount in enumerate(original, start=1)}
    found = []
    for amount in credited:
        if amount.position not in lines:
            raise ValueError(f"la ligne {amount.position} de l'avoir n'est sur aucune ligne du titre d'origine")
        number, billed = lines[amount.position]
        if amount.ht > billed.ht or amount.vat > billed.vat:
            raise ValueError(f"la ligne {amount.position} de l'avoir dépasse la ligne {number} du titre d'origine")
        found.append(Reduction(number, amount))
    return tuple(found)


def pj_id(id_coll: str, exercice: int, bordereau: int, piece: int, what: str) -> str:
    """An `IdUnique` of a PJ, alphanumeric only (Base_Alphanum50) and unique: the budget's SIRET, "REC",
    the exercice, the bordereau and the piece numbers (unique per exercice), and `what` (A: the ASAP, F: the
    invoice's Factur-X PDF, V: the avoir's)."""
    value = f"{id_coll}REC{exercice}{bordereau:07d}{piece:08d}{what}"
    if not value.isalnum() or not value.isascii() or len(value) > 50:
        raise ValueError(f"IdUnique invalide : {value!r}")
    return value


def _key97(digits: str) -> str:
    return f"{97 - (int(digits) * 100) % 97:02d}"


def talon_lines(emitter: str, exercice: int, bordereau: int, piece: int, amount: Decimal) -> tuple[str, str]:
    """The two lines of the ASAP's optical slip (TalonOptique2Lignes), digits only.

    Line 1: the issuer's emitter number (RefBdf, its last six digits), the exercice, the bordereau and the
    titre; line 2: the amount in cents on twelve digits; each followed by a two-digit MOD 97-10 key. DGFiP's
    own layout of these lines (the "norme HEL" of its ASAP annex) is not in the schema nor in any public
    source found: this one is provisional, to be checked with the issuer's accountant (docs/pes.md).
    """
    digits = "".join(c for c in emitter if c.isdigit()) or "0"
    first = f"{digits[-6:]:0>6}{exercice:04d}{bordereau:07d}{piece:08d}"
    second = f"{int(to_money(amount) * 100):012d}"
    return first + _key97(first), second + _key97(second)
