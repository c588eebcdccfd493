"""The `mairie` command line (Typer + Rich). Bad input gets a plain message and exit status 2, never
a traceback; nothing is written when a command fails."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from mairie.formatting import PARIS, euros, number
from mairie.presenters import eligibility_json, preview_json
from mairie.settings import Settings, get_settings
from models.errors import DomainError, InvalidInput, StorageUnavailable
from models.pricing import BasketLine

app = typer.Typer(
    name="mairie",
    help="Back office du Pack Mairie Connectée : demandes, devis, conventions, facturation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
quote_app = typer.Typer(help="Devis.", no_args_is_help=True)
app.add_typer(quote_app, name="quote")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]Erreur :[/] {message}", highlight=False)
    raise typer.Exit(code)


def handles_errors(func: F) -> F:
    """Turn domain, settings and storage errors into a message and a non-zero exit status."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StorageUnavailable as exc:
            fail(str(exc), 3)
        except DomainError as exc:
            fail(str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            fail(f"réglage invalide {where}: {first['msg']}")
        except ValueError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    return get_settings()


def parse_day(text: str | None) -> date:
    if text is None:
        return datetime.now(PARIS).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"date « {text} » invalide : format attendu AAAA-MM-JJ (ex. 2026-01-15)") from None


def parse_basket(items: list[str]) -> list[BasketLine]:
    """`CODE=QTY` arguments → basket lines (quantity a positive integer)."""
    basket = []
    for raw in items:
        code, sep, qty = raw.partition("=")
        if not sep or not code.strip():
            raise InvalidInput(f"« {raw} » : attendu CODE=QUANTITÉ, par exemple messagerie-5go=3")
        qty = qty.strip()
        if not qty.isdigit() or int(qty) < 1:
            raise InvalidInput(f"« {raw} » : la quantité doit être un entier positif (1, 2, 3…)")
        basket.append(BasketLine(code.strip(), int(qty)))
    return basket


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command()
@handles_errors
def init() -> None:
    """Crée ou met à jour la base (migrations), charge les émetteurs, les communes et les grilles."""
    from mairie.services.setup import initialise

    report = initialise(settings())
    out.print(f"Base : {report.database}")
    out.print(
        f"Émetteurs mis à jour : {report.issuers} · communes : {report.communes} · populations : "
        f"{report.populations} · EPCI : {report.epcis}"
    )
    grids = ", ".join(report.grids_added) or "aucune nouvelle"
    out.print(f"Grilles tarifaires ajoutées : {grids}")


