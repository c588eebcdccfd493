"""The campaign's emails through an SMTP server that fails 30 % of deliveries: with 451 or a dropped
connection everything ends up delivered exactly once after repeated outbox rounds (the clock advanced
past each backoff); with 550 the refused messages are left undelivered, visible to operators with the
server's answer, and never sent again."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bench._seed import seed_live
from mairie.database import unit_of_work
from mairie.services import paperwork, renewal
from mairie.settings import Settings
from models.db import get_engine
from models.entities import OutboxMessage
from models.types import utcnow
from notifications import outbox
from notifications.mailserver import FaultInjection, LoopbackMailServer
from notifications.smtp import SmtpSender
from tests.conftest import make_settings
from tests.faults.conftest import campaign_settings

SUBSCRIPTIONS = 12
ROUNDS = 40  # 10 attempts at most per message: plenty


@pytest.fixture(scope="module")
def issued_campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data folder (SQLite + documents) where the 2027 campaign is issued and its emails queued."""
    folder = tmp_path_factory.mktemp("issued")
    url = f"sqlite:///{folder / 'mairie.sqlite3'}"
    settings = campaign_settings(folder, url, 1)
    seed_live(settings, SUBSCRIPTIONS, year=2026)
    result = renewal.issue(settings, 2027)
    assert len(result.issued) == 2 * SUBSCRIPTIONS
    get_engine(url).dispose()
    yield folder


def _copy(issued: Path, tmp_path: Path, port: int) -> Settings:
    target = tmp_path / "campaign"
    shutil.copytree(issued, target)
    return make_settings(target, f"sqlite:///{target / 'mairie.sqlite3'}", smtp_port=port, smtp_timeout=5.0)


def _rounds(settings: Settings, server: LoopbackMailServer) -> list[outbox.DispatchReport]:
    """Outbox runs, the clock two hours later each time (past any backoff), until nothing is pending."""
    sender = SmtpSender(server.smtp_config(timeout=5.0))
    engine = get_engine(settings.sqlalchemy_url)
    clock = utcnow()
    reports = []
    for _ in range(ROUNDS):
        report = asyncio.run(
            outbox.dispatch_due(engine, sender, lambda sha: paperwork.load(settings, sha), now=clock, limit=500)
        )
        reports.append(report)
        with unit_of_work(settings) as uow:
            if not outbox.pending(uow.session):
                break
        clock += timedelta(hours=2)
    return reports


def _rows(settings: Settings) -> list[OutboxMessage]:
    with unit_of_work(settings) as uow:
        rows = list(uow.session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())
        uow.session.expunge_all()  # plain values from here on
        return rows


@pytest.mark.parametrize("mode", ["451", "drop"])
def test_transient_failures_end_delivered_exactly_once(issued_campaign: Path, tmp_path: Path, mode: str) -> None:
    faults = FaultInjection(mode=mode, fraction=0.3, seed=59_62)  # type: ignore[arg-type]
    with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        settings = _copy(issued_campaign, tmp_path, server.port)
        reports = _rounds(settings, server)
        received = Counter(m.dedup_key for m in server.messages())
        attempts = server.handler.attempts
    rows = _rows(settings)
    assert len(rows) == 2 * SUBSCRIPTIONS
    assert {r.status for r in rows} == {"sent"}
    assert received == Counter({r.dedup_key: 1 for r in rows})  # every email once, nothing else
    retried = sum(len(r.retried) for r in reports)
    assert retried > 0 and attempts == len(rows) + retried  # the faults really happened
    assert sum(r.attempts for r in rows) == attempts
    failed = [r for r in rows if r.attempts > 1]
    assert failed and all(r.last_error is None for r in failed)  # cleared by the successful attempt
    assert len(reports) > 1


def test_rejections_are_left_undelivered_and_visible(issued_campaign: Path, tmp_path: Path) -> None:
    faults = FaultInjection(mode="550", fraction=0.3, seed=59_62)
    with LoopbackMailServer(tmp_path / "mail", faults=faults) as server:
        settings = _copy(issued_campaign, tmp_path, server.port)
        _rounds(settings, server)
        _rounds(settings, server)  # later outbox runs change nothing
        received = Counter(m.dedup_key for m in server.messages())
        attempts = server.handler.attempts
    rows = _rows(settings)
    undelivered = [r for r in rows if r.status == "undelivered"]
    sent = [r for r in rows if r.status == "sent"]
    assert undelivered and sent and len(undelivered) + len(sent) == len(rows)
    assert attempts == len(rows)  # a 5xx is never retried
    assert received == Counter({r.dedup_key: 1 for r in sent})
    for row in undelivered:
        assert row.attempts == 1 and row.sent_at is None
        assert row.last_error == "550 5.7.1 Message refusé (rejet simulé)"
    with unit_of_work(settings) as uow:  # the operators' view
        visible = [(r.dedup_key, r.last_error) for r in outbox.undelivered(uow.session)]
    assert visible == [(r.dedup_key, r.last_error) for r in undelivered]
    assert all(key.startswith("invoice:") for key, _ in visible)
