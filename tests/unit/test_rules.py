"""Eligibility, bands and pricing on the real 10 July 2025 grid, without a database."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.catalog import GRIDS_DIR, load_grid_file, parse_grid
from models.eligibility import CollectivityProfile, Population, assess, band_for
from models.errors import InvalidInput
from models.money import to_money
from models.pricing import BasketLine, VatRegime, quote_preview, renewal_drafts

GRID = load_grid_file(GRIDS_DIR / "2025-07-10.json")
BANDS = GRID.bands["CDG62"]


def profile(pop: int | None, kind: str = "commune", department: str = "62") -> CollectivityProfile:
    population = None if pop is None else Population(pop, "total", 2023, "INSEE, populations légales 2023")
    return CollectivityProfile(kind=kind, name="Test", department=department, population=population)


def preview(basket, pop=300, **kw):
    elig = assess(profile(pop), GRID, basket=[(b.code, b.quantity) for b in basket])
    return quote_preview(
        GRID, basket, elig, syndicat="LFN", syndicat_vat=VatRegime.standard(), cdg_vat=VatRegime.outside_scope(), **kw
    )


def test_grid_matches_the_deliberation():
    prices = {i.code: i.price_ttc for i in GRID.items}
    assert prices == {
        "messagerie-5go": Decimal("16.80"),
        "messagerie-illimitee": Decimal("22.80"),
        "nom-de-domaine": Decimal("15.60"),
        "page-internet": Decimal("14.00"),
        "sauvegarde-mes-n1": Decimal("110.40"),
        "sauvegarde-mes-n2": Decimal("220.80"),
        "sauvegarde-mes-n3": Decimal("441.60"),
        "sauvegarde-abo-n1": Decimal("441.60"),
        "sauvegarde-abo-n2": Decimal("607.20"),
        "sauvegarde-abo-n3": Decimal("772.80"),
        "nas-2-disques": Decimal("759.00"),
        "stockage-go": Decimal("12.00"),
        "antivirus": Decimal("16.80"),
        "gestionnaire-mdp": Decimal("42.05"),
        "pack-antivirus-mdp": Decimal("31.20"),
    }
    kinds = {i.code: i.kind for i in GRID.items}
    assert [c for c, k in kinds.items() if k == "one_off"] == [
        "sauvegarde-mes-n1",
        "sauvegarde-mes-n2",
        "sauvegarde-mes-n3",
        "nas-2-disques",
    ]
    assert kinds["pack-antivirus-mdp"] == "first_year"
    assert [b.fee for b in BANDS] == [Decimal(v) for v in ("50", "100", "150", "200", "250", "300", "350")]
    assert GRID.bands["CDG59"] == BANDS


@pytest.mark.parametrize(
    ("population", "fee"),
    [
        (0, "50"),
        (499, "50"),
        (500, "100"),
        (999, "100"),
        (1000, "150"),
        (1499, "150"),
        (1500, "200"),
        (1999, "200"),
        (2000, "250"),
        (2499, "250"),
        (2500, "300"),
        (2999, "300"),
        (3000, "350"),
        (3499, "350"),
    ],
)
def test_band_boundaries(population, fee):
    verdict = assess(profile(population), GRID)
    assert verdict.eligible and verdict.support_fee == Decimal(fee) and not verdict.on_quote


@pytest.mark.parametrize(("population", "code"), [(3500, "population_at_limit"), (3501, "population_over_limit")])
def test_on_quote_populations(population, code):
    verdict = assess(profile(population), GRID)
    assert verdict.eligible and verdict.support_fee is None
    assert [r.code for r in verdict.on_quote] == [code]


@given(st.integers(min_value=0, max_value=3_000_000))
def test_every_population_has_one_band_or_is_on_quote(population):
    matching = [b for b in BANDS if b.contains(population)]
    assert len(matching) <= 1
    assert (band_for(population, BANDS) is None) == (population >= 3500)


def test_outside_the_two_departments_is_refused_with_a_reason():
    verdict = assess(profile(300, department="80"), GRID)
    assert not verdict.eligible and verdict.cdg is None
    assert "80" in verdict.reasons[0]


def test_department_chooses_the_cdg():
    assert assess(profile(300, department="59"), GRID).cdg == "CDG59"
    assert assess(profile(300, department="62"), GRID).cdg == "CDG62"


def test_public_establishment_fee_is_a_setting():
    assert [r.code for r in assess(profile(None, kind="public_establishment"), GRID).on_quote] == [
        "public_establishment_fee"
    ]
    verdict = assess(profile(None, kind="public_establishment"), GRID, public_establishment_fee=Decimal("75"))
    assert verdict.support_fee == Decimal("75") and not verdict.on_quote


def test_other_structures_are_on_quote():
    assert [r.code for r in assess(profile(None, kind="other"), GRID).on_quote] == ["other_structure"]


def test_storage_above_100_is_on_quote_and_pending():
    result = preview([BasketLine("stockage-go", 101)])
    assert result.pending == ("stockage-go",)
    assert [r.code for r in result.on_quote] == ["quantity_over_limit"]
    settled = preview([BasketLine("stockage-go", 101, amount_ttc=Decimal("1500"))])
    assert settled.pending == () and settled.quotes[0].total_ttc == Decimal("1500.00")
    assert preview([BasketLine("stockage-go", 100)]).quotes[0].total_ttc == Decimal("1200.00")


item_codes = st.sampled_from([i.code for i in GRID.items if i.code != "stockage-go"])
baskets = st.dictionaries(item_codes, st.integers(min_value=1, max_value=500), min_size=1, max_size=8)


@given(baskets, st.integers(min_value=0, max_value=3499))
def test_quote_totals_are_exact(basket, population):
    lines = [BasketLine(c, q) for c, q in basket.items()]
    result = preview(lines, pop=population)
    services, support = result.quotes
    expected = sum((GRID.item(c).price_ttc * q for c, q in basket.items()), Decimal("0"))
    assert services.total_ttc == expected
    # The VAT is computed on the sum of the nets; the rounding amount (BT-114), not a line, takes the gap.
    assert services.total_ht + services.total_vat + services.rounding_amount == services.total_ttc
    assert services.total_vat == to_money(services.total_ht * Decimal("0.20"))
    assert sum((line.total_ht for line in services.lines), Decimal(0)) == services.total_ht
    assert sum((line.total_vat for line in services.lines), Decimal(0)) == (
        services.total_vat + services.rounding_amount
    )
    for line in services.lines:
        assert line.total_ht + line.total_vat == line.total_ttc
        assert line.total_ht == to_money(line.quantity * line.unit_price_ht)
    assert support.total_ttc == support.total_ht == band_for(population, BANDS).fee
    assert support.total_vat == 0 and support.vat.category == "O"


def test_pack_note_and_renewal():
    result = preview([BasketLine("pack-antivirus-mdp", 2)])
    assert "58,85 €" in result.quotes[0].notes[0]
    renewal = renewal_drafts(
        GRID, [BasketLine("pack-antivirus-mdp", 2), BasketLine("nas-2-disques", 1), BasketLine("antivirus", 1)]
    )
    assert [(d.code, d.quantity, d.total_ttc) for d in renewal] == [
        ("antivirus", 2, Decimal("33.60")),
        ("gestionnaire-mdp", 2, Decimal("84.10")),
        ("antivirus", 1, Decimal("16.80")),
    ]


@pytest.mark.parametrize(
    ("basket", "message"),
    [
        ([], "aucun article"),
        ([BasketLine("inconnu", 1)], "code d'article inconnu"),
        ([BasketLine("antivirus", 0)], "entier positif"),
        ([BasketLine("antivirus", 1), BasketLine("antivirus", 2)], "deux fois"),
    ],
)
def test_bad_baskets(basket, message):
    with pytest.raises(InvalidInput, match=message):
        preview(basket)


def test_a_grid_with_a_gap_in_its_bands_is_refused():
    data = {
        "code": "x",
        "effective_from": "2027-01-01",
        "title": "t",
        "items": [],
        "support": {
            "label": "a",
            "unit": "u",
            "bands": {
                "CDG62": [
                    {"min": 0, "max": 500, "fee": "50", "label": "a"},
                    {"min": 600, "max": 900, "fee": "60", "label": "b"},
                ]
            },
        },
    }
    with pytest.raises(InvalidInput, match="trou ou chevauchement"):
        parse_grid(data)
