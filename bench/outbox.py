"""Benchmark of the outbox against a bare aiosmtplib loop (run by hand; prints figures, asserts nothing).

    .venv/bin/python bench/outbox.py                      # 300 emails, SQLite, database document store
    .venv/bin/python bench/outbox.py --n 1000 --db postgresql
    .venv/bin/python bench/outbox.py --profile /tmp/outbox.prof

N invoice emails (`invoice_issued`, one distinct ~60 KB PDF attached to each, kept in the configured document
store) are queued in a fresh database, then:

1. the outbox: `mail.dispatch` until the outbox is empty (claims, attachments loaded from the store and
   checked, MIME built, SMTP, outcome recorded) — what a campaign pays per email;
2. the floor: the same emails (the .eml files the server kept from run 1, same bytes, parsed beforehand and
   not timed) sent again by a bare `aiosmtplib.send` loop, one SMTP session per message (the floor
   `bench/renewal.py` measures); and by a bare loop reusing one `aiosmtplib.SMTP` session.

The loopback SMTP server (`notifications.mailserver.LoopbackMailServer`) runs in a child process, so this
process's CPU time is the client's alone. Ratios are outbox / floor, per message; target (issue #21): the
outbox's CPU ≤ 1.2 × the bare loop's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _serve(folder: str, ports: Any, stop: Any) -> None:
    from notifications.mailserver import LoopbackMailServer

    with LoopbackMailServer(Path(folder)) as server:
        ports.put(server.port)
        stop.wait()


@contextmanager
def mail_server(folder: Path) -> Iterator[int]:
    """A loopback SMTP server in a child process; yields its port."""
    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(str(folder), ports, stop), daemon=True)
    process.start()
    try:
        yield int(ports.get(timeout=60))
    finally:
        stop.set()
        process.join(10)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'mairie.sqlite3'}"
        return
    import uuid

    from sqlalchemy import create_engine, make_url, text

    from models.db import get_engine

    name = f"bench_outbox_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sample_pdf() -> bytes:
    """One real invoice PDF (Factur-X), rendered once."""
    from documents import render_facture
    from documents.data import Issuer
    from documents.samples import sample_facture
    from mairie.settings import Settings

    settings = Settings(_env_file=None)
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    return render_facture(sample_facture(syndicat, cdg, support=False))


def queue(settings: Any, count: int, pdf: bytes) -> None:
    """N invoice emails, each with its own PDF (the sample with a distinct trailer comment)."""
    from mairie.database import unit_of_work
    from mairie.services import mail, paperwork
    from notifications.examples import example_context

    context = example_context("invoice_issued")
    with unit_of_work(settings) as uow:
        for n in range(count):
            number = f"LFN-FAC-2027-{n + 1:05d}"
            kept = paperwork.keep(
                uow.session, settings, pdf + f"\n% {number}\n".encode(), kind="facture", filename=f"{number}.pdf"
            )
            mail.enqueue_message(
                uow.session, settings, "invoice_issued", context | {"invoice_number": number},
                to=[f"mairie{n}@commune.example"], dedup_key=f"invoice:{number}", attachments=[kept],
            )  # fmt: skip
        uow.commit()


class Clock:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    @contextmanager
    def timing(self) -> Iterator[None]:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w0
            self.cpu += time.process_time() - c0


def run_outbox(settings: Any, profile: str | None) -> tuple[Clock, int]:
    from mairie.services import mail

    clock, sent = Clock(), 0
    profiler = _profiler(profile)
    with clock.timing():
        while True:
            report = mail.dispatch(settings)
            sent += len(report.sent)
            if not (report.sent or report.retried):
                break
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    return clock, sent


def _profiler(path: str | None) -> Any:
    if path is None:
        return None
    import cProfile

    profiler = cProfile.Profile(time.process_time)  # CPU time, not wall: what the ratio compares
    profiler.enable()
    return profiler


def received(folder: Path) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    messages = []
    for path in sorted(folder.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        del message["X-MailFrom"], message["X-RcptTo"]
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def bare_loop(port: int, messages: list[EmailMessage]) -> Clock:
    """The floor: `aiosmtplib.send`, one SMTP session per message; only the send is timed."""
    import aiosmtplib

    clock = Clock()

    async def send() -> None:
        for message in messages:
            with clock.timing():
                await aiosmtplib.send(message, hostname="127.0.0.1", port=port)

    asyncio.run(send())
    return clock


def bare_session(port: int, messages: list[EmailMessage]) -> Clock:
    """A lower floor: one `aiosmtplib.SMTP` session for every message."""
    import aiosmtplib

    clock = Clock()

    async def send() -> None:
        with clock.timing():
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
                for message in messages:
                    await client.send_message(message)

    asyncio.run(send())
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="emails (default 300)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--store", choices=("database", "files"), default="database")
    parser.add_argument("--profile", help="write a cProfile of the outbox run to this file")
    args = parser.parse_args()

    from mairie.database import migrate
    from mairie.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    try:
        pdf = sample_pdf()
        with database(args.db, folder) as url, mail_server(folder / "mail") as port:
            settings = Settings(
                _env_file=None, data_dir=folder / "data", database_url=url, smtp_port=port,
                document_store=args.store,
            )  # fmt: skip
            migrate(settings)
            queue(settings, args.n, pdf)
            outbox, sent = run_outbox(settings, args.profile)
            time.sleep(0.5)  # the last files written
            messages = received(folder / "mail")
            per_message = bare_loop(port, messages)
            one_session = bare_session(port, messages)
        size = sum(len(m.as_bytes()) for m in messages) / max(len(messages), 1)
        print(
            f"{args.n} emails ({sent} sent by the outbox, {len(messages)} received, {size / 1024:.0f} KB each), "
            f"{args.db}, document store {args.store}"
        )
        _line("outbox (mail.dispatch)", outbox, sent)
        _line("bare aiosmtplib.send loop", per_message, len(messages))
        _line("bare loop, one session", one_session, len(messages))
        _ratio("outbox / bare send loop", outbox, sent, per_message, len(messages))
        _ratio("outbox / bare one-session", outbox, sent, one_session, len(messages))
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _line(label: str, clock: Clock, count: int) -> None:
    n = max(count, 1)
    print(f"  {label:28s} {1000 * clock.wall / n:7.2f} ms wall  {1000 * clock.cpu / n:7.2f} ms CPU per message")


def _ratio(label: str, a: Clock, na: int, b: Clock, nb: int) -> None:
    per: Callable[[float, int], float] = lambda x, n: x / max(n, 1)  # noqa: E731
    wall = per(a.wall, na) / max(per(b.wall, nb), 1e-9)
    cpu = per(a.cpu, na) / max(per(b.cpu, nb), 1e-9)
    print(f"  {label:28s} wall × {wall:.2f}   CPU × {cpu:.2f}")


if __name__ == "__main__":
    main()
