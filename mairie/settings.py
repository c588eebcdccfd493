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
An example identity (placeholder names, example SIRETs, IBANs and domains) is refused outside development
too, each refusal naming the setting to fill.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret
from stdnum.fr import tva as stdnum_tva

from models.catalog import bundled_grid_files
from models.clock import paris_today

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


# Marks a development default that stands for a fact only the issuer knows (its accountant, the hosting place
# of the data…): printed as is on development documents, refused outside development.
TO_FILL = "à renseigner"
# Other markers of a value nobody filled in: the environment file's placeholder, the demo's signatory names.
PLACEHOLDER_MARKERS = (TO_FILL, "CHANGE-ME")
PLACEHOLDER_NAME_PREFIX = "Signataire"


class ConventionTerms(BaseModel):
    """What the tripartite convention says about its duration, its end and the data it hosts.

    Read from the syndicat's identity (`MAIRIE_SYNDICAT__CONVENTION`, JSON): the syndicat drafts and
    numbers the convention; a CDG's value is not used. The seed deliberations say nothing of duration:
    by default 1 year, renewed tacitely for 1 year at most 3 times (4 years in all).
    """

    initial_years: int = Field(default=1, ge=1, le=10)
    renewal_years: int = Field(default=1, ge=1, le=5)
    max_renewals: int = Field(default=3, ge=0, le=10)
    notice_months: int = Field(default=3, ge=1, le=12)  # before an anniversary, to stop the renewal
    general_interest_notice_months: int = Field(default=3, ge=0, le=12)  # termination for general interest
    data_return_days: int = Field(default=30, ge=1, le=180)  # reversibility, then deletion
    breach_notice_hours: int = Field(default=48, ge=1, le=72)  # processor → controller (GDPR art. 33(2))
    hosting_place: str = f"({TO_FILL} : lieu d'hébergement des données)"
    court: str = "tribunal administratif de Lille"
    # A Jinja/HTML fragment replacing documents/convention/annexe_rgpd.html (the GDPR article 28 annex).
    gdpr_annex_template: Path | None = None

    @field_validator("gdpr_annex_template")
    @classmethod
    def _annex_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"modèle d'annexe RGPD introuvable : {value}")
        return value


