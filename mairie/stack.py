"""`mairie up`: the whole stack on one machine, on the embedded defaults.

- a local Prefect server with its UI (SQLite under the data directory), as a child process;
- the loopback SMTP server keeping every message in the mail folder (a thread);
- the approval web app (a child process);
- the quote worker (a child process): a Prefect task worker serving `emission-devis`, so that an eligible
  request submitted by the CLI or the API gets its quotes in about a second;
- every deployment of `flows.deployments` served from this process (schedules in Europe/Paris).

A lock file in the data directory makes a second `mairie up` say that one is running instead of failing
on a taken port. Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen
from uuid import UUID

from mairie.settings import CHORUS_SANDBOX_CLIENT, Settings, chorus_sandbox_account

if TYPE_CHECKING:
    from prefect.automations import Automation
    from prefect.deployments.runner import RunnerDeployment

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class StackUrls:
    prefect_ui: str
    prefect_api: str
    approval: str
    smtp: str
    mail_folder: str
    data_dir: str


def urls(settings: Settings, prefect_host: str, prefect_port: int) -> StackUrls:
    base = f"http://{prefect_host}:{prefect_port}"
    return StackUrls(
        prefect_ui=base,
        prefect_api=f"{base}/api",
        approval=settings.public_url,
        smtp=f"{settings.smtp_host}:{settings.smtp_port}",
        mail_folder=str(settings.mail_path),
        data_dir=str(settings.data_dir),
    )


@contextlib.contextmanager
def single_instance(settings: Settings) -> Iterator[Path]:
    """Hold the data directory's lock for the stack's lifetime; a second `mairie up` is told who runs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "up.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        info = handle.read().strip()
        handle.close()
        detail = ""
        with contextlib.suppress(ValueError):
            data = json.loads(info)
            detail = f" (pid {data['pid']}, interface Prefect : {data['prefect_ui']})"
        raise StackError(
            f"« mairie up » tourne déjà pour {settings.data_dir}{detail}. Arrêtez-le (Ctrl-C) d'abord."
        ) from None
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def write_lock_info(path: Path, stack: StackUrls, task_storage: Path, chorus_sandbox: str | None = None) -> None:
    with path.open("r+") as handle:
        handle.truncate(0)
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "prefect_ui": stack.prefect_ui,
                    "approval": stack.approval,
                    "task_storage": str(task_storage),
                    "chorus_sandbox": chorus_sandbox,
                }
            )
        )


def check_exposure(host: str, auth: str | None) -> None:
    """The Prefect API and UI never listen beyond loopback without authentication."""
    if host not in LOOPBACK and not auth:
        raise StackError(
            f"Prefect écouterait sur {host} sans authentification : définissez MAIRIE_PREFECT_AUTH_STRING "
            "(utilisateur:mot-de-passe) ou restez sur 127.0.0.1."
        )


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} s'est arrêté au démarrage (code {process.returncode}) ; voir son journal.")
        if check():
            return
        time.sleep(0.3)
    raise StackError(f"{what} ne répond pas après {timeout:.0f} s.")


def http_ok(url: str, auth: str | None = None) -> bool:
    request = Request(url)
    if auth:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except (URLError, OSError, ValueError):
        return False


def port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prefect_env(settings: Settings, api_url: str, auth: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PREFECT_HOME"] = str(settings.data_dir / "prefect")
    env["PREFECT_API_URL"] = api_url
    env["PREFECT_UI_URL"] = api_url.removesuffix("/api")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The served deployments look for new runs every 2 s (default 10 s): a request's quotes leave in seconds.
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")
    # Background task runs keep their parameters there: whoever submits (CLI, web app) and the quote worker
    # must read and write the same folder.
    env.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(task_storage(settings)))
    if auth:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        env["PREFECT_API_AUTH_STRING"] = auth
    return env


def task_storage(settings: Settings) -> Path:
    """Where the stack's Prefect keeps background task parameters and results."""
    return settings.data_dir / "prefect" / "storage"


