"""Pricing: a basket at a date → the two quotes (syndicat services, CDG support), first-invoice and
renewal lines, prorated over their billed period when they have one.

The deliberated prices are TTC. Each line is arithmetically true: net = quantity × net unit price (the
TTC price back-computed to HT, × months / 12 when prorated, four decimals at most), to the cent; its
deliberated TTC is price × quantity (× months / 12), to the cent. The VAT of each rate is computed on
the sum of the nets, and the document's rounding amount (BT-114) closes the gap to the deliberated
total, so that the amount due is Σ deliberated TTC to the cent and no cent is moved onto a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Literal

from models.catalog import KIND_LABELS, SUPPORT_CODE, Grid, GridItem
from models.eligibility import Eligibility, OnQuote
from models.errors import InvalidInput
from models.money import ZERO, VatTotal, document_totals, line_net, prorate, to_money, unit_price_ht, vat_breakdown
from models.periods import FIRST_INVOICE, IN_FULL_KINDS, BilledPeriod, months_billed


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
    """One printed line.

    - `unit_price_ttc`: the deliberated TTC price of one unit (per year for a yearly item), as fixed by
      the grid, or an operator's line total divided by the quantity.
    - `unit_price_ht`: the net price of one unit for this line's period (EN 16931 BT-146): the TTC price
      back-computed to HT, × months / 12 when prorated; four decimals at most.
    - `total_ht` (BT-131) = quantity × `unit_price_ht`, half-up to the cent: the line is true as printed.
    - `total_ttc`: the deliberated TTC of the line, price × quantity (× months / 12), to the cent.
    - `total_vat` = `total_ttc` − `total_ht`: the VAT share of that deliberated amount. The document's
      VAT is computed on the sum of the nets, not summed from these (see `PricedDocument`).
    - `period_start`/`period_end`/`months`: the billed period (BT-134/BT-135) and the months it prorates
      (None for a quote line, priced for a full year, and for a one-off or first-year price, due whole).
    - `origin`: the subscribed item a line bills when it is not the line's own code (a pack's renewal).
    """

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
    period_start: date | None = None
    period_end: date | None = None
    months: int | None = None
    origin: str | None = None

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def in_full(self) -> bool:
        """The price is due whole whatever the period (a one-off, the first-year pack)."""
        return self.kind in IN_FULL_KINDS

    @property
    def prorated(self) -> bool:
        return self.months is not None and self.months < 12

    @property
    def period(self) -> BilledPeriod | None:
        if self.period_start is None or self.period_end is None:
            return None
        return BilledPeriod.between(self.period_start, self.period_end)


@dataclass(frozen=True)
class PricedDocument:
    """The priced lines and totals of one issuer (a quote or an invoice before numbering).

    `total_ht` (BT-109) is the sum of the line nets, `total_vat` (BT-110) the VAT computed per rate on
    them, `total_ttc` the amount to pay (BT-115): the sum of the lines' deliberated TTC. Their gap is
    `rounding_amount` (BT-114), printed "arrondi"; `grand_total` (BT-112) = `total_ht` + `total_vat`.
    """

    issuer: str
    vat: VatRegime
    lines: tuple[PricedLine, ...]
    total_ht: Decimal
    total_vat: Decimal
    total_ttc: Decimal
    notes: tuple[str, ...] = ()

    @property
    def grand_total(self) -> Decimal:
        """EN 16931 BT-112: total without VAT + VAT."""
        return self.total_ht + self.total_vat

    @property
    def rounding_amount(self) -> Decimal:
        """EN 16931 BT-114 ("arrondi"): what brings BT-112 to the deliberated total (a cent or two)."""
        return self.total_ttc - self.grand_total

    @property
    def amount_due(self) -> Decimal:
        """EN 16931 BT-115: the amount to pay, the deliberated total (= `total_ttc`)."""
        return self.total_ttc

    @property
    def deliberated_total(self) -> Decimal:
        """Σ of the lines' deliberated TTC (equal to `total_ttc` for a document priced here)."""
        return sum((line.total_ttc for line in self.lines), ZERO)

    @property
    def vat_breakdown(self) -> tuple[VatTotal, ...]:
        """EN 16931 BG-23: per VAT rate, the sum of the nets and the VAT on it."""
        return vat_breakdown([(line.total_ht, line.vat_rate) for line in self.lines])

    @property
    def billing_period(self) -> tuple[date, date] | None:
        """EN 16931 BG-14: from the earliest line period start to the latest end (None on a quote)."""
        spans = [(li.period_start, li.period_end) for li in self.lines if li.period_start and li.period_end]
        if not spans:
            return None
        return min(a for a, _ in spans), max(b for _, b in spans)


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
    """A line before pricing: what is billed, its deliberated amount for a full year (or in full), and
    the period it is billed for (None: a full year, as on a quote)."""

    item: GridItem | None
    code: str
    label: str
    family: str
    unit: str
    kind: str
    quantity: int
    unit_price_ttc: Decimal
    full_ttc: Decimal  # deliberated TTC for a whole year or in full: price × quantity, or an operator's amount
    note: str | None = None
    period: BilledPeriod | None = None
    origin: str | None = None

    @property
    def months(self) -> int | None:
        """The months prorated (None: not prorated, the price for a whole year or due in full)."""
        if self.period is None or self.kind in IN_FULL_KINDS:
            return None
        return self.period.months

    @property
    def total_ttc(self) -> Decimal:
        """The line's deliberated TTC: full amount × months / 12 (when prorated), half-up to the cent."""
        return prorate(self.full_ttc, self.months)

    def billed_for(self, period: BilledPeriod) -> _Draft:
        """This draft billed over `period`; a one-off is billed on the period's first day."""
        if self.kind == "one_off":
            period = BilledPeriod.between(period.start, period.start)
        return replace(self, period=period)


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


