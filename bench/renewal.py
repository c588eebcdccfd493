"""Benchmark of the yearly renewal campaign (run by hand; prints figures, asserts nothing).

    .venv/bin/python bench/renewal.py                 # every commune of 59 and 62 (1 534), SQLite
    .venv/bin/python bench/renewal.py --n 200         # a quick run
    .venv/bin/python bench/renewal.py --scale 10      # N, then 10 N: growth of time and memory
    .venv/bin/python bench/renewal.py --db postgresql --workers 2 --no-floor   # 2 campaign processes
    .venv/bin/python bench/renewal.py --n 200 --profile /tmp/renewal.prof   # cProfile of the campaign
    .venv/bin/python bench/renewal.py --n 15340 --limit 300 --no-floor   # memory at 10 N, 300 invoiced
    .venv/bin/python bench/renewal.py --db postgresql --pool-workers 2   # Prefect child runs, 1 then 2 workers

For each size: a fresh database is initialised and seeded with N live subscriptions (`bench/_seed.py`: bulk
inserts, the state the whole chain leaves), a loopback SMTP server is started (this process, its own
thread), and two warm child processes (each measures its own time, CPU time and peak RSS):

1. the REAL campaign: `renewal.issue(settings, year, subscription_ids=…)` — numbering, rows, Factur-X
   rendering and checks, content-addressed storage, deposit files, outbox — then `mail.dispatch` until
   the outbox is empty, every email through SMTP to the loopback server;
2. the floor, on the same invoices: the same HTML (`documents.api.facture_html` of the same `Facture`
   values, rebuilt as `invoicing.issue_invoice` builds them) laid out by a bare WeasyPrint loop with the
   same prepared stylesheets and fonts (`documents.rendering`), PDF/A-3b, WeasyPrint's own way (its HTML5
   parser and whole user-agent stylesheet, not `documents.weasy`'s; every line split afresh, not
   remembered by `documents.line_splits`; pydyf's own deflate), no XML attached; then the same
   emails (the .eml files the campaign's emails became, same bytes) sent again to the same server by a
   bare `aiosmtplib.send` loop (one SMTP session per message, as the outbox does).

The subscriptions are cut into `--chunks` consecutive slices and the two children alternate slice by
slice (campaign slice 1, floor slice 1, campaign slice 2, …), so that both see the same background load on
a shared machine. Both warm up (fonts, stylesheets, one sample invoice) before their clock starts. The
ratio is campaign time / floor time. Targets (issue #10, 2 cores): ratio ≤ 1.3; peak RSS < 600 MB and
flat in N; 10 N → ≤ 10.5× the time of N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

YEAR = 2026  # services went live during YEAR; the campaign renews them for YEAR + 1
PG_ADMIN_URL = os.environ.get("MAIRIE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def peak_rss_mb() -> float:
    """This process's peak resident set size: VmHWM of /proc/self/status. (Not getrusage's ru_maxrss: on
    Linux it keeps, across exec, the RSS the parent had when it forked this child.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_settings() -> Any:
    from mairie.settings import Settings

    return Settings(_env_file=None)


def warm_up() -> None:
    """What any long-lived worker has done before its first job: templates, fonts, stylesheets, one render."""
    from documents import api, rendering
    from documents.data import Issuer
    from documents.samples import sample_facture

    settings = child_settings()
    rendering.warm_up()
    api.render_facture(sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)))


class Clock:
    """Wall and CPU time of this process, accumulated by named step."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def add(self, step: str, wall: float, cpu: float) -> None:
        self.wall[step] = self.wall.get(step, 0.0) + wall
        self.cpu[step] = self.cpu.get(step, 0.0) + cpu

    def timed(self, step: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(step, time.perf_counter() - t0, time.process_time() - c0)


def serve(handle: Any) -> None:
    """A child's loop: warm up, say `ready`, then one JSON request per stdin line, one JSON answer each."""
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(handle(json.loads(line))), flush=True)


# ------------------------------------------------------------------------------------------------
# Child: the real campaign
# ------------------------------------------------------------------------------------------------


