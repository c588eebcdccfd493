"""The approval page end to end through HTTP: view, sign with a confirmation step, decline, ask a
question, countersignatures, and the decision shown when the link is opened again."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.formatting import euros, moment
from mairie.services.approvals import Decision, countersign_as_operator
from mairie.services.quotes import QuotesOutcome
from mairie.settings import Settings
from models.entities import AuditEvent, Question
from tests.integration.web.conftest import (
    BROWSER,
    approvals_of,
    csrf_of,
    hidden,
    link_in,
    outbox,
    path_of,
    shown,
    sign_fields,
    sign_through_page,
    snapshot,
    token_of,
)


def test_page_shows_collectivity_quotes_band_and_documents(client: TestClient, convention: QuotesOutcome) -> None:
    page = client.get(path_of(convention.approval_url))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = shown(page)
    assert '<html lang="fr">' in html
    assert "Regnauville" in html and convention.convention in html
    assert "220 habitants" in html and "moins de 500 habitants" in html
    for quote in convention.quotes:
        assert quote.number in html
        for amount in (quote.total_ht, quote.total_vat, quote.total_ttc):
            assert euros(amount) in html
    assert "La Fibre Numérique 59-62" in html and "Centre de Gestion" in html
    assert convention.convention_sha256 in html
    assert 'for="nom"' in html and 'for="qualite"' in html and 'for="habilite"' in html
    assert "<fieldset>" in html and "<legend>" in html


def test_every_document_of_the_link_opens_inline_as_pdf(client: TestClient, convention: QuotesOutcome) -> None:
    names = [f"{q.number}.pdf" for q in convention.quotes] + [f"{convention.convention}-projet.pdf"]
    for name in names:
        response = client.get(f"{path_of(convention.approval_url)}/documents/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == f'inline; filename="{name}"'
        assert response.content.startswith(b"%PDF")


def test_sign_with_confirmation_then_the_next_signatory_gets_their_own_link(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    page = client.get(url)
    csrf = csrf_of(page.text)
    before = snapshot(settings)

    confirm = client.post(f"{url}/signer", data=sign_fields(csrf, deliberation="Délibération n° 2026-14"))

    assert confirm.status_code == 200
    assert "Confirmez votre signature" in shown(confirm)
    for quote in convention.quotes:
        assert quote.sha256 in shown(confirm)
    assert convention.convention_sha256 in shown(confirm)
    assert "Délibération n° 2026-14" in shown(confirm)
    assert snapshot(settings) == before, "the confirmation page records nothing"

    fields = sign_fields(csrf, deliberation="Délibération n° 2026-14", documents=hidden(confirm.text, "documents"))
    done = client.post(f"{url}/signer/confirmer", data=fields, follow_redirects=False)

    assert done.status_code == 303
    assert done.headers["location"].endswith(f"{url}?enregistre=signature")
    mayor = approvals_of(settings)["collectivity"]
    assert mayor.status == "signed" and mayor.decided_name == "Jeanne Dupont" and mayor.decided_capacity == "Maire"
    assert mayor.certified_authority and mayor.deliberation_ref == "Délibération n° 2026-14"
    assert mayor.ip_address == "testclient" and mayor.user_agent == BROWSER
    assert set(mayor.document_hashes.values()) == {q.sha256 for q in convention.quotes} | {convention.convention_sha256}
    with unit_of_work(settings) as uow:
        signed = uow.session.exec(select(AuditEvent).where(AuditEvent.action == "convention.signed")).one()
        uow.session.expunge_all()
    assert signed.ip_address == "testclient" and signed.details["user_agent"] == BROWSER

    requests_to_sign = outbox(settings, "signature_request")
    assert len(requests_to_sign) == 1
    assert requests_to_sign[0].recipients == ["president@cdg62.example"]
    cdg_link = link_in(requests_to_sign[0])
    assert token_of(cdg_link) != token_of(convention.approval_url)
    cdg_page = client.get(path_of(cdg_link))
    assert cdg_page.status_code == 200
    assert "Il revient au Centre de gestion de la contresigner" in shown(cdg_page)

    again = client.get(url)
    assert again.status_code == 200
    assert "Convention déjà signée" in shown(again)
    assert "Jeanne Dupont" in shown(again) and moment(mayor.decided_at) in shown(again)  # type: ignore[arg-type]
    assert "heure de Paris" in shown(again)
    assert 'action="' + f"http://testserver{url}/signer" + '"' not in shown(again), "no signing form any more"


def test_after_signing_the_page_thanks_the_signatory(client: TestClient, convention: QuotesOutcome) -> None:
    html = sign_through_page(client, convention.approval_url)

    assert "Merci : votre signature est enregistrée." in html
    assert "Convention déjà signée" in html


def test_an_incomplete_form_is_shown_again_with_its_errors_and_nothing_is_recorded(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    before = snapshot(settings)

    response = client.post(f"{url}/signer", data={"csrf": csrf, "nom": "Jeanne Dupont", "qualite": "M"})

    assert response.status_code == 422
    assert "Il y a un problème" in shown(response)
    assert "Indiquez votre qualité" in shown(response)
    assert "Cochez la case certifiant" in shown(response)
    assert 'aria-invalid="true"' in shown(response)
    assert 'value="Jeanne Dupont"' in shown(response), "what was typed is kept"
    digest = hidden(client.post(f"{url}/signer", data=sign_fields(csrf)).text, "documents")
    unchecked = client.post(f"{url}/signer/confirmer", data=sign_fields(csrf, habilite="", documents=digest))
    assert unchecked.status_code == 422
    assert snapshot(settings) == before


def test_decline_asks_for_confirmation_then_ends_the_convention(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    before = snapshot(settings)
    reason = "Le conseil municipal a préféré un autre prestataire."

    missing = client.post(f"{url}/refuser", data={"csrf": csrf, "nom": "Jeanne Dupont", "motif": " "})
    assert missing.status_code == 422 and "Indiquez le motif du refus." in shown(missing)
    confirm = client.post(f"{url}/refuser", data={"csrf": csrf, "nom": "Jeanne Dupont", "motif": reason})
    assert confirm.status_code == 200 and "Confirmez le refus" in shown(confirm)
    assert snapshot(settings) == before

    done = client.post(
        f"{url}/refuser/confirmer", data={"csrf": csrf, "nom": "Jeanne Dupont", "motif": reason}, follow_redirects=False
    )

    assert done.status_code == 303
    assert approvals_of(settings)["collectivity"].decline_reason == reason
    declined = outbox(settings, "convention_declined")
    assert len(declined) == 1 and declined[0].recipients == [settings.operators_email]
    assert set(declined[0].cc) == {settings.syndicat.email, settings.cdg62.email}
    assert snapshot(settings)["conventions"][0][1] == "declined"
    page = client.get(url)
    assert "Convention déjà refusée" in shown(page)
    after = snapshot(settings)
    signing = client.post(f"{url}/signer/confirmer", data=sign_fields(csrf), follow_redirects=False)
    assert signing.status_code == 303
    assert snapshot(settings) == after, "a declined convention cannot be signed any more"


def test_a_question_is_forwarded_to_the_operators_and_changes_nothing_else(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    url = path_of(convention.approval_url)
    csrf = csrf_of(client.get(url).text)
    before = snapshot(settings)

    empty = client.post(f"{url}/question", data={"csrf": csrf, "question": "  "})
    assert empty.status_code == 422 and "Écrivez votre question." in shown(empty)
    sent = client.post(f"{url}/question", data={"csrf": csrf, "question": "Le NAS est-il compris ?"})

    assert sent.status_code == 200
    assert "Votre question a été transmise" in shown(sent)
    with unit_of_work(settings) as uow:
        question = uow.session.exec(select(Question)).one()
        uow.session.expunge_all()
    assert question.message == "Le NAS est-il compris ?" and question.ip_address == "testclient"
    forwarded = outbox(settings, "question_forwarded")
    assert len(forwarded) == 1 and forwarded[0].recipients == [settings.operators_email]
    after = snapshot(settings)
    assert after["approvals"] == before["approvals"] and after["conventions"] == before["conventions"]


def test_operator_countersignature_then_syndicat_through_its_link_puts_the_convention_in_force(
    client: TestClient, settings: Settings, convention: QuotesOutcome
) -> None:
    sign_through_page(client, convention.approval_url)
    cdg_link = link_in(outbox(settings, "signature_request")[0])

    countersign_as_operator(
        settings,
        convention.convention,
        "cdg",
        "Agnès Opératrice",
        Decision("Paul Martin", "Président du Centre de gestion", True),
    )

    cdg = approvals_of(settings)["cdg"]
    assert cdg.status == "signed" and cdg.recorded_by_operator == "Agnès Opératrice"
    assert "Convention déjà signée" in shown(client.get(path_of(cdg_link)))
    syndicat_request = [m for m in outbox(settings, "signature_request") if m.recipients != ["president@cdg62.example"]]
    assert len(syndicat_request) == 1
    syndicat_link = link_in(syndicat_request[0])

    html = sign_through_page(client, syndicat_link, name="Bertrand Leroy", capacity="Président")

    assert "La convention est en vigueur." in html
    mayor_page = client.get(path_of(convention.approval_url))
    assert "Télécharger la convention signée et scellée" in shown(mayor_page)
    assert f"Le PDF porte le cachet électronique de {settings.syndicat.name}" in shown(mayor_page)
    assert "panneau Signatures" in shown(mayor_page)
    assert f"mairie documents verify {convention.convention}.pdf" in shown(mayor_page)
    final = client.get(f"{path_of(convention.approval_url)}/documents/{convention.convention}.pdf")
    assert final.status_code == 200 and final.content.startswith(b"%PDF")
    from documents.seal import verify

    sealed = verify(final.content)
    assert sealed.sealed and sealed.intact and sealed.unchanged_since  # the sealed final convention
    assert sealed.sealed_by is not None and sealed.sealed_by.startswith("TEST — ")
    assert len(outbox(settings, "convention_in_force")) == 1
