"""Fast seeding of live subscriptions, for the renewal benchmark and the fault tests.

`seed_live(settings, n, year=2026)` writes, by bulk inserts (SQLAlchemy core, `executemany` with
`RETURNING`), what the whole chain (request → quotes → three signatures → order → acknowledgement →
delivery → first invoices) leaves in the database for `n` collectivities whose services went live during
`year`, so that the renewal campaign of `year + 1` finds them:

- collectivity (+ its signatory contact), request with its lines and eligibility snapshot, both quotes
  with their lines (numbers DEV, no PDF), the tripartite convention `in_force` with its three signed
  approvals (no PDF), the delivered provisioning order with its items, the subscription and its items
  (started on the delivery date), and the first invoices of both issuers with their lines (numbers FAC
  of `year`, no PDF, no email: the campaign reads their totals as "last year");
- the number sequences (DEM, DEV, CONV, BDC, FAC of `year`) set to what was used, so that anything
  issued afterwards continues them without a gap.

Prices, VAT split, eligibility, bands and the operator's amount for "sur devis" support fees come from the
same rules the chain uses (`models.eligibility.assess`, `models.pricing.quote_preview`), on the grid
stored in the database. Not written (the campaign does not read them): PDFs, stored documents, deposit
files, outbox rows of the chain's emails (as if all were sent), audit events.

Population: the first 1 534 collectivities are the real communes of Nord and Pas-de-Calais (INSEE code,
SIREN and legal population of `models/data/communes-59-62.csv`), in file order. SIREN is unique, so a
commune cannot be seeded twice: beyond 1 534 (`--scale 10`), the rows are public-establishment-like
bodies ("CCAS de …", "Caisse des écoles de …", … attached by name and department to a commune), kind
`public_establishment`, with a synthetic SIREN `26xxxxxx` + Luhn key (valid checksum, outside the ranges
of communes, EPCIs and the issuers) and an operator-entered population; their support fee is an operator
amount (the deliberation sets none), like a "sur devis" commune's.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel
from stdnum import luhn

from mairie.database import engine as engine_for
from mairie.services.intake import PLATFORM, _snapshot
from mairie.services.paperwork import vat_of as vat_regime
from mairie.settings import Settings
from models.buyer import default_address
from models.catalog import Grid, grid_in_force
from models.directory import Found, commune_found, vintage_in_force
from models.eligibility import assess
from models.entities import (
    Approval,
    Collectivity,
    Commune,
    CommunePopulation,
    Contact,
    Convention,
    Invoice,
    InvoiceLine,
    NumberSequence,
    PriceGrid,
    ProvisioningOrder,
    ProvisioningOrderItem,
    Quote,
    QuoteLine,
    ServiceRequest,
    ServiceRequestLine,
    Subscription,
    SubscriptionItem,
)
from models.numbering import format_number
from models.pricing import BasketLine, PricedDocument, first_invoice_document, quote_preview
from models.reference_data import COMMUNES_FILE, stored_grids
from models.terms import due_on
from models.types import table_of

ESTABLISHMENT_KINDS = (
    "CCAS de",
    "Caisse des écoles de",
    "SIVU scolaire de",
    "SIVOM de la région de",
    "Syndicat des eaux de",
    "EHPAD public de",
    "Office de tourisme de",
    "Régie des transports de",
    "Syndicat d'électrification de",
    "Centre social de",
)
ESTABLISHMENT_SUPPORT_FEE = Decimal("100.00")  # the operator's amount for a public establishment


# ------------------------------------------------------------------------------------------------
# What to seed (plain values)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Establishment:
    """A public-establishment-like body created by the seeding (no official reference row)."""

    siren: str
    name: str
    department: str
    population: int


@dataclass(frozen=True)
class SeedEntry:
    """One collectivity whose services went live on `delivered_on`."""

    identifier: str  # INSEE code of a commune, or the SIREN of `establishment`
    basket: tuple[BasketLine, ...]
    delivered_on: date
    signatory_name: str
    signatory_email: str
    signatory_capacity: str = "Maire"
    siret: str | None = None
    address_line: str | None = None  # the billing address given with the request (None: the mairie's default)
    postcode: str | None = None
    city: str | None = None
    commitment_number: str | None = None
    chorus_service_code: str | None = None
    domain_names: tuple[str, ...] = ()
    mailbox_names: tuple[str, ...] = ()
    support_amount: Decimal | None = None  # the operator's amount when the band gives none ("sur devis")
    establishment: Establishment | None = None
    requested_on: date | None = None  # default: 40 days before delivery (same year)

    @property
    def request_day(self) -> date:
        return self.requested_on or max(self.delivered_on - timedelta(days=40), date(self.delivered_on.year, 1, 2))


@dataclass
class SeedReport:
    year: int
    subscriptions: list[int] = field(default_factory=list)
    collectivities: int = 0
    communes: int = 0
    establishments: int = 0
    rows: int = 0


def siret_of(siren: str, establishment: int = 1) -> str:
    """A valid SIRET (Luhn) of `siren` for its `establishment`-th establishment (NIC = 4 digits + key)."""
    body = f"{siren}{establishment:04d}"
    return body + luhn.calc_check_digit(body)


def synthetic_siren(k: int) -> str:
    """The k-th synthetic SIREN: `26` + 6 digits + Luhn key (a valid checksum, no commune/EPCI range)."""
    if not 0 <= k < 1_000_000:
        raise ValueError("at most a million synthetic SIRENs")
    body = f"26{k:06d}"
    return body + luhn.calc_check_digit(body)


def reference_communes() -> list[dict[str, str]]:
    """The communes of 59 and 62 of the bundled data, in file order (1 534)."""
    with COMMUNES_FILE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _slug(name: str) -> str:
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    out = "".join(c if c.isalnum() else "-" for c in ascii_name)
    return "-".join(part for part in out.split("-") if part)[:50] or "commune"


def realistic_basket(rng: random.Random) -> tuple[BasketLine, ...]:
    """Mailboxes 1–10, a domain, a web page; sometimes backup, antivirus or the pack, password
    manager, extra storage (≤ 100 GB, so never "sur devis")."""
    mailboxes = rng.randint(1, 10)
    lines = []
    if rng.random() < 0.2 and mailboxes > 1:
        unlimited = rng.randint(1, max(1, mailboxes // 3))
        lines += [BasketLine("messagerie-5go", mailboxes - unlimited), BasketLine("messagerie-illimitee", unlimited)]
    else:
        lines.append(BasketLine("messagerie-5go", mailboxes))
    lines.append(BasketLine("nom-de-domaine", 1 if rng.random() < 0.85 else 2))
    lines.append(BasketLine("page-internet", 1))
    if rng.random() < 0.35:
        level = rng.choice((1, 1, 1, 2, 3))
        lines += [BasketLine(f"sauvegarde-mes-n{level}", 1), BasketLine(f"sauvegarde-abo-n{level}", 1)]
    workstations = rng.randint(1, 8)
    security = rng.random()
    if security < 0.25:
        lines.append(BasketLine("pack-antivirus-mdp", workstations))
    elif security < 0.55:
        lines.append(BasketLine("antivirus", workstations))
        if rng.random() < 0.3:
            lines.append(BasketLine("gestionnaire-mdp", rng.randint(1, workstations)))
    if rng.random() < 0.3:
        lines.append(BasketLine("stockage-go", rng.choice((5, 10, 20, 50, 100))))
    if rng.random() < 0.05:
        lines.append(BasketLine("nas-2-disques", 1))
    return tuple(lines)


def operator_support_fee(population: int) -> Decimal:
    """A plausible operator amount for a commune above the bands: 400 € + 50 € per 5 000 inhabitants
    above 3 500, capped at 1 500 €."""
    return min(Decimal("400.00") + Decimal("50.00") * max(0, population - 3500) // 5000, Decimal("1500.00"))


def plan_entries(n: int, *, year: int = 2026, seed: int = 0) -> list[SeedEntry]:
    """`n` realistic entries, deterministic for a seed: the communes first, then establishments."""
    communes = reference_communes()
    rng = random.Random(seed)
    entries = []
    for i in range(n):
        commune = communes[i % len(communes)]
        round_ = i // len(communes)
        slug = _slug(commune["name"])
        delivered = date(year, 3, 1) + timedelta(days=rng.randint(0, 270))
        basket = realistic_basket(rng)
        has_domain = any(b.code == "nom-de-domaine" for b in basket)
        if round_ == 0:
            population = int(commune["population_totale"])
            establishment = None
            identifier = commune["insee_code"]
            siren = commune["siren"]
            name, capacity = commune["name"], "Maire"
            support = operator_support_fee(population) if population >= 3500 else None
        else:
            kind = ESTABLISHMENT_KINDS[(round_ - 1) % len(ESTABLISHMENT_KINDS)]
            siren = synthetic_siren(i)
            name = f"{kind} {commune['name']}"
            population = max(50, int(commune["population_totale"]) // rng.randint(3, 20))
            establishment = Establishment(siren, name, commune["department"], population)
            identifier = siren
            capacity = "Président"
            support = ESTABLISHMENT_SUPPORT_FEE
            slug = f"{_slug(kind)}-{slug}"
        mailboxes = next(b.quantity for b in basket if b.code.startswith("messagerie"))
        postcodes = commune["postcodes"].split()
        # A commune with one postcode is invoiced at its mairie by default; otherwise (and for an
        # establishment, which has no default) the request gives the address, as a person would.
        address = None if establishment is None and len(postcodes) == 1 else ("Mairie", postcodes[0], commune["name"])
        entries.append(
            SeedEntry(
                identifier=identifier,
                basket=basket,
                delivered_on=delivered,
                signatory_name=f"{rng.choice(PRENOMS)} {rng.choice(NOMS)}",
                signatory_email=f"{'maire' if round_ == 0 else 'president'}@{slug}.example",
                signatory_capacity=capacity,
                siret=siret_of(siren),
                address_line=address[0] if address else None,
                postcode=address[1] if address else None,
                city=address[2] if address else None,
                commitment_number=f"ENG-{year}-{i + 1:05d}" if rng.random() < 0.3 else None,
                domain_names=(f"{slug}.fr",) if has_domain else (),
                mailbox_names=tuple(
                    [
                        "accueil",
                        "secretariat",
                        "maire",
                        "compta",
                        "urbanisme",
                        "ecole",
                        "cantine",
                        "elus",
                        "technique",
                        "social",
                    ][:mailboxes]
                ),
                support_amount=support,
                establishment=establishment,
            )
        )
    return entries


PRENOMS = ("Jeanne", "Marc", "Sophie", "Bernard", "Nathalie", "Jean-Pierre", "Claire", "Hervé", "Isabelle", "Luc")
NOMS = ("Dupont", "Lefebvre", "Lemaire", "Delattre", "Caron", "Leroy", "Deprez", "Vasseur", "Lefranc", "Dumont")


# ------------------------------------------------------------------------------------------------
# Writing it (bulk)
# ------------------------------------------------------------------------------------------------


def _defaults(model: type[SQLModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    static, factories = {}, {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories[name] = info.default_factory
        elif not info.is_required():
            static[name] = info.default
    static.pop("id", None)
    return static, factories


_DEFAULTS: dict[type[SQLModel], tuple[dict[str, Any], dict[str, Any]]] = {}


def _row(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """A complete row for a core insert: the model's defaults (and default factories), then `values`."""
    if model not in _DEFAULTS:
        _DEFAULTS[model] = _defaults(model)
    static, factories = _DEFAULTS[model]
    row = dict(static)
    for name, factory in factories.items():
        if name not in values:
            row[name] = factory()
    row.update(values)
    return row