class ChildrenPeak:
    """Peak resident set size of this process's children (the render pool's workers), sampled from
    /proc every `period` s in a thread: a worker's VmHWM, read while it lives."""

    def __init__(self, period: float = 0.5) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)
        self._thread.start()

    def _run(self, period: float) -> None:
        me = str(os.getpid())
        while not self._stop.wait(period):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    fields = dict(line.split(":", 1) for line in Path(f"/proc/{entry}/status").read_text().splitlines())
                except (OSError, ValueError):
                    continue
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak_mb = max(self.peak_mb, int(fields["VmHWM"].split()[0]) / 1024)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def campaign_child(args: argparse.Namespace) -> None:
    from documents.pool import RenderPool
    from mairie.services import renewal
    from mairie.services.invoicing import render_processes
    from mairie.services.mail import SendingMeanwhile, dispatch

    settings = child_settings()
    clock = Clock()
    totals = {"invoices": 0, "existing": 0, "pending": 0, "emails": 0, "emails_meanwhile": 0}
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    # One pool for the whole run, as one campaign call has (the bench calls the campaign once per chunk).
    processes = render_processes(settings, 10**9)
    pool = RenderPool(processes)
    workers = ChildrenPeak()

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("end"):
            if profiler is not None:
                profiler.dump_stats(args.profile)
            t0, c0 = time.perf_counter(), time.process_time()
            pool.__exit__(None, None, None)  # the workers end: their CPU time is counted below
            clock.add("issue", time.perf_counter() - t0, time.process_time() - c0)
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return {
                **totals,
                "wall": clock.wall,
                "cpu": clock.cpu,
                "rss_mb": peak_rss_mb(),
                "render_processes": processes,
                "render_generations": pool.generations,
                "render_cpu": usage.ru_utime + usage.ru_stime,
                "render_rss_mb": workers.stop(),
            }
        if profiler is not None:
            profiler.enable()
        # As the campaign's slice does: the emails of committed invoices leave while the rest renders (their
        # CPU, in a thread of this process, is counted in "issue"), unless --emails-after.
        with SendingMeanwhile(settings, interval=1e9 if args.emails_after else 2.0) as meanwhile:
            result = clock.timed(
                "issue",
                renewal.issue,
                settings,
                YEAR + 1,
                today=date(YEAR + 1, 1, 15),
                subscription_ids=request["ids"],
                pool=pool,
            )
        totals["emails"] += meanwhile.sent
        totals["emails_meanwhile"] += meanwhile.sent
        while True:
            report = clock.timed("dispatch", dispatch, settings, limit=500)
            totals["emails"] += len(report.sent)
            if not (report.sent or report.retried or report.undelivered or report.skipped):
                break
        if profiler is not None:
            profiler.disable()
        totals["invoices"] += len(result.issued)
        totals["existing"] += len(result.existing)
        totals["pending"] += len(result.pending)
        return {"invoices": len(result.issued), "rss_mb": peak_rss_mb(), "render_rss_mb": workers.peak_mb}

    serve(handle)


# ------------------------------------------------------------------------------------------------
# Child: the floor
# ------------------------------------------------------------------------------------------------


