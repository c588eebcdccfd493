"""`bench/renewal.py --db postgresql --pool-workers K`: the campaign through Prefect child runs on a work pool.

For k = 1 … K: a fresh PostgreSQL database seeded with N live subscriptions, a loopback SMTP server, and k
`prefect worker start --pool … --type process --limit 1` processes, each in its own data folder and its
own process tree (its own session), sharing nothing but PostgreSQL and the document store (the database
store when the settings have one, `MAIRIE_DOCUMENT_STORE=database`; until then one documents folder, the
only other thing shared, printed). One Prefect server (its own SQLite, a temporary PREFECT_HOME) serves
every round. The parent — the approved campaign, `flows.campaign.issue_in_slices` in a flow of this
process — cuts the subscriptions into slices of MAIRIE_CAMPAIGN_SLICE_SIZE, starts one `renouvellement-lot`
run per slice and waits; the workers render, store, queue and send their slices' emails; the parent then
sends what is left.

Measured per round: wall time from the parent's start to its end (every invoice issued, every email
received by the server), invoices/s, speed-up against k = 1; CPU of each worker's tree (the worker, its
child-run processes and their render processes, reaped: /proc's cutime) per invoice, against the floor (a
bare WeasyPrint + aiosmtplib loop on the first invoices, `--floor-sample`); peak RSS of each kind of
process (worker, child run, render process); the machine's load average before and after.

Each worker stands for one machine: with `--render-processes` unset, a child run renders in its own
process (MAIRIE_RENDER_PROCESSES=0, one core per worker), so that k workers on this k-core machine compare
with k one-core machines; `--render-processes 2` gives each worker a pool of 2 instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
POOL_NAME = "bench-campagne"
COMMUNES_FR = 35_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, found through /proc (a process's children may run in sessions of their
    own, so no process group holds them all)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of a process (its reaped children included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def _role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if "prefect.engine" in cmd:
        return "child run"
    if "multiprocessing" in cmd or "spawn_main" in cmd:
        return "render process"
    return "other"


class PeakSampler:
    """Peak RSS (VmHWM) per kind of process below each worker, sampled every `period` s."""

    def __init__(self, workers: list[subprocess.Popen[bytes]], period: float = 0.5) -> None:
        self.workers = workers
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _hwm(self, pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _run(self, period: float) -> None:
        while not self._stop.wait(period):
            for worker in self.workers:
                self._note("worker", self._hwm(worker.pid))
                for pid in descendants(worker.pid):
                    self._note(_role(pid), self._hwm(pid))

    def _note(self, role: str, mb: float) -> None:
        self.peaks[role] = max(self.peaks.get(role, 0.0), mb)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def _prefect_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MAIRIE_"))},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    with log.open("ab") as handle:
        server = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return server, api
        if server.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit(f"the Prefect server did not start: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _store_env(shared: Path) -> tuple[dict[str, str], str]:
    """How the workers share the documents: the database store when it exists, else one folder."""
    from mairie.settings import Settings

    if "document_store" in Settings.model_fields:
        return {"MAIRIE_DOCUMENT_STORE": "database"}, "the database (MAIRIE_DOCUMENT_STORE=database)"
    return {"MAIRIE_DOCUMENTS_DIR": str(shared)}, f"one documents folder ({shared}): no database store yet"


def run_round(k: int, n: int, api: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    from bench._seed import seed_live
    from bench.renewal import make_database, subscription_ids
    from mairie.services.setup import initialise
    from mairie.settings import Settings, get_settings
    from notifications.mailserver import LoopbackMailServer

    folder = base / f"k{k}"
    folder.mkdir()
    db = make_database("postgresql", folder)
    mail = folder / "mail"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with LoopbackMailServer(mail) as server:
            store, store_note = _store_env(folder / "documents")
            common = {
                "MAIRIE_DATABASE_URL": db.url,
                "MAIRIE_SMTP_PORT": str(server.port),
                "MAIRIE_CAMPAIGN_SLICE_SIZE": str(args.slice_size),
                "MAIRIE_CAMPAIGN_CONCURRENCY": str(k),
                "MAIRIE_RENDER_PROCESSES": str(args.render_processes if args.render_processes is not None else 0),
                **store,
            }
            values: dict[str, Any] = {key.removeprefix("MAIRIE_").lower(): v for key, v in common.items()}
            settings = Settings(_env_file=None, data_dir=folder / "parent", **values)
            t0 = time.perf_counter()
            initialise(settings)
            seed_live(settings, n, year=args.year)
            print(f"  k = {k}: seeded {n} subscriptions in {time.perf_counter() - t0:.1f} s; store: {store_note}")
            ids = subscription_ids(settings)

            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: api}):
                from flows.campaign import SLICE_FLOW, renewal_slice
                from mairie.stack import ensure_campaign_pool

                pool_settings = Settings(_env_file=None, campaign_work_pool=POOL_NAME, campaign_concurrency=k)
                ensure_campaign_pool(pool_settings)
                deployment = renewal_slice.to_deployment(
                    name=SLICE_FLOW, job_variables={"working_dir": str(ROOT)}, concurrency_limit=k
                )
                deployment_id = deployment.apply(work_pool_name=POOL_NAME)  # type: ignore[union-attr]
                assert isinstance(deployment_id, UUID)  # called from sync code
                base_env = {
                    **{key: v for key, v in os.environ.items() if not key.startswith(("MAIRIE_", "PREFECT_"))},
                    **common,
                    "PREFECT_API_URL": api,
                    "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                }
                prefect = str(Path(sys.executable).with_name("prefect"))
                for index in range(k):
                    home = folder / f"worker-{index}"
                    (home / "prefect").mkdir(parents=True)
                    env = {**base_env, "MAIRIE_DATA_DIR": str(home / "data"), "PREFECT_HOME": str(home / "prefect")}
                    with (folder / f"worker-{index}.log").open("ab") as handle:
                        workers.append(
                            subprocess.Popen(
                                [prefect, "worker", "start", "--pool", POOL_NAME, "--type", "process",
                                 "--limit", "1", "--name", f"bench-{k}-{index}"],
                                cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                            )
                        )  # fmt: skip
                _wait_ready(deployment_id, workers, folder)
                sampler = PeakSampler(workers)
                cpu0 = [_cpu_s(w.pid) for w in workers]
                parent_env = {"MAIRIE_DATA_DIR": str(folder / "parent"), **common}
                saved = {key: os.environ.get(key) for key in parent_env}
                os.environ.update(parent_env)
                get_settings.cache_clear()
                c0, w0 = time.process_time(), time.perf_counter()
                try:
                    result = _parent(args.year + 1, len(ids))
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value
                    get_settings.cache_clear()
                wall = time.perf_counter() - w0
                parent_cpu = time.process_time() - c0
                time.sleep(1.5)  # the workers reap their last child run
                worker_cpu = [_cpu_s(w.pid) - c for w, c in zip(workers, cpu0, strict=True)]
                peaks = sampler.stop()
                with contextlib.suppress(Exception):
                    from prefect.client.orchestration import get_client

                    with get_client(sync_client=True) as client:
                        client.delete_deployment(deployment_id)
            received = len(list(mail.glob("*.eml")))
            floor = _floor(settings, ids, mail, base_env, folder, args) if args.floor_sample else None
            return {
                "k": k,
                "wall_s": wall,
                "invoices": len(result.issued),
                "slices": len(result.slices),
                "failed": len(result.failed),
                "reruns": sum(s.reruns for s in result.slices),
                "through": result.through,
                "received": received,
                "parent_cpu_s": parent_cpu,
                "worker_cpu_s": worker_cpu,
                "peaks_mb": peaks,
                "floor": floor,
            }
    finally:
        for worker in workers:
            _stop(worker)
        if db.drop is not None:
            db.drop()


def _wait_ready(deployment_id: Any, workers: list[subprocess.Popen[bytes]], folder: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus

    deadline = time.monotonic() + 120
    with get_client(sync_client=True) as client:
        while client.read_deployment(deployment_id).status != DeploymentStatus.READY:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                logs = "".join(p.read_text()[-1500:] for p in folder.glob("worker-*.log"))
                raise SystemExit(f"no worker took the pool: {logs}")
            time.sleep(0.5)


def _parent(year: int, subscriptions: int) -> Any:
    from datetime import date

    from prefect import flow

    from flows.campaign import issue_in_slices, publish_summary
    from mairie.services.mail import dispatch
    from mairie.settings import get_settings

    @flow(name="campagne-renouvellement-banc")
    def approved() -> Any:
        result = issue_in_slices(year, [], date(year, 1, 15), expected=2 * subscriptions, poll_s=1.0)
        publish_summary(result, "banc d'essai")
        while dispatch(get_settings()).sent:  # whatever the slices left due
            pass
        return result

    return approved()


def _floor(
    settings: Any, ids: list[int], mail: Path, env: dict[str, str], folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The bare WeasyPrint + aiosmtplib loop on the first subscriptions' invoices (bench/renewal.py)."""
    from bench.renewal import Child

    sample = ids[: args.floor_sample]
    emls = sorted(mail.glob("*.eml"))[: 2 * len(sample)]
    floor = Child("floor", {**env, "MAIRIE_DATA_DIR": str(folder / "parent")}, [])
    floor.ask({"ids": sample, "emls": [str(p) for p in emls]})
    return floor.end()