def price_lines(
    issuer: str,
    vat: VatRegime,
    drafts: Sequence[_Draft],
    notes: Sequence[str] = (),
    *,
    period: BilledPeriod | None = None,
) -> PricedDocument:
    """Price drafts: each line true (net = quantity × net unit price), VAT per rate on the sum of nets,
    the rounding amount closing the gap to the deliberated TTC total.

    `period`, when given, is the billed period of every draft that has none of its own (prorated for a
    yearly line; a one-off is billed on its first day). Without one a draft is priced for a full year."""
    if period is not None:
        drafts = [d if d.period is not None else d.billed_for(period) for d in drafts]
    lines = []
    for position, draft in enumerate(drafts, start=1):
        months = draft.months
        unit_ht = unit_price_ht(draft.full_ttc / draft.quantity, vat.rate, months)
        net = line_net(draft.quantity, unit_ht)
        ttc = draft.total_ttc
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
                unit_price_ht=unit_ht,
                vat_rate=vat.rate,
                total_ht=net,
                total_vat=ttc - net,
                total_ttc=ttc,
                note=draft.note,
                period_start=draft.period.start if draft.period else None,
                period_end=draft.period.end if draft.period else None,
                months=months,
                origin=draft.origin,
            )
        )
    totals = document_totals([(line.total_ht, line.vat_rate, line.total_ttc) for line in lines])
    return PricedDocument(
        issuer=issuer,
        vat=vat,
        lines=tuple(lines),
        total_ht=totals.net,
        total_vat=totals.vat,
        total_ttc=totals.due,
        notes=tuple(notes),
    )


def _item_draft(
    grid: Grid,
    line: BasketLine,
    *,
    as_code: str | None = None,
    note: str | None = None,
    period: BilledPeriod | None = None,
    origin: str | None = None,
) -> _Draft:
    item = grid.item(as_code or line.code)
    if line.amount_ttc is not None and as_code is None:
        total = to_money(line.amount_ttc)
        unit = to_money(total / line.quantity)
        note = note or "Montant fixé sur devis."
    else:
        unit = item.price_ttc
        total = to_money(item.price_ttc * line.quantity)
    draft = _Draft(
        item, item.code, item.label, item.family, item.unit, item.kind, line.quantity, unit, total, note, None, origin
    )
    return draft.billed_for(period) if period is not None else draft


