"""The Chorus Pro API through PISTE, as AIFE documents it, behind a small interface (`ChorusApi`) with an
in-memory fake (`InMemoryChorus`) for unit tests.

- OAuth2 client credentials on PISTE's token endpoint (`grant_type=client_credentials`, `client_id`,
  `client_secret`, `scope=openid`, form-encoded); the token is cached until it expires (a margin before
  `expires_in`) and fetched again once when a call answers 401.
- Every call is a `POST` with a JSON body (`Content-Type: application/json;charset=utf-8`), the bearer
  token, and the issuer's technical account in the `cpro-account` header: base64 of `login:password`
  (UTF-8). An answer carries `codeRetour` (0: done) and `libelle`; any other `codeRetour` is a refusal.
- Retries with exponential backoff (and `Retry-After` when given) on 429, 5xx and time-outs, nothing else.
  A deposit is not idempotent: it is retried only when the answer says it was not taken (429, 502, 503,
  504) or when the connection was never made; a time-out while reading its answer is reported as
  `ChorusUncertain` (the flux may exist), for the caller to search before depositing again.

Routes: `cpro/factures/v1/deposer/flux`, `cpro/transverses/v1/consulterCR`,
`cpro/factures/v1/rechercher/fournisseur`, `cpro/factures/v1/consulter/historique`,
`cpro/structures/v1/rechercher`, `cpro/structures/v1/consulter`, `cpro/structures/v1/rechercher/services`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

DEPOSIT = "cpro/factures/v1/deposer/flux"
FLUX_REPORT = "cpro/transverses/v1/consulterCR"
SUPPLIER_SEARCH = "cpro/factures/v1/rechercher/fournisseur"
HISTORY = "cpro/factures/v1/consulter/historique"
STRUCTURE_SEARCH = "cpro/structures/v1/rechercher"
STRUCTURE_DETAILS = "cpro/structures/v1/consulter"
STRUCTURE_SERVICES = "cpro/structures/v1/rechercher/services"
SYNTAX_FACTURX = "IN_DP_E2_CII_FACTURX"
TOKEN_MARGIN_S = 30.0
NOT_TAKEN = frozenset({429, 502, 503, 504})  # answers that say a request was not processed


class ChorusError(Exception):
    """A call to Chorus Pro that did not succeed; `str()` is a French message for operators."""


class ChorusRefused(ChorusError):
    """Chorus Pro answered and refused (a `codeRetour` other than 0, a 4xx): retrying changes nothing."""

    def __init__(self, message: str, *, code: int | None = None, libelle: str | None = None, status: int = 200):
        super().__init__(message)
        self.code = code
        self.libelle = libelle
        self.status = status


class ChorusUnavailable(ChorusError):
    """Chorus Pro could not be reached or stayed unavailable (429, 5xx, time-outs) after the retries."""


class ChorusUncertain(ChorusUnavailable):
    """A deposit was sent but no answer came back: the flux may exist on Chorus Pro."""


@dataclass(frozen=True)
class Account:
    """An issuer's Chorus Pro technical account."""

    login: str
    password: str

    def header(self) -> str:
        """The `cpro-account` header: base64 of `login:password` (UTF-8)."""
        return base64.b64encode(f"{self.login}:{self.password}".encode()).decode("ascii")


@dataclass(frozen=True)
class FluxDeposit:
    flux_number: str  # numeroFluxDepot
    deposited_on: str | None = None  # dateDepot
    libelle: str | None = None


@dataclass(frozen=True)
class FluxReport:
    flux_number: str
    state: str | None  # etatCourantFlux (IN_INTEGRE, IN_REJETE…)
    state_at: str | None = None  # dateHeureEtatCourantFlux
    file_name: str | None = None  # nomFichierFlux
    libelle: str | None = None


@dataclass(frozen=True)
class SupplierInvoice:
    """An invoice of ours as `rechercher/fournisseur` lists it."""

    chorus_invoice_id: int  # identifiantFactureCPP
    number: str  # numeroFacture
    status: str | None  # statut
    flux_number: str | None = None  # numeroFluxDepot
    status_at: str | None = None  # dateHeureEtatCourant
    comment: str | None = None  # commentaireEtatCourant