def _factures(settings: Any, subscription_ids: list[int]) -> Any:
    """The `Facture` values the campaign rendered for these subscriptions, rebuilt exactly as
    `invoicing.issue_invoice` builds them (same renewal plan, same identities, the invoice's number)."""
    from sqlmodel import col, select

    from mairie.database import unit_of_work
    from mairie.services import paperwork, renewal
    from models.entities import Collectivity, Convention, Invoice, ServiceRequest, Subscription
    from models.reference_data import stored_grids

    year = YEAR + 1
    with unit_of_work(settings) as uow:
        s = uow.session
        grids = stored_grids(s)
        invoices = s.exec(
            select(Invoice)
            .where(Invoice.billing_year == year, col(Invoice.subscription_id).in_(subscription_ids))
            .order_by(col(Invoice.id))
        ).all()
        for invoice in invoices:
            subscription = s.get(Subscription, invoice.subscription_id)
            assert subscription is not None  # a renewal invoice bills a subscription
            _coll, plan = renewal.plan_for(settings, uow, subscription, year, grids)
            priced = next(d for d in plan.documents if d.issuer == invoice.issuer_code)
            collectivity = s.get(Collectivity, invoice.collectivity_id)
            convention = s.get(Convention, subscription.convention_id)
            assert collectivity is not None and convention is not None  # foreign keys
            request = s.get(ServiceRequest, convention.request_id)
            assert request is not None
            identity = uow.issuers.get(invoice.issuer_code)
            yield (
                paperwork.doc.Facture(
                    number=invoice.number,
                    issue_date=invoice.issued_on,
                    delivery_date=invoice.delivery_date,
                    issuer=paperwork.issuer_doc(identity),
                    collectivity=paperwork.collectivity_doc(collectivity, request),
                    priced=priced,
                    period_start=date(year, 1, 1),
                    period_end=date(year, 12, 31),
                    commitment_number=invoice.commitment_number,
                    contract_reference=convention.reference,
                ),
                invoice.deposited_path,
            )


def _warm_seal_keys(settings: Any) -> dict[str, Any]:
    """Each issuer's sealing key, opened (one seal made) before the clock starts, as a render worker has."""
    from documents import api
    from documents.data import Issuer
    from documents.samples import sample_facture
    from documents.seal import seal_with
    from mairie.services.sealing import seal_keys

    keys = seal_keys(settings, {identity.code for identity in settings.issuers()})
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    sample = api.render_facture(sample_facture(syndicat, cdg))
    for key in keys.values():
        seal_with(sample, key)
    return keys


def seal_share(result: dict[str, Any]) -> None:
    """The seal's own line (issue #20): its time per invoice against the render, measured in the floor on
    the campaign's invoices (the campaign seals each one in its render workers: its time includes it)."""
    f = result["floor"]
    if f is None or "seal" not in f["wall"]:
        return
    w, cpu, docs = f["wall"], f["cpu"], max(f["documents"], 1)
    render = w["weasyprint"]
    print(
        f"  seal (PAdES B-B, pyHanko): {w['seal']:.1f} s (CPU {cpu['seal']:.1f}) for {f['documents']} invoices = "
        f"{w['seal'] / docs * 1000:.1f} ms each against {render / docs * 1000:.1f} ms of render (bare WeasyPrint)"
        f" → {w['seal'] / render * 100:.1f} % of the render, CPU "
        f"{cpu['seal'] / cpu['weasyprint'] * 100:.1f} % (target < 15 %)",
        flush=True,
    )


def floor_child(args: argparse.Namespace) -> None:
    import asyncio
    from email import policy
    from email.parser import BytesParser

    import aiosmtplib
    from facturx import get_xml_from_pdf
    from weasyprint import HTML

    from documents import api, line_splits, pdf_streams, rendering
    from documents.cii import build_cii
    from documents.seal import seal_with

    pdf_streams.uninstall()  # the floor is WeasyPrint as shipped: pydyf deflates each stream twice at level 9,
    line_splits.uninstall()  # and every line of text is split afresh
    settings = child_settings()
    seal_keys = _warm_seal_keys(settings)
    clock = Clock()
    base_url = str(rendering.ROOT / "facture") + "/"
    sheets = list(rendering.stylesheets("facture"))
    fonts = rendering.font_config()
    parser = BytesParser(policy=policy.default)
    state: dict[str, Any] = {"documents": 0, "emails": 0, "email_bytes": 0, "same_invoices": True}

    def render(html: str) -> bytes:
        pdf = HTML(string=html, base_url=base_url).write_pdf(
            stylesheets=sheets, font_config=fonts, pdf_variant=api.FACTURX_VARIANT
        )
        assert pdf is not None
        return pdf

    async def send(paths: list[str]) -> None:
        for path in paths:
            raw = Path(path).read_bytes()
            message = parser.parsebytes(raw)
            del message["X-MailFrom"], message["X-RcptTo"]
            t0, c0 = time.perf_counter(), time.process_time()
            await aiosmtplib.send(message, hostname="127.0.0.1", port=settings.smtp_port)
            clock.add("smtp", time.perf_counter() - t0, time.process_time() - c0)
            state["emails"] += 1
            state["email_bytes"] += len(raw)

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("end"):
            return {**state, "wall": clock.wall, "cpu": clock.cpu, "rss_mb": peak_rss_mb()}
        for facture, deposited in _factures(settings, request["ids"]):
            html = api.facture_html(facture)
            xml = build_cii(facture)
            if state["documents"] % 97 == 0:  # the floor renders what the campaign rendered
                state["same_invoices"] &= get_xml_from_pdf(Path(deposited).read_bytes(), check_xsd=False)[1] == xml
            pdf = clock.timed("weasyprint", render, html)
            clock.timed("seal", seal_with, pdf, seal_keys[facture.issuer.code])  # the campaign seals each invoice
            state["documents"] += 1
        asyncio.run(send(request["emls"]))
        return {"documents": state["documents"]}

    serve(handle)


