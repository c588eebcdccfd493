"""The campaign through a real Prefect work pool (issue 21): child runs of `renouvellement-lot` taken by real
`prefect worker` processes on PostgreSQL, the parent (the approved campaign) in this process.

- a child run's process SIGKILLed in the middle of its slice → Prefect says Crashed, the parent starts the
  slice's second attempt (a new child run, `…-essai-2`), which completes what the killed one numbered and
  issues the rest: no duplicate, no gap, every email once; then a second parent run of the same campaign
  gets each slice's latest child run back (idempotency keys), creates none, and issues nothing;
- a worker killed with its child run (the machine lost: nobody reports the crash), once the run has started
  or while it is claimed and not yet started → the automation marks the run Crashed after its silence, and
  the parent starts the slice's next attempt on the other worker: the campaign completes, every email once;
- a child run that cannot store its documents → the slice fails cleanly (nothing issued, no email queued,
  invoices left numbered) and Prefect retries it; once the store is back the retry completes the campaign.

In the first test the documents are in the database (`MAIRIE_DOCUMENT_STORE=database`, the default): the
workers share nothing but PostgreSQL (and this machine's data folder, for nothing the campaign reads). The
second uses the `files` store, a folder the workers share, made unreachable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from sqlmodel import select

from bench._seed import seed_live
from flows.campaign import SlicedIssue, issue_in_slices, publish_summary, slice_run_name
from mairie.database import unit_of_work
from mairie.settings import Settings, get_settings
from models.entities import Invoice, OutboxMessage
from notifications.mailserver import LoopbackMailServer
from tests.faults.conftest import campaign_settings
from tests.faults.pool import Pool, campaign_pool, descendants, signal_tree
from tests.faults.test_crash import check_campaign, worker_env

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("prefect_harness")]

YEAR = 2027
TODAY = date(YEAR, 1, 15)


@flow(name="campagne-renouvellement-essai")
def approved_campaign(expected: int) -> SlicedIssue:
    """The parent after its approval: what `campagne-renouvellement` does once the operator said yes."""
    result = issue_in_slices(YEAR, [], TODAY, expected=expected, poll_s=0.5)
    publish_summary(result, "Alice")
    return result


@pytest.fixture
def pooled(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_url: str,
    mail_server: LoopbackMailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Settings, dict[str, str]]]:
    """Initialised settings on PostgreSQL, in the environment (the parent reads them there) and as the
    workers' environment; documents in the database (the default), or with `files` in a folder the
    workers share (`tmp_path/store/documents`); slices of 4 subscriptions, or of the size given with the
    kind (`("database", 12)`)."""
    param = getattr(request, "param", "database")
    kind, size = param if isinstance(param, tuple) else (param, 4)
    folder = {"documents_dir": tmp_path / "store" / "documents"} if kind == "files" else {}
    settings = campaign_settings(
        tmp_path, pg_url, mail_server.port, campaign_slice_size=size, document_store=kind, **folder
    )
    env = worker_env(
        settings,
        MAIRIE_CAMPAIGN_SLICE_SIZE=size,
        MAIRIE_DOCUMENT_STORE=kind,
        **{"MAIRIE_DOCUMENTS_DIR": folder["documents_dir"]} if folder else {},
    )
    for key, value in env.items():
        if key.startswith("MAIRIE_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield settings, env
    get_settings.cache_clear()


def _counts(settings: Settings) -> tuple[int, int]:
    """(invoices of the year only numbered, issued)."""
    with unit_of_work(settings) as uow:
        statuses = uow.session.exec(select(Invoice.status).where(Invoice.billing_year == YEAR)).all()
    return sum(1 for s in statuses if s == "numbered"), sum(1 for s in statuses if s == "issued")


class Parent:
    """The parent run in a thread, so that the test can act on the workers meanwhile."""

    def __init__(self, expected: int) -> None:
        self.result: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, args=(expected,), daemon=True)
        self.thread.start()

    def _run(self, expected: int) -> None:
        try:
            self.result["value"] = approved_campaign(expected)
        except BaseException as exc:  # reported by `wait`
            self.result["error"] = exc

    def wait(self, pool: Pool, timeout: float = 240) -> SlicedIssue:
        self.thread.join(timeout)
        if self.thread.is_alive():
            states = {r.name: _states(r) for r in pool.child_runs()}
            raise AssertionError(f"the campaign did not end in {timeout} s: {states}\n{pool.log_tail()}")
        if "error" in self.result:
            raise AssertionError(f"the campaign failed:\n{pool.log_tail()}") from self.result["error"]
        value: SlicedIssue = self.result["value"]
        return value


def _states(run: Any) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [s.name for s in client.read_flow_run_states(run.id)]


def test_a_worker_killed_mid_slice_is_retried_and_a_second_campaign_issues_nothing(
    pooled: tuple[Settings, dict[str, str]], mail_server: LoopbackMailServer, tmp_path: Path
) -> None:
    settings, env = pooled
    seed_live(settings, 12, year=YEAR - 1)  # 3 slices of 4 subscriptions, 24 invoices
    with campaign_pool(env, tmp_path / "workers.log", workers=2) as pool:
        parent = Parent(expected=24)
        deadline = time.monotonic() + 120
        killed: list[int] = []
        while not killed:  # the first slice numbered, its documents not all rendered yet: kill its process
            assert time.monotonic() < deadline, f"no slice started:\n{pool.log_tail()}"
            numbered, issued = _counts(settings)
            victims = pool.flow_run_processes() if numbered else []
            if victims and issued < 24:
                for pid in [victims[0], *descendants(victims[0])]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                at_kill = (numbered, issued)
            time.sleep(0.05)
        result = parent.wait(pool)

        assert at_kill[0] > 0  # killed between numbering and rendering: invoices left numbered
        assert [s.failed for s in result.slices] == [False, False, False]
        history = {r.name: _states(r) for r in pool.child_runs()}
        assert sum(s.reruns for s in result.slices) == 1, (killed, history)  # the crashed slice, a second attempt
        (crashed,) = [r for r in pool.child_runs() if "Crashed" in history[r.name]]
        assert crashed.state.is_crashed(), history  # the dead run stays as it died (Prefect's late report refused)
        (second,) = [s for s in result.slices if s.reruns]
        assert second.attempt == 2 and second.state == "Completed"
        firsts = {slice_run_name(YEAR, s.slice.first_id, s.slice.last_id) for s in result.slices}
        runs = {r.name: r for r in pool.child_runs()}
        assert sorted(runs) == sorted([*firsts, f"{crashed.name}-essai-2"]), history  # one run per attempt
        retried = runs[f"{crashed.name}-essai-2"]
        assert retried.state.is_completed() and retried.id == second.run_id, history
        assert len(result.issued) == 24 and result.existing == [] and result.unfinished == 0
        arrived = check_campaign(settings, mail_server, 12)  # no duplicate, no gap, every invoice stored, sent
        assert set(arrived.values()) == {1}  # every email once

        # The same campaign again: each slice's latest child run back (their keys), no new run, nothing
        # issued, nothing sent.
        runs_before = sorted(str(r.id) for r in pool.child_runs())
        latest = sorted(str(s.run_id) for s in result.slices)
        mails_before = len(mail_server.messages())
        again = Parent(expected=0).wait(pool)
        assert sorted(str(r.id) for r in pool.child_runs()) == runs_before
        assert sorted(str(s.run_id) for s in again.slices) == latest
        assert [s.reruns for s in again.slices] == [0, 0, 0]
        assert again.issued == [] and len(again.existing) == 24
        assert len(mail_server.messages()) == mails_before
        check_campaign(settings, mail_server, 12)


@pytest.mark.parametrize("pooled", ["files"], indirect=True)  # a shared folder that is not there
def test_a_slice_that_cannot_store_its_documents_fails_cleanly_and_is_retried(
    pooled: tuple[Settings, dict[str, str]], mail_server: LoopbackMailServer, tmp_path: Path
) -> None:
    settings, env = pooled
    seed_live(settings, 3, year=YEAR - 1)  # one slice, 6 invoices
    store = tmp_path / "store"
    store.write_text("not a folder")  # the store is unreachable: every write of a document fails
    with campaign_pool(env, tmp_path / "workers.log", workers=1) as pool:
        parent = Parent(expected=6)
        deadline = time.monotonic() + 120
        while True:  # the first attempt fails; Prefect schedules its retry (AwaitingRetry, 10 s later)
            assert time.monotonic() < deadline, f"no retry:\n{pool.log_tail()}"
            runs = pool.child_runs()
            if runs and "AwaitingRetry" in _states(runs[0]):
                break
            time.sleep(0.2)
        # cleanly: every invoice numbered (no gap later), none issued, no document, no email queued
        with unit_of_work(settings) as uow:
            invoices = uow.session.exec(select(Invoice).where(Invoice.billing_year == YEAR)).all()
            queued = uow.session.exec(select(OutboxMessage.id)).all()
            assert {i.status for i in invoices} == {"numbered"} and len(invoices) == 6
            assert all(i.document_sha256 is None and i.emailed_message_id is None for i in invoices)
        assert queued == []
        store.unlink()  # the store is back before the retry
        result = parent.wait(pool)
        assert [s.failed for s in result.slices] == [False]
        assert result.slices[0].reruns == 0  # retried by Prefect itself (the flow's retries), not by the parent
        (child,) = pool.child_runs()
        states = _states(child)
        assert child.state.is_completed() and "AwaitingRetry" in states, states
        assert sum(1 for s in states if s in ("Running", "Retrying")) == 2, states  # failed once, then done

    assert len(result.issued) == 6
    arrived = check_campaign(settings, mail_server, 3)
    assert set(arrived.values()) == {1}


def _heartbeats(run_ids: list[Any]) -> dict[str, datetime]:
    """The last heartbeat the server received of each of these flow runs that sent one (their events)."""
    from prefect.client.orchestration import get_client

    resource_ids = [f"prefect.flow-run.{run_id}" for run_id in run_ids]
    body = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]}, "resource": {"id": resource_ids}}}
    with get_client(sync_client=True) as client:
        response = client._client.post("/events/filter", json={**body, "limit": 50})
    response.raise_for_status()
    last: dict[str, datetime] = {}
    for event in response.json()["events"]:
        run_id = event["resource"]["prefect.resource.id"].rsplit(".", 1)[1]
        occurred = datetime.fromisoformat(event["occurred"])
        last[run_id] = max(occurred, last.get(run_id, occurred))
    return last


def _worker_of(pool: Pool, run: Any) -> subprocess.Popen[bytes] | None:
    """The worker whose process tree holds `run`'s process (the pid the worker gave the server)."""
    if not run.infrastructure_pid:
        return None
    pid = int(str(run.infrastructure_pid).rsplit(":", 1)[-1])
    return next((w for w in pool.workers if pid in descendants(w.pid)), None)


