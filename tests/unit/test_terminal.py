"""What a CLI user sees (issue 18): a printed link stays one piece whatever the terminal's width, and
Prefect's client warnings ("EventsWorker - Still processing items") do not reach them."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mairie.terminal import PREFECT_CLIENT_SERVICES, SafeConsole, quiet_prefect_client_services

LINK = "http://127.0.0.1:8090/approbation/" + "eyJjIjoiTEZOLUNPTlYtMjAyNi0wMDAwMSIsInAiOiJjb2xsZWN0aXZpdHkifQ" * 2


@pytest.mark.parametrize("width", [30, 80])
def test_a_link_is_printed_on_one_line_at_any_width(width: int) -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=width, color_system=None)
    console.print(f"   Lien d'approbation du maire : {LINK}", highlight=False)
    lines = buffer.getvalue().splitlines()
    assert [line for line in lines if LINK in line] == [f"   Lien d'approbation du maire : {LINK}"]


@pytest.fixture
def restore_levels():
    levels = {name: logging.getLogger(name).level for name in PREFECT_CLIENT_SERVICES}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_prefect_client_service_warnings_are_kept_from_the_user(restore_levels, caplog) -> None:
    worker = logging.getLogger("EventsWorker")
    worker.setLevel(logging.NOTSET)
    worker.warning("Still processing items: 3 items remaining...")
    assert "Still processing items" in caplog.text  # what a user saw before
    caplog.clear()
    quiet_prefect_client_services()
    worker.warning("Still processing items: 3 items remaining...")
    worker.error("le serveur Prefect a refusé les événements")
    assert "Still processing items" not in caplog.text and "refusé les événements" in caplog.text


def test_every_cli_command_starts_quiet(restore_levels) -> None:
    """The CLI's callback runs before any command."""
    from mairie.cli import app

    logging.getLogger("EventsWorker").setLevel(logging.NOTSET)
    CliRunner().invoke(app, ["requests", "list", "--json"])
    assert not logging.getLogger("EventsWorker").isEnabledFor(logging.WARNING)


PREFECT_LOGS_AS_A_CLI_USER_SEES_THEM = """
import logging
from mairie.terminal import quiet_prefect_client_services
quiet_prefect_client_services()
from prefect.logging.configuration import setup_logging
setup_logging(incremental=False)
tasks = logging.getLogger("prefect.tasks")
tasks.info("Created task run 'emission-devis'. View it in the UI at 'http://127.0.0.1:4200/runs/task-run/x'")
tasks.warning("la tache a ete refusee")
"""


def test_prefect_client_information_lines_are_kept_from_the_user_after_prefect_configures_logging() -> None:
    """Prefect's logging configuration resets the levels under "prefect" when it is first applied (in a
    process of its own here: it changes the logging of the whole process): the CLI's filter on
    "prefect.tasks" survives it — its "Created task run … View it in the UI" line is the CLI's own link."""
    done = subprocess.run(
        [sys.executable, "-c", PREFECT_LOGS_AS_A_CLI_USER_SEES_THEM], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Created task run" not in output and "la tache a ete refusee" in output
