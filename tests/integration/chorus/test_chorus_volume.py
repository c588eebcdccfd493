"""3 000 deposits through the sandbox under the rate limit (a setting: high here so the test stays fast),
each file deposited exactly once."""

from __future__ import annotations

import time

from sqlmodel import select

from mairie.database import unit_of_work
from mairie.services.channels import chorus
from models.entities import ChorusDeposit
from tests.integration.chorus.conftest import live

COUNT = 3000
PER_MINUTE = 30_000  # one deposit every 2 ms at most


def test_three_thousand_deposits_under_the_rate_limit(settings, sandbox, mail_server):
    lfn, _cdg = live(settings, "62700", {"messagerie-5go": 1})
    with unit_of_work(settings) as uow:
        template = uow.session.exec(select(ChorusDeposit).where(ChorusDeposit.number == lfn)).one()
        # a campaign's worth of queued deposits of the same document (the sandbox checks files when read)
        for n in range(1, COUNT):
            uow.session.add(
                ChorusDeposit(
                    issuer_code="LFN",
                    document_type="invoice",
                    invoice_id=template.invoice_id,
                    number=f"LFN-FAC-2027-{n:05d}",
                    file_name=f"LFN-FAC-2027-{n:05d}.pdf",
                )
            )
        uow.commit()
    limited = settings.model_copy(
        update={"chorus": settings.chorus.model_copy(update={"deposits_per_minute": PER_MINUTE})}
    )
    client = chorus.client_for(limited)
    started = time.monotonic()
    report = chorus.deposit_pending(limited, client)
    elapsed = time.monotonic() - started
    client.close()

    assert len(report.deposited) == COUNT + 1  # with the CDG's invoice
    names = [f.file_name for f in sandbox.state.flux.values()]
    assert len(names) == len(set(names)) == COUNT + 1
    times = sandbox.state.deposit_times
    interval = 60 / PER_MINUTE
    # evenly spaced: no burst beyond the limit over any 100 consecutive deposits
    assert all(times[i + 100] - times[i] >= 100 * interval * 0.95 for i in range(len(times) - 100))
    assert elapsed >= COUNT * interval * 0.95
    with unit_of_work(settings) as uow:
        states = {d.state for d in uow.session.exec(select(ChorusDeposit)).all()}
    assert states == {"deposited"}