def main(n: int, args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    server, api = _prefect_server(base / "prefect-server", base / "prefect-server.log")
    print(f"  Prefect server {api} (its own SQLite); work pool {POOL_NAME}; slices of {args.slice_size}", flush=True)
    rounds = []
    try:
        for k in range(1, args.pool_workers + 1):
            result = run_round(k, n, api, args, base)
            rounds.append(result)
            show_round(result, rounds[0])
    finally:
        _stop(server)
        if not args.keep:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
    project(rounds)


def show_round(r: dict[str, Any], first: dict[str, Any]) -> None:
    docs = max(r["invoices"], 1)
    cpu = sum(r["worker_cpu_s"]) + r["parent_cpu_s"]
    peaks = ", ".join(f"{role} {mb:.0f} MB" for role, mb in sorted(r["peaks_mb"].items()) if role != "?")
    line = (
        f"  {r['k']} worker(s): {r['invoices']} invoices in {r['slices']} child runs ({r['failed']} failed, "
        f"{r['reruns']} second attempts, through {r['through']}), {r['received']} emails received: "
        f"{r['wall_s']:.1f} s → {r['invoices'] / r['wall_s']:.1f} invoices/s"
    )
    if r is not first:
        line += f", speed-up × {first['wall_s'] / r['wall_s']:.2f} against 1 worker"
    print(line)
    print(
        f"    CPU {cpu:.1f} s (workers' trees {' + '.join(f'{c:.1f}' for c in r['worker_cpu_s'])}, parent "
        f"{r['parent_cpu_s']:.1f}) = {cpu / docs * 1000:.0f} ms per invoice; peak RSS per process: {peaks}"
    )
    f = r["floor"]
    if f:
        floor_cpu = f["cpu"]["weasyprint"] + f["cpu"]["smtp"]
        print(
            f"    floor (bare WeasyPrint + aiosmtplib, {f['documents']} invoices, {f['emails']} emails): "
            f"{floor_cpu / max(f['documents'], 1) * 1000:.0f} ms CPU per invoice + email → campaign / floor "
            f"CPU {cpu / docs / (floor_cpu / max(f['documents'], 1)):.2f}"
        )
    print(f"    load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)


def project(rounds: list[dict[str, Any]]) -> None:
    """Scale the measured figures to every French commune (two invoices and two emails each): the CPU per
    invoice of the last round, spread over C cores with the efficiency measured from 1 to K workers
    (speed-up / K). From CPU, not wall time: on a shared machine a worker gets less than its core."""
    if not rounds:
        return
    invoices = 2 * COMMUNES_FR
    last = rounds[-1]
    cpu_per_invoice = (sum(last["worker_cpu_s"]) + last["parent_cpu_s"]) / max(last["invoices"], 1)
    speedup = rounds[0]["wall_s"] / last["wall_s"]
    efficiency = speedup / last["k"] if len(rounds) > 1 else 1.0
    print(
        f"  projection to {COMMUNES_FR} communes ({invoices} invoices and emails): {cpu_per_invoice * 1000:.0f} ms "
        f"CPU per invoice → {invoices * cpu_per_invoice / 3600:.1f} CPU-hours; efficiency {efficiency:.0%} "
        f"(speed-up × {speedup:.2f} on {last['k']} workers)"
    )
    for machines, cores in ((1, 2), (4, 2), (8, 2), (4, 8)):
        total = machines * cores
        minutes = invoices * cpu_per_invoice / (total * efficiency) / 60
        print(f"    {machines} machine(s) × {cores} cores ({total} render processes): {minutes:.0f} min")
