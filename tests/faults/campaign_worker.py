"""A renewal campaign in its own process, for the crash and concurrency tests (not a test module).

    python -m tests.faults.campaign_worker      # settings from MAIRIE_* in the environment

Runs the real `renewal.issue(settings, 2027)` then sends the outbox (`outbox.dispatch_due` through the
real SMTP sender) until nothing is due. Prints `ready <pid>` once imported and warmed up (the crash test
counts its random delay from there), then `done <pid>` at the end. With `--zygote`, warms up once and forks
one such process per request read on stdin (see `zygote`). Fault injection points, for the deterministic
crash tests (each kills this very process with SIGKILL, nothing is cleaned up):

- FAULT_KILL_AFTER_SEND=k: right after the k-th message was accepted by the server (its 250 received),
  before the outbox row is marked sent;
- FAULT_KILL_AFTER_DEPOSIT=k: right after the k-th invoice file was written to the deposit folder,
  before its transaction commits;
- FAULT_KILL_BEFORE_RENDER=k: when the k-th invoice is about to be rendered, after the commit that
  numbered it (between the two steps of `billing`: numbered, not yet rendered nor emailed).

FAULT_DISPATCH_AHEAD_S=s dispatches with the clock `s` seconds ahead (claims of a killed dispatcher
have lapsed: what the next scheduled outbox run sees). FAULT_PART=i/n issues only the subscriptions whose
id is i modulo n. FAULT_GO_FILE=path waits, once ready, until that file exists (to start several together).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import date, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mairie.settings import Settings
    from notifications.smtp import Sender

YEAR = 2027


def say(line: str) -> None:
    """One line on stdout in a single write (the zygote and its children share the pipe)."""
    os.write(1, (line + "\n").encode())


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillAfterSend:
    """The real SMTP sender; the process dies right after the k-th accepted message."""

    def __init__(self, inner: object, k: int) -> None:
        self.inner = inner
        self.k = k
        self.count = 0

    async def send(self, message: EmailMessage) -> str:
        answer: str = await self.inner.send(message)  # type: ignore[attr-defined]
        self.count += 1
        if self.count == self.k:
            _die()
        return answer


def prepare() -> None:
    """Import everything and warm up (templates, fonts, one render), touching no database."""
    from documents import api, rendering
    from documents.data import Issuer
    from documents.samples import sample_facture
    from mairie.services import invoicing, paperwork, renewal  # noqa: F401
    from mairie.settings import Settings
    from notifications import outbox  # noqa: F401

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    rendering.warm_up()
    api.render_facture(sample_facture(Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)))


def run() -> int:
    """The campaign, with the settings and faults of the environment."""
    from mairie.adapters.files import LocalFolder
    from mairie.services import invoicing, renewal
    from mairie.services.mail import sender_for
    from mairie.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    kill_after_deposit = int(os.environ.get("FAULT_KILL_AFTER_DEPOSIT", "0"))
    if kill_after_deposit:
        original = LocalFolder.write
        calls = 0

        def deposit(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal calls
            path = original(*args, **kwargs)
            calls += 1
            if calls == kill_after_deposit:
                _die()
            return path

        LocalFolder.write = deposit  # type: ignore[method-assign]
    kill_before_render = int(os.environ.get("FAULT_KILL_BEFORE_RENDER", "0"))
    if kill_before_render:
        complete = invoicing.complete_invoice
        renders = 0

        def complete_invoice(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal renders
            renders += 1
            if renders == kill_before_render:
                _die()
            return complete(*args, **kwargs)

        invoicing.complete_invoice = complete_invoice  # type: ignore[assignment]
    ids = None
    if os.environ.get("FAULT_PART"):
        index, count = (int(x) for x in os.environ["FAULT_PART"].split("/"))
        from sqlmodel import select

        from mairie.database import unit_of_work
        from models.entities import Subscription

        with unit_of_work(settings) as uow:
            ids = [i for i in uow.session.exec(select(Subscription.id)).all() if i % count == index]
    say(f"ready {os.getpid()}")
    go = os.environ.get("FAULT_GO_FILE")
    while go and not os.path.exists(go):  # several campaigns start together
        time.sleep(0.01)

    result = renewal.issue(settings, YEAR, today=date(YEAR, 1, 15), subscription_ids=ids)
    say(f"issued {len(result.issued)} existing {len(result.existing)}")

    sender = sender_for(settings)
    kill_after_send = int(os.environ.get("FAULT_KILL_AFTER_SEND", "0"))
    if kill_after_send:
        sender = KillAfterSend(sender, kill_after_send)  # type: ignore[assignment]
    ahead = timedelta(seconds=float(os.environ.get("FAULT_DISPATCH_AHEAD_S", "0")))

    sent = asyncio.run(send_due(settings, sender, ahead))
    say(f"sent {sent}")
    say(f"done {os.getpid()}")
    return 0


async def send_due(settings: Settings, sender: Sender, ahead: timedelta = timedelta(0)) -> int:
    """Dispatch until nothing is due, with the clock `ahead` (claims of a killed dispatcher and backoffs
    lapsed: what a later scheduled outbox run sees); returns how many messages were sent."""
    from mairie.database import engine
    from mairie.services import paperwork
    from models.types import utcnow
    from notifications.outbox import dispatch_due

    sent = 0
    while True:
        report = await dispatch_due(
            engine(settings),
            sender,
            lambda sha: paperwork.load(settings, sha),
            now=utcnow() + ahead if ahead else None,
            limit=500,
        )
        sent += len(report.sent)
        if not (report.sent or report.retried or report.undelivered):
            return sent


def zygote() -> None:
    """Warm up once, then fork one campaign process per line read on stdin (a JSON object of environment
    variables), so that each crash round starts in milliseconds instead of seconds. Prints
    `forked <pid>`, the child's own lines, then `exit <pid> <status>` (negative: killed by that signal)."""
    import json
    import traceback

    prepare()
    say("zygote-ready")
    for line in sys.stdin:
        env = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.update(env)
                code = run()
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
            finally:
                sys.stdout.flush()
                os._exit(code)
        say(f"forked {pid}")
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        say(f"exit {pid} {code}")


def main() -> int:
    if "--zygote" in sys.argv:
        zygote()
        return 0
    prepare()
    return run()


if __name__ == "__main__":
    sys.exit(main())
