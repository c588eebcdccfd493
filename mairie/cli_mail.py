"""CLI commands of the development mail server: `mairie mail-server` and `mairie mail list`.

Plain Typer command functions; the main CLI registers them (`app.command("mail-server")(mail_server)`).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mairie.settings import get_settings
from mairie.terminal import SafeConsole
from notifications.mailserver import LoopbackMailServer, ReceivedMail, is_loopback, list_messages, read_mail


def mail_server(
    port: Annotated[int, typer.Option(help="Port d'écoute (0 : un port libre au choix du système).")] = 8025,
    host: Annotated[str, typer.Option(help="Adresse d'écoute (bouclage uniquement, sauf --allow-remote).")] = (
        "127.0.0.1"
    ),
    dir: Annotated[
        Path | None, typer.Option("--dir", help="Dossier des .eml (défaut : MAIRIE_MAIL_DIR ou data_dir/mail).")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Autoriser une adresse autre que le bouclage.")
    ] = False,
) -> None:
    """Run a development SMTP server that keeps every message received as a .eml file, until Ctrl-C."""
    console = SafeConsole()
    if not allow_remote and not is_loopback(host):
        _fail(
            f"« {host} » n'est pas une adresse de bouclage. Ce serveur accepte tout courriel sans "
            "authentification : il n'écoute que sur 127.0.0.1, ::1 ou localhost, sauf --allow-remote.",
        )
    folder = dir or get_settings().mail_path
    server = LoopbackMailServer(
        folder, host=host, port=port, allow_remote=allow_remote, on_saved=lambda p: _announce(console, p)
    )
    try:
        server.start()
    except OSError as exc:
        _fail(f"impossible d'écouter sur {host}:{port} : {exc.strerror or exc}")
    console.print(f"Serveur SMTP de développement sur [bold]{host}:{server.port}[/bold]")
    console.print(f"Courriels enregistrés dans [bold]{escape(str(folder.resolve()))}[/bold] — Ctrl-C pour arrêter.")
    try:
        _wait_for_stop()
    finally:
        server.stop()
        console.print("Serveur arrêté.")


def mail_list(
    dir: Annotated[
        Path | None, typer.Option("--dir", help="Dossier des .eml (défaut : MAIRIE_MAIL_DIR ou data_dir/mail).")
    ] = None,
) -> None:
    """List the messages kept by the development mail server, oldest first."""
    folder = dir or get_settings().mail_path
    console = SafeConsole()
    mails = list_messages(folder)
    if not mails:
        console.print(f"Aucun courriel dans {escape(str(folder))}.")
        return
    console.print(_table(mails, folder))


def _table(mails: list[ReceivedMail], folder: Path) -> Table:
    table = Table(title=f"Courriels reçus — {escape(str(folder))}")
    for column in ("Reçu (UTC)", "De", "À", "Objet", "Pièces jointes", "Fichier"):
        table.add_column(column, overflow="fold")
    for mail in mails:
        table.add_row(
            _received_at(mail),
            escape(mail.sender),
            escape(", ".join(mail.to + mail.cc)),
            escape(mail.subject),
            escape(", ".join(mail.attachments)) or "—",
            escape(mail.path.name),
        )
    return table


def _received_at(mail: ReceivedMail) -> str:
    stamp = mail.path.name[:15]  # 20260115T103000 — the server's reception time, in the file name
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"


def _announce(console: SafeConsole, path: Path) -> None:
    mail = read_mail(path)
    console.print(f"reçu : {escape(mail.subject)} → {escape(', '.join(mail.envelope_to))}")


def _wait_for_stop() -> None:
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


def _fail(message: str) -> None:
    SafeConsole(stderr=True).print(f"[red]Erreur :[/red] {escape(message)}")
    raise typer.Exit(code=2)
