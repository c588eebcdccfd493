"""A real Prefect work pool for the campaign's child runs, with real worker processes (not a test module).

`campaign_pool(env, workers=K)` registers `renouvellement-lot` on a fresh process work pool of the
session's Prefect test server (`prefect_harness`: a server on a loopback port that other processes reach),
starts K `prefect worker start --pool … --type process --limit 1` processes with the given environment
(their MAIRIE_* settings are what the child runs read; heartbeats every 30 s, as deployed), creates the
lost-slice automation as `mairie pool` does (`lost_after_s` of silence), waits until the deployment is
ready (a worker has polled for it), and on exit stops the workers and deletes the deployment and the pool,
so that the next test's campaign, finding no ready deployment, runs its slices in its own process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._pool import descendants
from flows.campaign import SLICE_DEPLOYMENT, SLICE_FLOW, renewal_slice
from mairie.settings import Settings
from mairie.stack import ensure_campaign_pool, ensure_lost_slice_detection

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Pool:
    name: str
    deployment_id: Any
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log: Path | None = None

    def flow_run_processes(self) -> list[int]:
        """The processes running child runs now (every process below a worker)."""
        return [pid for worker in self.workers for pid in descendants(worker.pid)]

    def child_runs(self) -> list[Any]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        with get_client(sync_client=True) as client:
            return list(
                client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[self.deployment_id]))
                )
            )

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log and self.log.exists() else ""


def _ready(deployment_id: Any) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus

    with get_client(sync_client=True) as client:
        return client.read_deployment(deployment_id).status == DeploymentStatus.READY


def signal_tree(worker: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """`sig` to a worker and every process below it (its child runs), at once."""
    for pid in [worker.pid, *descendants(worker.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    signal_tree(worker, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.wait(10)


@contextlib.contextmanager
def campaign_pool(env: dict[str, str], log: Path, workers: int = 1, lost_after_s: int = 90) -> Iterator[Pool]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    name = f"test-campagne-{uuid.uuid4().hex[:8]}"
    # the pool as `mairie pool` creates it (a process pool, its concurrency limit)
    pool_settings = Settings(  # type: ignore[call-arg]
        _env_file=None, campaign_work_pool=name, campaign_concurrency=workers, campaign_lost_after_s=lost_after_s
    )
    assert ensure_campaign_pool(pool_settings) == (name, True)
    assert ensure_campaign_pool(pool_settings) == (name, False)  # again: updated, not duplicated
    # `mairie pool`'s automation, once
    assert ensure_lost_slice_detection(pool_settings) == ensure_lost_slice_detection(pool_settings)
    # the child runs start in this checkout, as prefect.yaml's pull step does in the installed one
    deployment = renewal_slice.to_deployment(name=SLICE_FLOW, job_variables={"working_dir": str(ROOT)})
    deployment_id = deployment.apply(work_pool_name=name)  # type: ignore[union-attr]
    pool = Pool(name, deployment_id, log=log)
    worker_env = {
        **env,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",  # as mairie-worker@.service and compose's campaign-worker
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    try:
        with log.open("ab") as handle:
            for index in range(workers):
                home = log.parent / f"prefect-worker-{index}"
                home.mkdir(exist_ok=True)
                pool.workers.append(
                    subprocess.Popen(
                        [prefect, "worker", "start", "--pool", name, "--type", "process", "--limit", "1",
                         "--name", f"{name}-{index}"],
                        cwd=ROOT, env={**worker_env, "PREFECT_HOME": str(home)}, stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )  # fmt: skip
        deadline = time.monotonic() + 90
        while not _ready(deployment_id):
            if time.monotonic() > deadline or any(w.poll() is not None for w in pool.workers):
                raise AssertionError(f"{SLICE_DEPLOYMENT} never ready on {name}:\n{pool.log_tail()}")
            time.sleep(0.5)
        yield pool
    finally:
        for worker in pool.workers:
            _stop(worker)
        with get_client(sync_client=True) as client:
            with contextlib.suppress(Exception):
                client.delete_deployment(deployment_id)
            with contextlib.suppress(Exception):
                client.delete_work_pool(name)