def start_prefect_server(
    settings: Settings, host: str, port: int, auth: str | None, log: Path
) -> subprocess.Popen[bytes]:
    prefect = Path(sys.executable).with_name("prefect")
    env = prefect_env(settings, f"http://{host}:{port}/api", auth)
    handle = log.open("ab")
    return subprocess.Popen(
        [str(prefect), "server", "start", "--host", host, "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_web(settings: Settings, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    parts = urlsplit(settings.public_url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 8090
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", "from mairie.cli import app; app()", "web", "--host", host, "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_quote_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", "from mairie.cli import app; app()", "quote-worker"],
        env=quote_worker_env(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def quote_worker_env(env: dict[str, str]) -> dict[str, str]:
    """The task worker's own log lines carry a task run but no flow run: Prefect would warn about each;
    the task's log lines still reach the UI."""
    return {**env, "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}


def serve_quote_tasks(settings: Settings, limit: int = 4, status_port: int | None = None) -> None:
    """The quote worker: warm up (imports, fonts, stylesheets, database) so that the first request is as
    quick as the others, then serve the quote task until stopped. Needs a Prefect server (PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.task_worker import serve

    if not PREFECT_API_URL.value():
        raise StackError(
            "le serveur de devis a besoin d'un serveur Prefect : définissez PREFECT_API_URL "
            "(« mairie up » le fait pour sa pile)."
        )
    from documents.api import render_devis
    from documents.data import Issuer
    from documents.samples import sample_devis
    from flows.intake import QUOTE_TASKS
    from models.db import reachable

    with reachable(settings.sqlalchemy_url):
        pass
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    render_devis(sample_devis(syndicat, cdg))
    import gc

    gc.freeze()  # the warm imports and caches stay: keep them out of every full collection
    serve(*QUOTE_TASKS, limit=limit, status_server_port=status_port)


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def deployments(settings: Settings) -> list[RunnerDeployment]:
    """Every deployment of the catalogue, with its schedule in Europe/Paris, ready for `serve`. The
    campaign's child runs (`renouvellement-lot`) are served here too, one at a time: on one machine each
    renders on every core already (its render pool), and the production pool is for several machines."""
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron, Interval

    from flows.deployments import TIMEZONE, catalogue

    result = []
    for spec in catalogue(
        settings.renewal_month,
        settings.renewal_day,
        settings.chorus.sync_interval_minutes * 60,
        settings.campaign_work_pool,
        settings.campaign_concurrency,
    ):
        schedules = []
        if spec.cron:
            schedules.append(Cron(spec.cron, timezone=TIMEZONE))
        if spec.interval_s:
            schedules.append(Interval(spec.interval_s, timezone=TIMEZONE))
        deployment = spec.load().to_deployment(
            name=spec.name,
            schedules=schedules or None,
            description=spec.description,
            tags=["mairie-connectee"],
            concurrency_limit=1 if spec.concurrency_limit else None,
        )
        assert isinstance(deployment, RunnerDeployment)  # called from synchronous code: no coroutine
        result.append(deployment)
    return result


ALERT_AUTOMATION = "courriel-operateurs-run-en-echec"
ALERT_BLOCK = "mairie-alertes-operateurs"
# The webhook's body, rendered by Prefect's server for the run that stopped (its Jinja environment has
# `tojson`); read by `mairie.web.alerts`.
ALERT_PAYLOAD = (
    '{"flow_run_id": "{{ flow_run.id }}", "flow_run_name": {{ flow_run.name | tojson }}, '
    '"deployment": {{ deployment.name | tojson }}, "state": {{ flow_run.state.name | tojson }}, '
    '"message": {{ flow_run.state.message | tojson }}}'
)


def alerts_url(settings: Settings) -> str:
    """Where Prefect's server reaches the web app's alert endpoint (`MAIRIE_ALERTS_URL`, by default the
    approval app's own address)."""
    return settings.alerts_url or f"{settings.public_url.rstrip('/')}/alertes/run-en-echec"


def ensure_failure_alerts(settings: Settings) -> str:
    """Create (or update) the automation that emails the operators when a run of any deployment fails or
    crashes: a Prefect webhook block calling the web app's `POST /alertes/run-en-echec` with the alert token,
    which queues the email in the outbox (`mairie.services.alerts`). Idempotent; returns the automation's id.

    Why a webhook and not Prefect's own email action: Prefect 3 has no SMTP notification block without the
    extra `prefect-email` collection (its core email block is SendGrid's API); the outbox sends with the
    project's SMTP settings, retries with backoff, and shows what was not delivered."""
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import EventTrigger, Posture

    from mairie.services.alerts import ALERT_HEADER, alert_token

    block = Webhook(
        method="POST",
        url=alerts_url(settings),  # type: ignore[arg-type]  # pydantic turns the str into a SecretStr
        headers={ALERT_HEADER: alert_token(settings), "Content-Type": "application/json"},  # type: ignore[arg-type]
    )
    block_id = block.save(ALERT_BLOCK, overwrite=True)
    assert isinstance(block_id, UUID)  # called from synchronous code: no coroutine
    automation = Automation(
        name=ALERT_AUTOMATION,
        description="Courriel aux opérateurs quand un run d'un déploiement échoue ou est interrompu (avec son lien)",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "deployment"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[CallWebhook(block_document_id=block_id, payload=ALERT_PAYLOAD)],
    )
    return _create_or_update(automation)


def _create_or_update(automation: Automation) -> str:
    """Create the automation, or update the one of the same name (each start applies the current rule)."""
    from prefect.automations import Automation

    existing = _automation_named(automation.name)
    if existing is not None:
        automation.id = existing
        automation.update()
        return str(existing)
    created = automation.create()
    assert isinstance(created, Automation)  # called from synchronous code: no coroutine
    return str(created.id)


def _automation_named(name: str) -> UUID | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(name)
    return found[0].id if found else None


def ensure_campaign_pool(settings: Settings) -> tuple[str, bool]:
    """Create the campaign's process work pool (MAIRIE_CAMPAIGN_WORK_POOL) if missing, and set its
    concurrency limit (MAIRIE_CAMPAIGN_CONCURRENCY) either way; returns (its name, whether it was created).
    The workers (`prefect worker start --pool … --limit 1`, one per machine) take the child runs of
    `renouvellement-lot` from it (docs/scaling.md)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    name, limit = settings.campaign_work_pool, settings.campaign_concurrency
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template, concurrency_limit=limit)
            )
            return name, True
        if pool.type != "process":
            raise StackError(f"le pool « {name} » existe déjà, de type {pool.type} : il faut un pool « process »")
        client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))
    return name, False


LOST_SLICES_AUTOMATION = "lot-campagne-sans-battement"


def ensure_lost_slice_detection(settings: Settings) -> str:
    """Create (or update) the automation that marks Crashed a `renouvellement-lot` run whose heartbeats
    stopped for `campaign_lost_after_s` (90 s), or that a worker claimed and never started in that time —
    its machine or its worker died with it, so no process is left to report the crash — so that the
    campaign starts the slice's next attempt (Prefect's zombie-run pattern). The workers emit heartbeats
    with PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 (mairie-worker@.service, compose's campaign-worker).
    Idempotent; returns the automation's id."""
    return _create_or_update(lost_slice_automation(settings))


def lost_slice_automation(settings: Settings) -> Automation:
    """The automation `ensure_lost_slice_detection` creates (not yet sent to the server)."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    silence = settings.campaign_lost_after_s
    automation = Automation(
        name=LOST_SLICES_AUTOMATION,
        description=f"Un lot de la campagne resté {silence} s sans démarrer ou sans battement de cœur "
        "(machine perdue) : interrompu, la campagne le relance",
        # After its worker claimed it (Pending, Submitting) the run must start (Running, then a heartbeat at
        # once); once started, a heartbeat every 30 s; the silence ends with either or a final state.
        trigger=EventTrigger(
            after={"prefect.flow-run.Pending", "prefect.flow-run.Submitting", "prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": "renouvellement-lot"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"ni démarrage ni battement de cœur depuis {silence} s : machine ou worker perdu",
            )
        ],
    )
    return automation


def running(settings: Settings) -> dict[str, str] | None:
    """What `mairie up` wrote in its lock file, if a stack holds it now (for the CLI and `mairie demo`)."""
    path = settings.data_dir / "up.lock"
    if not path.exists():
        return None
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            with contextlib.suppress(ValueError):
                return dict(json.loads(handle.read()))
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def prefect_of_running_stack(settings: Settings) -> Iterator[bool]:
    """Point Prefect's client at the running stack when PREFECT_API_URL is not set; yields whether an API
    is configured."""
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        PREFECT_UI_URL,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield True
        return
    info = running(settings)
    if info is None:
        yield False
        return
    updates = {PREFECT_API_URL: f"{info['prefect_ui']}/api", PREFECT_UI_URL: info["prefect_ui"]}
    if info.get("task_storage"):  # the quote worker reads the parameters of the runs we hand it from there
        updates[PREFECT_RESULTS_LOCAL_STORAGE_PATH] = info["task_storage"]
    if settings.prefect_auth_string:
        updates[PREFECT_API_AUTH_STRING] = settings.prefect_auth_string
    with temporary_settings(updates=updates):
        yield True


# The local Chorus Pro sandbox of `mairie up` (development only; a test double, see mairie.chorus_sandbox)
SANDBOX_CLIENT = CHORUS_SANDBOX_CLIENT
SANDBOX_PORT = 8095


def chorus_sandbox_env(settings: Settings, port: int = SANDBOX_PORT) -> dict[str, str]:
    """In development without a Chorus Pro API configured: the settings that point every process of the
    stack at the local sandbox, with a development technical account per issuer (none otherwise)."""
    if settings.environment != "development" or settings.chorus.api_url:
        return {}
    url = f"http://127.0.0.1:{port}"
    env = {
        "MAIRIE_CHORUS__API_URL": url,
        "MAIRIE_CHORUS__OAUTH_URL": f"{url}/api/oauth/token",
        "MAIRIE_CHORUS__CLIENT_ID": SANDBOX_CLIENT[0],
        "MAIRIE_CHORUS__CLIENT_SECRET": SANDBOX_CLIENT[1],
    }
    for key, identity in (("SYNDICAT", settings.syndicat), ("CDG62", settings.cdg62), ("CDG59", settings.cdg59)):
        if not identity.has_chorus_account:
            login, password = chorus_sandbox_account(identity.code)
            env[f"MAIRIE_{key}__CHORUS_LOGIN"], env[f"MAIRIE_{key}__CHORUS_PASSWORD"] = login, password
    return env


def start_chorus_sandbox(settings: Settings, port: int = SANDBOX_PORT) -> Any:
    """The sandbox on 127.0.0.1:`port` in a thread, knowing the settings' client and technical accounts."""
    from mairie.chorus_sandbox import ChorusSandbox, SandboxState

    accounts = {i.chorus_login: i.chorus_password for i in settings.issuers() if i.chorus_login and i.chorus_password}
    state = SandboxState(
        client_id=settings.chorus.client_id or "", client_secret=settings.chorus.client_secret or "", accounts=accounts
    )
    return ChorusSandbox(state, port=port).start()