def support_draft(grid: Grid, fee: Decimal, *, note: str | None = None, period: BilledPeriod | None = None) -> _Draft:
    """The support fee's line (a yearly fee: prorated over `period` when given)."""
    fee = to_money(fee)
    return _Draft(
        None, SUPPORT_CODE, grid.support_label, "Accompagnement", grid.support_unit, "yearly", 1, fee, fee, note, period
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
    go_live: date | None = None,
    full_first_year: bool = False,
) -> QuotePreview:
    """The two quotes of a request: services (syndicat) and support (CDG of the department).

    An on-quote line (above an item's limit) is priced only once an operator amount is given; the support
    line likewise when the band gives no fee (`support_amount` settles it). Missing amounts are listed in
    `pending`, and the quote totals cover the priced lines only.

    A quote prices yearly items for a full year. Given `go_live`, the lines are priced as the first
    invoice will bill them (`first_period`): yearly items and the support fee prorated to 31 December
    (or 12 months with `full_first_year`), one-offs and the pack in full.
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
        period = first_period(item.kind, go_live, full_first_year=full_first_year) if go_live else None
        drafts.append(_item_draft(grid, line, period=period))
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
        period = first_period("yearly", go_live, full_first_year=full_first_year) if go_live else None
        quotes.append(price_lines(eligibility.cdg, cdg_vat, [support_draft(grid, fee, period=period)], support_notes))
    return QuotePreview(
        grid_code=grid.code, quotes=tuple(quotes), on_quote=eligibility.on_quote, pending=tuple(pending)
    )


def renewal_drafts(grid: Grid, items: Sequence[BasketLine], *, period: BilledPeriod | None = None) -> list[_Draft]:
    """The yearly lines of a renewal: yearly items again, first-year items as what they renew into,
    one-off items not at all. Prices are those of `grid` (the grid in force on the renewal date);
    an operator amount (on-quote item) renews at the same amount. `period`, when given, is what the
    campaign bills of these items (prorated when it is less than a year); without it, a full year."""
    drafts: list[_Draft] = []
    for line in items:
        item = grid.item(line.code)
        if item.kind == "yearly":
            drafts.append(_item_draft(grid, line, period=period))
        elif item.kind == "first_year":
            for code in item.renews_as:
                drafts.append(
                    _item_draft(
                        grid,
                        BasketLine(code, line.quantity),
                        as_code=code,
                        note=f"Renouvellement de : {item.label}",
                        period=period,
                        origin=item.code,
                    )
                )
    return drafts


def first_period(kind: str, go_live: date, *, full_first_year: bool = False) -> BilledPeriod:
    """The period a first invoice bills an item of `kind` going live on `go_live` (see `models.periods`)."""
    period = months_billed(kind, go_live, None, FIRST_INVOICE, full_first_year=full_first_year)
    assert period is not None  # a first invoice bills every kind
    return period


def first_year_drafts(
    grid: Grid, items: Sequence[BasketLine], *, go_live: date | None = None, full_first_year: bool = False
) -> list[_Draft]:
    """The lines of the first invoice: every item (one-off, yearly, first-year) at its first price.

    Given `go_live`, yearly items are prorated by started month to 31 December (12 months from go-live
    with `full_first_year`), one-offs and the pack billed in full; without it, a full year."""
    drafts = []
    for line in items:
        kind = grid.item(line.code).kind
        period = first_period(kind, go_live, full_first_year=full_first_year) if go_live else None
        drafts.append(_item_draft(grid, line, period=period))
    return drafts


def _draft_of(line: PricedLine) -> _Draft:
    """A priced line back to a draft (its deliberated full amount), to be billed over another period."""
    if line.months is not None and line.months != 12:
        raise InvalidInput(
            f"ligne {line.position} : déjà proratisée ({line.months} mois), elle ne peut l'être à nouveau"
        )
    return _Draft(
        None,
        line.code,
        line.label,
        line.family,
        line.unit,
        line.kind,
        line.quantity,
        line.unit_price_ttc,
        line.total_ttc,
        line.note,
        None,
        line.origin,
    )


def first_invoice_document(
    quote: PricedDocument, go_live: date, *, full_first_year: bool = False, notes: Sequence[str] | None = None
) -> PricedDocument:
    """The first invoice of an issuer from its accepted quote: the quoted prices and quantities, yearly
    lines (the support fee included) prorated by started month from `go_live` to 31 December — or for
    12 months with `full_first_year` —, one-off and first-year lines in full. Notes are the quote's unless
    `notes` is given."""
    drafts = [
        _draft_of(line).billed_for(first_period(line.kind, go_live, full_first_year=full_first_year))
        for line in quote.lines
    ]
    return price_lines(quote.issuer, quote.vat, drafts, quote.notes if notes is None else notes)


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
