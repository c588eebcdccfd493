"""`mairie pes …`: titres de recettes for Hélios (PES V2) — export the pending bordereaux of an issuer on
`pes_asap`, import Hélios's acquits (one file, or the watched folders). See docs/pes.md.

Mounted by the main CLI as `app.add_typer(pes_app, name="pes")`. Bad input gets a plain message and exit
status 2 (3 when the database cannot be reached), never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import ValidationError

from mairie.settings import get_settings
from mairie.terminal import SafeConsole
from models.errors import DomainError, StorageUnavailable
from models.pes import TYP_BORD_ANNULATION

pes_app = typer.Typer(help="Titres de recettes pour Hélios (PES V2 avec ASAP).", no_args_is_help=True)
out = SafeConsole()
err = SafeConsole(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]Erreur :[/] {message}", highlight=False)
    raise typer.Exit(code)


def _handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StorageUnavailable as exc:
            _fail(str(exc), 3)
        except DomainError as exc:
            _fail(str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            _fail(f"réglage invalide {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
        except (ValueError, OSError) as exc:
            _fail(str(exc))

    return wrapper


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"date « {text} » invalide : format attendu AAAA-MM-JJ")


@pes_app.command("export")
@_handles_errors
def pes_export(
    issuer: str = typer.Argument(..., help="Code de l'émetteur (CDG62, CDG59, LFN)"),
    on: str | None = typer.Option(None, "--date", help="Date des bordereaux (AAAA-MM-JJ, défaut : aujourd'hui)"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Écrit les bordereaux en attente (titres, puis annulations des avoirs) dans depot/<ÉMETTEUR>/pes_asap/
    et affiche leurs chemins."""
    from mairie.services.channels.pes import export

    report = export(get_settings(), issuer, today=_day(on))
    if as_json:
        _json(
            {
                "issuer": report.issuer,
                "schema_version": report.schema_version,
                "bordereaux": [asdict(b) for b in report.bordereaux],
                "paths": report.paths,
                "skipped": report.skipped,
                "warnings": report.gaps,
            }
        )
        return
    for bordereau in report.bordereaux:
        print(bordereau.path)
    for gap in report.gaps:
        err.print(f"[yellow]Attention :[/] {gap}", highlight=False)
    for skipped in report.skipped:
        err.print(f"[yellow]En attente :[/] {skipped}", highlight=False)
    if not report.bordereaux:
        err.print(f"Aucun titre en attente pour {report.issuer}.", highlight=False)
    else:
        pieces = sum(b.pieces for b in report.bordereaux)
        checked = f", validés par le schéma PES {report.schema_version}" if report.schema_version else ""
        err.print(f"{len(report.bordereaux)} bordereau(x), {pieces} titre(s){checked}.", highlight=False)
        annulations = [b for b in report.bordereaux if b.typ_bord == TYP_BORD_ANNULATION]
        if annulations:
            numbers = ", ".join(f"{b.number}/{b.exercice}" for b in annulations)
            err.print(
                f"Dont {len(annulations)} bordereau(x) d'annulation-réduction (n° {numbers}, numérotés à part) : "
                f"{sum(b.pieces for b in annulations)} titre(s) d'annulation des avoirs.",
                highlight=False,
            )


def _acquit_json(report: Any) -> dict[str, Any]:
    return {
        "issuer": report.issuer,
        "file": report.file_name,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "reasons": {str(k): v for k, v in report.reasons.items()},
        "pj_rejected": report.pj_rejected,
        "unknown": report.unknown,
        "resend": report.resend,
    }


def _print_acquit(report: Any) -> None:
    for number in report.accepted:
        out.print(f"{report.issuer} : bordereau {number} accepté par Hélios")
    for number in report.rejected:
        out.print(f"[red]{report.issuer} : bordereau {number} rejeté[/] : {' ; '.join(report.reasons.get(number, []))}")
    for pj in report.pj_rejected:
        out.print(f"[red]PJ rejetée[/] {pj}")
    for unknown in report.unknown:
        out.print(f"[yellow]{unknown}[/]")
    if report.resend:
        out.print(f"Titres à renvoyer au prochain export : {', '.join(report.resend)}")


@pes_app.command("acquit")
@_handles_errors
def pes_acquit(
    file: Path = typer.Argument(..., help="Le PES_ACQUIT reçu d'Hélios (XML)"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Importe l'acquit d'Hélios : bordereau accepté, ou rejeté avec ses motifs (tâche opérateur)."""
    from mairie.services.channels.pes import import_acquit
    from mairie.services.mail import dispatch

    if not file.is_file():
        _fail(f"fichier « {file} » introuvable")
    report = import_acquit(get_settings(), file.read_bytes(), source=file.name)
    dispatch(get_settings())
    if as_json:
        _json(_acquit_json(report))
        return
    _print_acquit(report)


@pes_app.command("acquits")
@_handles_errors
def pes_acquits(as_json: bool = typer.Option(False, "--json", help="Sortie JSON")) -> None:
    """Importe les acquits déposés dans depot/<ÉMETTEUR>/pes_asap/acquits/ (dossier surveillé)."""
    from mairie.services.channels.pes import import_acquit_folder
    from mairie.services.mail import dispatch

    results = import_acquit_folder(get_settings())
    dispatch(get_settings())
    if as_json:
        _json(
            [
                {
                    "file": r.name,
                    "moved_to": r.moved_to,
                    "error": r.error,
                    "acquit": _acquit_json(r.report) if r.report else None,
                }
                for r in results
            ]
        )
        return
    if not results:
        out.print("Aucun acquit en attente.")
    for result in results:
        if result.report is not None:
            _print_acquit(result.report)
        else:
            out.print(f"[red]{result.name}[/] non importé : {result.error} (déplacé dans {result.moved_to})")