@dataclass(frozen=True)
class StatusChange:
    code: str  # histoStatutCode
    at: str | None  # histoStatutDatePassage
    comment: str | None = None  # histoStatutCommentaire


@dataclass(frozen=True)
class InvoiceHistory:
    chorus_invoice_id: int
    status: str | None  # statutCourantCode
    changes: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class Structure:
    id_structure: int  # idStructureCPP
    identifier: str  # identifiantStructure (the SIRET)
    designation: str = ""
    status: str = ""


@dataclass(frozen=True)
class StructureDetails:
    id_structure: int
    service_code_required: bool = False  # codeServiceDoitEtreRenseigne
    commitment_required: bool = False  # numeroEJDoitEtreRenseigne
    service_or_commitment: bool = False  # gestionNumeroEJOuCodeService


@dataclass(frozen=True)
class Service:
    code: str  # codeService
    label: str = ""  # libelleService
    active: bool = True  # estActif


class ChorusApi(Protocol):
    """What the use cases need of Chorus Pro."""

    def deposit_flux(self, account: Account, file_name: str, content: bytes) -> FluxDeposit: ...

    def flux_report(self, account: Account, flux_number: str) -> FluxReport: ...

    def search_supplier_invoices(
        self, account: Account, *, invoice_number: str | None = None, flux_number: str | None = None
    ) -> list[SupplierInvoice]: ...

    def invoice_history(self, account: Account, chorus_invoice_id: int) -> InvoiceHistory: ...

    def find_structure(self, account: Account, siret: str) -> Structure | None: ...

    def structure_details(self, account: Account, id_structure: int) -> StructureDetails: ...

    def structure_services(self, account: Account, id_structure: int) -> list[Service]: ...


# --------------------------------------------------------------------------------------------------
# The HTTP client
# --------------------------------------------------------------------------------------------------


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


