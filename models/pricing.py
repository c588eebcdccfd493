"""Pricing: a basket at a date → the two quotes (syndicat services, CDG support), and renewal lines.

The deliberated prices are TTC. Per issuer and VAT rate, HT is back-computed from the TTC total, so that
TTC = Σ deliberated price × quantity to the cent and the line nets add up exactly to the VAT basis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from models.catalog import KIND_LABELS, SUPPORT_CODE, Grid, GridItem
from models.eligibility import Eligibility, OnQuote
from models.errors import InvalidInput
from models.money import ZERO, split_ttc, to_money, unit_price_ht


@dataclass(frozen=True)
class VatRegime:
    """How an issuer charges VAT: category S at a rate, or O (outside the scope) with its mention."""

    category: Literal["S", "O"]
    rate: Decimal
    exemption_reason: str | None = None

    @staticmethod
    def standard(rate: Decimal = Decimal("0.20")) -> VatRegime:
        return VatRegime("S", rate)

    @staticmethod
    def outside_scope(reason: str = "TVA non applicable — article 256 B du CGI") -> VatRegime:
        return VatRegime("O", Decimal("0"), reason)


@dataclass(frozen=True)
class BasketLine:
    """A requested item. `amount_ttc` is the operator's total for an on-quote line."""

    code: str
    quantity: int
    amount_ttc: Decimal | None = None


@dataclass(frozen=True)
class PricedLine:
    position: int
    code: str
    label: str
    family: str
    unit: str
    kind: str
    quantity: int
    unit_price_ttc: Decimal
    unit_price_ht: Decimal
    vat_rate: Decimal
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    note: str | None = None

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass(frozen=True)
class PricedDocument:
    """The priced lines and totals of one issuer (a quote or an invoice before numbering)."""

    issuer: str
    vat: VatRegime
    lines: tuple[PricedLine, ...]
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuotePreview:
    grid_code: str
    quotes: tuple[PricedDocument, ...]
    on_quote: tuple[OnQuote, ...] = ()
    pending: tuple[str, ...] = field(default_factory=tuple)  # item codes waiting for an operator amount

    @property
    def complete(self) -> bool:
        return not self.pending


@dataclass(frozen=True)
class _Draft:
    item: GridItem | None
    code: str
    label: str
    family: str
    unit: str
    kind: str
    quantity: int
    unit_price_ttc: Decimal
    total_ttc: Decimal
    note: str | None = None


def validate_basket(grid: Grid, basket: Sequence[BasketLine]) -> None:
    """Refuse unknown codes, non-positive quantities and an item asked twice, with a clear message."""
    seen: set[str] = set()
    if not basket:
        raise InvalidInput("la demande ne contient aucun article ; indiquez au moins CODE=QUANTITÉ")
    for line in basket:
        grid.item(line.code)  # raises with the accepted codes
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or line.quantity < 1:
            raise InvalidInput(f"{line.code} : la quantité doit être un entier positif, pas « {line.quantity} »")
        if line.quantity > 100_000:
            raise InvalidInput(f"{line.code} : quantité {line.quantity} déraisonnable (au plus 100 000)")
        if line.code in seen:
            raise InvalidInput(f"{line.code} apparaît deux fois dans la demande ; regroupez les quantités")
        seen.add(line.code)
        if line.amount_ttc is not None and line.amount_ttc < 0:
            raise InvalidInput(f"{line.code} : le montant saisi ne peut pas être négatif")


def pack_note(grid: Grid, item: GridItem) -> str | None:
    """The quote's note on a first-year item: what it renews as from the second year."""
    if item.kind != "first_year" or not item.renews_as:
        return None
    parts = [grid.item(code) for code in item.renews_as]
    total = sum((p.price_ttc for p in parts), ZERO)
    detail = " + ".join(f"{p.label} {_fr(p.price_ttc)}" for p in parts)
    return (
        f"{item.label} : {_fr(item.price_ttc)} TTC par poste la première année ; à partir de la deuxième "
        f"année, chaque licence est renouvelée à son prix annuel ({detail} = {_fr(total)} TTC par poste, "
        "au tarif en vigueur)."
    )


def _fr(amount: Decimal) -> str:
    """A compact French amount for notes (documents use Babel for the full formatting)."""
    whole, _, cents = f"{amount:.2f}".partition(".")
    return f"{int(whole):,}".replace(",", "\u202f") + f",{cents} €"


def price_lines(issuer: str, vat: VatRegime, drafts: Sequence[_Draft], notes: Sequence[str] = ()) -> PricedDocument:
    """Turn TTC drafts into priced lines with HT and VAT, exact to the cent."""
    split = split_ttc([d.total_ttc for d in drafts], vat.rate)
    lines = []
    for position, (draft, net) in enumerate(zip(drafts, split.line_ht, strict=True), start=1):
        lines.append(
            PricedLine(
                position=position,
                code=draft.code,
                label=draft.label,
                family=draft.family,
                unit=draft.unit,
                kind=draft.kind,
                quantity=draft.quantity,
                unit_price_ttc=draft.unit_price_ttc,
                unit_price_ht=unit_price_ht(draft.unit_price_ttc, vat.rate),
                vat_rate=vat.rate,
                total_ht=net,
                total_vat=draft.total_ttc - net,
                total_ttc=draft.total_ttc,
                note=draft.note,
            )
        )
    return PricedDocument(
        issuer=issuer,
        vat=vat,
        lines=tuple(lines),
        total_ht=split.ht,
        total_vat=split.vat,
        total_ttc=split.ttc,
        notes=tuple(notes),
    )


