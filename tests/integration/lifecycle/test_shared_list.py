"""Campaign runs share one list of subscriptions (issue 21): on PostgreSQL a run skips at once, with
`SELECT … FOR UPDATE SKIP LOCKED`, a subscription another transaction holds, and issues the rest; the
subscription is issued by whoever holds it — here a later run once the lock is gone. Slices by id bounds
issue only their own subscriptions."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import text
from sqlmodel import select

from bench._seed import seed_live
from mairie.database import unit_of_work
from mairie.services import renewal
from mairie.services.setup import initialise
from models.db import get_engine
from models.entities import Invoice
from tests.conftest import make_settings

YEAR = 2027
TODAY = date(YEAR, 1, 15)


@pytest.fixture
def seeded(tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, render_processes=0)
    initialise(settings)
    seed_live(settings, 6, year=YEAR - 1)
    with unit_of_work(settings) as uow:
        ids = renewal.live_subscription_ids(uow.session, YEAR, renewal.renewal_date(settings, YEAR))
    return settings, ids


def _invoiced(settings) -> set[int]:
    with unit_of_work(settings) as uow:
        return {i for i in uow.session.exec(select(Invoice.subscription_id).where(Invoice.billing_year == YEAR))}


def test_a_slice_issues_only_its_own_subscriptions(seeded) -> None:
    settings, ids = seeded
    first, second = renewal.slices_of(ids, 4)
    result = renewal.issue(settings, YEAR, first_id=first.first_id, last_id=first.last_id, today=TODAY)
    assert len(result.issued) == 8 and _invoiced(settings) == set(ids[:4])
    again = renewal.issue(settings, YEAR, first_id=first.first_id, last_id=first.last_id, today=TODAY)
    assert again.issued == [] and len(again.existing) == 8  # a retried slice issues nothing twice
    rest = renewal.issue(settings, YEAR, first_id=second.first_id, last_id=second.last_id, today=TODAY)
    assert len(rest.issued) == 4 and _invoiced(settings) == set(ids)


@pytest.mark.postgres
def test_a_run_skips_a_subscription_another_holds_instead_of_waiting(tmp_path, pg_url) -> None:
    settings = make_settings(tmp_path, pg_url, render_processes=0)
    initialise(settings)
    seed_live(settings, 3, year=YEAR - 1)
    with unit_of_work(settings) as uow:
        ids = renewal.live_subscription_ids(uow.session, YEAR, renewal.renewal_date(settings, YEAR))
    held = ids[1]
    with get_engine(settings.sqlalchemy_url).connect() as other:  # another run, in its numbering transaction
        other.execute(text("SELECT id FROM subscription WHERE id = :id FOR UPDATE"), {"id": held})
        done: dict[str, renewal.CampaignResult] = {}
        run = threading.Thread(target=lambda: done.setdefault("result", renewal.issue(settings, YEAR, today=TODAY)))
        run.start()
        run.join(30)
        if run.is_alive():  # it waited for the lock: release it so that the test ends, then fail
            other.rollback()
            run.join(30)
            pytest.fail("the campaign waited for a subscription another transaction held")
        result = done["result"]
        assert result.taken == [held] and len(result.issued) == 4
        assert _invoiced(settings) == {ids[0], ids[2]}
        other.rollback()
    after = renewal.issue(settings, YEAR, today=TODAY)
    assert after.taken == [] and len(after.issued) == 2 and len(after.existing) == 4
    assert _invoiced(settings) == set(ids)