class HttpChorusClient:
    """The PISTE API over HTTP (httpx). One instance per process or run: it keeps the token."""

    def __init__(
        self,
        api_url: str,
        oauth_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._token: _Token | None = None
        self.token_requests = 0  # how many tokens were fetched (the tests count them)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpChorusClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # OAuth ---------------------------------------------------------------------------------------

    def _bearer(self) -> str:
        if self._token is None or time.monotonic() >= self._token.expires_at:
            self._token = self._fetch_token()
        return self._token.value

    def _fetch_token(self) -> _Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": "openid",
        }
        response = self._send(lambda: self._http.post(self.oauth_url, data=form), idempotent=True)
        if response.status_code != 200:
            raise ChorusRefused(
                f"PISTE refuse les identifiants OAuth (HTTP {response.status_code}) : vérifiez "
                "MAIRIE_CHORUS__CLIENT_ID et MAIRIE_CHORUS__CLIENT_SECRET",
                status=response.status_code,
            )
        data = _json(response)
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise ChorusRefused("PISTE n'a pas donné de jeton d'accès", status=response.status_code)
        lifetime = float(data.get("expires_in") or 3600)
        self.token_requests += 1
        return _Token(value, time.monotonic() + max(lifetime - TOKEN_MARGIN_S, lifetime / 2))

    # Calls ----------------------------------------------------------------------------------------

    def post(self, route: str, body: dict[str, Any], account: Account, *, idempotent: bool = True) -> dict[str, Any]:
        """POST a JSON body to a route; the answer's JSON when `codeRetour` is 0."""
        url = f"{self.api_url}/{route}"
        renewed = False
        while True:
            headers = {
                "Authorization": f"Bearer {self._bearer()}",
                "cpro-account": account.header(),
                "Content-Type": "application/json;charset=utf-8",
                "Accept": "application/json",
            }
            response = self._send(
                functools.partial(self._http.post, url, json=body, headers=headers), idempotent=idempotent
            )
            if response.status_code == 401 and not renewed:
                self._token = None  # expired or revoked before its time: one new token, once
                renewed = True
                continue
            return _answer(route, response)

    def _send(self, call: Callable[[], httpx.Response], *, idempotent: bool) -> httpx.Response:
        """One request with its retries: 429 and 5xx answers and time-outs are tried again with backoff
        (a request that is not idempotent only when it cannot have been processed)."""
        retryable = set(range(500, 600)) | {429} if idempotent else set(NOT_TAKEN)
        for attempt in itertools.count():
            last = attempt >= self.retries
            try:
                response = call()
            except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if last:
                    raise ChorusUnavailable(f"Chorus Pro ne répond pas ({type(exc).__name__})") from exc
                self._sleep(self._delay(attempt, None))
                continue
            except httpx.TimeoutException as exc:
                if not idempotent:
                    raise ChorusUncertain("Chorus Pro n'a pas répondu au dépôt : le flux a peut-être été reçu") from exc
                if last:
                    raise ChorusUnavailable(f"Chorus Pro ne répond pas ({type(exc).__name__})") from exc
                self._sleep(self._delay(attempt, None))
                continue
            except httpx.TransportError as exc:
                raise ChorusUnavailable(f"Chorus Pro injoignable : {exc}") from exc
            if response.status_code not in retryable:
                return response
            if last:
                if not idempotent or response.status_code in NOT_TAKEN:
                    raise ChorusUnavailable(
                        f"Chorus Pro indisponible (HTTP {response.status_code} après {attempt + 1} essais)"
                    )
                raise ChorusUnavailable(f"Chorus Pro en erreur (HTTP {response.status_code})")
            self._sleep(self._delay(attempt, response.headers.get("Retry-After")))
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * (2**attempt)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        return min(delay, self.max_backoff)

    # Routes ---------------------------------------------------------------------------------------

    def deposit_flux(self, account: Account, file_name: str, content: bytes) -> FluxDeposit:
        body = {
            "fichierFlux": base64.b64encode(content).decode("ascii"),
            "nomFichier": file_name,
            "syntaxeFlux": SYNTAX_FACTURX,
            "avecSignature": False,
        }
        data = self.post(DEPOSIT, body, account, idempotent=False)
        number = data.get("numeroFluxDepot")
        if not number:
            raise ChorusUncertain(f"Chorus Pro n'a pas donné de numéro de flux pour {file_name}")
        return FluxDeposit(str(number), _str(data.get("dateDepot")), _str(data.get("libelle")))

    def flux_report(self, account: Account, flux_number: str) -> FluxReport:
        data = self.post(FLUX_REPORT, {"numeroFluxDepot": flux_number, "syntaxeFlux": SYNTAX_FACTURX}, account)
        return FluxReport(
            flux_number=str(data.get("numeroFluxDepot") or flux_number),
            state=_str(data.get("etatCourantFlux")),
            state_at=_str(data.get("dateHeureEtatCourantFlux")),
            file_name=_str(data.get("nomFichierFlux")),
            libelle=_str(data.get("libelle")),
        )

    def search_supplier_invoices(
        self, account: Account, *, invoice_number: str | None = None, flux_number: str | None = None
    ) -> list[SupplierInvoice]:
        body: dict[str, Any] = {
            "rechercheFactureParFournisseur": {"nbResultatsParPage": 100, "pageResultatDemandee": 1}
        }
        if invoice_number:
            body["numeroFacture"] = invoice_number
        if flux_number:
            body["numeroFluxDepot"] = flux_number
        data = self.post(SUPPLIER_SEARCH, body, account)
        found = []
        for row in data.get("listeFactures") or []:
            if row.get("identifiantFactureCPP") is None:
                continue
            found.append(
                SupplierInvoice(
                    chorus_invoice_id=int(row["identifiantFactureCPP"]),
                    number=str(row.get("numeroFacture") or ""),
                    status=_str(row.get("statut")),
                    flux_number=_str(row.get("numeroFluxDepot")),
                    status_at=_str(row.get("dateHeureEtatCourant")),
                    comment=_str(row.get("commentaireEtatCourant")),
                )
            )
        return found

    def invoice_history(self, account: Account, chorus_invoice_id: int) -> InvoiceHistory:
        body = {"idFacture": chorus_invoice_id, "paramRechercheHistoStatuts": {"nbResultatsParPage": 100}}
        data = self.post(HISTORY, body, account)
        statuses = (data.get("historiquesDesStatuts") or {}).get("histoStatut") or []
        changes = tuple(
            StatusChange(
                code=str(s.get("histoStatutCode") or ""),
                at=_str(s.get("histoStatutDatePassage")),
                comment=_str(s.get("histoStatutCommentaire")),
            )
            for s in statuses
        )
        return InvoiceHistory(chorus_invoice_id, _str(data.get("statutCourantCode")), changes)

    def find_structure(self, account: Account, siret: str) -> Structure | None:
        body = {"structure": {"identifiantStructure": siret, "typeIdentifiantStructure": "SIRET"}}
        try:
            data = self.post(STRUCTURE_SEARCH, body, account)
        except ChorusRefused as exc:
            if exc.status == 200:  # codeRetour ≠ 0: no such structure
                return None
            raise
        rows = [r for r in data.get("listeStructures") or [] if r.get("idStructureCPP") is not None]
        if not rows:
            return None
        row = rows[0]
        return Structure(
            int(row["idStructureCPP"]),
            str(row.get("identifiantStructure") or siret),
            str(row.get("designationStructure") or ""),
            str(row.get("statut") or ""),
        )

    def structure_details(self, account: Account, id_structure: int) -> StructureDetails:
        data = self.post(STRUCTURE_DETAILS, {"idStructure": id_structure, "codeLangue": "FR"}, account)
        params = data.get("parametres") or {}
        return StructureDetails(
            id_structure,
            service_code_required=bool(params.get("codeServiceDoitEtreRenseigne")),
            commitment_required=bool(params.get("numeroEJDoitEtreRenseigne")),
            service_or_commitment=bool(params.get("gestionNumeroEJOuCodeService")),
        )

    def structure_services(self, account: Account, id_structure: int) -> list[Service]:
        body = {"idStructure": id_structure, "parametresRechercherServicesStructure": {"nbResultatsParPage": 1000}}
        data = self.post(STRUCTURE_SERVICES, body, account)
        return [
            Service(str(s.get("codeService") or ""), str(s.get("libelleService") or ""), bool(s.get("estActif", True)))
            for s in data.get("listeServices") or []
            if s.get("codeService")
        ]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _answer(route: str, response: httpx.Response) -> dict[str, Any]:
    """The JSON of a 200 answer whose `codeRetour` is 0; a `ChorusRefused` otherwise."""
    data = _json(response)
    code = data.get("codeRetour")
    libelle = _str(data.get("libelle"))
    if response.status_code in (401, 403):
        raise ChorusRefused(
            f"Chorus Pro refuse l'accès à {route} (HTTP {response.status_code}) : vérifiez le compte technique "
            "(…_CHORUS_LOGIN / …_CHORUS_PASSWORD) et son raccordement à l'application PISTE",
            code=code if isinstance(code, int) else None,
            libelle=libelle,
            status=response.status_code,
        )
    if response.status_code != 200:
        raise ChorusRefused(
            f"Chorus Pro refuse la demande {route} (HTTP {response.status_code}"
            + (f" : {libelle})" if libelle else ")"),
            code=code if isinstance(code, int) else None,
            libelle=libelle,
            status=response.status_code,
        )
    if code not in (0, None):
        raise ChorusRefused(
            f"Chorus Pro refuse la demande {route} (code {code}" + (f" : {libelle})" if libelle else ")"),
            code=code if isinstance(code, int) else None,
            libelle=libelle,
        )
    return data


