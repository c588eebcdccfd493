"""How the approved campaign is cut into child runs, and how a child's counts travel back (no DB, no Prefect
server): slices of consecutive ids by bounds, stable idempotency keys, the child's artifact row read back."""

from __future__ import annotations

import pytest

from flows.campaign import _outcome, _row, idempotency_key
from mairie.services.renewal import Slice, slices_of
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
