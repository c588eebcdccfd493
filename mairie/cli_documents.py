"""`mairie documents …`: render sample documents so an operator or a designer can review a template.

Mounted by the main CLI as `app.add_typer(documents_app, name="documents")`. Bad input gets a plain
message and exit status 2, never a traceback.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from pydantic import ValidationError

from documents import render_avoir, render_convention, render_devis, render_facture
from documents.data import Issuer
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture
from mairie.settings import get_settings
from mairie.terminal import SafeConsole
from models.errors import DomainError

documents_app = typer.Typer(help="Documents PDF : devis, convention, factures et avoirs.", no_args_is_help=True)
SAMPLE_KINDS = ("devis", "convention", "facture", "avoir")

out = SafeConsole()
err = SafeConsole(stderr=True)


@documents_app.callback()
def documents() -> None:
    """Documents PDF : devis, convention, factures et avoirs."""


def _fail(message: str) -> None:
    err.print(f"[bold red]Erreur :[/] {message}", highlight=False)
    raise typer.Exit(2)


def _issuers(department: str) -> tuple[Issuer, Issuer]:
    settings = get_settings()
    cdg = settings.cdg_for_department(department)
    if cdg is None:
        _fail(f"département « {department} » non desservi : 59 (Nord) ou 62 (Pas-de-Calais)")
        raise AssertionError  # unreachable: _fail exits
    return Issuer.from_identity(settings.syndicat), Issuer.from_identity(cdg)


def _render(kind: str, syndicat: Issuer, cdg: Issuer, *, cdg_side: bool, draft: bool) -> bytes:
    if kind == "devis":
        return render_devis(sample_devis(syndicat, cdg, support=cdg_side))
    if kind == "facture":
        return render_facture(sample_facture(syndicat, cdg, support=cdg_side))
    if kind == "avoir":
        return render_avoir(sample_avoir(syndicat, cdg))
    return render_convention(sample_convention(syndicat, cdg, signed=not draft))


def _check_out(path: Path) -> None:
    if path.suffix.lower() != ".pdf":
        _fail(f"le fichier de sortie doit se terminer par .pdf : « {path} »")
    if not path.parent.is_dir():
        _fail(f"le dossier « {path.parent} » n'existe pas")
    if path.is_dir():
        _fail(f"« {path} » est un dossier")


@documents_app.command("sample")
def sample(
    kind: str = typer.Argument(..., help="devis | convention | facture | avoir", show_default=False),
    out_file: Path = typer.Option(..., "--out", "-o", help="Fichier PDF à écrire.", show_default=False),
    cdg_side: bool = typer.Option(False, "--cdg", help="Devis ou facture du Centre de gestion (accompagnement)."),
    draft: bool = typer.Option(False, "--projet", help="Convention non signée, marquée « PROJET »."),
    department: str = typer.Option("62", "--departement", help="Département de la collectivité (59 ou 62)."),
) -> None:
    """Écrit un document d'exemple (commune réelle du Pas-de-Calais, grille tarifaire du 10 juillet 2025)."""
    kind = kind.strip().lower()
    if kind not in SAMPLE_KINDS:
        _fail(f"type de document inconnu « {kind} » ; types acceptés : {', '.join(SAMPLE_KINDS)}")
    if cdg_side and kind not in ("devis", "facture"):
        _fail("--cdg ne s'applique qu'à un devis ou une facture")
    if draft and kind != "convention":
        _fail("--projet ne s'applique qu'à la convention")
    _check_out(out_file)
    try:
        syndicat, cdg = _issuers(department)
        pdf = _render(kind, syndicat, cdg, cdg_side=cdg_side, draft=draft)
        out_file.write_bytes(pdf)
    except DomainError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"réglage invalide {'.'.join(str(p) for p in first['loc'])} : {first['msg']}")
    except OSError as exc:
        _fail(f"écriture impossible de « {out_file} » : {exc.strerror or exc}")
    digest = hashlib.sha256(pdf).hexdigest()
    out.print(f"{kind} écrit dans {out_file} ({len(pdf) / 1024:.0f} Ko, SHA-256 {digest})", highlight=False)
