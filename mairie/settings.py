"""Typed settings (pydantic-settings), all under the `MAIRIE_` prefix.

Build them where they are used (`get_settings()`), never at import time. Nested values use `__`:
`MAIRIE_SYNDICAT__SIRET=...`, `MAIRIE_CDG62__IBAN=...`. A `.env` file in the working directory is read
too. Unsafe values are refused outside development: in production `MAIRIE_SECRET_KEY` and `MAIRIE_API_KEY`
must look random (`secret_strength`: length, no space, an estimate of their entropy — 32 spaces or 32 × "a"
are refused), and the refusal says how to make a good one.

Rate limits of the web app (`MAIRIE_RATE_…`, counted in the database so that several web processes share
them; 0 turns a limit off; a refused request is answered 429 with `Retry-After`):

- `MAIRIE_RATE_IP_PER_MINUTE` (120): requests from one address (pages, documents, API; not /health or
  the stylesheet).
- `MAIRIE_RATE_LINK_PER_MINUTE` (30): requests on one approval link.
- `MAIRIE_RATE_QUESTIONS_PER_LINK_PER_HOUR` (5): questions sent from one approval link.
- `MAIRIE_RATE_API_KEY_PER_MINUTE` (60): API calls with one key.
- `MAIRIE_RATE_API_SUBMISSIONS_PER_KEY_PER_HOUR` (60): `POST /api/requests` with one key.
- `MAIRIE_RATE_API_FAILURES_BEFORE_DELAY` (5), `MAIRIE_RATE_API_FAILURE_DELAY_SECONDS` (1.0): after that
  many missing or wrong keys from one address within `MAIRIE_RATE_API_FAILURE_WINDOW_MINUTES` (15), each
  further failure is answered only after the delay.
- `MAIRIE_RATE_API_FAILURES_BEFORE_LOCKOUT` (20), `MAIRIE_RATE_API_LOCKOUT_MINUTES` (15): after that many
  failures within the window, every API call from that address is refused (429) for that long, even with
  the right key.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

PLACEHOLDER_SECRET = "change-me-dev-only"
SECRET_RECIPE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# Estimated bits of entropy a production secret must reach. The estimate (`entropy_estimate`) is low for
# random strings (a 32-hex-digit token, 128 real bits, scores about 115) and about zero for repetitions,
# runs and sequences; this threshold refuses those with a wide margin for random tokens.
SECRET_MIN_BITS = 72
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "placeholder", "example", "exemple")


def _shannon(symbols: list[object]) -> float:
    if not symbols:
        return 0.0
    total = len(symbols)
    return -sum(n / total * math.log2(n / total) for n in Counter(symbols).values())


def _period(value: str) -> int:
    """The length of the shortest block that `value` repeats (its own length when none)."""
    for p in range(1, len(value)):
        if all(value[i] == value[i - p] for i in range(p, len(value))):
            return p
    return len(value)


def entropy_estimate(value: str) -> float:
    """A conservative estimate of the bits of entropy of `value`: the least of (a) its length times the
    Shannon entropy of its characters, (b) the same over the steps between consecutive characters (which
    sees "abcdef…" and "0123…" as one repeated step), (c) the same over its shortest repeated block."""
    steps: list[object] = [ord(b) - ord(a) for a, b in itertools.pairwise(value)]
    block = value[: _period(value)]
    return min(
        len(value) * _shannon(list(value)),
        len(value) * _shannon(steps),
        len(block) * _shannon(list(block)),
    )


def secret_strength(value: str | None, name: str, *, min_length: int) -> str | None:
    """Why `value` is not good enough as the production secret `name` (in French), or None when it is."""
    advice = f"créez-en une avec : {SECRET_RECIPE}"
    if value is None or not value:
        return f"{name} doit être définie en production ; {advice}"
    if any(word in value.lower() for word in PLACEHOLDER_WORDS) or value == PLACEHOLDER_SECRET:
        return f"{name} est encore la valeur d'exemple ; {advice}"
    if len(value) < min_length:
        return f"{name} est trop courte ({len(value)} caractères, {min_length} au moins) ; {advice}"
    if any(char.isspace() for char in value) or not value.isprintable():
        return f"{name} contient des espaces ou des caractères invisibles ; {advice}"
    if entropy_estimate(value) < SECRET_MIN_BITS:
        return (
            f"{name} est trop prévisible (répétitions, suites ou trop peu de caractères différents) : "
            f"ce doit être une valeur tirée au hasard ; {advice}"
        )
    return None


class IssuerIdentity(BaseModel):
    """The legal identity of an issuer, printed on its documents (to be confirmed by each issuer)."""

    code: str
    kind: Literal["syndicat", "cdg"]
    department: str | None = None
    name: str
    legal_form: str = ""
    address: str = ""
    postcode: str = ""
    city: str = ""
    siren: str
    siret: str
    vat_number: str | None = None
    vat_regime: Literal["standard", "outside_scope"] = "standard"
    vat_rate: Decimal = Decimal("0.20")
    vat_exemption_reason: str | None = None
    iban: str | None = None
    bic: str | None = None
    email: str
    provisioning_email: str | None = None
    signatory_name: str = ""
    signatory_capacity: str = ""
    signatory_email: str | None = None
    billing_channel: Literal["facturx_chorus", "pes_asap", "email_pdf"] = "facturx_chorus"
    payment_term_days: int = 30

    @model_validator(mode="after")
    def _check_identifiers(self) -> IssuerIdentity:
        if not stdnum_siren.is_valid(self.siren):
            raise ValueError(f"{self.code}: SIREN {self.siren} invalide (clé de contrôle)")
        if not stdnum_siret.is_valid(self.siret) or not self.siret.startswith(self.siren):
            raise ValueError(f"{self.code}: SIRET {self.siret} invalide ou d'un autre SIREN")
        return self


def _syndicat() -> IssuerIdentity:
    return IssuerIdentity(
        code="LFN",
        kind="syndicat",
        name="La Fibre Numérique 59-62",
        legal_form="Syndicat mixte ouvert",
        address="Hôtel de Région, 151 avenue du Président Hoover",
        postcode="59555",
        city="Lille Cedex",
        siren="200039386",
        siret="20003938600012",
        vat_number="FR62200039386",
        vat_regime="standard",
        vat_rate=Decimal("0.20"),
        iban="FR7630001007941234567890185",
        bic="BDFEFRPPCCT",
        email="contact@lafibrenumerique5962.example",
        provisioning_email="deploiement@lafibrenumerique5962.example",
        signatory_name="Le Président du Syndicat mixte",
        signatory_capacity="Président",
        signatory_email="president@lafibrenumerique5962.example",
    )


def _cdg62() -> IssuerIdentity:
    return IssuerIdentity(
        code="CDG62",
        kind="cdg",
        department="62",
        name="Centre de Gestion de la Fonction Publique Territoriale du Pas-de-Calais",
        legal_form="Établissement public administratif",
        address="Rue Marcel Cachin",
        postcode="62700",
        city="Bruay-la-Buissière",
        siren="286200621",
        siret="28620062100022",
        vat_regime="outside_scope",
        vat_rate=Decimal("0"),
        vat_exemption_reason="TVA non applicable — article 256 B du CGI",
        iban="FR7630001007941234567890185",
        bic="BDFEFRPPCCT",
        email="numerique@cdg62.example",
        signatory_name="Le Président du Centre de gestion",
        signatory_capacity="Président",
        signatory_email="president@cdg62.example",
    )


def _cdg59() -> IssuerIdentity:
    return IssuerIdentity(
        code="CDG59",
        kind="cdg",
        department="59",
        name="Centre de Gestion de la Fonction Publique Territoriale du Nord",
        legal_form="Établissement public administratif",
        address="14 rue Jeanne Maillotte",
        postcode="59013",
        city="Lille Cedex",
        siren="285900304",
        siret="28590030400038",
        vat_regime="outside_scope",
        vat_rate=Decimal("0"),
        vat_exemption_reason="TVA non applicable — article 256 B du CGI",
        iban="FR7630001007941234567890185",
        bic="BDFEFRPPCCT",
        email="numerique@cdg59.example",
        signatory_name="Le Président du Centre de gestion",
        signatory_capacity="Président",
        signatory_email="president@cdg59.example",
    )


class Settings(BaseSettings):
    """Everything configurable. Defaults run the whole stack on one machine with no set-up."""

    model_config = SettingsConfigDict(env_prefix="MAIRIE_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("mairie-connectee", appauthor=False)))
    database_url: str | None = None  # default: SQLite file in data_dir
    documents_dir: Path | None = None  # default: data_dir / "documents"
    deposit_dir: Path | None = None  # default: data_dir / "depot" (Chorus Pro / PES files per issuer)
    # Payments files (CSV) an operator imports from the Prefect UI by name (default: data_dir / "imports")
    import_dir: Path | None = None

    # Population used for the support-fee band: "total" (PTOT, the legal reference) or "municipal" (PMUN).
    population_kind: Literal["total", "municipal"] = "total"
    # Fee of a public establishment (CCAS, syndicat…): missing from the deliberation, so no default;
    # until set, such requests go to an operator ("sur devis").
    public_establishment_fee: Decimal | None = None
    # CDG 59 support fees, same shape as CDG 62's seven bands (< 500, < 1 000, … < 3 500). The source
    # gives only CDG 62's amounts; by default CDG 59 uses them too. Applied when a grid version is loaded.
    cdg59_fees: list[Decimal] | None = None
    # Extra price grids (JSON files in the format of models/data/grids/); loaded by `mairie init`.
    grids_dir: Path | None = None

    syndicat: IssuerIdentity = Field(default_factory=_syndicat)
    cdg62: IssuerIdentity = Field(default_factory=_cdg62)
    cdg59: IssuerIdentity = Field(default_factory=_cdg59)

    quote_validity_days: int = 90
    payment_term_days: int = 30

    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 15.0
    mail_from: str = "Mairie Connectée <noreply@mairie-connectee.example>"
    operators_email: str = "operateurs@mairie-connectee.example"
    mail_dir: Path | None = None  # default: data_dir / "mail" (the loopback server's folder)

    # Prefect UI, for links in operators' emails; auth ("user:password") required beyond loopback
    prefect_ui_url: str = "http://127.0.0.1:4200"
    prefect_auth_string: str | None = None
    # Where Prefect's server reaches the web app's alert endpoint (failed runs emailed to the operators);
    # default: public_url + /alertes/run-en-echec. Behind a proxy, the app's loopback address.
    alerts_url: str | None = None

    # Links and the approval page
    public_url: str = "http://127.0.0.1:8090"
    secret_key: str = PLACEHOLDER_SECRET
    link_max_age_days: int = 45
    api_key: str | None = None
    # Reverse proxies whose X-Forwarded-For is trusted for the evidence's IP address (addresses or networks)
    trusted_proxies: list[str] = Field(default_factory=list)

    # Signature waiting
    signature_reminder_days: list[int] = Field(default_factory=lambda: [7, 14])
    signature_expiry_days: int = 30

    # Billing periods. False (default): the first invoice bills the yearly items and the support fee by
    # started month up to 31 December, campaigns bill calendar years. True (MAIRIE_FULL_FIRST_YEAR): the
    # first invoice covers 12 months from go-live and the next campaign bills only the months left.
    full_first_year: bool = False

    # Renewals and reminders
    renewal_month: int = 1
    renewal_day: int = 15
    timezone: str = "Europe/Paris"
    reminder_days: list[int] = Field(default_factory=lambda: [7, 21, 45])
    # Processes rendering a campaign's invoices (recycled: flat memory). None: one per core when there are
    # at least `render_pool_from` invoices to render, none below (rendered in the campaign's process).
    render_processes: int | None = Field(default=None, ge=0, le=64)
    render_pool_from: int = Field(default=64, ge=1)

    # Provisioning
    provisioning_webhook_url: str | None = None

    # Rate limits of the web app (see the module's docstring); 0 turns a limit off.
    rate_ip_per_minute: int = Field(default=120, ge=0)
    rate_link_per_minute: int = Field(default=30, ge=0)
    rate_questions_per_link_per_hour: int = Field(default=5, ge=0)
    rate_api_key_per_minute: int = Field(default=60, ge=0)
    rate_api_submissions_per_key_per_hour: int = Field(default=60, ge=0)
    rate_api_failures_before_delay: int = Field(default=5, ge=0)
    rate_api_failure_delay_seconds: float = Field(default=1.0, ge=0, le=10)
    rate_api_failures_before_lockout: int = Field(default=20, ge=0)
    rate_api_failure_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    rate_api_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)

    @model_validator(mode="before")
    @classmethod
    def _complete_issuers(cls, data: Any) -> Any:
        """`MAIRIE_CDG62__IBAN=…` alone changes the IBAN and keeps the rest of the identity."""
        if isinstance(data, dict):
            defaults = {"syndicat": _syndicat, "cdg62": _cdg62, "cdg59": _cdg59}
            for key, factory in defaults.items():
                value = data.get(key)
                if isinstance(value, dict):
                    data[key] = {**factory().model_dump(), **value}
        return data

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.environment == "production":
            problem = secret_strength(self.secret_key, "MAIRIE_SECRET_KEY", min_length=32)
            if problem is None and self.api_key is not None:
                problem = secret_strength(self.api_key, "MAIRIE_API_KEY", min_length=24)
            if problem is not None:
                raise ValueError(problem)
        return self

    # Derived paths -----------------------------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mairie.sqlite3'}"

    @property
    def documents_path(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    @property
    def deposit_path(self) -> Path:
        return self.deposit_dir or self.data_dir / "depot"

    @property
    def import_path(self) -> Path:
        return self.import_dir or self.data_dir / "imports"

    @property
    def mail_path(self) -> Path:
        return self.mail_dir or self.data_dir / "mail"

    def issuers(self) -> list[IssuerIdentity]:
        return [self.syndicat, self.cdg62, self.cdg59]

    def cdg_for_department(self, department: str) -> IssuerIdentity | None:
        return {"62": self.cdg62, "59": self.cdg59}.get(department)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment (tests clear the cache)."""
    return Settings()