# --------------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------------


@dataclass
class _FakeFlux:
    number: str
    account: Account
    file_name: str
    content: bytes
    state: str = "IN_RECU"
    invoice_id: int | None = None


@dataclass
class _FakeInvoice:
    chorus_invoice_id: int
    number: str
    flux_number: str
    statuses: list[StatusChange] = field(default_factory=list)


class InMemoryChorus:
    """A `ChorusApi` in memory, for unit tests of the use cases: deposits are kept, flux integrate on
    `integrate`, statuses move on `set_status`; `fail_next` makes the next calls raise."""

    def __init__(self) -> None:
        self.flux: dict[str, _FakeFlux] = {}
        self.invoices: dict[int, _FakeInvoice] = {}
        self.structures: dict[str, tuple[Structure, StructureDetails, list[Service]]] = {}
        self.calls: list[str] = []
        self.failures: list[ChorusError] = []
        self._ids = itertools.count(1)

    def fail_next(self, *errors: ChorusError) -> None:
        self.failures.extend(errors)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def add_structure(
        self, siret: str, *, service_code: bool = False, commitment: bool = False, services: tuple[str, ...] = ()
    ) -> Structure:
        structure = Structure(next(self._ids), siret, f"Structure {siret}", "ACTIF")
        details = StructureDetails(structure.id_structure, service_code, commitment)
        self.structures[siret] = (structure, details, [Service(code, code) for code in services])
        return structure

    def integrate(self, flux_number: str, *, reject: str | None = None) -> None:
        flux = self.flux[flux_number]
        if reject is not None:
            flux.state = "IN_REJETE"
            return
        flux.state = "IN_INTEGRE"
        chorus_id = 1000 + next(self._ids)
        number = flux.file_name.rsplit(".", 1)[0]
        self.invoices[chorus_id] = _FakeInvoice(chorus_id, number, flux_number, [StatusChange("DEPOSEE", None)])
        flux.invoice_id = chorus_id

    def set_status(self, flux_number: str, status: str, comment: str | None = None) -> None:
        invoice_id = self.flux[flux_number].invoice_id
        assert invoice_id is not None, "integrate the flux first"
        self.invoices[invoice_id].statuses.append(StatusChange(status, None, comment))

    def deposit_flux(self, account: Account, file_name: str, content: bytes) -> FluxDeposit:
        self._call("deposit")
        number = f"FLUX{len(self.flux) + 1:06d}"
        self.flux[number] = _FakeFlux(number, account, file_name, content)
        return FluxDeposit(number)

    def flux_report(self, account: Account, flux_number: str) -> FluxReport:
        self._call("flux_report")
        flux = self.flux[flux_number]
        return FluxReport(flux_number, flux.state, None, flux.file_name)

    def search_supplier_invoices(
        self, account: Account, *, invoice_number: str | None = None, flux_number: str | None = None
    ) -> list[SupplierInvoice]:
        self._call("search")
        return [
            SupplierInvoice(i.chorus_invoice_id, i.number, i.statuses[-1].code, i.flux_number)
            for i in self.invoices.values()
            if (invoice_number is None or i.number == invoice_number)
            and (flux_number is None or i.flux_number == flux_number)
        ]

    def invoice_history(self, account: Account, chorus_invoice_id: int) -> InvoiceHistory:
        self._call("history")
        invoice = self.invoices[chorus_invoice_id]
        return InvoiceHistory(chorus_invoice_id, invoice.statuses[-1].code, tuple(invoice.statuses))

    def find_structure(self, account: Account, siret: str) -> Structure | None:
        self._call("find_structure")
        found = self.structures.get(siret)
        return found[0] if found else None

    def structure_details(self, account: Account, id_structure: int) -> StructureDetails:
        self._call("structure_details")
        return next(d for s, d, _ in self.structures.values() if s.id_structure == id_structure)

    def structure_services(self, account: Account, id_structure: int) -> list[Service]:
        self._call("structure_services")
        return next(list(v) for s, _, v in self.structures.values() if s.id_structure == id_structure)