class IssuerIdentity(BaseModel):
    """The legal identity of an issuer, printed on its documents (to be confirmed by each issuer).

    Checked here whatever the environment: SIREN and SIRET keys, the VAT number's key and SIREN, IBAN and
    BIC. Outside development, `placeholder_problems` refuses what only stands for a real value.
    """

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
    # Not a setting of its own: one term for every issuer, MAIRIE_PAYMENT_TERM_DAYS, copied here by
    # `Settings` (0 until then) so that the term printed and the due dates computed can never disagree.
    payment_term_days: int = 0
    # The ordonnateur who issues the titres (article L. 1617-5, 4°, CGCT: first name, name and capacity).
    ordonnateur_name: str = ""
    ordonnateur_title: str = ""
    # The issuer's own public accountant (DGFiP), who collects; the IBAN and BIC above are its Banque de
    # France account.
    accountant_name: str = ""
    # The deliberation fixing this issuer's prices, per grid version (key: the grid's effective date).
    tariff_deliberations: dict[date, str] = Field(default_factory=dict)
    # The deliberations authorising the issuer to conclude and sign the tripartite convention.
    convention_deliberations: list[str] = Field(default_factory=list)
    # Voies et délais de recours printed on invoices and credit notes; None: documents.data's text
    # (article L. 1617-5 CGCT, tribunal administratif de Lille).
    appeal_notice: str | None = None
    convention: ConventionTerms = Field(default_factory=ConventionTerms)

    @field_validator("vat_number")
    @classmethod
    def _check_vat_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        siren = info.data.get("siren", "")
        if not stdnum_tva.is_valid(value):
            hint = f" ; pour le SIREN {siren} : {expected_vat_number(siren)}" if stdnum_siren.is_valid(siren) else ""
            raise ValueError(f"numéro de TVA intracommunautaire {value} invalide (clé de contrôle){hint}")
        compact = stdnum_tva.compact(value)
        if compact[2:] != siren:
            raise ValueError(f"numéro de TVA {value} d'un autre SIREN que {siren} ({expected_vat_number(siren)})")
        return "FR" + compact

    @field_validator("iban")
    @classmethod
    def _check_iban(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not stdnum_iban.is_valid(value):
            raise ValueError(f"IBAN {value} invalide (format ou clé de contrôle)")
        return stdnum_iban.compact(value)

    @field_validator("bic")
    @classmethod
    def _check_bic(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not stdnum_bic.is_valid(value):
            raise ValueError(f"BIC {value} invalide")
        return stdnum_bic.compact(value)

    # The issuer's Chorus Pro technical account (MAIRIE_SYNDICAT__CHORUS_LOGIN / …_PASSWORD): with it, and
    # the channel facturx_chorus, its invoices are deposited through the API; without it, in the folder.
    # Excluded from dumps: never written to the issuer table nor shown.
    chorus_login: str | None = Field(default=None, exclude=True)
    chorus_password: str | None = Field(default=None, exclude=True, repr=False)

    # The issuer's sealing certificate (MAIRIE_SYNDICAT__SEAL_PKCS12 / …_SEAL_PASSWORD): a PKCS#12 file
    # (key, certificate, chain) for the PAdES seal of its documents (`documents.seal.load_sealer`), or a PEM
    # private key (…_SEAL_KEY) with its PEM certificate followed by its chain (…_SEAL_CERTIFICATE).
    # Unset in development: `mairie.services.sealing` makes a test CA and certificate in data_dir/seal.
    # …_SEAL_TSA_URL: the issuer's RFC 3161 timestamp authority (PAdES B-T), overriding MAIRIE_SEAL_TSA_URL.
    # Excluded from dumps, like the Chorus Pro account.
    seal_pkcs12: Path | None = Field(default=None, exclude=True)
    seal_key: Path | None = Field(default=None, exclude=True)
    seal_certificate: Path | None = Field(default=None, exclude=True)
    seal_password: str | None = Field(default=None, exclude=True, repr=False)
    seal_tsa_url: str | None = Field(default=None, exclude=True)

    @property
    def has_chorus_account(self) -> bool:
        return bool(self.chorus_login and self.chorus_password)

    # --- PES V2 to Hélios (billing channel pes_asap), `MAIRIE_<ISSUER>__PES_…`; docs/pes.md -------------
    # The budget the titres belong to, as the accountant's Hélios knows it (EnTetePES). Required for pes_asap
    # but the SIRET, which defaults to the issuer's.
    pes_id_post: str | None = Field(default=None, pattern=r"^(02[AB][0-9]{3,4}|[0-9]{6,7})$")  # codique
    pes_id_coll: str | None = Field(default=None, pattern=r"^[0-9]{14}$")  # SIRET of the budget
    pes_cod_col: str | None = Field(default=None, pattern=r"^[0-9]{3}$")
    pes_cod_bud: str | None = Field(default=None, pattern=r"^[0-9A-Z][0-9]$")
    pes_libelle_col_bud: str | None = Field(default=None, max_length=38)
    # Imputation of every titre line: the budget account (nature), its function (M57 by function), the local
    # product code agreed with the accountant; per item code, "PRODUIT:NATURE[:FONCTION]" overrides them.
    pes_nature: str = Field(default="706", pattern=r"^[0-9]{1,12}$")
    pes_fonction: str | None = Field(default=None, pattern=r"^[0-9]{1,10}$")
    pes_product_code: str = Field(default="PMC", pattern=r"^[0-9A-Za-z]{1,4}$")
    pes_products: dict[str, str] = Field(default_factory=dict)
    pes_cod_serv: str | None = Field(default=None, max_length=10)  # CodServ: the ordonnateur's service
    pes_cat_tiers: str | None = Field(default=None, pattern=r"^[0-9]{2}$")  # default: 24 syndicat, 29 CDG
    # The ASAP (PES_Facture): emitter number (RefBdf), signatory, the centre d'encaissement (Tiers 25) and the
    # accountant's office (Tiers 26), the texts printed on it.
    pes_ref_bdf: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{1,13}$")
    pes_phone: str | None = Field(default=None, max_length=20)
    pes_signatory_first_name: str | None = Field(default=None, max_length=38)
    pes_signatory_last_name: str | None = Field(default=None, max_length=38)
    pes_signatory_role: str | None = Field(default=None, max_length=50)
    pes_encaissement_tsa: str | None = Field(default=None, max_length=38)
    pes_encaissement_postcode: str = Field(default="35908", pattern=r"^[0-9]{5}$")
    pes_encaissement_city: str = Field(default="RENNES CEDEX 9", max_length=38)
    pes_accountant_name: str = Field(default="CENTRE DES FINANCES PUBLIQUES", max_length=76)
    pes_accountant_address: str | None = Field(default=None, max_length=38)
    pes_accountant_postcode: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    pes_accountant_city: str | None = Field(default=None, max_length=38)
    pes_accountant_phone: str | None = Field(default=None, max_length=20)
    pes_accountant_email: str | None = Field(default=None, max_length=50)
    pes_payment_terms: str = Field(default="Démarche non prévue par la collectivité.", max_length=250)
    pes_appeal: str = Field(
        default=(
            "Dans le délai de deux mois suivant la réception du présent avis, vous pouvez contester la somme "
            "mentionnée en saisissant la juridiction compétente selon la nature de la créance (article "
            "L. 1617-5 du code général des collectivités territoriales)."
        ),
        max_length=420,
    )
    pes_bordereau_max_pieces: int = Field(default=200, ge=1, le=99999)
    pes_dematerialised: bool = False  # InfoDematerialisee 1: bordereaux signed in a parapheur before sending

    @model_validator(mode="after")
    def _check_pes(self) -> IssuerIdentity:
        if self.pes_id_coll is not None and not stdnum_siret.is_valid(self.pes_id_coll):
            raise ValueError(f"{self.code}: PES_ID_COLL {self.pes_id_coll} n'est pas un SIRET valide")
        for item, imputation in self.pes_products.items():
            if not re.fullmatch(r"[0-9A-Za-z]{1,4}:[0-9]{1,12}(:[0-9]{1,10})?", imputation):
                raise ValueError(f"{self.code}: PES_PRODUCTS {item}={imputation!r} : attendu PRODUIT:NATURE[:FONCTION]")
        return self

    def pes_missing(self) -> list[str]:
        """The PES settings an export cannot do without (suffixes of `MAIRIE_<ISSUER>__`)."""
        required = {"PES_ID_POST": self.pes_id_post, "PES_COD_COL": self.pes_cod_col, "PES_COD_BUD": self.pes_cod_bud}
        return [name for name, value in required.items() if value is None]

    def pes_asap_missing(self) -> list[str]:
        """What DGFiP's ASAP rules need beyond the schema and the issuer lacks (suffixes, as `pes_missing`):
        the export writes the files without them, Hélios would refuse the ASAP; production refuses them."""
        wanted = {
            "PES_REF_BDF": self.pes_ref_bdf,
            "PES_SIGNATORY_FIRST_NAME": self.pes_signatory_first_name,
            "PES_SIGNATORY_LAST_NAME": self.pes_signatory_last_name,
            "PES_ACCOUNTANT_ADDRESS": self.pes_accountant_address,
            "PES_ACCOUNTANT_POSTCODE": self.pes_accountant_postcode,
            "PES_ACCOUNTANT_CITY": self.pes_accountant_city,
        }
        return [name for name, value in wanted.items() if value is None or not value.strip()]

    # --- end of the PES settings ---------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_seal(self) -> IssuerIdentity:
        """One sealing key: a PKCS#12 file, or a PEM key with its PEM certificate; an http(s) TSA URL."""
        if self.seal_pkcs12 is not None and (self.seal_key is not None or self.seal_certificate is not None):
            raise ValueError(f"{self.code}: SEAL_PKCS12 ou SEAL_KEY et SEAL_CERTIFICATE, pas les deux")
        if (self.seal_key is None) != (self.seal_certificate is None):
            raise ValueError(
                f"{self.code}: SEAL_KEY (clé PEM) et SEAL_CERTIFICATE (certificat et chaîne PEM) vont ensemble"
            )
        if self.seal_tsa_url is not None and not self.seal_tsa_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.code}: SEAL_TSA_URL doit être une adresse http(s)://")
        return self

    @property
    def has_seal_key(self) -> bool:
        return self.seal_pkcs12 is not None or self.seal_key is not None

    @model_validator(mode="after")
    def _check_identifiers(self) -> IssuerIdentity:
        if not stdnum_siren.is_valid(self.siren):
            raise ValueError(f"{self.code}: SIREN {self.siren} invalide (clé de contrôle)")
        if not stdnum_siret.is_valid(self.siret) or not self.siret.startswith(self.siren):
            raise ValueError(f"{self.code}: SIRET {self.siret} invalide ou d'un autre SIREN")
        return self


def expected_vat_number(siren: str) -> str:
    """The French VAT number of a SIREN: FR, the key (12 + 3 × (SIREN mod 97)) mod 97, the SIREN."""
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


# The CDG 62 board's deliberation of 10 July 2025 (seeds/003): it fixes the new prices of annex 2 and
# authorises its President to sign the tripartite conventions and issue the invoices.
CDG62_DELIBERATION = (
    "Délibération du conseil d'administration du Centre de gestion du Pas-de-Calais du 10 juillet 2025 "
    "(tarifs de l'annexe 2 de la convention tripartite ; autorisation du Président à signer les conventions "
    "tripartites et à émettre les facturations afférentes)"
)
# The syndicat's deliberation 2021-16 of 23 November 2021 (seeds/004): the project, the tripartite model
# (article 5) and the delegation to its President to conclude and sign the conventions (article 7).
SYNDICAT_DELIBERATION_2021 = (
    "Délibération n° 2021-16 du comité syndical du 23 novembre 2021 (approbation du projet Pack Mairies "
    "Connectées et du modèle de convention tripartite ; délégation au Président pour conclure et signer "
    "les conventions tripartites)"
)
# Development example accounts (Banque de France, bank code 30001), one per issuer, valid RIB and IBAN keys;
# refused outside development like every example value below.
EXAMPLE_IBANS = {
    "LFN": "FR7630001007940000005962059",
    "CDG62": "FR7630001006180000006270055",
    "CDG59": "FR7630001005900000005913030",
}


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
        vat_number="FR25200039386",
        vat_regime="standard",
        vat_rate=Decimal("0.20"),
        iban=EXAMPLE_IBANS["LFN"],
        bic="BDFEFRPPCCT",
        email="contact@lafibrenumerique5962.example",
        provisioning_email="deploiement@lafibrenumerique5962.example",
        signatory_name="Le Président du Syndicat mixte",
        signatory_capacity="Président",
        signatory_email="president@lafibrenumerique5962.example",
        ordonnateur_name=f"({TO_FILL} : prénom et nom de l'ordonnateur)",
        ordonnateur_title="Président du Syndicat mixte",
        accountant_name=f"({TO_FILL} : comptable public du Syndicat)",
        # No default: the syndicat's own tariff deliberation is not in the seeds (development prints a marked
        # placeholder, production refuses to start without it).
        tariff_deliberations={},
        convention_deliberations=[SYNDICAT_DELIBERATION_2021],
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
        iban=EXAMPLE_IBANS["CDG62"],
        bic="BDFEFRPPCCT",
        email="numerique@cdg62.example",
        signatory_name="Le Président du Centre de gestion",
        signatory_capacity="Président",
        signatory_email="president@cdg62.example",
        # The President who signed the deliberation of 10 July 2025 (seeds/003), to confirm.
        ordonnateur_name="René Hocq",
        ordonnateur_title="Président du Centre de gestion",
        accountant_name=f"({TO_FILL} : comptable public du Centre de gestion)",
        tariff_deliberations={date(2025, 7, 10): CDG62_DELIBERATION},
        convention_deliberations=[CDG62_DELIBERATION],
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
        iban=EXAMPLE_IBANS["CDG59"],
        bic="BDFEFRPPCCT",
        email="numerique@cdg59.example",
        signatory_name="Le Président du Centre de gestion",
        signatory_capacity="Président",
        signatory_email="president@cdg59.example",
        ordonnateur_name=f"({TO_FILL} : prénom et nom de l'ordonnateur)",
        ordonnateur_title="Président du Centre de gestion",
        accountant_name=f"({TO_FILL} : comptable public du Centre de gestion)",
        # CDG 59's own deliberations are not in the seeds.
        tariff_deliberations={},
        convention_deliberations=[],
    )


