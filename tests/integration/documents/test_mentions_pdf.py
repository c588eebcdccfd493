"""The mentions as a reader of the PDFs sees them, on every document kind, with the XML still passing the
XSD and the CEN and BR-FR schematrons; and a convention signed through the services, printed honestly."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from facturx import get_xml_from_pdf

from documents import render_avoir, render_convention, render_devis, render_facture, schematron
from documents.data import DEFAULT_APPEAL_NOTICE, Issuer
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture
from mairie.database import unit_of_work
from mairie.schemas import RequestForm
from mairie.services import approvals, paperwork
from mairie.services import intake as svc
from mairie.services import quotes as quoting
from mairie.services.setup import initialise
from mairie.settings import Settings
from models.entities import Approval
from notifications.mailserver import LoopbackMailServer
from tests.conftest import mairie_siret, make_settings
from tests.integration.documents.test_documents_pdf import text_of
from tests.integration.lifecycle.conftest import token_of

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
DELIBERATION = "Délibération n° 2025-31 du comité syndical du 26 juin 2025"
SYNDICAT = dataclasses.replace(
    Issuer.from_identity(SETTINGS.syndicat), tariff_deliberations=((date(2025, 7, 10), DELIBERATION),)
)
CDG = Issuer.from_identity(SETTINGS.cdg62)
BOTH_PARTIES = ("SIREN 200 039 386", "SIRET 200 039 386 00012", "SIREN 216 206 938", "SIRET 216 206 938 00013")


def _read(pdf: bytes) -> str:
    """The PDF's text with the words hyphenated at a line end joined again."""
    return text_of(pdf).replace("\u2010 ", "")


def _xml_passes(pdf: bytes) -> None:
    _name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert schematron.check_all(xml) == []


def test_services_quote_pdf():
    text = _read(render_devis(sample_devis(SYNDICAT, CDG)))
    for needle in (*BOTH_PARTIES, "Nature Prestations de services", "Émetteur La Fibre Numérique 59-62",
                   "Tarifs fixés par délibération n° 2025-31 du comité syndical du 26 juin 2025",
                   "30 jours à compter de la réception de la facture"):  # fmt: skip
        assert needle in text, needle
    assert "Émetteur LFN" not in text and "tarifs arrêtés" not in text


def test_invoice_pdf_of_each_issuer():
    text = _read(pdf := render_facture(sample_facture(SYNDICAT, CDG)))
    _xml_passes(pdf)
    for needle in (*BOTH_PARTIES, "Nature Prestations de services", "FR25200039386",
                   "Titre de recettes n° 2026-000412, bordereau n° 2026-000087",
                   "Tarifs fixés par délibération n° 2025-31", "Ordonnateur :",
                   "compte Banque de France : IBAN FR76 3000 1007 9400 0000 5962 059",
                   "à compter de la réception de la facture (sur Chorus Pro : de sa mise à disposition)",
                   "tribunal administratif de Lille", "article L. 1617-5 du code général"):  # fmt: skip
        assert needle in text, needle
    support = _read(pdf := render_facture(sample_facture(SYNDICAT, CDG, support=True)))
    _xml_passes(pdf)
    assert "Ordonnateur : René Hocq, Président du Centre de gestion." in support
    assert "du 10 juillet 2025" in support and "FR76 3000 1006 1800 0000 6270 055" in support


def test_credit_note_pdf():
    text = _read(pdf := render_avoir(sample_avoir(SYNDICAT, CDG)))
    _xml_passes(pdf)
    assert "vient en déduction des sommes dues au titre de la facture LFN-FAC-2026-00031" in text
    assert "remboursé à la collectivité par le comptable public de l'émetteur" in text
    assert "sous 30 jours" not in text and "Échéance" not in text
    assert "Voies et délais de recours" in text and "Ordonnateur :" in text


def test_convention_pdf_has_references_clauses_annex_and_honest_signatures():
    text = _read(render_convention(sample_convention(SYNDICAT, CDG)))
    for needle in ("L. 2511-6", "n° 2021-16", "du 10 juillet 2025", "délibération n° 2026-41 du conseil municipal",
                   "ne peut excéder 4 ans", "motif d'intérêt général", "noms de domaine",
                   "Annexe 2", "Protection des données personnelles", "Responsable de traitement",
                   "Somme Numérique", "48 heures", "Page de preuve"):  # fmt: skip
        assert needle in text, needle
    assert text.count("Signé électroniquement") == 2
    assert "Signature enregistrée par Claire Dumont (opératrice) pour le compte du Centre de gestion" in text


# --- a convention signed through the services -------------------------------------------------------


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[LoopbackMailServer]:
    with LoopbackMailServer(tmp_path / "mail") as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, mail_server: LoopbackMailServer) -> Settings:
    settings = make_settings(tmp_path, smtp_port=mail_server.port, public_url="http://127.0.0.1:8090")
    initialise(settings)
    return settings


def test_signatures_recorded_by_the_services_are_printed_as_they_were_given(settings):
    day = date(2026, 11, 24)
    form = RequestForm(
        collectivity="62700",
        siret=mairie_siret("62700"),
        items=[{"code": "messagerie-5go", "quantity": 2}],
        signatory_name="Jeanne Dupont",
        signatory_email="maire@regnauville.example",
    )
    outcome = svc.register_request(settings, form, channel="cli", on=day)
    issued = quoting.issue_quotes(settings, outcome.request_id, day)
    token = token_of(issued.approval_url)  # the link the mayor's email carries
    mayor = approvals.Decision("Jeanne Dupont", "Maire", True, "Délibération n° 2026-14 du 12 mars 2026")
    approvals.sign(settings, token, mayor, approvals.Evidence("203.0.113.7", "Mozilla/5.0 test"))
    cdg = approvals.Decision("Marc Leroy", "Directeur", True, "Arrêté n° 2025-118 de délégation de signature")
    approvals.countersign_as_operator(settings, issued.convention, "cdg", "Alice Opératrice", cdg)
    syndicat = approvals.Decision("Paul Durand", "Président", True)
    approvals.countersign_as_operator(settings, issued.convention, "syndicat", "Alice Opératrice", syndicat)
    with unit_of_work(settings) as uow:
        convention = uow.conventions.by_reference(issued.convention)
        assert convention.id is not None and convention.final_sha256
        rows: list[Approval] = uow.approvals.of(convention.id)
        signatures = {s.party: s for s in paperwork.signatures_of(rows)}
        final = paperwork.load(settings, convention.final_sha256)
    assert signatures["collectivite"].authority == "Délibération n° 2026-14 du 12 mars 2026"
    assert signatures["collectivite"].certified and not signatures["collectivite"].by_operator
    assert signatures["cdg"].operator == "Alice Opératrice" and signatures["syndicat"].authority is None
    text = _read(final)
    assert text.count("Signé électroniquement") == 1  # the mayor only, on the page
    assert "Habilitation : Délibération n° 2026-14 du 12 mars 2026" in text
    assert "dûment habilité(e) par délibération n° 2026-14 du 12 mars 2026" in text
    assert "Signature enregistrée par Alice Opératrice pour le compte du Centre de gestion" in text
    assert "Délégation : Arrêté n° 2025-118 de délégation de signature" in text
    assert "Signature enregistrée par Alice Opératrice pour le compte du Syndicat" in text
    assert DEFAULT_APPEAL_NOTICE[:40] not in text  # a convention is no titre