@app.command()
@handles_errors
def eligibility(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    on: str | None = typer.Option(None, "--date", help="Date (AAAA-MM-JJ), par défaut aujourd'hui"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Éligibilité, strate et tarif d'accompagnement d'une collectivité."""
    from mairie.services.quoting import assess_collectivity

    assessment = assess_collectivity(settings(), identifier, parse_day(on))
    data = eligibility_json(assessment)
    if as_json:
        print_json(data)
        return
    e = assessment.eligibility
    f = assessment.found
    out.print(f"[bold]{f.name}[/] — {f.kind}, SIREN {f.siren}" + (f", INSEE {f.insee_code}" if f.insee_code else ""))
    if not e.eligible:
        out.print("[bold red]Non éligible[/]")
        for reason in e.reasons:
            out.print(f"  • {reason}")
        raise typer.Exit(1)
    out.print(f"[bold green]Éligible[/] — département {e.department} ({data['department_name']}), {e.cdg}")
    if e.population:
        p = e.population
        vintage = f", millésime {p.vintage}" if p.vintage else ""
        out.print(f"Population : {number(p.value)} habitants ({p.kind_label}{vintage}, {p.source})")
        if data["other_population"]:
            o = data["other_population"]
            kind = "population municipale" if o["kind"] == "municipal" else "population totale"
            out.print(f"            {number(o['value'])} habitants ({kind}, pour information)")
    if e.band:
        out.print(f"Strate : {e.band.label}")
    out.print(f"Accompagnement : {euros(e.support_fee) + ' par an' if e.support_fee is not None else 'sur devis'}")
    for reason in e.on_quote:
        out.print(f"[yellow]Sur devis :[/] {reason.message}")


@quote_app.command("preview")
@handles_errors
def quote_preview(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    items: list[str] = typer.Argument(..., help="Articles CODE=QUANTITÉ, ex. messagerie-5go=3"),
    on: str | None = typer.Option(None, "--date", help="Date du devis (AAAA-MM-JJ)"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Aperçu des deux devis (services du syndicat, accompagnement du CDG), sans rien enregistrer."""
    from mairie.services.quoting import preview_quotes

    basket = parse_basket(items)
    assessment, preview = preview_quotes(settings(), identifier, basket, parse_day(on))
    data = preview_json(assessment, preview)
    if as_json:
        print_json(data)
        return
    f = assessment.found
    out.print(f"[bold]{f.name}[/] — grille du {assessment.grid.effective_from:%d/%m/%Y}, date {assessment.on:%d/%m/%Y}")
    if preview is None:
        out.print("[bold red]Non éligible[/] : " + " ".join(assessment.eligibility.reasons))
        raise typer.Exit(1)
    for quote in preview.quotes:
        table = Table(title=f"Devis {quote.issuer}", title_justify="left", show_lines=False)
        table.add_column("Article")
        table.add_column("Type")
        table.add_column("Qté", justify="right")
        table.add_column("PU TTC", justify="right")
        table.add_column("Total HT", justify="right")
        table.add_column("TVA", justify="right")
        table.add_column("Total TTC", justify="right")
        for line in quote.lines:
            table.add_row(
                line.label,
                line.kind_label,
                str(line.quantity),
                euros(line.unit_price_ttc),
                euros(line.total_ht),
                euros(line.total_vat),
                euros(line.total_ttc),
            )
        table.add_section()
        table.add_row(
            "[bold]Total[/]",
            "",
            "",
            "",
            euros(quote.total_ht),
            euros(quote.total_vat),
            f"[bold]{euros(quote.total_ttc)}[/]",
        )
        out.print(table)
        if quote.vat.exemption_reason:
            out.print(f"  {quote.vat.exemption_reason}")
        for note in quote.notes:
            out.print(f"  [dim]{note}[/]")
    for reason in assessment.eligibility.on_quote:
        out.print(f"[yellow]Sur devis :[/] {reason.message}")
    if preview.pending:
        out.print(f"[yellow]En attente d'un montant opérateur :[/] {', '.join(preview.pending)}")


def main() -> None:  # pragma: no cover
    app()


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------

request_app = typer.Typer(help="Demandes de services.", no_args_is_help=True)
requests_app = typer.Typer(help="Liste des demandes.", no_args_is_help=True)
app.add_typer(request_app, name="request")


@request_app.command("submit")
@handles_errors
def request_submit(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    items: list[str] = typer.Argument(..., help="Articles CODE=QUANTITÉ"),
    signatory_name: str = typer.Option(..., "--signatory-name", help="Nom du signataire"),
    signatory_email: str = typer.Option(..., "--signatory-email", help="Courriel du signataire"),
    signatory_capacity: str = typer.Option("Maire", "--signatory-capacity", help="Qualité du signataire"),
    siret: str | None = typer.Option(None, "--siret", help="SIRET de facturation"),
    chorus_service_code: str | None = typer.Option(None, "--chorus-service-code", help="Code service Chorus Pro"),
    commitment_number: str | None = typer.Option(None, "--commitment-number", help="Numéro d'engagement"),
    in_process: bool = typer.Option(False, "--in-process", help="Traiter ici, sans serveur Prefect"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Dépose une demande et lance son traitement (via Prefect si un serveur est configuré)."""
    from mairie.schemas import RequestForm, validation_message
    from mairie.services.submission import submit

    basket = parse_basket(items)
    try:
        form = RequestForm(
            collectivity=identifier,
            items=[{"code": b.code, "quantity": b.quantity} for b in basket],
            signatory_name=signatory_name,
            signatory_email=signatory_email,
            signatory_capacity=signatory_capacity,
            siret=siret,
            chorus_service_code=chorus_service_code,
            commitment_number=commitment_number,
        )
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None
    result = submit(settings(), form, channel="cli", in_process=True if in_process else None)
    data = {
        "id": result.request.request_id,
        "reference": result.request.reference,
        "status": result.request.status,
        "collectivity": result.request.collectivity,
        "flow_run_id": result.flow_run_id,
        "flow_run_url": result.flow_run_url,
        "result": result.result,
    }
    if as_json:
        print_json(data)
        return
    out.print(f"Demande [bold]{data['reference']}[/] ({data['collectivity']}) : {data['status']}")
    if result.flow_run_id:
        out.print(f"Traitement lancé : run {result.flow_run_id}")
        if result.flow_run_url:
            out.print(f"Suivi : {result.flow_run_url}")
    elif result.result:
        for key in ("quotes", "convention", "approval_url"):
            if key in result.result:
                out.print(f"{key} : {result.result[key]}")


@requests_app.command("list")
@handles_errors
def requests_list(as_json: bool = typer.Option(False, "--json", help="Sortie JSON")) -> None:
    """Les demandes et leur état, les plus récentes d'abord."""
    from mairie.services.requests import list_requests

    rows = list_requests(settings())
    if as_json:
        print_json(rows)
        return
    table = Table(title="Demandes", title_justify="left")
    for column in ("Référence", "Collectivité", "Date", "État", "Devis", "Convention"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["reference"],
            row["collectivity"],
            row["requested_on"],
            row["status_label"],
            ", ".join(row["quotes"]),
            row["convention"] or "",
        )
    out.print(table)


app.add_typer(requests_app, name="requests")