def _item_draft(grid: Grid, line: BasketLine, *, as_code: str | None = None, note: str | None = None) -> _Draft:
    item = grid.item(as_code or line.code)
    if line.amount_ttc is not None and as_code is None:
        total = to_money(line.amount_ttc)
        unit = to_money(total / line.quantity)
        note = note or "Montant fixé sur devis."
    else:
        unit = item.price_ttc
        total = to_money(item.price_ttc * line.quantity)
    return _Draft(item, item.code, item.label, item.family, item.unit, item.kind, line.quantity, unit, total, note)


def support_draft(grid: Grid, fee: Decimal, *, note: str | None = None) -> _Draft:
    fee = to_money(fee)
    return _Draft(
        None, SUPPORT_CODE, grid.support_label, "Accompagnement", grid.support_unit, "yearly", 1, fee, fee, note
    )


def quote_preview(
    grid: Grid,
    basket: Sequence[BasketLine],
    eligibility: Eligibility,
    *,
    syndicat: str,
    syndicat_vat: VatRegime,
    cdg_vat: VatRegime,
    support_amount: Decimal | None = None,
) -> QuotePreview:
    """The two quotes of a request: services (syndicat) and support (CDG of the department).

    An on-quote line (above an item's limit) is priced only once an operator amount is given; the support
    line likewise when the band gives no fee (`support_amount` settles it). Missing amounts are listed in
    `pending`, and the quote totals cover the priced lines only.
    """
    validate_basket(grid, basket)
    if not eligibility.eligible or eligibility.cdg is None:
        raise InvalidInput("collectivité non éligible : aucun devis ne peut être établi")
    pending: list[str] = []
    drafts: list[_Draft] = []
    notes: list[str] = []
    for line in basket:
        item = grid.item(line.code)
        over_limit = item.max_quantity is not None and line.quantity > item.max_quantity
        if over_limit and line.amount_ttc is None:
            pending.append(line.code)
            continue
        drafts.append(_item_draft(grid, line))
        note = pack_note(grid, item)
        if note:
            notes.append(note)
    quotes = [price_lines(syndicat, syndicat_vat, drafts, notes)] if drafts else []

    fee = support_amount if support_amount is not None else eligibility.support_fee
    if fee is None:
        pending.append(SUPPORT_CODE)
    else:
        support_notes = []
        if eligibility.population is not None:
            p = eligibility.population
            vintage = f", millésime {p.vintage}" if p.vintage else ""
            support_notes.append(
                f"Population retenue : {p.value} habitants ({p.kind_label}{vintage} ; source : {p.source})."
            )
        if eligibility.band is not None and support_amount is None:
            support_notes.append(f"Strate : {eligibility.band.label}.")
        elif support_amount is not None:
            support_notes.append("Montant de l'accompagnement fixé sur devis.")
        quotes.append(price_lines(eligibility.cdg, cdg_vat, [support_draft(grid, fee)], support_notes))
    return QuotePreview(
        grid_code=grid.code, quotes=tuple(quotes), on_quote=eligibility.on_quote, pending=tuple(pending)
    )


def renewal_drafts(grid: Grid, items: Sequence[BasketLine]) -> list[_Draft]:
    """The yearly lines of a renewal: yearly items again, first-year items as what they renew into,
    one-off items not at all. Prices are those of `grid` (the grid in force on the renewal date);
    an operator amount (on-quote item) renews at the same amount."""
    drafts: list[_Draft] = []
    for line in items:
        item = grid.item(line.code)
        if item.kind == "yearly":
            drafts.append(_item_draft(grid, line))
        elif item.kind == "first_year":
            for code in item.renews_as:
                drafts.append(
                    _item_draft(
                        grid, BasketLine(code, line.quantity), as_code=code, note=f"Renouvellement de : {item.label}"
                    )
                )
    return drafts


def first_year_drafts(grid: Grid, items: Sequence[BasketLine]) -> list[_Draft]:
    """The lines of the first invoice: every item (one-off, yearly, first-year) at its first price."""
    return [_item_draft(grid, line) for line in items]


def vat_regime_of(regime: str, rate: Decimal, exemption_reason: str | None = None) -> VatRegime:
    """An issuer's VAT regime from its settings: `standard` at its rate, or `outside_scope` with its mention
    (by default article 256 B du CGI, a public body acting within its public-service mission)."""
    if regime == "outside_scope":
        return VatRegime.outside_scope(exemption_reason or "TVA non applicable — article 256 B du CGI")
    if regime != "standard":
        raise InvalidInput(f"régime de TVA inconnu « {regime} » (standard, outside_scope)")
    return VatRegime.standard(rate)


def pending_amounts(
    grid: Grid, basket: Sequence[BasketLine], *, support_fee: Decimal | None, support_amount: Decimal | None
) -> tuple[str, ...]:
    """The item codes (and `accompagnement`) still waiting for an operator's amount ("sur devis"): an item
    above its limit without an amount, and the support fee when neither the band nor an operator gives it."""
    pending = [
        line.code
        for line in basket
        if (limit := grid.item(line.code).max_quantity) is not None
        and line.quantity > limit
        and line.amount_ttc is None
    ]
    if support_fee is None and support_amount is None:
        pending.append(SUPPORT_CODE)
    return tuple(pending)
