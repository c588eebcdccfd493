"""The PES deployments: the campaign exports its titres as soon as it has issued them; `export-pes` writes
what is pending; `acquits-pes` imports the acquits dropped in the watched folder."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from prefect.flow_runs import resume_flow_run

from flows.billing import renewal_campaign
from flows.pes import pes_acquits, pes_export
from tests.flows.test_billing_flows import _live
from tests.flows.test_intake_flow import _wait_for_paused
from tests.integration.pes.test_pes_acquit import acquit_xml


@pytest.fixture
def pes_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MAIRIE_CDG62__BILLING_CHANNEL": "pes_asap",
        "MAIRIE_CDG62__PES_ID_POST": "062045",
        "MAIRIE_CDG62__PES_COD_COL": "162",
        "MAIRIE_CDG62__PES_COD_BUD": "00",
    }.items():
        monkeypatch.setenv(name, value)


def test_the_campaign_exports_its_titres_and_the_acquits_come_back(pes_env, stack, mail_server):
    _live(stack, "62700")
    # the day's export: the first invoice of 2026 in a daily bordereau
    daily = pes_export(today=date(2026, 11, 24))
    [cdg62] = daily["issuers"]
    assert [(b["exercice"], b["number"], b["pieces"]) for b in cdg62["bordereaux"]] == [(2026, 1, 1)]

    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "state", renewal_campaign(year=2027, today=date(2027, 1, 15), return_state=True)
        )
    )
    thread.start()
    paused = _wait_for_paused()
    resume_flow_run(paused.id, run_input={"approve": True, "exclude": [], "operator": "Alice"})
    thread.join(timeout=120)
    result = outcome["state"].result()
    assert sorted(result["issued"]) == ["CDG62-FAC-2027-00001", "LFN-FAC-2027-00001"]
    [campaign] = result["pes"]["issuers"]
    assert [(b["exercice"], b["number"], b["pieces"]) for b in campaign["bordereaux"]] == [(2027, 1, 1)]
    path = Path(campaign["bordereaux"][0]["path"])
    assert path.parent == stack.deposit_path / "CDG62" / "pes_asap" and path.is_file()

    folder = stack.deposit_path / "CDG62" / "pes_asap" / "acquits"
    folder.mkdir()
    accepted = [{"domain": 6, "ok": True, "bordereau": 1, "exercice": 2027}]
    (folder / "ACK.xml").write_bytes(acquit_xml(stack.cdg62, path.name, accepted))
    assert pes_acquits()["acquits"] == [{"file": "ACK.xml", "error": None, "accepted": [1], "rejected": []}]
    assert (folder / "traites" / "ACK.xml").is_file()
