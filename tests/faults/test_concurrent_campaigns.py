"""Two renewal campaigns at once on one PostgreSQL database (two processes, the same subscriptions, started
together): no number given twice, one invoice per subscription, issuer and year, no gap; a final run
completes whatever a campaign left."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import select

from bench._seed import seed_live
from mairie.database import unit_of_work
from mairie.settings import Settings
from models.entities import Invoice
from notifications.mailserver import LoopbackMailServer
from tests.faults.conftest import campaign_settings
from tests.faults.test_crash import ROOT, check_campaign, run_to_end, worker_env

SUBSCRIPTIONS = 16

pytestmark = pytest.mark.postgres


def run_together(settings: Settings, tmp_path: Path, faults: list[dict[str, object]]) -> list[int]:
    """One campaign process per entry of `faults`, warmed up, then started at the same instant."""
    go = tmp_path / "go"
    log = tmp_path / "workers.log"
    procs = []
    with log.open("a") as stderr:
        for extra in faults:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.faults.campaign_worker"],
                    cwd=ROOT,
                    env=worker_env(settings, FAULT_GO_FILE=go, **extra),
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                )
            )
        for proc in procs:  # all warmed up and waiting
            assert proc.stdout is not None and proc.stdout.readline().startswith("ready"), log.read_text()[-3000:]
        go.touch()
        for proc in procs:
            proc.communicate(timeout=150)
    return [proc.returncode for proc in procs]


def _no_duplicate(settings: Settings) -> None:
    with unit_of_work(settings) as uow:
        invoices = uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all()
        numbers = Counter(i.number for i in invoices)
        per_key = Counter((i.subscription_id, i.issuer_code, i.billing_year) for i in invoices)
    assert numbers and max(numbers.values()) == 1  # no number given twice
    assert max(per_key.values()) == 1  # one invoice per subscription, issuer and year


def test_two_campaigns_at_once_on_postgresql(pg_url: str, tmp_path: Path, mail_server: LoopbackMailServer) -> None:
    settings = campaign_settings(tmp_path, pg_url, mail_server.port)
    seed_live(settings, SUBSCRIPTIONS, year=2026)
    codes = run_together(settings, tmp_path, [{}, {}])
    with unit_of_work(settings) as uow:
        invoices = uow.session.exec(select(Invoice).where(Invoice.billing_year == 2027)).all()
        numbers = Counter(i.number for i in invoices)
        per_key = Counter((i.subscription_id, i.issuer_code, i.billing_year) for i in invoices)
    assert numbers and max(numbers.values()) == 1  # no number given twice
    assert max(per_key.values()) == 1  # one invoice per subscription, issuer and year

    # both campaigns end normally: each skips at once a subscription the other is numbering (FOR UPDATE SKIP
    # LOCKED) and keeps what the other issued
    assert codes == [0, 0], (tmp_path / "workers.log").read_text()[-3000:]
    final = run_to_end(worker_env(settings), tmp_path / "final.log")
    assert final.returncode == 0, final.stderr[-3000:]
    check_campaign(settings, mail_server, SUBSCRIPTIONS)  # complete, gapless, each emailed


def test_two_campaign_processes_on_disjoint_halves(
    pg_url: str, tmp_path: Path, mail_server: LoopbackMailServer
) -> None:
    """The partitioned set-up of docs/scaling.md: two processes, subscriptions split by id modulo 2."""
    settings = campaign_settings(tmp_path, pg_url, mail_server.port)
    seed_live(settings, SUBSCRIPTIONS, year=2026)
    codes = run_together(settings, tmp_path, [{"FAULT_PART": "0/2"}, {"FAULT_PART": "1/2"}])
    assert codes == [0, 0], (tmp_path / "workers.log").read_text()[-3000:]
    _no_duplicate(settings)
    arrived = check_campaign(settings, mail_server, SUBSCRIPTIONS)  # complete, gapless, each emailed once
    assert set(arrived.values()) == {1}