def _send_after_the_lease(settings: Settings) -> None:
    """What the scheduled `envoi-courriels` does later: send what is due once the lost machine's claims and
    the backoff of the refused deliveries have lapsed (the clock two hours ahead)."""
    import asyncio

    from mairie.services.mail import sender_for
    from tests.faults.campaign_worker import send_due

    asyncio.run(send_due(settings, sender_for(settings), timedelta(hours=2)))


@pytest.mark.parametrize("pooled", [("database", 12)], indirect=True)  # slices long enough to be caught
@pytest.mark.parametrize("when", ["running", "claimed"])
def test_a_machine_lost_mid_slice_is_marked_crashed_by_the_automation_and_its_slice_retried(
    pooled: tuple[Settings, dict[str, str]],
    mail_server: LoopbackMailServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    """A worker killed with its child run (the machine gone): no process is left to say Crashed. The
    automation `mairie pool` creates does, after `campaign_lost_after_s` of silence (40 s here, the smallest
    allowed; 90 s deployed), and the parent starts the slice's next attempt on the other worker.

    - running: the run has numbered invoices and the server has its first heartbeat; none follows;
    - claimed: the worker took the run (Pending) and dies before it starts; it never runs.

    While the machine is lost the mail server answers 451 (try again later): what SMTP cannot tell apart —
    a message accepted just before the death, then sent again — is the outbox's documented window
    (test_crash.py), not what this test is about."""
    from notifications.mailserver import FaultInjection

    settings, env = pooled
    slices = 2 if when == "running" else 1
    seed_live(settings, 12 * slices, year=YEAR - 1)  # slices of 12 subscriptions, 24 invoices each
    expected = 24 * slices
    monkeypatch.setattr(mail_server.handler, "faults", FaultInjection(mode="451", fraction=1.0))  # undone after
    with campaign_pool(env, tmp_path / "workers.log", workers=2, lost_after_s=40) as pool:
        parent = Parent(expected=expected)
        deadline = time.monotonic() + 120
        lost = None
        while lost is None:
            assert time.monotonic() < deadline, f"no slice caught {when}:\n{pool.log_tail()}"
            runs = pool.child_runs()
            if when == "running":
                running = [r for r in runs if r.state is not None and r.state.is_running()]
                numbered, _ = _counts(settings)
                beating = _heartbeats([r.id for r in running]) if numbered and running else {}
                victim = next((r for r in running if str(r.id) in beating), None)
                lost = _worker_of(pool, victim) if victim is not None else None
            else:
                pending = [r for r in runs if r.state is not None and r.state.is_pending()]
                candidate = next((w for w in pool.workers if descendants(w.pid)), None) if pending else None
                if candidate is not None:  # frozen first: nothing can start the run while we look again
                    signal_tree(candidate, signal.SIGSTOP)
                    victim = next((r for r in pool.child_runs() if r.id == pending[0].id), None)
                    if victim is not None and victim.state is not None and victim.state.is_pending():
                        lost = candidate
                    else:
                        signal_tree(candidate, signal.SIGCONT)
            time.sleep(0.05)
        assert victim is not None
        signal_tree(lost, signal.SIGKILL)  # the worker and everything below it, at once
        lost.wait(10)
        mail_server.handler.faults = FaultInjection()  # the mail relay answers again
        result = parent.wait(pool)

        assert [s.failed for s in result.slices] == [False] * slices
        history = {r.name: _states(r) for r in pool.child_runs()}
        assert sum(s.reruns for s in result.slices) == 1, history
        (crashed,) = [r for r in pool.child_runs() if r.state is not None and r.state.is_crashed()]
        assert crashed.id == victim.id, history
        # Crashed by the automation (its message), not by a worker or a runner: none was left
        assert "battement de cœur depuis 40 s" in (crashed.state.message or ""), crashed.state
        if when == "running":  # not before the silence
            last_heartbeat = _heartbeats([crashed.id])[str(crashed.id)]
            assert crashed.state.timestamp - last_heartbeat >= timedelta(seconds=40)
        else:
            assert "Running" not in history[crashed.name], history  # it never started
        (second,) = [s for s in result.slices if s.reruns]
        runs = {r.name: r for r in pool.child_runs()}
        retried = runs[f"{crashed.name}-essai-2"]
        assert second.attempt == 2 and retried.state.is_completed() and retried.id == second.run_id, history
        assert len(result.issued) == expected and result.existing == [] and result.unfinished == 0

    _send_after_the_lease(settings)
    arrived = check_campaign(settings, mail_server, 12 * slices)  # no duplicate, no gap, all stored and sent
    assert set(arrived.values()) == {1}  # every email once
