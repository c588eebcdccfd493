"""Bad input, fuzzed with hypothesis: the CLI (`eligibility`, `quote preview`), the request form model and
the payments CSV give a clear error (exit status 2, a ValidationError, an InvalidInput naming the line) or
a valid result — never a traceback — and nothing is half-stored. (The approval endpoints are fuzzed in
tests/integration/web.)"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select
from stdnum.fr import siret as stdnum_siret
from typer.testing import CliRunner

from bench._seed import reference_communes, seed_live
from mairie.cli import app
from mairie.database import engine, unit_of_work
from mairie.schemas import RequestForm, validation_message
from mairie.services import payments
from mairie.services.intake import register_request
from mairie.settings import Settings
from models.catalog import SUPPORT_CODE, bundled_grid_files, load_grid_file
from models.entities import Invoice, Payment
from models.errors import DomainError, InvalidInput
from models.text import text_problem
from tests.faults.conftest import campaign_settings

FUZZ = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
COMMUNES = reference_communes()
CODES = sorted({i.code for i in load_grid_file(bundled_grid_files(None)[0]).items} | {SUPPORT_CODE})
ARGV_TEXT = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # argv holds no NUL

identifiers = st.one_of(
    st.sampled_from([c["insee_code"] for c in COMMUNES] + [c["siren"] for c in COMMUNES]),
    st.from_regex(r"[0-9]{5}|[0-9]{9}|[0-9]{14}|2[AB][0-9]{3}|[0-9 ]{5,16}", fullmatch=True),
    st.integers(-(10**15), 10**15).map(str),
    st.text(ARGV_TEXT, max_size=20),
)
quantities = st.one_of(st.integers(-5, 200_000).map(str), st.text(ARGV_TEXT, max_size=6), st.just("1.5"))
basket_args = st.lists(
    st.one_of(
        st.builds("{}={}".format, st.one_of(st.sampled_from(CODES), st.text(ARGV_TEXT, max_size=12)), quantities),
        st.text(ARGV_TEXT, max_size=20),
    ),
    min_size=1,
    max_size=6,
)
dates = st.one_of(
    st.none(),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.text(ARGV_TEXT, max_size=12),
)


def table_counts(settings: Settings) -> dict[str, int]:
    with engine(settings).connect() as conn:
        return {
            t.name: conn.execute(sa_select(func.count()).select_from(t)).scalar_one()
            for t in SQLModel.metadata.sorted_tables
        }


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str) -> tuple[dict[str, str], Settings]:
    settings = campaign_settings(tmp_path, db_url, 1)
    return {"MAIRIE_DATA_DIR": str(settings.data_dir), "MAIRIE_DATABASE_URL": db_url}, settings


def _invoke(env: dict[str, str], args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env=env)
    # 0: an answer; 2: bad input, one plain sentence; 1: the answer "not eligible" (a commune outside 59/62)
    assert result.exit_code in (0, 2) or (result.exit_code == 1 and "Non éligible" in result.output), (
        args,
        result.exit_code,
        result.output,
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output, (args, result.output)
    if result.exit_code == 2:
        assert result.output.strip(), args  # a message, not silence


@FUZZ
@given(identifier=identifiers, on=dates, as_json=st.booleans())
def test_cli_eligibility(cli_env: tuple[dict[str, str], Settings], identifier: str, on: str | None, as_json: bool):
    env, settings = cli_env
    before = table_counts(settings)
    _invoke(env, ["eligibility", identifier, *(["--date", on] if on is not None else []), *(["--json"] * as_json)])
    assert table_counts(settings) == before


@FUZZ
@given(identifier=identifiers, items=basket_args, on=dates, as_json=st.booleans())
def test_cli_quote_preview(
    cli_env: tuple[dict[str, str], Settings], identifier: str, items: list[str], on: str | None, as_json: bool
):
    env, settings = cli_env
    before = table_counts(settings)
    args = [
        "quote",
        "preview",
        identifier,
        *items,
        *(["--date", on] if on is not None else []),
        *(["--json"] * as_json),
    ]
    _invoke(env, args)
    assert table_counts(settings) == before


# ------------------------------------------------------------------------------------------------
# The request form model
# ------------------------------------------------------------------------------------------------

anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
form_items = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "code": st.one_of(st.sampled_from(CODES).map(lambda c: f"  {c.upper()} "), st.sampled_from(CODES),
                                  st.text(max_size=45), anything),
                "quantity": st.one_of(st.integers(-3, 100_002), st.text(max_size=5), st.floats(), anything),
            },
            optional={"extra": anything},
        ),
        anything,
    ),
    max_size=32,
)  # fmt: skip
form_data = st.fixed_dictionaries(
    {
        "collectivity": st.one_of(identifiers, anything),
        "items": st.one_of(form_items, anything),
        "signatory_name": st.one_of(st.text(max_size=210), st.just("Jeanne Dupont"), anything),
        "signatory_email": st.one_of(st.emails(), st.text(max_size=30), anything),
    },
    optional={
        "signatory_capacity": st.one_of(st.text(max_size=110), anything),
        "siret": st.one_of(
            st.sampled_from([c["siren"] + "00019" for c in COMMUNES[:50]]),
            st.from_regex(r"[0-9 ]{14,16}", fullmatch=True),
            anything,
        ),
        "chorus_service_code": st.one_of(st.text(max_size=110), anything),
        "commitment_number": st.one_of(st.text(max_size=110), anything),
        "domain_names": st.one_of(
            st.lists(st.one_of(st.from_regex(r"[a-z0-9-]{1,20}\.(fr|com)", fullmatch=True), st.text(max_size=30))),
            anything,
        ),
        "mailbox_names": st.one_of(st.lists(st.text(max_size=20), max_size=5), anything),
        "unexpected": anything,
    },
)


@pytest.fixture(scope="module")
def form_db(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("form")
    return campaign_settings(folder, f"sqlite:///{folder / 'mairie.sqlite3'}", 1)


@settings(max_examples=300, deadline=None, database=None)
@given(data=form_data)
def test_request_form_model(form_db: Settings, data: dict[str, object]) -> None:
    try:
        form = RequestForm.model_validate(data)
    except ValidationError as exc:
        assert validation_message(exc).strip()
        return
    codes = [item.code for item in form.items]
    assert 1 <= len(codes) <= 30 and len(set(codes)) == len(codes)
    assert all(
        code == code.strip().lower() and 1 <= item.quantity <= 100_000
        for code, item in zip(codes, form.items, strict=True)
    )
    assert form.siret is None or stdnum_siret.is_valid(form.siret)
    assert not re.search(r"[\x00-\x1f\x7f]", form.signatory_name + form.signatory_capacity)
    # a valid form is either registered or refused with a plain error, nothing half-stored
    before = table_counts(form_db)
    try:
        outcome = register_request(form_db, form, channel="api", on=date(2026, 3, 2))
    except DomainError as exc:
        assert str(exc).strip()
        assert table_counts(form_db) == before
    else:
        assert outcome.status in ("eligible", "waiting_operator", "refused")


# ------------------------------------------------------------------------------------------------
# The payments CSV
# ------------------------------------------------------------------------------------------------

PARSE_FAULTS = {
    "bad_amount": ["abc", "12,345", "1.234.5", "", "--1", "12.345", "NaN", "inf", "1e", "€"],
    "bad_date": ["2026-13-01", "31/02/2026", "hier", "", "2026/01/01", "1/1", "2026-02-30"],
    "empty_number": [""],
}
IMPORT_FAULTS = ("unknown_invoice", "too_much", "negative")
TODAY = date(2027, 6, 30)  # the import's today: a payment dated later is refused, as one before its invoice
FAULTS = ("ok", "ok", "ok", *PARSE_FAULTS, *IMPORT_FAULTS)
# references without the delimiters: see test_payments_delimiter_is_read_from_the_header
REFERENCE = st.text(st.characters(blacklist_characters=",;\x00\r\n", blacklist_categories=("Cs",)), max_size=30)


@dataclass(frozen=True)
class Spec:
    fault: str
    invoice: int
    cents: int
    days: int  # the payment's date, in days after the invoice's issue (negative: before it)
    reference: str
    french: bool  # amounts "12,50" and dates "DD/MM/YYYY"
    variant: int


specs = st.lists(
    st.builds(
        Spec,
        st.sampled_from(FAULTS),
        st.integers(0, 11),
        st.integers(1, 100_000),
        st.integers(-60, 700),
        REFERENCE,
        st.booleans(),
        st.integers(0, 20),
    ),
    max_size=8,
    unique_by=lambda s: s.invoice,
)


Issued = list[tuple[str, Decimal, date]]  # number, amount due, issue date


@pytest.fixture(scope="module")
def invoices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Issued]:
    """Twelve issued invoices (the first invoices of six seeded subscriptions), none paid."""
    folder = tmp_path_factory.mktemp("payments")
    settings = campaign_settings(folder, f"sqlite:///{folder / 'mairie.sqlite3'}", 1)
    seed_live(settings, 6, year=2026)
    with unit_of_work(settings) as uow:
        rows = uow.session.exec(
            select(Invoice.number, Invoice.total_ttc, Invoice.issued_on).order_by(Invoice.number)
        ).all()
    return settings, [(n, t, d) for n, t, d in rows]


def _refused_reference(spec: Spec) -> bool:
    return text_problem(spec.reference) is not None  # a control or bidi character: the text policy refuses it


def _refused_date(spec: Spec, issued: Issued) -> bool:
    issued_on = issued[spec.invoice][2]
    return spec.fault not in PARSE_FAULTS and not issued_on <= issued_on + timedelta(days=spec.days) <= TODAY


def _cell_amount(spec: Spec, total: Decimal) -> str:
    if spec.fault in PARSE_FAULTS and spec.fault == "bad_amount":
        return PARSE_FAULTS["bad_amount"][spec.variant % len(PARSE_FAULTS["bad_amount"])]
    amount = {"too_much": total + Decimal("0.01"), "negative": Decimal("-5.00")}.get(
        spec.fault, min(Decimal(spec.cents) / 100, total)
    )
    return f"{amount:.2f}".replace(".", ",") if spec.french else f"{amount:.2f}"


def _cell_date(spec: Spec, issued_on: date) -> str:
    if spec.fault == "bad_date":
        return PARSE_FAULTS["bad_date"][spec.variant % len(PARSE_FAULTS["bad_date"])]
    paid_on = issued_on + timedelta(days=spec.days)
    return paid_on.strftime("%d/%m/%Y") if spec.french else paid_on.isoformat()


def _csv(rows: list[Spec], invoices: Issued, delimiter: str, columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    for spec in rows:
        number, total, issued_on = invoices[spec.invoice]
        number = {"empty_number": "", "unknown_invoice": "LFN-FAC-2026-99999"}.get(spec.fault, number)
        cells = {
            "invoice_number": number,
            "amount": _cell_amount(spec, total),
            "paid_on": _cell_date(spec, issued_on),
            "reference": spec.reference,
        }
        writer.writerow([cells[c] for c in columns])
    return buffer.getvalue()


def _paid(settings: Settings) -> tuple[int, Decimal]:
    with unit_of_work(settings) as uow:
        payments = len(uow.session.exec(select(Payment.id)).all())
        paid = sum(uow.session.exec(select(Invoice.amount_paid)).all(), Decimal("0.00"))
    return payments, paid


@settings(max_examples=200, deadline=None, database=None)
@given(
    rows=specs,
    delimiter=st.sampled_from([",", ";"]),
    columns=st.permutations(["invoice_number", "amount", "paid_on", "reference"]),
)
def test_payments_csv(invoices: tuple[Settings, Issued], rows: list[Spec], delimiter: str, columns: list[str]) -> None:
    settings, issued = invoices
    text = _csv(rows, issued, delimiter, columns)
    parse = [s.fault in PARSE_FAULTS or _refused_reference(s) for s in rows]
    imports = [s.fault in IMPORT_FAULTS or _refused_date(s, issued) for s in rows]
    first = {kind: next((i + 2 for i, bad in enumerate(faults) if bad), None)
             for kind, faults in (("parse", parse), ("import", imports))}  # fmt: skip
    if not rows:
        with pytest.raises(InvalidInput, match="aucun paiement"):
            payments.parse_payments_csv(text)
        return
    if first["parse"] is None and first["import"] is None:
        parsed = payments.parse_payments_csv(text)
        assert [(p.line, p.invoice_number) for p in parsed] == [
            (i + 2, issued[s.invoice][0]) for i, s in enumerate(rows)
        ]
        expected = [unicodedata.normalize("NFC", s.reference).strip() or None for s in rows]
        assert [p.reference for p in parsed] == expected
        return  # valid files are imported in test_payments_valid_file_is_recorded (the state stays unpaid here)
    with pytest.raises(InvalidInput) as caught:
        payments.import_payments(settings, text, today=TODAY)
    expected = first["parse"] or first["import"]
    assert str(caught.value).startswith(f"ligne {expected} : "), (str(caught.value), text)
    assert _paid(settings) == (0, Decimal("0.00"))  # nothing recorded, not even the good lines before


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), max_size=300))
def test_payments_csv_random_text(text: str) -> None:
    """(A bare carriage return is left to test_payments_carriage_return_is_invalid_input.)"""
    try:
        rows = payments.parse_payments_csv(text)
    except InvalidInput as exc:
        assert str(exc).strip()
    else:
        assert rows and all(r.invoice_number and r.line >= 2 for r in rows)


def test_payments_valid_file_is_recorded(tmp_path: Path) -> None:
    settings = campaign_settings(tmp_path, f"sqlite:///{tmp_path / 'm.sqlite3'}", 1)
    seed_live(settings, 2, year=2026)
    with unit_of_work(settings) as uow:
        issued = uow.session.exec(select(Invoice.number, Invoice.total_ttc).order_by(Invoice.number)).all()
    text = "invoice_number;amount;paid_on;reference\n" + "".join(
        f"{n};{str(t).replace('.', ',')};15/01/2027;virement {i}\n" for i, (n, t) in enumerate(issued)
    )
    results = payments.import_payments(settings, text, today=date(2027, 1, 15))
    assert [r.status for r in results] == ["paid"] * len(issued)
    assert _paid(settings) == (len(issued), sum((t for _, t in issued), Decimal("0.00")))


def test_payments_delimiter_is_read_from_the_header() -> None:
    label = "VIR SEPA, MAIRIE DE REGNAUVILLE, FACT. {}, 2026, DEC"  # a bank's label, with commas
    text = "invoice_number;amount;paid_on;reference\n" + "".join(
        f"LFN-FAC-2026-0000{i};10,00;2026-12-01;{label.format(i)}\n" for i in (1, 2)
    )
    rows = payments.parse_payments_csv(text)
    assert [(r.invoice_number, r.amount, r.reference) for r in rows] == [
        (f"LFN-FAC-2026-0000{i}", Decimal("10.00"), label.format(i)) for i in (1, 2)
    ]


def test_payments_carriage_return_is_invalid_input() -> None:
    text = "invoice_number;amount;paid_on;reference\rLFN-FAC-2026-00001;10,00;2026-12-01;vir\r"
    with contextlib.suppress(InvalidInput):
        payments.parse_payments_csv(text)
