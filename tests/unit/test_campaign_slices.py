"""How the approved campaign is cut into child runs, and how a child's counts travel back (no DB, no Prefect
server): slices of consecutive ids by bounds, stable idempotency keys, the child's artifact row read back."""

from __future__ import annotations

import pytest

from flows.campaign import _outcome, _row, idempotency_key, slice_run_name
from mairie.services.renewal import Slice, slices_of
from mairie.settings import Settings
from tests.conftest import make_settings


def test_slices_are_consecutive_ids_by_bounds() -> None:
    ids = [3, 4, 7, 8, 9, 15, 20]
    assert slices_of(ids, 3) == [Slice(0, 3, 7, 3), Slice(1, 8, 15, 3), Slice(2, 20, 20, 1)]
    assert slices_of(ids, 100) == [Slice(0, 3, 20, 7)]
    assert slices_of([], 250) == []
    with pytest.raises(ValueError):
        slices_of(ids, 0)


def test_every_id_is_in_exactly_one_slice() -> None:
    ids = list(range(1, 1535))
    slices = slices_of(ids, 250)
    assert len(slices) == 7 and sum(s.subscriptions for s in slices) == len(ids)
    covered = [i for s in slices for i in ids if s.first_id <= i <= s.last_id]
    assert covered == ids


def test_the_key_names_the_database_the_year_and_the_bounds(tmp_path) -> None:
    one = make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:5432/mairie")
    other = make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:5432/recette")
    part = Slice(0, 1, 250, 250)
    key = idempotency_key(one, 2027, part)
    assert key == idempotency_key(one, 2027, Slice(3, 1, 250, 250))  # the same campaign: the same child run
    assert key.startswith("renouvellement-") and key.endswith("-2027-1-250")
    assert key != idempotency_key(other, 2027, part)  # two installations on one Prefect server
    assert key != idempotency_key(one, 2028, part)
    assert "postgres@" not in key  # the URL is hashed, never shown
    assert idempotency_key(one, 2027, part, attempt=1) == key  # the first attempt: the key of earlier versions
    second = idempotency_key(one, 2027, part, attempt=2)
    assert second == f"{key}-essai-2" and idempotency_key(one, 2027, part, attempt=3) == f"{key}-essai-3"


def test_a_slice_run_is_named_after_its_year_bounds_and_attempt() -> None:
    assert slice_run_name(2027, 1, 250) == "lot-2027-1-250"
    assert slice_run_name(2027, 1, 250, attempt=2) == "lot-2027-1-250-essai-2"


def test_a_childs_counts_come_back_from_its_artifact_row() -> None:
    outcome = {
        "first_id": 1,
        "last_id": 250,
        "issued": 480,
        "existing": 12,
        "taken": 2,
        "held": ["Wimille (216208843) : SIRET", "Arras (216200410) : adresse"],
        "pending": [],
        "excluded": ["216201137"],
        "sent": 480,
    }
    row = _row(outcome)
    assert row["factures émises"] == 480 and row["exclus"] == "216201137"
    assert _outcome(row) == outcome


def test_the_parent_finds_each_slices_latest_attempt_by_its_keys(tmp_path) -> None:
    from types import SimpleNamespace

    from flows.campaign import ATTEMPTS_READ, SliceRun, _latest_attempts

    settings = make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:5432/mairie")
    runs = [SliceRun(Slice(i, 10 * i + 1, 10 * i + 10, 10)) for i in range(4)]
    made = {0: 0, 1: 1, 2: ATTEMPTS_READ, 3: 2 * ATTEMPTS_READ + 1}  # attempts already run, per slice
    existing = {idempotency_key(settings, 2027, runs[i].slice, a) for i, n in made.items() for a in range(1, n + 1)}
    existing.add(idempotency_key(settings, 2028, runs[0].slice))  # another year's run: not this campaign's
    asked: list[int] = []

    class Client:
        def read_flow_runs(self, flow_run_filter, limit):
            keys = flow_run_filter.idempotency_key.any_
            asked.append(len(keys))
            assert limit >= len(keys)
            return [SimpleNamespace(idempotency_key=k) for k in keys if k in existing]

    assert _latest_attempts(Client(), settings, 2027, runs) == [0, 1, ATTEMPTS_READ, 2 * ATTEMPTS_READ + 1]
    # 4 slices × 4 attempts, then the two slices that had all 4 (4 more each), then the last one (4 more)
    assert asked == [4 * ATTEMPTS_READ, 2 * ATTEMPTS_READ, ATTEMPTS_READ]


def test_the_lost_slice_automation_waits_the_setting_after_a_heartbeat() -> None:
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    from mairie.stack import LOST_SLICES_AUTOMATION, lost_slice_automation

    automation = lost_slice_automation(Settings(_env_file=None, campaign_lost_after_s=120))
    trigger = automation.trigger
    assert automation.name == LOST_SLICES_AUTOMATION and isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive
    # claimed by a worker, or started: then it must start, or go on beating, or end
    assert trigger.after == {"prefect.flow-run.Pending", "prefect.flow-run.Submitting", "prefect.flow-run.heartbeat"}
    assert trigger.expect == {
        "prefect.flow-run.Running",
        "prefect.flow-run.heartbeat",
        *(f"prefect.flow-run.{end}" for end in ("Completed", "Failed", "Cancelled", "Crashed")),
    }
    assert trigger.within == timedelta(seconds=120) and trigger.for_each == {"prefect.resource.id"}
    related = trigger.match_related
    assert not isinstance(related, list) and dict(related.items()) == {
        "prefect.resource.role": ["flow"],
        "prefect.resource.name": ["renouvellement-lot"],
    }
    (action,) = automation.actions
    assert isinstance(action, ChangeFlowRunState) and action.state == StateType.CRASHED
    assert "120 s" in (action.message or "")
    assert Settings(_env_file=None).campaign_lost_after_s == 90


def test_a_silence_shorter_than_the_heartbeat_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="campaign_lost_after_s"):
        Settings(_env_file=None, campaign_lost_after_s=30)
