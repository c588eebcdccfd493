"""The rules moved into `models/` by the service-layer redesign: status tables, signing order, dunning,
payment term, the Paris year of a number, the renewal window, pending amounts and VAT regimes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

import pytest

from models.catalog import load_grid_file
from models.clock import number_year, paris_day
from models.dunning import DunningStep, level_reached, next_step, qualifies
from models.errors import InvalidInput, InvalidTransition, NotFound
from models.lifecycle import (
    MOVES,
    ConventionStatus,
    InvoiceStatus,
    OutboxStatus,
    RequestStatus,
    allowed,
    check,
    move,
)
from models.parties import SIGNING_ORDER, Party, next_party, parse_party, position, status_after_signature
from models.pricing import BasketLine, pending_amounts, vat_regime_of
from models.reference_data import DATA_DIR
from models.renewal import LiveWindow
from models.repositories import Issuers
from models.terms import due_on

GRID = load_grid_file(DATA_DIR / "grids" / "2025-07-10.json")


@pytest.mark.parametrize("enum", list(MOVES))
def test_every_status_has_its_row_of_moves(enum: type[StrEnum]) -> None:
    table = MOVES[enum]
    assert set(table) == set(enum)  # no status without its allowed moves
    for targets in table.values():
        assert targets <= set(enum)  # moves stay within the entity's own statuses


def test_move_checks_the_table_and_names_the_entity() -> None:
    class Row:
        status: str = "eligible"

    row = Row()
    assert move(row, RequestStatus.QUOTED) is RequestStatus.QUOTED and row.status == RequestStatus.QUOTED
    with pytest.raises(InvalidTransition, match="demande : passage de « quoted » à « in_force » impossible"):
        move(row, RequestStatus.IN_FORCE)
    assert row.status == RequestStatus.QUOTED  # unchanged by a refused move


def test_terminal_statuses_go_nowhere() -> None:
    assert not allowed(InvoiceStatus.PAID, InvoiceStatus.PARTIALLY_PAID)
    assert not allowed(ConventionStatus.DECLINED, ConventionStatus.IN_FORCE)
    assert allowed(OutboxStatus.UNDELIVERED, OutboxStatus.PENDING)  # an operator retries
    with pytest.raises(InvalidTransition):
        check(OutboxStatus, "sent", OutboxStatus.PENDING)


def test_signing_order_and_one_spelling() -> None:
    assert SIGNING_ORDER == (Party.COLLECTIVITY, Party.CDG, Party.SYNDICAT)
    assert [position(p) for p in SIGNING_ORDER] == [1, 2, 3]
    assert next_party("collectivity") is Party.CDG and next_party("syndicat") is None
    assert status_after_signature("collectivity") is ConventionStatus.AWAITING_CDG
    assert status_after_signature("cdg") is ConventionStatus.AWAITING_SYNDICAT
    assert status_after_signature("syndicat") is ConventionStatus.IN_FORCE
    with pytest.raises(InvalidInput, match="partie inconnue « collectivite »"):
        parse_party("collectivite")


def test_reminder_levels_are_sent_once_then_handed_over() -> None:
    levels = [7, 21, 45]
    due = date(2027, 2, 14)
    assert level_reached(due, date(2027, 2, 20), levels) == 0
    assert level_reached(due, date(2027, 2, 21), levels) == 1
    assert level_reached(due, date(2027, 4, 1), levels) == 3
    step = next_step(due_on=due, today=date(2027, 2, 21), levels=levels, sent=set(), handed_over=False)
    assert step == DunningStep(1)
    # a missed day sends only the highest level reached, never a burst
    assert next_step(due_on=due, today=date(2027, 3, 31), levels=levels, sent={1}, handed_over=False) == DunningStep(3)
    assert next_step(due_on=due, today=date(2027, 3, 31), levels=levels, sent={1, 3}, handed_over=False) == (
        DunningStep(0, hand_over=True)
    )
    assert next_step(due_on=due, today=date(2027, 3, 31), levels=levels, sent={1, 3}, handed_over=True) is None
    assert next_step(due_on=due, today=date(2027, 3, 1), levels=levels, sent={1}, handed_over=False) is None


def test_who_qualifies_for_a_reminder() -> None:
    assert qualifies("issued", Decimal("10.00"))
    assert qualifies("partially_paid", Decimal("0.01"))
    assert not qualifies("paid", Decimal("0.00"))
    assert not qualifies("issued", Decimal("0.00"))
    assert not qualifies("credited", Decimal("10.00"))
    assert not qualifies("issued", Decimal("10.00"), payable=False)


def test_payment_term_and_the_paris_year() -> None:
    assert due_on(date(2026, 12, 1)) == date(2026, 12, 31)
    assert due_on(date(2026, 12, 1), 45) == date(2027, 1, 15)
    with pytest.raises(ValueError):
        due_on(date(2026, 12, 1), 0)
    new_year_in_paris = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Paris
    assert number_year(new_year_in_paris) == 2027
    assert paris_day(new_year_in_paris) == date(2027, 1, 1)
    with pytest.raises(ValueError):
        number_year(datetime(2026, 12, 31, 23, 30))


def test_renewal_window() -> None:
    window = LiveWindow(2027, date(2027, 1, 15))
    assert window.contains(status="active", started_on=date(2026, 12, 1), ended_on=None)
    assert not window.contains(status="active", started_on=date(2027, 1, 2), ended_on=None)  # first invoice covers it
    # ended within the year: still renewed, for its started months of the year
    assert window.contains(status="active", started_on=date(2026, 3, 1), ended_on=date(2027, 1, 10))
    assert not window.contains(status="active", started_on=date(2026, 3, 1), ended_on=date(2026, 12, 31))
    assert window.contains(status="active", started_on=date(2026, 3, 1), ended_on=date(2027, 6, 30))
    assert not window.contains(status="ended", started_on=date(2026, 3, 1), ended_on=None)


def test_pending_amounts_of_a_sur_devis_request() -> None:
    storage = BasketLine("stockage-go", 150)
    assert pending_amounts(GRID, [storage], support_fee=Decimal("50"), support_amount=None) == ("stockage-go",)
    settled = BasketLine("stockage-go", 150, Decimal("1500"))
    assert pending_amounts(GRID, [settled], support_fee=None, support_amount=None) == ("accompagnement",)
    assert pending_amounts(GRID, [settled], support_fee=None, support_amount=Decimal("400")) == ()


def test_vat_regime_per_issuer() -> None:
    assert vat_regime_of("standard", Decimal("0.20")).category == "S"
    outside = vat_regime_of("outside_scope", Decimal("0"))
    assert outside.category == "O" and outside.rate == 0 and "256 B" in (outside.exemption_reason or "")
    with pytest.raises(InvalidInput, match="régime de TVA inconnu"):
        vat_regime_of("exonere", Decimal("0"))


def test_issuer_lookup_says_which_issuers_exist() -> None:
    class Identity:
        def __init__(self, code: str, kind: str, department: str | None) -> None:
            self.code, self.kind, self.department = code, kind, department

    issuers = Issuers([Identity("LFN", "syndicat", None), Identity("CDG62", "cdg", "62")])
    assert issuers.get("CDG62").code == "CDG62"
    assert issuers.cdg_for_department("62") is issuers.get("CDG62")
    assert issuers.cdg_for_department("80") is None
    assert issuers.syndicat().code == "LFN"
    with pytest.raises(NotFound, match="émetteur inconnu « CDG80 » \\(émetteurs configurés : LFN, CDG62\\)"):
        issuers.get("CDG80")


def test_who_may_decide_and_ask_now() -> None:
    from models.parties import decision_refusal, question_refusal

    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    later, earlier = datetime(2026, 12, 20, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    open_ = {"convention_status": "awaiting_cdg", "now": now, "reference": "LFN-CONV-2026-00001"}
    assert decision_refusal(approval_status="pending", expires_at=later, **open_) is None
    assert "pas encore" in (decision_refusal(approval_status="waiting", expires_at=later, **open_) or "")
    assert "est dépassé" in (decision_refusal(approval_status="pending", expires_at=earlier, **open_) or "")
    closed = {**open_, "convention_status": "declined"}
    assert "n'est plus ouverte" in (decision_refusal(approval_status="pending", expires_at=later, **closed) or "")
    ask = {"now": now}
    assert (
        question_refusal(convention_status="awaiting_cdg", approval_status="pending", expires_at=later, **ask) is None
    )
    assert question_refusal(convention_status="in_force", approval_status="signed", expires_at=earlier, **ask) is None
    assert question_refusal(convention_status="awaiting_cdg", approval_status="waiting", expires_at=later, **ask)
    assert question_refusal(convention_status="awaiting_cdg", approval_status="pending", expires_at=earlier, **ask)


def test_one_payment_term_for_every_issuer() -> None:
    from pydantic import ValidationError

    from mairie.settings import Settings

    settings = Settings(_env_file=None, payment_term_days=45)  # type: ignore[call-arg]
    assert {i.payment_term_days for i in settings.issuers()} == {45}  # printed and used for due dates alike
    with pytest.raises(ValidationError, match="MAIRIE_SYNDICAT__PAYMENT_TERM_DAYS n'est pas un réglage"):
        Settings(_env_file=None, syndicat={"payment_term_days": 60})  # type: ignore[call-arg]
