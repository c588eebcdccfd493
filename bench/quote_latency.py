"""Latency from a request's submission to both quote PDFs in the SMTP server's folder (run by hand; prints,
asserts nothing). Target (issue #10): median < 2 s.

    # against a running stack (`mairie up` with the same MAIRIE_* environment, or PREFECT_API_URL set):
    MAIRIE_DATA_DIR=… .venv/bin/python bench/quote_latency.py --n 20
    # no stack: everything in this process (Prefect's ephemeral API, a loopback SMTP server, a fresh SQLite)
    .venv/bin/python bench/quote_latency.py --n 20

Each submission is a real small commune of 59/62 (a band fee, so no operator step), a realistic basket,
submitted with `mairie.submission.submit` (register now, then the quotes: with a stack, a run of
the background task `emission-devis` that the stack's quote worker picks up; without one, in this
process). The clock stops when the email carrying both quotes (`X-Mairie-Dedup-Key:
quotes:<reference>:v1`, with both DEV PDFs attached) is a file in the mail folder. The first submission
warms up and is not counted. Against a stack, each line also says when the task run started (from its
timestamps on the Prefect server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def quotes_mail(folder: Path, reference: str, seen: set[Path]) -> bool:
    """True once the quotes email of `reference` (both DEV PDFs attached) is in `folder`."""
    from notifications.mailserver import read_mail

    for path in folder.glob("*.eml"):
        if path in seen:
            continue
        seen.add(path)
        mail = read_mail(path)
        if mail.dedup_key == f"quotes:{reference}:v1" and sum("-DEV-" in a for a in mail.attachments) == 2:
            return True
    return False


def breakdown(run_id: str, kind: str, submitted_at: float) -> str:
    """Where the time went, from the run's timestamps on the Prefect server: waiting to be picked up
    (submission → the task worker or the run's new process starts it), the run itself, and the rest."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_task_run(UUID(run_id)) if kind == "task-run" else client.read_flow_run(UUID(run_id))
    if run.start_time is None:
        return ""
    start = run.start_time.timestamp()
    ran = f", ran {run.end_time.timestamp() - start:.2f} s" if run.end_time is not None else ""
    return f" — {kind} started after {start - submitted_at:.2f} s{ran}"


def forms(n: int) -> list[Any]:
    """`n` requests of distinct small communes (band fee: no operator step), realistic baskets."""
    import random

    from bench._seed import realistic_basket, reference_communes, siret_of
    from mairie.schemas import RequestedItem, RequestForm

    rng = random.Random(62)
    small = [c for c in reference_communes() if int(c["population_totale"]) < 3500]
    rng.shuffle(small)
    result = []
    for commune in small[:n]:
        basket = realistic_basket(rng)
        result.append(
            RequestForm(
                collectivity=commune["insee_code"],
                siret=siret_of(commune["siren"]),
                postcode=commune["postcodes"].split()[0],
                items=[RequestedItem(code=b.code, quantity=b.quantity) for b in basket],
                signatory_name="Jeanne Dupont",
                signatory_email=f"maire{commune['insee_code']}@exemple.fr",
            )
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="timed submissions (after one warm-up)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for one quotes email")
    args = parser.parse_args()

    from mairie import stack
    from mairie.settings import Settings

    settings = Settings()
    api = os.environ.get("PREFECT_API_URL") or (stack.running(settings) or {}).get("prefect_ui")
    server = None
    if api:
        mode = f"stack: Prefect API {api}, task emission-devis (quote worker), mail folder {settings.mail_path}"
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-quote-latency-"))
        os.environ.setdefault("PREFECT_HOME", str(folder / "prefect"))  # before Prefect is imported
        from notifications.mailserver import LoopbackMailServer

        server = LoopbackMailServer(folder / "mail").start()
        os.environ.update(MAIRIE_DATA_DIR=str(folder / "data"), MAIRIE_SMTP_PORT=str(server.port))
        os.environ.pop("MAIRIE_DATABASE_URL", None)
        os.environ.pop("MAIRIE_MAIL_DIR", None)
        settings = Settings(_env_file=None, data_dir=folder / "data", smtp_port=server.port, mail_dir=folder / "mail")
        from mairie.services.setup import initialise

        initialise(settings)
        mode = (
            "NO STACK RUNNING — in process: the processing flow runs in this process (Prefect's ephemeral "
            f"API), SQLite and a loopback SMTP server in {folder}"
        )
    from mairie.formatting import PARIS
    from mairie.settings import get_settings
    from mairie.submission import submit

    get_settings.cache_clear()  # the flows read their settings from the environment
    print(f"quote latency — {mode}")
    day = datetime.now(PARIS).date()
    latencies: list[float] = []
    seen: set[Path] = set()
    with stack.prefect_of_running_stack(settings):
        for index, form in enumerate(forms(args.n + 1)):
            start = time.perf_counter()
            submission = submit(settings, form, channel="api", on=day, in_process=not api)
            reference = submission.request.reference
            deadline = start + args.timeout
            while not quotes_mail(settings.mail_path, reference, seen):
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{reference}: no quotes email after {args.timeout} s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - start
            label = "warm-up, not counted" if index == 0 else f"{index}/{args.n}"
            detail = ""
            if submission.run_id and submission.run_kind:
                detail = breakdown(submission.run_id, submission.run_kind, time.time() - elapsed)
            print(f"  {reference} {form.collectivity}: {elapsed:.2f} s ({label}){detail}", flush=True)
            if index:
                latencies.append(elapsed)
    if server is not None:
        server.stop()
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"submission → both quote PDFs in the mail folder, {len(latencies)} requests: median "
        f"{statistics.median(latencies):.2f} s, p95 {p95:.2f} s, min {ordered[0]:.2f} s, max {ordered[-1]:.2f} s "
        "(target: median < 2 s)"
    )


if __name__ == "__main__":
    main()
