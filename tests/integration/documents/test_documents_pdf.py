"""PDFs as a reader and a machine see them: text (pypdf), embedded Factur-X XML, PDF/A identification."""

import dataclasses
import io
import re
from decimal import Decimal

import pytest
from facturx import get_xml_from_pdf, xml_check_xsd
from pypdf import PdfReader

from documents import facturx_rules, render_avoir, render_convention, render_devis, render_facture, schematron
from documents.api import FACTURX_VARIANT, facture_html
from documents.data import Issuer, Signatory
from documents.rendering import html_to_pdf
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture, with_rounding
from mairie.settings import Settings
from tests.pdf_checks import assert_pdfa3b_facturx

SETTINGS = Settings()
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG = Issuer.from_identity(SETTINGS.cdg62)
TRICKY = 'Commune d\'Écœuilly-sur-Lys <Nord> & "Fils"'


def text_of(pdf: bytes) -> str:
    """The text of every page, with no-break spaces as plain spaces and runs of spaces collapsed."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return re.sub(r"[\s\xa0\u202f]+", " ", text)



@pytest.fixture(scope="module")
def services_devis_pdf() -> bytes:
    return render_devis(sample_devis(SYNDICAT, CDG))


def test_services_quote_shows_lines_totals_and_mentions(services_devis_pdf):
    text = text_of(services_devis_pdf)
    devis = sample_devis(SYNDICAT, CDG)
    assert services_devis_pdf.startswith(b"%PDF-")
    assert "DEVIS" in text and devis.number in text
    assert "24 novembre 2026" in text and "22 février 2027" in text  # date and validity (90 days)
    assert "Messagerie compte 5 Go" in text and "100,80 €" in text
    assert "Total HT 698,67 €" in text and "TVA 20 % 139,73 €" in text and "Total TTC 838,40 €" in text
    assert "SIRET 200 039 386 00012" in text and "FR25200039386" in text  # the key of SIREN 200039386
    assert "216 206 938 00013" in text  # the collectivity's SIRET
    assert "première année" in text and "58,85 €" in text  # the pack and its renewal price note
    assert "Prestations sur devis" in text and "120 demandés, au-delà de 100" in text  # a pending line
    assert re.search(r"Page 1 / \d", text)


def test_support_quote_shows_population_and_vat_mention():
    text = text_of(render_devis(sample_devis(SYNDICAT, CDG, support=True)))
    assert "Population retenue : 1 096 habitants" in text
    assert "population totale, millésime 2023" in text and "INSEE, populations légales" in text
    assert "moins de 1 500 habitants" in text
    assert "TVA non applicable — article 256 B du CGI" in text
    assert "Net à payer 150,00 €" in text


def test_facture_is_factur_x_en16931_and_pdfa3():
    facture = sample_facture(SYNDICAT, CDG)
    pdf = render_facture(facture)
    filename, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert xml_check_xsd(xml, flavor="factur-x", level="en16931")
    assert facturx_rules.check(xml) == []
    assert schematron.errors(xml) == []
    assert schematron.french_errors(xml) == []
    assert_pdfa3b_facturx(pdf)
    text = text_of(pdf)
    assert "FACTURE" in text and facture.number in text
    assert "Échéance 6 janvier 2027" in text
    assert "délai global de paiement de 30 jours" in text
    assert "FR76 3000 1007 9400 0000 5962 059" in text and "BDFEFRPPCCT" in text  # the syndicat's own account
    assert "EJ-2026-000318" in text and "FACTURES" in text  # commitment number, Chorus Pro service code
    assert "Total TTC 838,40 €" in text
    assert "Arrondi" not in text  # no rounding amount on this invoice
    assert "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €" in text  # PMT
    assert "Pas d'escompte pour paiement anticipé." in text  # AAB


def test_a_rounding_amount_is_printed_and_makes_the_amount_to_pay():
    facture = with_rounding(sample_facture(SYNDICAT, CDG), Decimal("-0.01"))
    pdf = render_facture(facture)
    _name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert schematron.check_all(xml) == []
    text = text_of(pdf)
    assert "Total TTC 838,40 € Arrondi -0,01 € Net à payer 838,39 €" in text


def test_a_long_invoice_breaks_across_pages_with_the_header_row_repeated():
    facture = sample_facture(SYNDICAT, CDG)
    lines = tuple(dataclasses.replace(line, position=i) for i, line in enumerate(facture.priced.lines * 7, start=1))
    long = dataclasses.replace(facture, priced=dataclasses.replace(facture.priced, lines=lines))
    # The layout only (the repeated lines do not add up to the totals, so no Factur-X step).
    reader = PdfReader(io.BytesIO(html_to_pdf(facture_html(long), "facture", pdf_variant=FACTURX_VARIANT)))
    pages = [re.sub(r"[\s\xa0\u202f]+", " ", page.extract_text()) for page in reader.pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert "DÉSIGNATION" in text and "TOTAL TTC" in text  # the header row, on every page
        assert f"Page {number} / {len(pages)}" in text
    assert "42 Licences antivirus" in pages[-1] and "Total TTC 838,40 €" in pages[-1]


def test_cdg_facture_outside_scope():
    pdf = render_facture(sample_facture(SYNDICAT, CDG, support=True))
    _name, xml = get_xml_from_pdf(pdf)
    assert b"VATEX-EU-O" in xml
    assert schematron.check_all(xml) == []
    text = text_of(pdf)
    assert "TVA non applicable — article 256 B du CGI" in text and "Net à payer 150,00 €" in text


def test_avoir_references_the_invoice():
    avoir = sample_avoir(SYNDICAT, CDG)
    pdf = render_avoir(avoir)
    _name, xml = get_xml_from_pdf(pdf)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    assert avoir.invoice_number.encode() in xml
    assert schematron.errors(xml) == []
    assert schematron.french_errors(xml) == []
    assert_pdfa3b_facturx(pdf)
    text = text_of(pdf)
    assert "AVOIR" in text and f"Avoir sur la facture n° {avoir.invoice_number}" in text
    assert "16,80 €" in text


def test_tricky_names_come_out_intact():
    facture = sample_facture(SYNDICAT, CDG)
    collectivity = dataclasses.replace(
        facture.collectivity, name=TRICKY, signatory=Signatory("Mme Zoë L'Hôte-Müller <maire>", "Maire")
    )
    pdf = render_facture(dataclasses.replace(facture, collectivity=collectivity))
    text = text_of(pdf)
    assert TRICKY in text
    assert "Mme Zoë L'Hôte-Müller <maire>" in text
    _name, xml = get_xml_from_pdf(pdf)
    assert b'Commune d\'\xc3\x89c\xc5\x93uilly-sur-Lys &lt;Nord&gt; &amp; "Fils"' in xml
    assert schematron.check_all(xml) == []


def test_signed_convention_has_parties_annex_and_evidence():
    convention = sample_convention(SYNDICAT, CDG)
    text = text_of(render_convention(convention))
    assert "Convention tripartite" in text and convention.number in text
    assert "PROJET" not in text
    for party in (SYNDICAT.name, CDG.name, "Commune de Rebreuve-Ranchicourt"):
        assert party in text
    assert "LFN-DEV-2026-00042" in text and "CDG62-DEV-2026-00007" in text  # both quotes
    assert "838,40 €" in text and "150,00 €" in text
    assert "3 mois avant sa date anniversaire" in text and "reconduite tacitement" in text
    assert "Grille tarifaire" in text and "772,80 €" in text and "350,00 €" in text  # annex from the grid data
    assert "Page de preuve" in text
    assert "26 novembre 2026 à 10:14:03 (heure de Paris)" in text  # 09:14:03 UTC
    assert "2a01:cb08:8a3:4b00::1f" in text
    assert "Enregistrée par Claire Dumont (opératrice) pour le compte de la partie" in text
    for shown in convention.documents:
        assert shown.sha256[:32] in text.replace(" ", "")


def test_draft_convention_is_marked_projet():
    text = text_of(render_convention(sample_convention(SYNDICAT, CDG, signed=False)))
    assert "PROJET" in text
    assert "En attente de signature" in text


def test_only_the_shipped_font_is_embedded():
    pdf = render_facture(sample_facture(SYNDICAT, CDG))
    reader = PdfReader(io.BytesIO(pdf))
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    assert fonts == {"Inter", "Inter-Semi-Bold"}


def test_a_line_without_family_prints_its_unit_alone():
    """Lines stored before the family was kept (migration 17bbda572f99) have an empty family."""
    facture = sample_facture(SYNDICAT, CDG)
    lines = tuple(dataclasses.replace(line, family="") for line in facture.priced.lines)
    html = facture_html(dataclasses.replace(facture, priced=dataclasses.replace(facture.priced, lines=lines)))
    details = re.findall(r'<div class="item-detail">([^<]*)</div>', html)
    assert details == [line.unit for line in lines]
    with_family = re.findall(r'<div class="item-detail">([^<]*)</div>', facture_html(facture))
    assert with_family == [f"{line.family} · {line.unit}" for line in facture.priced.lines]