# ------------------------------------------------------------------------------------------------
# Parent
# ------------------------------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    drop: Any = None


def make_database(kind: str, folder: Path) -> Database:
    if kind == "sqlite":
        return Database(f"sqlite:///{folder / 'mairie.sqlite3'}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mairie_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        from models.db import get_engine

        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Database(url, drop)


class Child:
    """A warm child process (`--phase campaign|floor`) answering one JSON request per line."""

    def __init__(self, phase: str, env: dict[str, str], extra: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--phase", phase, *extra],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect_ready()

    def expect_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise SystemExit(f"child failed to start: {line!r}")

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"child {self.proc.args!r} died (exit {self.proc.wait()})")
        return dict(json.loads(line))

    def end(self) -> dict[str, Any]:
        answer = self.ask({"end": True})
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        return answer


def subscription_ids(settings: Any) -> list[int]:
    from sqlmodel import col, select

    from mairie.database import unit_of_work
    from models.entities import Subscription

    with unit_of_work(settings) as uow:
        ids = uow.session.exec(select(col(Subscription.id)).order_by(col(Subscription.id))).all()
        return [i for i in ids if i is not None]  # a primary key is never NULL


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    from bench._seed import seed_live
    from mairie.services.setup import initialise
    from mairie.settings import Settings
    from notifications.mailserver import LoopbackMailServer

    folder = Path(tempfile.mkdtemp(prefix=f"bench-renewal-{n}-"))
    db = make_database(args.db, folder)
    mail = folder / "mail"
    try:
        with LoopbackMailServer(mail) as server:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("MAIRIE_")},
                "MAIRIE_DATA_DIR": str(folder / "data"),
                "MAIRIE_DATABASE_URL": db.url,
                "MAIRIE_SMTP_PORT": str(server.port),
            }
            if args.render_processes is not None:
                env["MAIRIE_RENDER_PROCESSES"] = str(args.render_processes)
            settings = Settings(_env_file=None, data_dir=folder / "data", database_url=db.url, smtp_port=server.port)
            t0 = time.perf_counter()
            initialise(settings)
            report = seed_live(settings, n, year=YEAR)
            seed_s = time.perf_counter() - t0
            print(
                f"  seeded {n} subscriptions ({report.communes} communes, {report.establishments} establishments, "
                f"{report.rows} rows) in {seed_s:.1f} s",
                flush=True,
            )
            ids = subscription_ids(settings)
            if args.limit:  # a memory probe: everything loaded for N, only the first subscriptions invoiced
                ids = ids[: args.limit]
            if args.workers > 1:
                return {"n": n, "seed_s": seed_s, **run_parallel(ids, env, args), "floor": None}
            campaign = Child("campaign", env, ["--profile", args.profile] if args.profile else [])
            floor = None if args.no_floor else Child("floor", env, [])
            chunks = max(1, min(args.chunks, len(ids)))
            size = -(-len(ids) // chunks)
            wall0 = time.perf_counter()
            for start in range(0, len(ids), size):
                part = ids[start : start + size]
                before = set(mail.glob("*.eml"))
                answer = campaign.ask({"ids": part})
                emls = sorted(set(mail.glob("*.eml")) - before)
                if floor is not None:
                    floor.ask({"ids": part, "emls": [str(p) for p in emls]})
                print(
                    f"    {start + len(part)}/{len(ids)} subscriptions, campaign peak RSS {answer['rss_mb']:.0f} MB"
                    f", render workers {answer['render_rss_mb']:.0f} MB",
                    flush=True,
                )
            wall = time.perf_counter() - wall0
            result = {"n": n, "seed_s": seed_s, "campaign": campaign.end(), "floor": floor.end() if floor else None}
            result["received"] = len(list(mail.glob("*.eml")))
            result["wall_s"] = wall
            return result
    finally:
        if db.drop is not None:
            db.drop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def run_parallel(ids: list[int], env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """`--workers K` campaign processes at once, subscriptions split by id modulo K (no floor)."""
    children = [Child("campaign", env, []) for _ in range(args.workers)]
    parts = [[i for i in ids if i % args.workers == k] for k in range(args.workers)]
    t0 = time.perf_counter()
    for child, part in zip(children, parts, strict=True):
        assert child.proc.stdin is not None
        child.proc.stdin.write(json.dumps({"ids": part}) + "\n")
        child.proc.stdin.flush()
    for child in children:
        assert child.proc.stdout is not None
        child.proc.stdout.readline()
    wall = time.perf_counter() - t0
    ends = [child.end() for child in children]
    return {
        "wall_s": wall,
        "campaign": {
            "invoices": sum(e["invoices"] for e in ends),
            "emails": sum(e["emails"] for e in ends),
            "emails_meanwhile": sum(e.get("emails_meanwhile", 0) for e in ends),
            "wall": {k: max(e["wall"].get(k, 0) for e in ends) for k in ("issue", "dispatch")},
            "cpu": {k: sum(e["cpu"].get(k, 0) for e in ends) for k in ("issue", "dispatch")},
            "rss_mb": max(e["rss_mb"] for e in ends),
            "render_processes": sum(e["render_processes"] for e in ends),
            "render_generations": sum(e["render_generations"] for e in ends),
            "render_cpu": sum(e["render_cpu"] for e in ends),
            "render_rss_mb": max(e["render_rss_mb"] for e in ends),
        },
        "received": len(list((Path(env["MAIRIE_DATA_DIR"]).parent / "mail").glob("*.eml"))),
    }


def show(result: dict[str, Any], workers: int) -> None:
    c, f = result["campaign"], result["floor"]
    docs = c["invoices"]
    c_wall = sum(c["wall"].values())
    c_cpu = sum(c["cpu"].values()) + c["render_cpu"]  # the render workers' CPU counts
    processes = f"{workers} processes in parallel, wall {result['wall_s']:.1f} s" if workers > 1 else "1 process"
    pool = (
        f"{c['render_processes']} render processes ({c['render_generations']} sets started), CPU "
        f"{c['render_cpu']:.1f} s, their peak RSS {c['render_rss_mb']:.0f} MB"
        if c["render_processes"]
        else "rendered in the campaign process"
    )
    print(
        f"  campaign ({processes}): {docs} invoices, {c['emails']} emails ({c['emails_meanwhile']} sent while "
        f"rendering; {result['received']} received): "
        f"{c_wall:.1f} s = issue {c['wall']['issue']:.1f} s + dispatch {c['wall']['dispatch']:.1f} s → "
        f"{docs / (result['wall_s'] if workers > 1 else c_wall):.1f} documents/s; CPU {c_cpu:.1f} s "
        f"(issue {c['cpu']['issue']:.1f} + dispatch {c['cpu']['dispatch']:.1f} + render workers "
        f"{c['render_cpu']:.1f}); {c_cpu / max(docs, 1) * 1000:.0f} ms CPU per invoice; "
        f"peak RSS {c['rss_mb']:.0f} MB; {pool}"
    )
    if f is None:
        return
    w, cpu = f["wall"], f["cpu"]
    floor_s, floor_cpu = w["weasyprint"] + w["smtp"], cpu["weasyprint"] + cpu["smtp"]
    print(
        f"  floor: WeasyPrint {w['weasyprint']:.1f} s (CPU {cpu['weasyprint']:.1f}; {f['documents']} PDF/A-3b, "
        f"same invoices: {'yes' if f['same_invoices'] else 'NO'}) + aiosmtplib {w['smtp']:.1f} s "
        f"(CPU {cpu['smtp']:.1f}; {f['emails']} emails, {f['email_bytes'] / max(f['emails'], 1) / 1024:.0f} KiB "
        f"each) = {floor_s:.1f} s → {f['documents'] / floor_s:.1f} documents/s; peak RSS {f['rss_mb']:.0f} MB"
    )
    cores = ""
    if c["render_processes"]:
        cores = f" — the campaign renders on {c['render_processes']} processes, the floor on one"
    print(
        f"  ratio campaign / floor (WeasyPrint + SMTP): wall {c_wall / floor_s:.2f}, CPU {c_cpu / floor_cpu:.2f} "
        f"(target ≤ 1.3){cores}"
    )
    print(f"  load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=None, help="subscriptions (default: every commune, 1 534)")
    parser.add_argument("--scale", type=int, default=None, help="also run K × N and print the growth")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="campaign processes over disjoint subscriptions")
    parser.add_argument("--chunks", type=int, default=10, help="slices alternating campaign and floor")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor (campaign only)")
    parser.add_argument(
        "--emails-after",
        action="store_true",
        help="send the emails after each slice is issued, not while it renders (the behaviour before)",
    )
    parser.add_argument("--limit", type=int, help="invoice only the first LIMIT subscriptions (memory probe)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the campaign process into FILE")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--render-processes", type=int, help="MAIRIE_RENDER_PROCESSES of the campaign (default: one per core)"
    )
    parser.add_argument(
        "--pool-workers",
        type=int,
        default=0,
        help="PostgreSQL: the campaign through Prefect child runs on a work pool, 1 to K worker processes "
        "(bench/_pool.py)",
    )
    parser.add_argument("--slice-size", type=int, default=250, help="with --pool-workers: subscriptions per child run")
    parser.add_argument(
        "--floor-sample", type=int, default=100, help="with --pool-workers: subscriptions of the floor (0: none)"
    )
    parser.add_argument("--phase", choices=("campaign", "floor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.year = YEAR
    if args.phase == "campaign":
        campaign_child(args)
        return
    if args.phase == "floor":
        floor_child(args)
        return

    from bench._seed import reference_communes

    n = args.n or len(reference_communes())
    sizes = [n] + ([n * args.scale] if args.scale else [])
    print(
        f"renewal campaign {YEAR + 1}, {args.db}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    if args.pool_workers:
        if args.db != "postgresql":
            raise SystemExit("--pool-workers needs --db postgresql (the workers share the database)")
        from bench import _pool

        print(f"N = {n}, through the work pool", flush=True)
        _pool.main(n, args)
        return
    results = []
    for size in sizes:
        print(f"N = {size}", flush=True)
        result = run_size(size, args)
        show(result, args.workers)
        seal_share(result)
        results.append(result)
    if args.profile:
        import pstats

        stats = pstats.Stats(args.profile)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    if len(results) == 2:
        small, big = (r["campaign"] for r in results)
        time_small, time_big = sum(small["wall"].values()), sum(big["wall"].values())
        cpu_small = sum(small["cpu"].values()) + small["render_cpu"]
        cpu_big = sum(big["cpu"].values()) + big["render_cpu"]
        print(
            f"growth {sizes[1]} / {sizes[0]}: time × {time_big / time_small:.2f}, CPU × {cpu_big / cpu_small:.2f} "
            f"(target ≤ {args.scale * 1.05:.1f}); peak RSS {small['rss_mb']:.0f} → {big['rss_mb']:.0f} MB, "
            f"render workers {small['render_rss_mb']:.0f} → {big['render_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