class ChorusSettings(BaseModel):
    """The Chorus Pro API through PISTE (`MAIRIE_CHORUS__…`). Unset `api_url`: no API, the folder channel.

    `api_url` is PISTE's API gateway (qualification: https://sandbox-api.piste.gouv.fr, production:
    https://api.piste.gouv.fr), `oauth_url` its token endpoint (…/api/oauth/token), `client_id` and
    `client_secret` the PISTE application's OAuth credentials. See docs/chorus-pro.md."""

    api_url: str | None = None
    oauth_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = Field(default=None, repr=False)
    # Deposits per minute, whatever the number of invoices waiting (PISTE quotas); 0: no limit.
    deposits_per_minute: float = Field(default=60.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    # Retries of one call after a 429, a 5xx or a time-out (backoff 0.5 s, 1 s, 2 s… capped at max_backoff)
    retries: int = Field(default=5, ge=0, le=20)
    backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)
    # A deposit claimed this long ago without its flux number (a crash between the answer and its record)
    # is searched on Chorus Pro; not found after `redeposit_after_minutes`, it is deposited again.
    claim_timeout_minutes: float = Field(default=10.0, ge=0)
    redeposit_after_minutes: float = Field(default=60.0, ge=0)
    # suivi-chorus: every 30 minutes by default (the catalogue's interval)
    sync_interval_minutes: int = Field(default=30, ge=1)

    @property
    def configured(self) -> bool:
        return bool(self.api_url and self.oauth_url and self.client_id and self.client_secret)


