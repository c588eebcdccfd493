"""The Chorus Pro client without a network (httpx.MockTransport) and the rules of models.chorus; the
use cases' fake (InMemoryChorus) behaves as the interface says."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from mairie.adapters.chorus import (
    Account,
    ChorusRefused,
    ChorusUnavailable,
    ChorusUncertain,
    HttpChorusClient,
    InMemoryChorus,
)
from models import chorus as rules

ACCOUNT = Account("TECH_LFN", "pässword")


class Piste:
    """A scripted PISTE: answers per route, records every request."""

    def __init__(self, answers: dict[str, list[httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/api/oauth/token":
            self.tokens += 1
            return httpx.Response(200, json={"access_token": f"t{self.tokens}", "expires_in": 3600})
        queue = self.answers[request.url.path.lstrip("/")]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def client(piste: Piste, **kw: object) -> HttpChorusClient:
    return HttpChorusClient(
        "https://api.test",
        "https://oauth.test/api/oauth/token",
        "id",
        "secret",
        transport=httpx.MockTransport(piste),
        sleep=lambda _s: None,
        **kw,  # type: ignore[arg-type]
    )


OK_DEPOSIT = httpx.Response(200, json={"codeRetour": 0, "libelle": "TRA_MSG_00.000", "numeroFluxDepot": "F1"})


def test_deposit_body_headers_and_token_cached():
    piste = Piste({"cpro/factures/v1/deposer/flux": [OK_DEPOSIT]})
    c = client(piste)
    assert c.deposit_flux(ACCOUNT, "LFN-FAC-2026-00001.pdf", b"%PDF").flux_number == "F1"
    assert c.deposit_flux(ACCOUNT, "LFN-FAC-2026-00002.pdf", b"%PDF").flux_number == "F1"
    assert piste.tokens == 1  # cached until it expires
    call = piste.requests[-1]
    body = json.loads(call.content)
    assert body == {
        "fichierFlux": base64.b64encode(b"%PDF").decode(),
        "nomFichier": "LFN-FAC-2026-00002.pdf",
        "syntaxeFlux": "IN_DP_E2_CII_FACTURX",
        "avecSignature": False,
    }
    assert call.headers["cpro-account"] == base64.b64encode("TECH_LFN:pässword".encode()).decode()
    assert call.headers["authorization"] == "Bearer t1"
    assert call.headers["content-type"].startswith("application/json")
    token_call = piste.requests[0]
    assert b"grant_type=client_credentials" in token_call.content and b"client_secret=secret" in token_call.content


def test_renewed_once_on_401():
    piste = Piste(
        {
            "cpro/transverses/v1/consulterCR": [
                httpx.Response(401),
                httpx.Response(200, json={"codeRetour": 0, "etatCourantFlux": "IN_INTEGRE"}),
            ]
        }
    )
    assert client(piste).flux_report(ACCOUNT, "F1").state == "IN_INTEGRE"
    assert piste.tokens == 2


def test_code_retour_is_a_refusal_never_retried():
    refusal = httpx.Response(200, json={"codeRetour": 20004, "libelle": "Fichier invalide"})
    piste = Piste({"cpro/factures/v1/deposer/flux": [refusal]})
    with pytest.raises(ChorusRefused, match="Fichier invalide"):
        client(piste).deposit_flux(ACCOUNT, "x.pdf", b"%PDF")
    assert len([r for r in piste.requests if "deposer" in r.url.path]) == 1


def test_retries_on_429_and_5xx_then_gives_up():
    piste = Piste(
        {
            "cpro/factures/v1/rechercher/fournisseur": [
                httpx.Response(429),
                httpx.Response(503),
                httpx.Response(200, json={"codeRetour": 0, "listeFactures": []}),
            ]
        }
    )
    assert client(piste, retries=3).search_supplier_invoices(ACCOUNT, invoice_number="N") == []
    storm = Piste({"cpro/factures/v1/rechercher/fournisseur": [httpx.Response(503)]})
    with pytest.raises(ChorusUnavailable):
        client(storm, retries=2).search_supplier_invoices(ACCOUNT, invoice_number="N")
    assert len([r for r in storm.requests if "rechercher" in r.url.path]) == 3


def test_a_deposit_is_not_retried_when_it_may_have_been_taken():
    piste = Piste({"cpro/factures/v1/deposer/flux": [httpx.Response(500)]})
    with pytest.raises(ChorusRefused):
        client(piste).deposit_flux(ACCOUNT, "x.pdf", b"%PDF")
    assert len([r for r in piste.requests if "deposer" in r.url.path]) == 1

    def timeout(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        raise httpx.ReadTimeout("no answer", request=request)

    silent = HttpChorusClient(
        "https://api.test", "https://oauth.test/api/oauth/token", "id", "s", transport=httpx.MockTransport(timeout)
    )
    with pytest.raises(ChorusUncertain):
        silent.deposit_flux(ACCOUNT, "x.pdf", b"%PDF")


def test_structure_lookup():
    piste = Piste(
        {
            "cpro/structures/v1/rechercher": [
                httpx.Response(
                    200,
                    json={
                        "codeRetour": 0,
                        "listeStructures": [{"idStructureCPP": 42, "identifiantStructure": "21620700100017"}],
                    },
                )
            ],
            "cpro/structures/v1/consulter": [
                httpx.Response(
                    200,
                    json={
                        "codeRetour": 0,
                        "parametres": {"codeServiceDoitEtreRenseigne": True, "numeroEJDoitEtreRenseigne": False},
                    },
                )
            ],
        }
    )
    c = client(piste)
    found = c.find_structure(ACCOUNT, "21620700100017")
    assert found is not None and found.id_structure == 42
    details = c.structure_details(ACCOUNT, 42)
    assert details.service_code_required and not details.commitment_required


def test_rules():
    assert not rules.payable("IN_REJETE", None) and not rules.payable("IN_INTEGRE", "REJETEE")
    assert rules.payable("IN_INTEGRE", "MISE_EN_PAIEMENT") and not rules.dunned("IN_INTEGRE", "MISE_EN_PAIEMENT")
    assert rules.dunned("IN_INTEGRE", "SUSPENDUE")
    req = rules.StructureRequirements(1, service_code=True, active_services=("MAIRIE",))
    assert rules.missing_for_structure(req, None, None) == ["le code service"]
    assert rules.missing_for_structure(req, "MAIRIE", None) == []
    assert "actif" in rules.missing_for_structure(req, "AUTRE", None)[0]
    assert rules.recovery(1, found_flux=False, claim_timeout_minutes=10, redeposit_after_minutes=60) == "wait"
    assert rules.recovery(20, found_flux=True, claim_timeout_minutes=10, redeposit_after_minutes=60) == "record"
    assert (
        rules.recovery(20, found_flux=False, claim_timeout_minutes=10, redeposit_after_minutes=60) == "wait-integration"
    )
    assert rules.recovery(90, found_flux=False, claim_timeout_minutes=10, redeposit_after_minutes=60) == "redeposit"


def test_fake_behaves_as_the_interface():
    fake = InMemoryChorus()
    flux = fake.deposit_flux(ACCOUNT, "LFN-FAC-2026-00001.pdf", b"%PDF").flux_number
    assert fake.flux_report(ACCOUNT, flux).state == "IN_RECU"
    assert fake.search_supplier_invoices(ACCOUNT, invoice_number="LFN-FAC-2026-00001") == []
    fake.integrate(flux)
    [found] = fake.search_supplier_invoices(ACCOUNT, invoice_number="LFN-FAC-2026-00001")
    fake.set_status(flux, "REJETEE", "motif")
    history = fake.invoice_history(ACCOUNT, found.chorus_invoice_id)
    assert history.status == "REJETEE" and history.changes[-1].comment == "motif"
    fake.fail_next(ChorusUnavailable("down"))
    with pytest.raises(ChorusUnavailable):
        fake.flux_report(ACCOUNT, flux)