class _Writer:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.rows = 0

    def insert(self, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert `rows`, returning their new ids in order (insertmanyvalues, one round trip per batch)."""
        if not rows:
            return []
        table = table_of(model)
        self.rows += len(rows)
        if "id" not in table.c:
            self.connection.execute(insert(table), list(rows))
            return []
        result = self.connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
        return [r[0] for r in result]


class _Numbers:
    """Numbers of a year taken in bulk, continuing the stored sequences; written back at the end."""

    def __init__(self, connection: Any, year: int) -> None:
        self.connection = connection
        self.year = year
        table = table_of(NumberSequence)
        rows = connection.execute(select(table).where(table.c.year == year)).all()
        self.last = {(r.issuer_code, r.doc_kind): r.last_value for r in rows}

    def take(self, issuer: str, kind: str) -> str:
        value = self.last.get((issuer, kind), 0) + 1
        self.last[(issuer, kind)] = value
        return format_number(issuer, kind, self.year, value)

    def save(self) -> None:
        table = table_of(NumberSequence)
        dialect = self.connection.dialect.name
        insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
        for (issuer, kind), value in self.last.items():
            stmt = insert_(table).values(issuer_code=issuer, doc_kind=kind, year=self.year, last_value=value)
            self.connection.execute(
                stmt.on_conflict_do_update(
                    index_elements=["issuer_code", "doc_kind", "year"], set_={"last_value": value}
                )
            )


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _token(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:22]


def _priced_rows(
    priced: PricedDocument, *, with_note: bool = False, with_periods: bool = False, **extra: Any
) -> list[dict[str, Any]]:
    return [
        dict(
            **({"note": line.note} if with_note else {}),
            **(
                {
                    "period_start": line.period_start,
                    "period_end": line.period_end,
                    "months": line.months,
                    "origin": line.origin,
                }
                if with_periods
                else {}
            ),
            position=line.position,
            item_code=line.code,
            label=line.label,
            unit=line.unit,
            kind=line.kind,
            quantity=line.quantity,
            unit_price_ttc=line.unit_price_ttc,
            unit_price_ht=line.unit_price_ht,
            vat_rate=line.vat_rate,
            total_ht=line.total_ht,
            total_vat=line.total_vat,
            total_ttc=line.total_ttc,
            **extra,
        )
        for line in priced.lines
    ]


@dataclass
class _Prepared:
    entry: SeedEntry
    found: Found
    grid: Grid
    verdict: Any
    quotes: tuple[PricedDocument, ...]
    cdg: str


class _Communes:
    """The communes and their legal populations, read once; `found(insee, on)` is what
    `models.directory.find` returns for that commune on that date (same population rule)."""

    def __init__(self, connection: Any) -> None:
        pop_table = table_of(CommunePopulation)
        self.populations: dict[str, list[Any]] = {}
        for row in connection.execute(select(pop_table).order_by(pop_table.c.vintage)):
            self.populations.setdefault(row.insee_code, []).append(row)
        self.rows = {c.insee_code: c for c in connection.execute(select(table_of(Commune)))}

    def found(self, insee_code: str, on: date) -> Found:
        return commune_found(self.rows[insee_code], vintage_in_force(self.populations.get(insee_code, []), on))


def seed(settings: Settings, entries: Iterable[SeedEntry], *, year: int, chunk: int = 2000) -> SeedReport:
    """Write `entries` (all delivered during `year`) as live subscriptions; returns their ids."""
    entries = list(entries)
    if any(e.delivered_on.year != year or e.request_day.year != year for e in entries):
        raise ValueError(f"every entry must be requested and delivered during {year}")
    report = SeedReport(year)
    engine = engine_for(settings)
    with engine.begin() as connection:
        from sqlmodel import Session

        with Session(bind=connection) as session:
            grids = stored_grids(session)
        grids_table = table_of(PriceGrid)
        grid_ids: dict[str, int] = dict(connection.execute(select(grids_table.c.code, grids_table.c.id)).tuples().all())
        communes = _Communes(connection)
        taken: set[str] = set(connection.execute(select(table_of(Collectivity).c.siren)).scalars())
        numbers = _Numbers(connection, year)
        writer = _Writer(connection)
        for start in range(0, len(entries), chunk):
            part = [_prepare(settings, e, grids, communes, taken) for e in entries[start : start + chunk]]
            report.subscriptions += _write(settings, writer, numbers, part, grid_ids, year)
        numbers.save()
        report.rows = writer.rows
    report.collectivities = len(entries)
    report.establishments = sum(1 for e in entries if e.establishment is not None)
    report.communes = report.collectivities - report.establishments
    return report


def _prepare(
    settings: Settings, entry: SeedEntry, grids: list[Grid], communes: _Communes, taken: set[str]
) -> _Prepared:
    on = entry.request_day
    if entry.establishment is not None:
        e = entry.establishment
        found = Found(
            kind="public_establishment",
            name=e.name,
            siren=e.siren,
            department=e.department,
            insee_code=None,
            epci_siren=None,
            population_municipal=None,
            population_total=None,
            vintage=None,
            population_override=e.population,
        )
    else:
        found = communes.found(entry.identifier, on)
    if found.siren in taken:
        raise ValueError(f"{found.name} (SIREN {found.siren}) est déjà une collectivité de la base")
    taken.add(found.siren)
    grid = grid_in_force(grids, on)
    verdict = assess(
        found.profile(settings.population_kind),
        grid,
        public_establishment_fee=settings.public_establishment_fee,
        basket=[(b.code, b.quantity) for b in entry.basket],
    )
    cdg = settings.cdg_for_department(verdict.department)
    assert cdg is not None and verdict.eligible
    support = entry.support_amount if verdict.support_fee is None else None
    preview = quote_preview(
        grid,
        list(entry.basket),
        verdict,
        syndicat=settings.syndicat.code,
        syndicat_vat=vat_regime(settings.syndicat),
        cdg_vat=vat_regime(cdg),
        support_amount=support,
    )
    if preview.pending:
        raise ValueError(f"{found.name} : montant opérateur manquant pour {', '.join(preview.pending)}")
    return _Prepared(entry, found, grid, verdict, preview.quotes, cdg.code)


def _billing_address(p: _Prepared) -> dict[str, str]:
    """The billing address the chain stores: the request's, else the mairie's default."""
    if p.entry.address_line and p.entry.postcode and p.entry.city:
        return {"address": p.entry.address_line, "postcode": p.entry.postcode, "city": p.entry.city}
    default = default_address(p.found.kind, p.found.name, p.found.postcodes)
    assert default is not None, f"{p.found.name}: no default billing address"
    return {"address": default.line, "postcode": default.postcode, "city": default.city}


def _write(
    settings: Settings, w: _Writer, numbers: _Numbers, part: list[_Prepared], grid_ids: dict[str, int], year: int
) -> list[int]:
    syndicat = settings.syndicat
    identities = {i.code: i for i in settings.issuers()}

    collectivity_ids = w.insert(
        Collectivity,
        [
            _row(
                Collectivity,
                kind=p.found.kind,
                name=p.found.name,
                siren=p.found.siren,
                siret=p.entry.siret,
                insee_code=p.found.insee_code,
                department=p.found.department,
                **_billing_address(p),
                email=p.entry.signatory_email,
                population_override=p.found.population_override,
                chorus_service_code=p.entry.chorus_service_code,
                created_at=_at(p.entry.request_day),
            )
            for p in part
        ],
    )
    w.insert(
        Contact,
        [
            _row(
                Contact,
                collectivity_id=cid,
                role="signatory",
                name=p.entry.signatory_name,
                capacity=p.entry.signatory_capacity,
                email=p.entry.signatory_email.lower(),
                active=True,
            )
            for p, cid in zip(part, collectivity_ids, strict=True)
        ],
    )
    request_ids = w.insert(
        ServiceRequest,
        [
            _row(
                ServiceRequest,
                reference=numbers.take(PLATFORM, "DEM"),
                collectivity_id=cid,
                status="in_force",
                channel="cli",
                requested_on=p.entry.request_day,
                signatory_name=p.entry.signatory_name,
                signatory_email=p.entry.signatory_email,
                signatory_capacity=p.entry.signatory_capacity,
                chorus_service_code=p.entry.chorus_service_code,
                commitment_number=p.entry.commitment_number,
                domain_names=list(p.entry.domain_names),
                mailbox_names=list(p.entry.mailbox_names),
                eligibility=_snapshot(p.verdict),
                support_amount=p.entry.support_amount if p.verdict.support_fee is None else None,
                created_at=_at(p.entry.request_day),
                updated_at=_at(p.entry.request_day),
            )
            for p, cid in zip(part, collectivity_ids, strict=True)
        ],
    )
    w.insert(
        ServiceRequestLine,
        [
            _row(ServiceRequestLine, request_id=rid, item_code=b.code, quantity=b.quantity, operator_amount=None)
            for p, rid in zip(part, request_ids, strict=True)
            for b in p.entry.basket
        ],
    )
    # Quotes: the syndicat's then the CDG's, numbered in that order (as `issue_quotes` does).
    quote_rows, quote_docs = [], []
    for p, rid in zip(part, request_ids, strict=True):
        for priced in p.quotes:
            support = priced.issuer != syndicat.code
            population = p.verdict.population if support else None
            quote_rows.append(
                _row(
                    Quote,
                    number=numbers.take(priced.issuer, "DEV"),
                    issuer_code=priced.issuer,
                    request_id=rid,
                    version=1,
                    status="issued",
                    issued_on=p.entry.request_day,
                    valid_until=p.entry.request_day + timedelta(days=settings.quote_validity_days),
                    grid_id=grid_ids[p.grid.code],
                    population=population.value if population else None,
                    population_kind=population.kind if population else None,
                    population_vintage=population.vintage if population else None,
                    band_label=p.verdict.band.label if support and p.verdict.band else None,
                    total_ht=priced.total_ht,
                    total_vat=priced.total_vat,
                    total_ttc=priced.total_ttc,
                    notes=list(priced.notes),
                    created_at=_at(p.entry.request_day),
                )
            )
            quote_docs.append(priced)
    quote_ids = w.insert(Quote, quote_rows)
    w.insert(
        QuoteLine,
        [
            _row(QuoteLine, quote_id=qid, **line)
            for qid, priced in zip(quote_ids, quote_docs, strict=True)
            for line in _priced_rows(priced, with_note=True)
        ],
    )
    convention_ids = w.insert(
        Convention,
        [
            _row(
                Convention,
                reference=numbers.take(syndicat.code, "CONV"),
                request_id=rid,
                collectivity_id=cid,
                syndicat_code=syndicat.code,
                cdg_code=p.cdg,
                status="in_force",
                version=1,
                grid_id=grid_ids[p.grid.code],
                dated_on=p.entry.request_day,
                in_force_on=p.entry.request_day + timedelta(days=10),
                expires_at=_at(p.entry.request_day + timedelta(days=settings.signature_expiry_days)),
                created_at=_at(p.entry.request_day),
                updated_at=_at(p.entry.request_day + timedelta(days=10)),
            )
            for p, rid, cid in zip(part, request_ids, collectivity_ids, strict=True)
        ],
    )
    approvals = []
    for p, conv in zip(part, convention_ids, strict=True):
        cdg = identities[p.cdg]
        parties = [
            ("collectivity", p.entry.signatory_name, p.entry.signatory_email, p.entry.signatory_capacity),
            ("cdg", cdg.signatory_name, cdg.signatory_email or cdg.email, cdg.signatory_capacity),
            (
                "syndicat",
                syndicat.signatory_name,
                syndicat.signatory_email or syndicat.email,
                syndicat.signatory_capacity,
            ),
        ]
        for position, (party, name, email, capacity) in enumerate(parties, start=1):
            decided = _at(p.entry.request_day + timedelta(days=3 * position + 1))
            approvals.append(
                _row(
                    Approval,
                    convention_id=conv,
                    party=party,
                    position=position,
                    status="signed",
                    signatory_name=name,
                    signatory_email=email,
                    link_nonce=_token(conv, party),
                    link_sent_at=decided - timedelta(days=1),
                    decided_at=decided,
                    decided_name=name,
                    decided_capacity=capacity,
                    certified_authority=True,
                    ip_address="127.0.0.1",
                    user_agent="seed",
                )
            )
    w.insert(Approval, approvals)
    order_ids = w.insert(
        ProvisioningOrder,
        [
            _row(
                ProvisioningOrder,
                number=numbers.take(syndicat.code, "BDC"),
                convention_id=conv,
                status="delivered",
                payload={
                    "collectivity": {"siren": p.found.siren, "name": p.found.name},
                    "items": [{"code": b.code, "quantity": b.quantity} for b in p.entry.basket],
                    "domain_names": list(p.entry.domain_names),
                    "mailbox_names": list(p.entry.mailbox_names),
                },
                sent_at=_at(p.entry.request_day + timedelta(days=10)),
                acknowledged_at=_at(p.entry.request_day + timedelta(days=11)),
                acknowledged_by="seed",
                delivered_at=_at(p.entry.delivered_on),
                delivered_by="seed",
                link_nonce=_token("order", conv),
            )
            for p, conv in zip(part, convention_ids, strict=True)
        ],
    )
    # the syndicat's quote lines of each collectivity (none when it has no syndicat quote)
    services = {p.entry.identifier: next((q.lines for q in p.quotes if q.issuer == syndicat.code), ()) for p in part}
    w.insert(
        ProvisioningOrderItem,
        [
            _row(
                ProvisioningOrderItem,
                order_id=oid,
                item_code=line.code,
                label=line.label,
                quantity=line.quantity,
                delivered_on=p.entry.delivered_on,
                delivered_by="seed",
            )
            for p, oid in zip(part, order_ids, strict=True)
            for line in services[p.entry.identifier]
        ],
    )
    subscription_ids = w.insert(
        Subscription,
        [
            _row(
                Subscription,
                collectivity_id=cid,
                convention_id=conv,
                cdg_code=p.cdg,
                started_on=p.entry.delivered_on,
                status="active",
                support_amount=p.entry.support_amount if p.verdict.support_fee is None else None,
            )
            for p, cid, conv in zip(part, collectivity_ids, convention_ids, strict=True)
        ],
    )
    w.insert(
        SubscriptionItem,
        [
            _row(
                SubscriptionItem,
                subscription_id=sid,
                item_code=b.code,
                quantity=b.quantity,
                started_on=p.entry.delivered_on,
                operator_amount=None,
            )
            for p, sid in zip(part, subscription_ids, strict=True)
            for b in p.entry.basket
        ],
    )
    # First invoices: the quotes' priced documents (as `provisioning.first_invoices`), billing year `year`.
    invoice_rows, invoice_docs = [], []
    for p, sid, cid in zip(part, subscription_ids, collectivity_ids, strict=True):
        for quoted in p.quotes:
            priced = first_invoice_document(quoted, p.entry.delivered_on, full_first_year=settings.full_first_year)
            invoice_rows.append(
                _row(
                    Invoice,
                    number=numbers.take(priced.issuer, "FAC"),
                    issuer_code=priced.issuer,
                    collectivity_id=cid,
                    subscription_id=sid,
                    kind="first",
                    billing_year=year,
                    issued_on=p.entry.delivered_on,
                    due_on=due_on(p.entry.delivered_on, settings.payment_term_days),
                    delivery_date=p.entry.delivered_on,
                    total_ht=priced.total_ht,
                    total_vat=priced.total_vat,
                    total_ttc=priced.total_ttc,
                    buyer_siret=p.entry.siret,
                    chorus_service_code=p.entry.chorus_service_code,
                    commitment_number=p.entry.commitment_number,
                    created_at=_at(p.entry.delivered_on),
                )
            )
            invoice_docs.append(priced)
    invoice_ids = w.insert(Invoice, invoice_rows)
    w.insert(
        InvoiceLine,
        [
            _row(InvoiceLine, invoice_id=iid, **line)
            for iid, priced in zip(invoice_ids, invoice_docs, strict=True)
            for line in _priced_rows(priced, with_periods=True)
        ],
    )
    return subscription_ids


def seed_live(settings: Settings, n: int, *, year: int = 2026, seed_value: int = 0) -> SeedReport:
    """`n` realistic live subscriptions (see the module's docstring), delivered during `year`."""
    return seed(settings, plan_entries(n, year=year, seed=seed_value), year=year)