ISSUER_SETTINGS = {"syndicat": _syndicat, "cdg62": _cdg62, "cdg59": _cdg59}  # setting name → default identity


class Settings(BaseSettings):
    """Everything configurable. Defaults run the whole stack on one machine with no set-up."""

    model_config = SettingsConfigDict(env_prefix="MAIRIE_", env_nested_delimiter="__", env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("mairie-connectee", appauthor=False)))
    database_url: str | None = None  # default: SQLite file in data_dir
    # Where the documents' bytes live (PDFs, order files, PES files): "database" (default) in the table
    # documentblob of the database above — PostgreSQL bytea, SQLite BLOB —, committed with the rows that point
    # to them and reachable from every machine that reaches the database; "files" under documents_dir, on
    # this machine only. A database store still reads a document it lacks from documents_dir, if there.
    document_store: Literal["database", "files"] = "database"
    documents_dir: Path | None = None  # default: data_dir / "documents"
    deposit_dir: Path | None = None  # default: data_dir / "depot" (Chorus Pro / PES files per issuer)
    # DGFiP's PES V2 XSD of the version the issuers' Hélios accepts (the folder holding PES_V2/, kept outside
    # the repository): every PES file is validated against it; unset, files are written unvalidated.
    pes_xsd_dir: Path | None = None
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
    chorus: ChorusSettings = Field(default_factory=ChorusSettings)

    quote_validity_days: int = 90
    payment_term_days: int = 30

    # Email
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 15.0
    # The outbox sends this many messages over one SMTP connection at most, then opens a new one.
    smtp_batch_size: int = Field(default=50, ge=1, le=1000)
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
    # The approved campaign runs one child run of the `renouvellement-lot` deployment per slice of this many
    # live subscriptions, on this Prefect work pool (process workers, one machine each: docs/scaling.md), at
    # most `campaign_concurrency` child runs at once (the deployment's concurrency limit, and the pool's when
    # `mairie pool` creates it). `mairie up` serves the deployment itself, one child run at a time.
    campaign_work_pool: str = Field(default="mairie-campagne", min_length=1, max_length=100)
    campaign_slice_size: int = Field(default=250, ge=1, le=100_000)
    campaign_concurrency: int = Field(default=8, ge=1, le=1000)
    # A child run whose heartbeats stopped this long ago, or that a worker claimed and did not start in that
    # time, is marked Crashed by `mairie pool`'s automation (its machine or worker died with it) and its slice
    # gets its next attempt. The workers send a heartbeat every 30 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    # Prefect's minimum): at least 40 s leaves room for one late.
    campaign_lost_after_s: int = Field(default=90, ge=40, le=3600)

    # Provisioning
    provisioning_webhook_url: str | None = None

    # RFC 3161 timestamp authority of every issuer's seals (PAdES B-T); unset: B-B (the signer's own clock).
    # An issuer's MAIRIE_<ISSUER>__SEAL_TSA_URL overrides it.
    seal_tsa_url: str | None = None
    # PAdES B-LT (needs a timestamp authority): the revocation data (CRL, OCSP) of the seal's and the
    # timestamp's certificates fetched when sealing and embedded in the PDF. In development, the test CA's CRL.
    seal_long_term: bool = False

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
            for key, factory in ISSUER_SETTINGS.items():
                value = data.get(key)
                if isinstance(value, dict):
                    data[key] = {**factory().model_dump(), **value}
        return data

    @model_validator(mode="after")
    def _one_payment_term(self) -> Settings:
        """The payment term has one source, `payment_term_days` (délai global de paiement of a public
        buyer): each issuer's documents print it and its due dates use it."""
        for name in ISSUER_SETTINGS:
            identity: IssuerIdentity = getattr(self, name)
            if identity.payment_term_days not in (0, self.payment_term_days):
                raise ValueError(
                    f"MAIRIE_{name.upper()}__PAYMENT_TERM_DAYS n'est pas un réglage : le délai de paiement est le même "
                    f"pour tous les émetteurs, réglez MAIRIE_PAYMENT_TERM_DAYS ({self.payment_term_days} jours)"
                )
            identity.payment_term_days = self.payment_term_days
        return self

    @field_validator("seal_tsa_url")
    @classmethod
    def _tsa_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("l'autorité d'horodatage est une adresse http(s)://")
        return value

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.environment == "production":
            problem = secret_strength(self.secret_key, "MAIRIE_SECRET_KEY", min_length=32)
            if problem is None and self.api_key is not None:
                problem = secret_strength(self.api_key, "MAIRIE_API_KEY", min_length=24)
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _refuse_incomplete_pes(self) -> Settings:
        """In production, an issuer on pes_asap has every PES setting its titres and ASAP need."""
        if self.environment == "production":
            problems = pes_production_problems(self)
            if problems:
                raise ValueError(pes_refusal_message(problems))
        return self

    @model_validator(mode="after")
    def _refuse_unusable_chorus(self) -> Settings:
        """In production, the Chorus Pro API is configured completely or not at all, over https, without the
        development sandbox's credentials, and each issuer's technical account is whole."""
        if self.environment == "production":
            problems = chorus_production_problems(self)
            if problems:
                lines = "\n".join(f"  - {problem}" for problem in problems)
                raise ValueError(
                    "réglages Chorus Pro inutilisables en production (voir docs/chorus-pro.md) :\n" + lines
                )
        return self

    @model_validator(mode="after")
    def _refuse_example_identities(self) -> Settings:
        """Outside development, an issuer's documents must carry its real identity: every example value
        and placeholder of the defaults is refused, each problem naming the setting to fill."""
        if self.environment != "development":
            problems = placeholder_problems(self)
            if problems:
                raise ValueError(refusal_message(problems))
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

    @property
    def seal_path(self) -> Path:
        """Where development sealing material lives (the test CA, one PKCS#12 per issuer)."""
        return self.data_dir / "seal"

    def issuers(self) -> list[IssuerIdentity]:
        return [self.syndicat, self.cdg62, self.cdg59]

    def cdg_for_department(self, department: str) -> IssuerIdentity | None:
        return {"62": self.cdg62, "59": self.cdg59}.get(department)

    def deposits_through_chorus_api(self, identity: IssuerIdentity) -> bool:
        """Whether this issuer's documents go through the Chorus Pro API (channel facturx_chorus, the API
        configured and the issuer's technical account set) rather than its deposit folder."""
        return identity.billing_channel == "facturx_chorus" and self.chorus.configured and identity.has_chorus_account


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment (tests clear the cache)."""
    return Settings()


# Placeholder identities ----------------------------------------------------------------------------------


def _setting(key: str, field: str) -> str:
    return f"MAIRIE_{key.upper()}__{field.upper()}"


def _is_placeholder(text: str | None) -> bool:
    return text is not None and any(marker.lower() in text.lower() for marker in PLACEHOLDER_MARKERS)


# Top-level domains reserved for examples and tests (RFC 2606): no real mailbox is under them.
RESERVED_DOMAINS = (".example", ".test", ".invalid", ".localhost")


def _example_domain(address: str | None) -> bool:
    return address is not None and address.strip().lower().rstrip(">").endswith(RESERVED_DOMAINS)


def _grid_dates(settings: Settings) -> list[date]:
    """The effective dates of the grid versions `mairie init` loads (shipped ones and MAIRIE_GRIDS_DIR's)."""
    dates = []
    for path in bundled_grid_files(settings.grids_dir):
        try:
            dates.append(date.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["effective_from"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable grid is reported by `mairie init`, which loads it
    return sorted(set(dates))


def tariff_dates_required(settings: Settings, today: date | None = None) -> list[date]:
    """The grid versions that need a tariff deliberation now: the one in force today and every later one."""
    today = today or paris_today()
    dates = _grid_dates(settings)
    in_force = [d for d in dates if d <= today]
    return ([max(in_force)] if in_force else []) + [d for d in dates if d > today]


def placeholder_problems(settings: Settings, today: date | None = None) -> list[str]:
    """What stands for a real value in the issuers' identities, one French sentence per problem naming the
    setting to fill: example addresses (`.example`), the example SIRETs and IBANs of the defaults, demo or
    empty names, the "à renseigner" marks, a missing VAT number, IBAN, BIC or deliberation, two issuers
    sharing one IBAN. Empty when the identities are real; outside development a non-empty list refuses
    the settings."""
    examples = _Examples.of_defaults()
    required = tariff_dates_required(settings, today)
    problems: list[str] = []
    owners: dict[str, list[str]] = {}
    for key in ISSUER_SETTINGS:
        identity: IssuerIdentity = getattr(settings, key)
        problems += _identity_problems(key, identity, examples, required)
        if identity.iban:
            owners.setdefault(identity.iban, []).append(_setting(key, "iban"))
    for names in owners.values():
        if len(names) > 1:
            problems.append(
                f"{' et '.join(names)} : le même IBAN pour plusieurs émetteurs ; chacun est payé sur le compte "
                "Banque de France de son propre comptable public"
            )
    return problems


@dataclass(frozen=True)
class _Examples:
    """The example values of the default identities, refused outside development."""

    sirets: frozenset[str]
    ibans: frozenset[str]
    names: frozenset[str]  # the defaults' signatories are titles ("Le Président du Syndicat mixte")

    @classmethod
    def of_defaults(cls) -> _Examples:
        defaults = [factory() for factory in ISSUER_SETTINGS.values()]
        return cls(
            sirets=frozenset(d.siret for d in defaults),
            ibans=frozenset(EXAMPLE_IBANS.values()),
            names=frozenset(d.signatory_name for d in defaults),
        )


def _identity_problems(key: str, identity: IssuerIdentity, examples: _Examples, required: list[date]) -> list[str]:
    problems: list[str] = []

    def refuse(field: str, why: str) -> None:
        problems.append(f"{_setting(key, field)} : {why}")

    for field in ("email", "provisioning_email", "signatory_email"):
        value = getattr(identity, field)
        if _example_domain(value):
            refuse(field, f"adresse d'exemple ({value}, domaine réservé) ; indiquez l'adresse réelle")
    if identity.siret in examples.sirets:
        refuse("siret", f"SIRET d'exemple ({identity.siret}) ; indiquez celui de l'établissement qui facture")
    if not identity.iban:
        refuse("iban", "IBAN du compte Banque de France du comptable public de l'émetteur manquant")
    elif identity.iban in examples.ibans:
        refuse("iban", f"IBAN d'exemple ({identity.iban}) ; indiquez le compte Banque de France du comptable public")
    if not identity.bic:
        refuse("bic", "BIC du compte du comptable public manquant")
    if identity.vat_regime == "standard" and not identity.vat_number:
        refuse("vat_number", "numéro de TVA intracommunautaire manquant (régime de TVA standard)")
    for field, whose in (("signatory_name", "du signataire"), ("ordonnateur_name", "de l'ordonnateur")):
        value = getattr(identity, field).strip()
        if not value or _is_placeholder(value) or value.startswith(PLACEHOLDER_NAME_PREFIX) or value in examples.names:
            refuse(field, f"prénom et nom {whose} à renseigner (valeur actuelle : « {value} »)")
    if not identity.accountant_name.strip() or _is_placeholder(identity.accountant_name):
        refuse("accountant_name", "nom du comptable public qui recouvre les titres de l'émetteur à renseigner")
    for field in ("name", "legal_form", "address", "postcode", "city", "signatory_capacity", "ordonnateur_title",
                  "appeal_notice"):  # fmt: skip
        if _is_placeholder(getattr(identity, field)):
            refuse(field, "valeur d'exemple à remplacer")
    if not identity.convention_deliberations or any(map(_is_placeholder, identity.convention_deliberations)):
        refuse("convention_deliberations", "délibération(s) autorisant la signature de la convention tripartite")
    for day in required:
        text = identity.tariff_deliberations.get(day)
        if not text or not text.strip() or _is_placeholder(text):
            refuse(
                "tariff_deliberations",
                f"délibération fixant les tarifs de la grille du {day:%d/%m/%Y} manquante "
                f'(JSON, par exemple \'{{"{day.isoformat()}": "Délibération n° … du …"}}\')',
            )
    if identity.kind == "syndicat" and _is_placeholder(identity.convention.hosting_place):
        refuse("convention", "lieu d'hébergement des données (« hosting_place ») à renseigner")
    return problems


def refusal_message(problems: list[str]) -> str:
    """The message refusing example identities outside development: every setting to fill, one a line."""
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return (
        "identités d'exemple refusées hors développement ; réglages à renseigner "
        f"(voir deploy/mairie.env.example) :\n{lines}"
    )


# PES settings in production ------------------------------------------------------------------------------

PES_SETTING_WHAT = {
    "PES_ID_POST": "le poste comptable (codique) donné par le comptable public",
    "PES_COD_COL": "le code collectivité dans Hélios",
    "PES_COD_BUD": "le code budget dans Hélios",
    "PES_REF_BDF": "le numéro émetteur du budget (talon de l'avis des sommes à payer)",
    "PES_SIGNATORY_FIRST_NAME": "le prénom du signataire des avis des sommes à payer",
    "PES_SIGNATORY_LAST_NAME": "le nom du signataire des avis des sommes à payer",
    "PES_ACCOUNTANT_ADDRESS": "l'adresse du centre des finances publiques (Tiers 26 de l'avis)",
    "PES_ACCOUNTANT_POSTCODE": "le code postal du centre des finances publiques",
    "PES_ACCOUNTANT_CITY": "la ville du centre des finances publiques",
}


# The local sandbox's OAuth client and the technical accounts `mairie up` gives it in development
# (mairie.stack.chorus_sandbox_env): never a real PISTE application or Chorus Pro account.
CHORUS_SANDBOX_CLIENT = ("mairie-dev", "bac-a-sable-dev-seulement")


def chorus_sandbox_account(code: str) -> tuple[str, str]:
    return f"TECH_{code}_DEV", f"dev-{code.lower()}"


def chorus_production_problems(settings: Settings) -> list[str]:
    """What makes the Chorus Pro settings unusable for real deposits, one French sentence per problem naming
    the setting: a half-configured API (some of URL, token URL, client id and secret set, not all), an
    address that is not https, the development sandbox's client or accounts, an issuer's technical account
    with a login and no password (or the reverse). Empty when the API is unset (the folder channel) or
    complete; in production a non-empty list refuses the settings."""
    chorus = settings.chorus
    fields = {
        "MAIRIE_CHORUS__API_URL": chorus.api_url,
        "MAIRIE_CHORUS__OAUTH_URL": chorus.oauth_url,
        "MAIRIE_CHORUS__CLIENT_ID": chorus.client_id,
        "MAIRIE_CHORUS__CLIENT_SECRET": chorus.client_secret,
    }
    problems: list[str] = []
    given = {name for name, value in fields.items() if value}
    if given and given != set(fields):
        missing = ", ".join(name for name in fields if name not in given)
        problems.append(f"{missing} : à renseigner aussi (l'API Chorus Pro est configurée en partie)")
    for name in ("MAIRIE_CHORUS__API_URL", "MAIRIE_CHORUS__OAUTH_URL"):
        value = fields[name]
        if value and not value.startswith("https://"):
            problems.append(f"{name} : une adresse https:// de PISTE (« {value} » n'est bon que pour le bac à sable)")
    if (chorus.client_id, chorus.client_secret) == CHORUS_SANDBOX_CLIENT:
        problems.append(
            "MAIRIE_CHORUS__CLIENT_ID, MAIRIE_CHORUS__CLIENT_SECRET : les identifiants du bac à sable local ; "
            "ceux de votre application PISTE"
        )
    for key in ISSUER_SETTINGS:
        identity: IssuerIdentity = getattr(settings, key)
        login, password = identity.chorus_login, identity.chorus_password
        if bool(login) != bool(password):
            missing = _setting(key, "chorus_password" if login else "chorus_login")
            problems.append(f"{missing} : à renseigner (compte technique Chorus Pro de {identity.code} incomplet)")
        elif login and (login, password) == chorus_sandbox_account(identity.code):
            problems.append(
                f"{_setting(key, 'chorus_login')} : le compte de développement du bac à sable ; le compte "
                f"technique Chorus Pro de {identity.code}"
            )
    return problems


def pes_production_problems(settings: Settings) -> list[str]:
    """What an issuer on pes_asap lacks for Hélios to take its titres and edit their ASAP, one French
    sentence per missing setting, named as in the environment (`MAIRIE_CDG62__PES_ID_POST`), and the
    schema every file is validated against (`MAIRIE_PES_XSD_DIR`). Empty when complete, or when no issuer
    is on pes_asap; in production a non-empty list refuses the settings (docs/pes.md, "Settings")."""
    problems: list[str] = []
    on_pes = [key for key in ISSUER_SETTINGS if getattr(settings, key).billing_channel == "pes_asap"]
    for key in on_pes:
        identity: IssuerIdentity = getattr(settings, key)
        for suffix in identity.pes_missing() + identity.pes_asap_missing():
            problems.append(f"{_setting(key, suffix)} : {PES_SETTING_WHAT[suffix]} ({identity.code} est sur pes_asap)")
    if on_pes and settings.pes_xsd_dir is None:
        problems.append(
            "MAIRIE_PES_XSD_DIR : le dossier des schémas PES V2 de la DGFiP (sans lui, les fichiers ne seraient "
            "pas validés)"
        )
    return problems


def pes_refusal_message(problems: list[str]) -> str:
    """The message refusing incomplete PES settings in production: every setting to fill, one a line."""
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return (
        "réglages PES incomplets pour un émetteur sur pes_asap, refusés en production ; à renseigner "
        f"(voir docs/pes.md et deploy/mairie.env.example) :\n{lines}"
    )
