"""The development SMTP server: .eml files, listing, fault injection, loopback only, and its CLI."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mairie.cli_mail import mail_list, mail_server
from notifications import smtp
from notifications.mailserver import FaultInjection, LoopbackMailServer, is_loopback, list_messages, write_eml
from tests.conftest import restore_sigint

ROOT = Path(__file__).resolve().parents[3]


def _message(n: int, *, to: str = "maire@arras.example", bcc: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Mairie Connectée <noreply@mairie-connectee.example>"
    message["To"] = to
    if bcc:
        message["Bcc"] = bcc
    message["Subject"] = f"Essai n° {n} – élégance & <b>"
    message["Message-ID"] = f"<essai-{n}@mairie-connectee.example>"
    message["Date"] = "Thu, 15 Jan 2026 10:30:00 +0000"
    message.set_content("Bonjour,\n.ligne qui commence par un point\n")
    message.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="Devis n° 7.pdf")
    return message


async def test_keeps_each_message_as_an_eml_file(tmp_path: Path) -> None:
    async with LoopbackMailServer(tmp_path / "mail") as server:
        assert server.port > 0
        reply = await smtp.send(server.smtp_config(), _message(1, bcc="archives@cdg62.example"))
        await smtp.send(server.smtp_config(), _message(2))
    assert reply.startswith("250 2.0.0 OK: enregistré sous ")
    files = sorted((tmp_path / "mail").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary file left behind
    assert all(re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{10}\.eml", f.name) for f in files)
    first, second = list_messages(tmp_path / "mail")
    assert first.subject == "Essai n° 1 – élégance & <b>"
    assert first.sender == "Mairie Connectée <noreply@mairie-connectee.example>"
    assert first.to == ("maire@arras.example",)
    assert first.envelope_to == ("maire@arras.example", "archives@cdg62.example")  # Bcc in the envelope only
    assert first.message_id == "<essai-1@mairie-connectee.example>"
    assert first.date is not None and first.date.year == 2026
    assert first.attachments == ("Devis n° 7.pdf",)
    assert second.message_id == "<essai-2@mairie-connectee.example>"
    body = first.message().get_body(preferencelist=("plain",))
    assert body is not None and ".ligne qui commence par un point" in body.get_content()


def test_port_zero_gives_distinct_free_ports_and_sync_use(tmp_path: Path) -> None:
    with LoopbackMailServer(tmp_path / "a") as one, LoopbackMailServer(tmp_path / "b") as two:
        assert one.port != two.port and one.port > 0 and two.port > 0


def test_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bouclage"):
        LoopbackMailServer(tmp_path, host="0.0.0.0")
    LoopbackMailServer(tmp_path, host="0.0.0.0", allow_remote=True)  # allowed when asked (not started)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.10", False), ("mail.example", False), ("", False)],
)  # fmt: skip
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


async def test_seeded_fault_fraction_is_reproducible(tmp_path: Path) -> None:
    async def outcomes(folder: Path) -> list[str]:
        results = []
        async with LoopbackMailServer(folder, faults=FaultInjection("451", fraction=0.4, seed=3)) as server:
            for n in range(15):
                try:
                    await smtp.send(server.smtp_config(), _message(n))
                    results.append("ok")
                except smtp.TransientFailure:
                    results.append("451")
        return results

    first, second = await outcomes(tmp_path / "a"), await outcomes(tmp_path / "b")
    assert first == second and "ok" in first and "451" in first
    assert len(list_messages(tmp_path / "a")) == first.count("ok")


async def test_each_fault_mode_as_a_client_sees_it(tmp_path: Path) -> None:
    expectations = {"451": smtp.TransientFailure, "drop": smtp.TransientFailure, "550": smtp.PermanentFailure}
    for mode, failure in expectations.items():
        async with LoopbackMailServer(tmp_path / mode, faults=FaultInjection(mode, fail_first=1)) as server:  # type: ignore[arg-type]
            with pytest.raises(failure):
                await smtp.send(server.smtp_config(), _message(1))
            await smtp.send(server.smtp_config(), _message(2))
            assert [m.message_id for m in server.messages()] == ["<essai-2@mairie-connectee.example>"]


def test_fault_injection_is_validated() -> None:
    with pytest.raises(ValueError):
        FaultInjection("500")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaultInjection(fraction=1.5)
    with pytest.raises(ValueError):
        FaultInjection(fail_first=-1)


def test_write_eml_never_overwrites(tmp_path: Path) -> None:
    paths = {write_eml(tmp_path, b"Subject: x\r\n\r\nsame\r\n") for _ in range(20)}
    assert len(paths) == 20 and all(p.read_bytes().endswith(b"same\r\n") for p in paths)


def test_list_messages_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert list_messages(tmp_path / "nothing-here") == []


# --- CLI ------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("mail-server")(mail_server)
    app.command("mail-list")(mail_list)
    return app


def test_cli_refuses_a_remote_host_without_allow_remote(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["mail-server", "--host", "0.0.0.0", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "bouclage" in result.output and "--allow-remote" in result.output


async def test_cli_lists_messages_as_a_table(tmp_path: Path) -> None:
    async with LoopbackMailServer(tmp_path / "mail") as server:
        await smtp.send(server.smtp_config(), _message(1))
    result = CliRunner().invoke(_app(), ["mail-list", "--dir", str(tmp_path / "mail")], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Essai n° 1 – élégance & <b>" in result.output
    assert "maire@arras.example" in result.output and "Devis n° 7.pdf" in result.output
    empty = CliRunner().invoke(_app(), ["mail-list", "--dir", str(tmp_path / "empty")])
    assert empty.exit_code == 0 and "Aucun courriel" in empty.output


def test_cli_mail_list_defaults_to_the_settings_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIRIE_MAIL_DIR", str(tmp_path / "from-settings"))
    result = CliRunner().invoke(_app(), ["mail-list"])
    assert result.exit_code == 0 and "from-settings" in result.output.replace("\n", "")


def test_cli_mail_server_runs_until_interrupted(tmp_path: Path) -> None:
    """The real command in a child process: it listens, keeps a message, and stops on Ctrl-C."""
    code = "import typer; from mairie.cli_mail import mail_server; typer.run(mail_server)"
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--dir", str(folder)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}, preexec_fn=restore_sigint,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        asyncio.run(smtp.send(smtp.SmtpConfig(port=port), _message(1)))
        deadline = time.monotonic() + 10
        while not list_messages(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "reçu : Essai n° 1" in output and "Serveur arrêté." in output
    assert len(list_messages(folder)) == 1
