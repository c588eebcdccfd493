"""The mentions of a public issuer's invoice, credit note and quote, and the clauses of the convention
(DOMAIN.md, "What a public issuer's invoice and the convention carry"; docs/documents.md lists each one
with the rule it answers). Read from the HTML (fast); the PDFs are read in tests/integration/documents."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from html import unescape
from types import SimpleNamespace

import pytest
from lxml import etree

from documents import schematron
from documents.api import avoir_html, convention_html, devis_html, facture_html
from documents.cii import NSMAP, build_cii
from documents.data import (
    DEFAULT_APPEAL_NOTICE,
    MISSING_TARIFF_DELIBERATION,
    ConventionTerms,
    Issuer,
    Signature,
    operation_nature,
)
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture, sample_grid
from mairie.settings import CDG62_DELIBERATION, Settings
from models.errors import InvalidInput
from models.pricing import BasketLine, VatRegime, first_year_drafts, price_lines

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
SYNDICAT = Issuer.from_identity(SETTINGS.syndicat)
CDG62 = Issuer.from_identity(SETTINGS.cdg62)
CDG59 = Issuer.from_identity(SETTINGS.cdg59)
SYNDICAT_DELIBERATION = "Délibération n° 2025-31 du comité syndical du 26 juin 2025"
CONFIGURED = dataclasses.replace(SYNDICAT, tariff_deliberations=((date(2025, 7, 10), SYNDICAT_DELIBERATION),))


def _text(html: str) -> str:
    """The visible text of a document's HTML, entities decoded, spaces collapsed."""
    return re.sub(r"[\s\xa0]+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _notes(xml: bytes) -> list[str]:
    return etree.fromstring(xml).xpath("//rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()", namespaces=NSMAP)


def _basket(*lines: BasketLine):
    return price_lines(SYNDICAT.code, VatRegime.standard(), first_year_drafts(sample_grid(), list(lines)))


# --- the issuer's settings reach the documents ---------------------------------------------------


def test_from_identity_carries_the_public_finance_settings():
    assert CDG62.ordonnateur is not None and (CDG62.ordonnateur.name, CDG62.ordonnateur.capacity) == (
        "René Hocq", "Président du Centre de gestion"
    )  # fmt: skip
    assert CDG62.tariff_deliberations == ((date(2025, 7, 10), CDG62_DELIBERATION),)
    assert CDG62.convention_deliberations == (CDG62_DELIBERATION,)
    assert SYNDICAT.convention_deliberations[0].startswith("Délibération n° 2021-16")
    assert SYNDICAT.tariff_deliberations == ()  # not in the seeds: a placeholder in development
    assert SYNDICAT.appeal_notice == DEFAULT_APPEAL_NOTICE
    assert SYNDICAT.accountant == "(à renseigner : comptable public du Syndicat)"
    assert SYNDICAT.convention_terms == ConventionTerms()  # the settings' defaults are the documents'


def test_from_identity_reads_a_dumped_identity_and_an_annex_template(tmp_path):
    annex = tmp_path / "annexe.html"
    annex.write_text("<h1>Annexe modifiée</h1>", encoding="utf-8")
    dumped = SETTINGS.syndicat.model_dump()
    dumped["convention"] |= {"gdpr_annex_template": annex, "max_renewals": 2}
    dumped["tariff_deliberations"] = {"2025-07-10": SYNDICAT_DELIBERATION}
    dumped["appeal_notice"] = "Recours : tribunal administratif de Lille, deux mois."
    issuer = Issuer.from_identity(SimpleNamespace(**dumped))
    assert issuer.convention_terms.gdpr_annex_source == "<h1>Annexe modifiée</h1>"
    assert issuer.convention_terms.max_renewals == 2 and issuer.convention_terms.total_years == 3
    assert issuer.tariff_deliberation_on(date(2026, 1, 1)) == SYNDICAT_DELIBERATION
    assert issuer.appeal_notice == "Recours : tribunal administratif de Lille, deux mois."


def test_the_deliberation_of_the_grid_version_in_force():
    issuer = dataclasses.replace(
        SYNDICAT, tariff_deliberations=((date(2025, 7, 10), "Délibération A"), (date(2027, 1, 1), "Délibération B"))
    )
    assert issuer.tariff_deliberation_on(date(2025, 7, 9)) is None
    assert issuer.tariff_deliberation_on(date(2026, 12, 31)) == "Délibération A"
    assert issuer.tariff_deliberation_on(date(2027, 1, 15)) == "Délibération B"
    facture = dataclasses.replace(sample_facture(issuer, CDG62), issue_date=date(2027, 1, 15))
    assert facture.tariff_deliberation == "Délibération B"
    assert dataclasses.replace(facture, tariff_date=date(2026, 11, 24)).tariff_deliberation == "Délibération A"
    avoir = sample_avoir(issuer, CDG62)  # priced like the invoice it corrects (7 December 2026)
    assert dataclasses.replace(avoir, issue_date=date(2027, 2, 1)).tariff_deliberation == "Délibération A"


def test_convention_terms_refuse_nonsense():
    with pytest.raises(InvalidInput, match="durée"):
        ConventionTerms(initial_years=0)
    assert ConventionTerms(initial_years=1, renewal_years=1, max_renewals=3).total_years == 4


# --- invoice ----------------------------------------------------------------------------------------


def test_invoice_prints_every_mention():
    facture = sample_facture(CONFIGURED, CDG62)
    text = _text(facture_html(facture))
    for needle in (
        "SIREN 200 039 386", "SIRET 200 039 386 00012", "TVA intracommunautaire FR25200039386",  # issuer
        "SIREN 216 206 938", "SIRET 216 206 938 00013",  # buyer
        "Nature Prestations de services",
        "Tarifs fixés par délibération n° 2025-31 du comité syndical du 26 juin 2025.",
        "Ordonnateur : (à renseigner : prénom et nom de l'ordonnateur), Président du Syndicat mixte.",
        "Titre de recettes n° 2026-000412, bordereau n° 2026-000087",
        "comptable public de l'émetteur, (à renseigner : comptable public du Syndicat), sur son compte Banque de "
        "France : IBAN FR76 3000 1007 9400 0000 5962 059 — BIC BDFEFRPPCCT",
        "délai global de paiement de 30 jours à compter de la réception de la facture (sur Chorus Pro : de sa mise "
        "à disposition)",
        DEFAULT_APPEAL_NOTICE,
    ):  # fmt: skip
        assert needle in text, needle
    assert "date d'émission." not in text and "à compter de la date d'émission" not in text
    assert "Émetteur LFN" not in text


def test_invoice_without_titre_yet_and_cdg_invoice():
    facture = dataclasses.replace(sample_facture(SYNDICAT, CDG62), titre_number=None, bordereau_number=None)
    text = _text(facture_html(facture))
    assert "Titre de recettes" not in text
    assert f"Tarifs fixés par {MISSING_TARIFF_DELIBERATION}." in text  # development: a marked placeholder
    support = _text(facture_html(sample_facture(SYNDICAT, CDG62, support=True)))
    assert "Tarifs fixés par délibération du conseil d'administration du Centre de gestion du Pas-de-Calais du " \
           "10 juillet 2025" in support  # fmt: skip
    assert "Ordonnateur : René Hocq, Président du Centre de gestion." in support
    assert "FR76 3000 1006 1800 0000 6270 055" in support  # the CDG's own accountant, not the syndicat's
    assert "TVA intracommunautaire" not in support  # outside the scope of VAT: no VAT number


@pytest.mark.parametrize(
    ("lines", "nature"),
    [
        ((BasketLine("antivirus", 3),), "Prestations de services"),
        ((BasketLine("nas-2-disques", 1), BasketLine("antivirus", 3)),
         "Prestations de services et livraison de biens (NAS)"),
        ((BasketLine("nas-2-disques", 2),), "Livraison de biens"),
    ],
)  # fmt: skip
def test_nature_of_the_operations(lines, nature):
    priced = _basket(*lines)
    assert operation_nature(priced) == nature
    facture = dataclasses.replace(sample_facture(SYNDICAT, CDG62), priced=priced)
    assert f"Nature {nature}" in _text(facture_html(facture))
    xml = build_cii(facture)
    assert f"Nature des opérations : {nature}." in _notes(xml)
    assert schematron.check_all(xml) == []


def test_the_xml_carries_the_mentions_as_notes():
    facture = sample_facture(CONFIGURED, CDG62)
    notes = _notes(build_cii(facture))
    assert "Tarifs fixés par délibération n° 2025-31 du comité syndical du 26 juin 2025." in notes
    assert "Ordonnateur : (à renseigner : prénom et nom de l'ordonnateur), Président du Syndicat mixte." in notes
    assert "Titre de recettes : titre n° 2026-000412, bordereau n° 2026-000087." in notes
    assert DEFAULT_APPEAL_NOTICE in notes
    terms = etree.fromstring(build_cii(facture)).xpath("//ram:SpecifiedTradePaymentTerms/ram:Description/text()",
                                                      namespaces=NSMAP)  # fmt: skip
    assert terms == ["Délai global de paiement de 30 jours à compter de la réception de la facture (sur Chorus Pro : "
                     "de sa mise à disposition) ; virement au comptable public."]  # fmt: skip
    untitled = build_cii(dataclasses.replace(facture, titre_number=None, bordereau_number=" "))
    assert not [n for n in _notes(untitled) if n.startswith("Titre de recettes")]
    assert schematron.check_all(untitled) == []


# --- credit note -------------------------------------------------------------------------------------


def test_credit_note_promises_no_refund_delay():
    avoir = sample_avoir(CONFIGURED, CDG62)
    text = _text(avoir_html(avoir))
    assert "vient en déduction des sommes dues au titre de la facture LFN-FAC-2026-00031" in text
    assert "si celle-ci a déjà été payée, il est remboursé à la collectivité par le comptable public de " \
           "l'émetteur, (à renseigner : comptable public du Syndicat) (compte Banque de France IBAN " \
           "FR76 3000 1007 9400 0000 5962 059" in text  # fmt: skip
    assert "sous 30 jours" not in text and "Échéance" not in text  # no payment asked, no delay promised
    for needle in ("SIREN 200 039 386", "SIREN 216 206 938", "Nature Prestations de services", DEFAULT_APPEAL_NOTICE,
                   "Tarifs fixés par délibération n° 2025-31", "Ordonnateur :"):  # fmt: skip
        assert needle in text, needle
    xml = build_cii(avoir)
    root = etree.fromstring(xml)
    assert root.xpath("//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime", namespaces=NSMAP) == []
    [terms] = root.xpath("//ram:SpecifiedTradePaymentTerms/ram:Description/text()", namespaces=NSMAP)
    assert "jours" not in terms and "remboursé par le comptable public" in terms
    assert schematron.check_all(xml) == []


# --- quote -------------------------------------------------------------------------------------------


def test_services_quote_cites_the_syndicat_deliberation_and_its_name():
    text = _text(devis_html(sample_devis(CONFIGURED, CDG62)))
    assert "Émetteur La Fibre Numérique 59-62" in text and "Émetteur LFN" not in text
    assert "Tarifs fixés par délibération n° 2025-31 du comité syndical du 26 juin 2025." in text
    assert "tarifs arrêtés le 10 juillet 2025" not in text  # the CDG board's act, not the syndicat's prices
    assert "30 jours à compter de la réception de la facture" in text
    assert "Nature Prestations de services" in text
    assert "SIREN 200 039 386" in text and "SIREN 216 206 938" in text
    support = _text(devis_html(sample_devis(CONFIGURED, CDG62, support=True)))
    assert "Émetteur Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais" in support
    assert "Tarifs fixés par délibération du conseil d'administration du Centre de gestion du Pas-de-Calais" in support


# --- convention --------------------------------------------------------------------------------------


def test_convention_legal_references():
    text = _text(convention_html(sample_convention(CONFIGURED, CDG62)))
    for needle in (
        "Vu le code de la commande publique, notamment son article L. 2511-6",
        "Vu le règlement (UE) 2016/679 du 27 avril 2016",
        "Vu délibération n° 2021-16 du comité syndical du 23 novembre 2021",
        "Vu délibération n° 2025-31 du comité syndical du 26 juin 2025",
        "Vu délibération du conseil d'administration du Centre de gestion du Pas-de-Calais du 10 juillet 2025",
        "Vu délibération n° 2026-41 du conseil municipal du 18 novembre 2026, autorisant le signataire de la "
        "Collectivité",
        "dûment habilité(e) par délibération n° 2026-41 du conseil municipal du 18 novembre 2026",
        "sans publicité ni mise en concurrence préalables, en application de l'article L. 2511-6 du code de la "
        "commande publique",
    ):  # fmt: skip
        assert needle in text, needle
    assert text.count("Vu délibération du conseil d'administration du Centre de gestion du Pas-de-Calais") == 1


def test_draft_convention_says_where_the_collectivity_reference_comes_from_and_marks_placeholders():
    text = _text(convention_html(sample_convention(SYNDICAT, CDG59, signed=False)))
    assert "sa référence est donnée lors de la signature" in text
    assert "Vu la délibération du Syndicat fixant ses tarifs (à renseigner)" in text
    assert "Vu la délibération du Centre de gestion autorisant la signature (à renseigner)" in text
    assert "Signé électroniquement" not in text and "Signature enregistrée" not in text


def test_convention_duration_termination_reversibility():
    convention = sample_convention(SYNDICAT, CDG62)
    text = _text(convention_html(convention))
    assert "pour une durée initiale de 1 an" in text
    assert "reconduite tacitement" in text
    assert "à chaque date anniversaire, pour une durée de 1 an, au plus 3 fois : sa durée totale ne peut excéder " \
           "4 ans." in text  # fmt: skip
    assert "au moins 3 mois avant sa date anniversaire" in text
    assert "pour un motif d'intérêt général, par une décision motivée notifiée aux deux autres parties avec un " \
           "préavis de 3 mois" in text  # fmt: skip
    assert "au plus tard 30 jours après la date de fin, l'ensemble de ses données" in text
    assert "formats ouverts EML ou MBOX" in text
    assert "Les noms de domaine sont enregistrés au nom de la Collectivité, qui en est et en reste titulaire" in text
    assert "tribunal administratif de Lille" in text
    terms = ConventionTerms(initial_years=2, renewal_years=1, max_renewals=0, notice_months=6, court="tribunal X")
    other = _text(convention_html(dataclasses.replace(
        convention, syndicat=dataclasses.replace(SYNDICAT, convention_terms=terms))))  # fmt: skip
    assert "durée initiale de 2 ans" in other and "sans reconduction" in other and "fois : sa durée" not in other
    assert "au moins 6 mois avant" in other and "devant le tribunal X" in other


def test_convention_gdpr_annex():
    terms = dataclasses.replace(ConventionTerms(), hosting_place="France, centre de données de Lille")
    convention = sample_convention(dataclasses.replace(SYNDICAT, convention_terms=terms), CDG62)
    text = _text(convention_html(convention))
    for needle in (
        "Annexe 2 Protection des données personnelles",
        "article 28 du règlement (UE) 2016/679",
        "Commune de Rebreuve-Ranchicourt Responsable de traitement",
        "La Fibre Numérique 59-62 Sous-traitant Hébergement et exploitation de la messagerie, des sauvegardes",
        "Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais Sous-traitant Accès aux postes",
        "Syndicat mixte Somme Numérique Sous-traitant ultérieur du Syndicat",
        "Lieu d'hébergement : France, centre de données de Lille.",
        "au plus tard 48 heures après en avoir pris connaissance",
        "article 32 du RGPD",
        "puis détruit toutes les copies qu'il détient",
    ):  # fmt: skip
        assert needle in text, needle


def test_the_gdpr_annex_is_a_template_the_issuers_edit():
    source = "<h1>Annexe RGPD de {{ col.name }}</h1><p>Hébergement : {{ terms.hosting_place }} — {{ '<b>' }}</p>"
    terms = dataclasses.replace(ConventionTerms(), hosting_place="Arras", gdpr_annex_source=source)
    convention = sample_convention(dataclasses.replace(SYNDICAT, convention_terms=terms), CDG62)
    html = convention_html(convention)
    assert "Annexe RGPD de Commune de Rebreuve-Ranchicourt" in html and "Hébergement : Arras — &lt;b&gt;" in html
    assert "Clauses de sous-traitance" not in html  # the shipped annex is replaced


def test_signature_blocks_are_honest():
    convention = sample_convention(SYNDICAT, CDG62)
    text = _text(convention_html(convention))
    # the mayor and the syndicat signed themselves on the page; an operator recorded the CDG's signature
    assert text.count("Signé électroniquement le") == 2
    assert "Signature enregistrée par Claire Dumont (opératrice) pour le compte du Centre de gestion, le " \
           "27 novembre 2026 à 16:02:41 (heure de Paris)" in text  # fmt: skip
    assert "Délégation : arrêté de délégation de signature n° 2025-118 du 1er septembre 2025" in text
    assert "Habilitation : délibération n° 2026-41 du conseil municipal du 18 novembre 2026" in text
    operator_only = tuple(
        dataclasses.replace(s, operator="Alice Opératrice", authority=None) for s in convention.signatures
    )
    recorded = _text(convention_html(dataclasses.replace(convention, signatures=operator_only)))
    assert "Signé électroniquement" not in recorded
    for whom in ("de la Collectivité", "du Centre de gestion", "du Syndicat"):
        assert f"Signature enregistrée par Alice Opératrice pour le compte {whom}" in recorded
    assert "Délégation :" not in recorded


def test_a_blank_operator_is_no_operator():
    signature = Signature("cdg", "X", "Président", datetime(2026, 1, 1, tzinfo=UTC), "127.0.0.1", operator=" ")
    assert not signature.by_operator
