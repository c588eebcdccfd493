"""The Jinja environment: autoescaping, strict undefined, one environment per process."""

import pytest
from jinja2 import UndefinedError

from documents import rendering
from documents.api import devis_html
from documents.data import Issuer
from documents.samples import sample_devis, with_rounding
from mairie.settings import Settings


def _issuers():
    settings = Settings()
    return Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)


def test_one_environment_autoescape_and_strict():
    env = rendering.environment()
    assert env is rendering.environment()
    assert env.from_string("{{ x }}").render(x="<b>&") == "&lt;b&gt;&amp;"
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()


def test_unknown_template_variable_fails_loudly():
    with pytest.raises(UndefinedError):
        rendering.render_html("devis")  # no `devis` given


def test_misspelt_attribute_fails_loudly():
    with pytest.raises(UndefinedError):
        rendering.environment().from_string("{{ devis.numero }}").render(devis=object())


def test_names_are_escaped_in_the_html():
    import dataclasses

    syndicat, cdg = _issuers()
    devis = sample_devis(syndicat, cdg)
    name = 'Commune d\'Écœuilly <script>alert("x")</script> & Fils'
    devis = dataclasses.replace(devis, collectivity=dataclasses.replace(devis.collectivity, name=name))
    html = devis_html(devis)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Fils" in html
    assert "Écœuilly" in html


def test_narrow_spaces_from_other_layers_are_printed_as_no_break_spaces():
    assert rendering.environment().from_string("{{ t }}").render(t="1\u202f096") == "1\xa0096"


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown document kind"):
        rendering.stylesheets("bon-de-commande")


def test_convention_refuses_a_grid_not_yet_in_force_and_naive_times():
    import dataclasses
    from datetime import date, datetime

    from documents.data import Signature
    from documents.samples import sample_convention
    from models.errors import InvalidInput

    syndicat, cdg = _issuers()
    convention = sample_convention(syndicat, cdg)
    with pytest.raises(InvalidInput, match="pas encore en vigueur"):
        dataclasses.replace(convention, convention_date=date(2025, 7, 9))
    with pytest.raises(InvalidInput, match="fuseau"):
        Signature("cdg", "X", "Président", datetime(2026, 1, 1, 12, 0), "127.0.0.1")
    with pytest.raises(InvalidInput, match="qu'une fois"):
        dataclasses.replace(convention, signatures=convention.signatures + convention.signatures[:1])
    assert not convention.draft
    assert dataclasses.replace(convention, signatures=convention.signatures[:2]).draft


def _text(html: str) -> str:
    """The visible text of a document's HTML, entities decoded, spaces collapsed."""
    import re
    from html import unescape

    return re.sub(r"[\s\xa0]+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_totals_print_the_rounding_amount_only_when_there_is_one():
    from decimal import Decimal

    from documents.api import avoir_html, facture_html
    from documents.samples import sample_avoir, sample_facture

    syndicat, cdg = _issuers()
    facture = sample_facture(syndicat, cdg)
    plain = _text(facture_html(facture))
    assert "Arrondi" not in plain and "Total TTC 838,40 €" in plain
    rounded = _text(facture_html(with_rounding(facture, Decimal("0.02"))))
    assert "Total TTC 838,40 € Arrondi 0,02 € Net à payer 838,42 €" in rounded
    support = sample_facture(syndicat, cdg, support=True)
    outside = _text(facture_html(with_rounding(support, Decimal("-0.01"))))
    assert "TVA non applicable Arrondi -0,01 € Net à payer 149,99 €" in outside
    avoir = with_rounding(sample_avoir(syndicat, cdg), Decimal("0.01"))
    credited = _text(avoir_html(avoir))
    assert f"Le montant de cet avoir, {_text(rendering.environment().filters['money'](avoir.amount_due))}" in credited
    assert "Arrondi 0,01 €" in credited


def test_invoices_and_credit_notes_print_the_three_legal_mentions():
    from documents.api import avoir_html, facture_html
    from documents.samples import sample_avoir, sample_facture

    syndicat, cdg = _issuers()
    for html in (facture_html(sample_facture(syndicat, cdg)), avoir_html(sample_avoir(syndicat, cdg))):
        text = _text(html)
        for mention in (syndicat.late_payment_note, syndicat.recovery_fee_note, syndicat.discount_note):
            assert mention in text
