"""The `mairie` command line (Typer + Rich). Bad input gets a plain message and exit status 2, never
a traceback; nothing is written when a command fails."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypedDict, TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table

from mairie.formatting import PARIS, euros, number
from mairie.presenters import eligibility_json, preview_json
from mairie.settings import Settings, get_settings
from mairie.stack import StackError
from mairie.terminal import SafeConsole, quiet_prefect_client_services
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

out = SafeConsole()
err = SafeConsole(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


@app.callback()
def _before_every_command() -> None:
    """Before any command: no Prefect client warning reaches the user (`mairie.terminal`)."""
    quiet_prefect_client_services()


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]Erreur :[/] {message}", highlight=False)
    raise typer.Exit(code)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain, settings and storage errors into a message and a non-zero exit status."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StorageUnavailable as exc:
            fail(str(exc), 3)
        except StackError as exc:
            fail(str(exc), 4)
        except DomainError as exc:
            fail(str(exc))
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first["msg"]).removeprefix("Value error, ")
            if not first["loc"]:  # a refusal of the whole configuration lists the settings itself
                fail(message)
            # the name to set: MAIRIE_CDG62__IBAN for an error on settings.cdg62.iban
            where = "MAIRIE_" + "__".join(str(p) for p in first["loc"]).upper()
            fail(f"réglage invalide {where} : {message}")
        except ValueError as exc:
            fail(str(exc))

    return wrapper


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
    if report.seal_certificates:
        out.print(
            "[yellow]Certificats de cachet de TEST (développement, sans valeur probante) :[/] "
            + ", ".join(report.seal_certificates),
            highlight=False,
        )
    _say_what_to_fill(report.settings_to_fill)


def _say_what_to_fill(names: list[str]) -> None:
    """In development, the example identities the documents print and production would refuse."""
    if names:
        out.print(
            f"[yellow]Identités d'exemple (développement) : {len(names)} réglages à renseigner avant la production[/] "
            f"(refusés hors développement) : {', '.join(names)}",
            highlight=False,
        )


@app.command()
@handles_errors
def eligibility(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    on: str | None = typer.Option(None, "--date", help="Date (AAAA-MM-JJ), par défaut aujourd'hui"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Éligibilité, strate et tarif d'accompagnement d'une collectivité."""
    from mairie.services.assessment import assess_named

    assessment = assess_named(settings(), identifier, parse_day(on))
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
    for on_quote in e.on_quote:
        out.print(f"[yellow]Sur devis :[/] {on_quote.message}")


@quote_app.command("preview")
@handles_errors
def quote_preview(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    items: list[str] = typer.Argument(..., help="Articles CODE=QUANTITÉ, ex. messagerie-5go=3"),
    on: str | None = typer.Option(None, "--date", help="Date du devis (AAAA-MM-JJ)"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Aperçu des deux devis (services du syndicat, accompagnement du CDG), sans rien enregistrer."""
    from mairie.services.assessment import preview_quotes

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
    siret: str | None = typer.Option(
        None, "--siret", help="SIRET de l'établissement facturé, en général la mairie (facultatif s'il est connu)"
    ),
    address: str | None = typer.Option(None, "--address", help="Adresse de facturation (par défaut : Mairie)"),
    postcode: str | None = typer.Option(None, "--postcode", help="Code postal de facturation"),
    city: str | None = typer.Option(None, "--city", help="Commune de l'adresse de facturation"),
    chorus_service_code: str | None = typer.Option(None, "--chorus-service-code", help="Code service Chorus Pro"),
    commitment_number: str | None = typer.Option(None, "--commitment-number", help="Numéro d'engagement"),
    again: bool = typer.Option(
        False, "--again", help="Déposer volontairement une seconde demande identique à une demande en cours"
    ),
    in_process: bool = typer.Option(False, "--in-process", help="Traiter ici, sans serveur Prefect"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Dépose une demande et lance son traitement (via Prefect si un serveur est configuré). Une demande
    identique à une demande en cours renvoie celle-ci (--again pour en déposer une seconde)."""
    from mairie.schemas import RequestForm, validation_message
    from mairie.submission import submit

    basket = parse_basket(items)
    try:
        form = RequestForm.model_validate(
            {
                "collectivity": identifier,
                "items": [{"code": b.code, "quantity": b.quantity} for b in basket],
                "signatory_name": signatory_name,
                "signatory_email": signatory_email,
                "signatory_capacity": signatory_capacity,
                "siret": siret,
                "address_line": address,
                "postcode": postcode,
                "city": city,
                "chorus_service_code": chorus_service_code,
                "commitment_number": commitment_number,
                "allow_duplicate": again,
            }
        )
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc)) from None
    result = submit(settings(), form, channel="cli", in_process=True if in_process else None)
    data = {
        "id": result.request.request_id,
        "reference": result.request.reference,
        "status": result.request.status,
        "collectivity": result.request.collectivity,
        "run_id": result.run_id,
        "run_url": result.run_url,
        "result": result.result,
        "existing": result.request.existing,
    }
    if as_json:
        print_json(data)
        return
    if result.request.existing:
        out.print(
            f"Une demande identique est déjà en cours : {data['reference']} ({data['status']}) ; "
            "--again pour en déposer une seconde"
        )
        return
    out.print(f"Demande [bold]{data['reference']}[/] ({data['collectivity']}) : {data['status']}")
    if result.run_id:
        out.print(f"Traitement lancé : run {result.run_id}")
        if result.run_url:
            out.print(f"Suivi : {result.run_url}")
    elif result.result:
        for key in ("quotes", "convention", "approval_url"):
            if key in result.result:
                out.print(f"{key} : {result.result[key]}")


@requests_app.command("list")
@handles_errors
def requests_list(as_json: bool = typer.Option(False, "--json", help="Sortie JSON")) -> None:
    """Les demandes et leur état, les plus récentes d'abord."""
    from mairie.services.intake import list_requests

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


# --------------------------------------------------------------------------------------------------
# Mail server, documents (commands written beside their packages)
# --------------------------------------------------------------------------------------------------

from mairie.cli_documents import documents_app  # noqa: E402
from mairie.cli_mail import mail_list, mail_server  # noqa: E402
from mairie.cli_pes import pes_app  # noqa: E402
from mairie.cli_web import web  # noqa: E402

app.add_typer(documents_app, name="documents")
app.command("mail-server")(mail_server)
app.command("web")(web)
mail_app = typer.Typer(help="Dossier du serveur SMTP local.", no_args_is_help=True)
mail_app.command("list")(mail_list)
app.add_typer(mail_app, name="mail")
app.add_typer(pes_app, name="pes")


# --------------------------------------------------------------------------------------------------
# Lifecycle view
# --------------------------------------------------------------------------------------------------

collectivity_app = typer.Typer(help="Collectivités.", no_args_is_help=True)
app.add_typer(collectivity_app, name="collectivity")


@collectivity_app.command("show")
@handles_errors
def collectivity_show(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Toute l'histoire d'une collectivité : demandes, devis, convention, commande, abonnement, factures."""
    from mairie.services.story import collectivity_story

    story = collectivity_story(settings(), identifier)
    if as_json:
        print_json(story)
        return
    from mairie.cli_story import print_story

    print_story(out, story)


@collectivity_app.command("billing")
@handles_errors
def collectivity_billing(
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET"),
    siret: str | None = typer.Option(None, "--siret", help="SIRET de l'établissement facturé (la mairie)"),
    address: str | None = typer.Option(None, "--address", help="Adresse de facturation"),
    postcode: str | None = typer.Option(None, "--postcode", help="Code postal de facturation"),
    city: str | None = typer.Option(None, "--city", help="Commune de l'adresse de facturation"),
    service_code: str | None = typer.Option(None, "--service-code", help="Code service Chorus Pro"),
    operator: str = typer.Option(..., "--operator", help="Opérateur qui corrige"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Corrige l'identité de facturation d'une collectivité ; les premières factures en attente partent."""
    from mairie.services.buyers import BillingUpdate, update_billing
    from models.clock import paris_today

    update = BillingUpdate(siret=siret, address_line=address, postcode=postcode, city=city, service_code=service_code)
    identity = update_billing(settings(), identifier, update, operator=operator, today=paris_today())
    data = {
        "siret": identity.siret,
        "address_line": identity.address_line,
        "postcode": identity.postcode,
        "city": identity.city,
        "service_code": identity.service_code,
    }
    if as_json:
        print_json(data)
        return
    where = f"{identity.address_line}, {identity.postcode} {identity.city}"
    out.print(f"Facturation : SIRET {identity.siret or '—'}, {where}")


# --------------------------------------------------------------------------------------------------
# Orders, conventions
# --------------------------------------------------------------------------------------------------

order_app = typer.Typer(help="Bons de commande (remise au syndicat).", no_args_is_help=True)
app.add_typer(order_app, name="order")


@order_app.command("acknowledge")
@handles_errors
def order_acknowledge(number: str, by: str = typer.Option(..., "--by", help="Qui accuse réception")) -> None:
    """Accuse réception d'un bon de commande (une seule fois)."""
    from mairie.services.provisioning import acknowledge

    result = acknowledge(settings(), number, by)
    out.print(f"{result.number} : {result.status}" + ("" if result.created else " (déjà accusé)"))


@order_app.command("deliver")
@handles_errors
def order_deliver(
    number: str,
    by: str = typer.Option(..., "--by", help="Qui a livré"),
    on: str | None = typer.Option(None, "--date", help="Date de livraison (AAAA-MM-JJ)"),
    items: list[str] = typer.Option([], "--item", help="Code d'article livré (tous si absent)"),
) -> None:
    """Marque des articles (ou tous) livrés ; à la livraison complète, premières factures."""
    from mairie.services.mail import dispatch
    from mairie.services.provisioning import deliver

    result = deliver(settings(), number, by, parse_day(on), items or None)
    dispatch(settings())
    out.print(f"{result.order} : {result.status} ; livrés : {', '.join(result.delivered) or 'aucun'}")
    for invoice in result.invoices:
        out.print(f"Facture {invoice.number} ({invoice.issuer}) : {euros(invoice.total_ttc)}")


convention_app = typer.Typer(help="Conventions.", no_args_is_help=True)
app.add_typer(convention_app, name="convention")


@convention_app.command("countersign")
@handles_errors
def convention_countersign(
    reference: str,
    party: str = typer.Option(..., "--party", help="cdg, syndicat ou collectivity"),
    name: str = typer.Option(..., "--name", help="Nom du signataire"),
    capacity: str = typer.Option(..., "--capacity", help="Qualité du signataire"),
    operator: str = typer.Option(..., "--operator", help="Opérateur qui enregistre"),
    certified: bool = typer.Option(False, "--certified", help="Habilitation du signataire vérifiée"),
) -> None:
    """Enregistre la signature d'une partie par un opérateur (tracée comme telle)."""
    from mairie.services.approvals import Decision, countersign_as_operator
    from mairie.services.followup import after_decision

    result = countersign_as_operator(settings(), reference, party, operator, Decision(name, capacity, certified))
    after_decision(settings(), result.in_force)  # emails, and the handoff when in force, whatever Prefect does
    state = "déjà décidé" if result.already_decided else result.status
    out.print(f"{result.convention} : {result.party} {state}" + (" — convention en vigueur" if result.in_force else ""))


@convention_app.command("handoff")
@handles_errors
def convention_handoff(reference: str = typer.Argument(..., help="Référence de la convention (…-CONV-…)")) -> None:
    """Remet tout de suite au syndicat une convention en vigueur (bon de commande), sans attendre le suivi."""
    from mairie.services.followup import hand_off_now

    order = hand_off_now(settings(), reference)
    out.print(f"Bon de commande {order.number} : {order.status}" + ("" if order.created else " (déjà émis)"))


# --------------------------------------------------------------------------------------------------
# Renewal, payments, credit notes
# --------------------------------------------------------------------------------------------------

campaign_app = typer.Typer(help="Campagne de renouvellement.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")


@campaign_app.command("exclude")
@handles_errors
def campaign_exclude(
    year: int = typer.Argument(..., help="Année de la campagne"),
    identifier: str = typer.Argument(..., help="Code INSEE, SIREN ou SIRET de la collectivité"),
    reason: str = typer.Option("", "--reason", help="Motif de l'exclusion"),
    operator: str = typer.Option(..., "--operator", help="Opérateur qui décide"),
    include: bool = typer.Option(False, "--include", help="Remettre la collectivité dans la campagne"),
) -> None:
    """Exclut une collectivité de la campagne d'une année avant son émission (ou l'y remet)."""
    from mairie.services.renewal import exclude_from_campaign

    done = exclude_from_campaign(settings(), year, identifier, reason=reason, operator=operator, exclude=not include)
    what = "exclue de" if done.excluded else "remise dans"
    already = "" if done.changed else " (déjà)"
    out.print(f"{done.collectivity} ({done.siren}) {what} la campagne {done.year}{already}")


@app.command()
@handles_errors
def renew(
    year: int = typer.Argument(..., help="Année de renouvellement"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Revue seulement : rien n'est émis"),
    exclude: list[str] = typer.Option([], "--exclude", help="SIREN ou code INSEE à exclure"),
    yes: bool = typer.Option(False, "--yes", help="Émettre sans confirmation interactive"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Campagne de renouvellement : revue (--dry-run), puis émission des factures après confirmation."""
    from rich.progress import Progress

    from mairie.services import renewal

    if not 2000 <= year <= 2100:
        raise InvalidInput(f"année {year} invalide")
    with Progress(console=err, transient=True) as progress:
        bar = progress.add_task("Calcul de la revue", total=None)
        review = renewal.review(settings(), year, progress=lambda i, n: progress.update(bar, completed=i, total=n))
    if as_json and dry_run:
        print_json(_review_json(review))
        return
    _print_review(review)
    if dry_run:
        return
    if not yes and not typer.confirm(f"Émettre les factures de renouvellement {year} ?", default=False):
        out.print("Rien n'est émis.")
        raise typer.Exit(1)
    with Progress(console=err, transient=True) as progress:
        bar = progress.add_task("Émission des factures", total=len(review.lines))
        result = renewal.issue(
            settings(), year, exclude=exclude, progress=lambda i, n: progress.update(bar, completed=i, total=n)
        )
    from mairie.services.mail import dispatch

    sent = dispatch(settings())
    out.print(
        f"Factures émises : {len(result.issued)} ; déjà émises : {len(result.existing)} ; "
        f"exclues : {len(result.excluded)} ; courriels envoyés : {len(sent.sent)}"
    )
    for pending in result.pending:
        out.print(f"[yellow]Montant à saisir :[/] {pending}")


def _review_json(review: Any) -> dict[str, Any]:
    return {
        "year": review.year,
        "renewal_date": review.renewal_date.isoformat(),
        "grid": review.grid,
        "collectivities": [
            {
                "name": line.collectivity,
                "siren": line.siren,
                "last_year": {k: (None if v is None else f"{v:.2f}") for k, v in line.last_year.items()},
                "this_year": {k: f"{v:.2f}" for k, v in line.this_year.items()},
                "reasons": list(line.reasons),
                "pending": list(line.pending),
                "already_issued": list(line.already_issued),
            }
            for line in review.lines
        ],
        "totals": {k: f"{v:.2f}" for k, v in review.totals().items()},
        "last_year_totals": {k: f"{v:.2f}" for k, v in review.last_totals().items()},
    }


def _print_review(review: Any) -> None:
    table = Table(
        title=f"Renouvellement {review.year} (au {review.renewal_date:%d/%m/%Y}, grille {review.grid})",
        title_justify="left",
    )
    for column in ("Collectivité", "Émetteur", str(review.year - 1), str(review.year), "Raisons"):
        table.add_column(column, justify="right" if column.isdigit() else "left")
    for line in review.lines:
        for issuer in sorted(set(line.this_year) | {k for k, v in line.last_year.items() if v is not None}):
            before, after = line.last_year.get(issuer), line.this_year.get(issuer)
            table.add_row(
                line.collectivity,
                issuer,
                euros(before) if before is not None else "—",
                euros(after) if after is not None else "—",
                " ; ".join(line.reasons),
            )
    out.print(table)
    for issuer, total in sorted(review.totals().items()):
        out.print(f"Total {issuer} : {euros(total)} (année précédente : {euros(review.last_totals().get(issuer, 0))})")


payments_app = typer.Typer(help="Paiements.", no_args_is_help=True)
app.add_typer(payments_app, name="payments")


@payments_app.command("record")
@handles_errors
def payments_record(
    number: str = typer.Argument(..., help="Numéro de facture"),
    amount: str = typer.Argument(..., help="Montant payé (ex. 80,50)"),
    on: str = typer.Option(..., "--date", help="Date du paiement (AAAA-MM-JJ)"),
    reference: str | None = typer.Option(None, "--reference", help="Référence du virement"),
    by: str = typer.Option("opérateur", "--by", help="Qui enregistre le paiement"),
) -> None:
    """Enregistre un paiement (partiel possible ; au-delà du reste à payer, refusé)."""
    from mairie.services.payments import record_payment
    from models.money import parse_amount

    result = record_payment(
        settings(), number, parse_amount(amount), parse_day(on), reference=reference, recorded_by=by
    )
    out.print(f"{result.invoice} : {result.status} ; reste à payer {result.amount_due:.2f} €")


@payments_app.command("import")
@handles_errors
def payments_import(
    path: str = typer.Argument(..., help="Fichier CSV"),
    by: str = typer.Option("import", "--by", help="Qui importe le fichier"),
) -> None:
    """Importe des paiements : colonnes invoice_number, amount, paid_on, reference (tout ou rien ; un
    paiement déjà enregistré — même facture, référence, date et montant — ne l'est pas deux fois)."""

    from mairie.services.payments import import_payments, read_payments_file

    rows = import_payments(settings(), read_payments_file(Path(path)), recorded_by=by)
    already = [r.line for r in rows if r.already_recorded]
    out.print(f"{len(rows) - len(already)} paiements enregistrés.")
    if already:
        out.print(f"{len(already)} déjà enregistrés, ignorés (lignes {', '.join(map(str, already))}).")


invoices_app = typer.Typer(help="Factures.", no_args_is_help=True)
app.add_typer(invoices_app, name="invoices")


@invoices_app.command("credit")
@handles_errors
def invoices_credit(
    number: str = typer.Argument(..., help="Numéro de la facture à annuler"),
    reason: str = typer.Option(..., "--reason", help="Motif de l'avoir"),
    on: str | None = typer.Option(None, "--date", help="Date de l'avoir (AAAA-MM-JJ)"),
) -> None:
    """Émet un avoir qui annule une facture, dans la séquence de l'émetteur."""
    from mairie.services.credit_notes import credit_invoice

    result = credit_invoice(settings(), number, reason, parse_day(on))
    out.print(f"Avoir {result.credit_note} sur {result.invoice} : {result.total_ttc:.2f} €")


# --------------------------------------------------------------------------------------------------
# The whole stack
# --------------------------------------------------------------------------------------------------


# `up` is longer than the other commands: most of it is its options, each a documented flag.
@app.command()
@handles_errors
def up(
    prefect_host: str = typer.Option("127.0.0.1", "--prefect-host", help="Adresse de l'API et de l'interface Prefect"),
    prefect_port: int = typer.Option(4200, "--prefect-port", help="Port de l'API et de l'interface Prefect"),
) -> None:
    """Démarre tout : serveur et interface Prefect, déploiements, page d'approbation, serveur SMTP local."""
    import os

    from mairie import stack
    from mairie.services.sealing import check_at_startup

    s = settings()
    check_at_startup(s)  # outside development, every issuer's sealing certificate can seal
    stack.check_exposure(prefect_host, s.prefect_auth_string)
    with stack.single_instance(s) as lock:
        for what, host, port in (("Prefect", prefect_host, prefect_port), ("SMTP", s.smtp_host, s.smtp_port)):
            if not stack.port_free(host, port):
                raise stack.StackError(f"le port {port} ({what}) est déjà pris sur {host} : choisissez-en un autre.")
        chorus_env = stack.chorus_sandbox_env(s)  # development without a Chorus Pro API: the local sandbox
        if chorus_env:
            if not stack.port_free("127.0.0.1", stack.SANDBOX_PORT):
                raise stack.StackError(f"le port {stack.SANDBOX_PORT} (bac à sable Chorus Pro) est déjà pris")
            os.environ.update(chorus_env)
            get_settings.cache_clear()
            s = settings()
        urls = stack.urls(s, prefect_host, prefect_port)
        env = stack.prefect_env(s, urls.prefect_api, s.prefect_auth_string)
        os.environ.update({k: v for k, v in env.items() if k.startswith("PREFECT_")})  # before Prefect is imported
        logs = s.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        from mairie.services.setup import initialise
        from notifications.mailserver import LoopbackMailServer

        out.print("Initialisation de la base…")
        _say_what_to_fill(initialise(s).settings_to_fill)
        mail = LoopbackMailServer(s.mail_path, host=s.smtp_host, port=s.smtp_port).start()
        sandbox = stack.start_chorus_sandbox(s) if chorus_env else None
        prefect = web = quotes = None
        try:
            out.print("Démarrage du serveur Prefect…")
            prefect = stack.start_prefect_server(
                s, prefect_host, prefect_port, s.prefect_auth_string, logs / "prefect-server.log"
            )
            stack.wait_until(
                lambda: stack.http_ok(f"{urls.prefect_api}/health", s.prefect_auth_string),
                "le serveur Prefect",
                90,
                prefect,
            )
            quotes = stack.start_quote_worker(env, logs / "quote-worker.log")
            web = stack.start_web(s, env, logs / "web.log")
            stack.wait_until(
                lambda: stack.http_ok(f"{s.public_url.rstrip('/')}/health"), "la page d'approbation", 30, web
            )
            stack.write_lock_info(
                lock, urls, Path(env["PREFECT_RESULTS_LOCAL_STORAGE_PATH"]), sandbox.url if sandbox else None
            )
            try:  # a failed run of any deployment emails the operators, with its link
                stack.ensure_failure_alerts(s)
            except Exception as exc:  # the stack runs without it; say so
                err.print(f"[yellow]Alerte des runs en échec non créée :[/] {exc}")
            out.print(
                f"\n[bold green]Mairie Connectée tourne.[/]\n"
                f"  Interface Prefect      : {urls.prefect_ui}\n"
                f"  Page d'approbation     : {urls.approval}\n"
                f"  SMTP local             : {urls.smtp} → {urls.mail_folder}\n"
                + (f"  Chorus Pro (bac à sable): {sandbox.url} (double de test local)\n" if sandbox else "")
                + f"  Données                : {urls.data_dir}\n"
                f"  Journaux               : {logs}\n"
                "Dans un autre terminal : « mairie demo ». Ctrl-C pour tout arrêter.\n"
            )
            from prefect import serve

            serve(*stack.deployments(s), print_starting_message=False)
        except KeyboardInterrupt:
            pass
        finally:
            out.print("Arrêt…")
            stack.stop(web)
            stack.stop(quotes)
            stack.stop(prefect)
            if sandbox is not None:
                sandbox.stop()
            mail.stop()
            out.print("Arrêté.")


@app.command("prefect-alerts")
@handles_errors
def prefect_alerts() -> None:
    """Crée (ou met à jour) l'automatisation Prefect qui écrit aux opérateurs quand un run échoue ou est
    interrompu, avec son lien (via la page d'approbation : POST /alertes/run-en-echec)."""
    from mairie import stack

    s = settings()
    with stack.prefect_of_running_stack(s) as api:
        if not api:
            raise stack.StackError("aucun serveur Prefect : définissez PREFECT_API_URL ou lancez « mairie up »")
        automation = stack.ensure_failure_alerts(s)
    out.print(f"Automatisation « {stack.ALERT_AUTOMATION} » ({automation}) → {stack.alerts_url(s)}")


@app.command("pool")
@handles_errors
def pool() -> None:
    """Crée (ou met à jour) le pool de workers Prefect de la campagne de renouvellement
    (MAIRIE_CAMPAIGN_WORK_POOL, limite MAIRIE_CAMPAIGN_CONCURRENCY) : les lots « renouvellement-lot » y sont
    pris par « prefect worker start --pool … », un par machine."""
    from mairie import stack

    s = settings()
    with stack.prefect_of_running_stack(s) as api:
        if not api:
            raise stack.StackError("aucun serveur Prefect : définissez PREFECT_API_URL ou lancez « mairie up »")
        name, created = stack.ensure_campaign_pool(s)
        stack.ensure_lost_slice_detection(s)
    action = "créé" if created else "mis à jour"
    out.print(f"Pool « {name} » {action} (type process, au plus {s.campaign_concurrency} lots à la fois).")
    out.print(
        f"Automatisation « {stack.LOST_SLICES_AUTOMATION} » : un lot resté {s.campaign_lost_after_s} s sans "
        "démarrer ou sans battement de cœur (machine perdue) est interrompu, et la campagne le relance."
    )
    out.print(f"Sur chaque machine : prefect worker start --pool {name} --type process --limit 1")


@app.command("quote-worker")
@handles_errors
def quote_worker(
    limit: int = typer.Option(4, "--limit", min=1, max=32, help="Demandes traitées en même temps"),
    status_port: int | None = typer.Option(
        None, "--status-port", help="Port (127.0.0.1) d'une page d'état GET /status, pour une sonde de santé"
    ),
) -> None:
    """Sert la tâche Prefect « emission-devis » : les devis d'une demande éligible partent en une seconde.

    Lancé par « mairie up » ; en production, un service à côté du worker Prefect (deploy/systemd)."""
    from mairie import stack
    from mairie.services.sealing import check_at_startup

    s = settings()
    check_at_startup(s)
    out.print("Serveur de devis : préchauffage…")
    stack.serve_quote_tasks(s, limit=limit, status_port=status_port)


@app.command()
@handles_errors
def demo() -> None:
    """Fait traverser tout le cycle de vie à une vraie commune du Pas-de-Calais (pile de « mairie up »)."""
    from mairie import stack
    from mairie.demo import DemoError, run_demo

    s = settings()
    with stack.prefect_of_running_stack(s) as api:
        if not api:
            raise stack.StackError("aucune pile ne tourne pour ce dossier de données : lancez d'abord « mairie up »")
        try:
            run_demo(s, out)
        except DemoError as exc:
            raise stack.StackError(f"la démonstration s'est arrêtée : {exc}") from None
    out.print("\n[bold green]Démonstration terminée.[/] Ouvrez l'interface Prefect et le dossier des courriels.")


@request_app.command("requote")
@handles_errors
def request_requote(
    reference: str = typer.Argument(..., help="Référence de la demande (MC-DEM-…)"),
    operator: str = typer.Option(..., "--operator", help="Opérateur qui émet la nouvelle version"),
    amounts: list[str] = typer.Option([], "--amount", help="Montant sur devis CODE=MONTANT (ex. stockage-go=1380)"),
    support: str | None = typer.Option(None, "--support", help="Montant de l'accompagnement (sur devis)"),
) -> None:
    """Émet une nouvelle version des devis et de la convention ; les liens précédents ne signent plus rien."""
    from mairie.schemas import OperatorAmounts
    from mairie.services.intake import request_id_of
    from mairie.services.mail import dispatch
    from mairie.services.quotes import requote
    from models.money import parse_amount

    items = {}
    for raw in amounts:
        code, sep, value = raw.partition("=")
        if not sep:
            raise InvalidInput(f"« {raw} » : attendu CODE=MONTANT")
        items[code.strip()] = parse_amount(value)
    new = OperatorAmounts(
        item_amounts=items, support_amount=parse_amount(support) if support else None, operator=operator
    )
    result = requote(settings(), request_id_of(settings(), reference), parse_day(None), operator, new)
    dispatch(settings())
    out.print(f"Nouvelle version : {', '.join(q.number for q in result.quotes)} ; convention {result.convention}")


class UndeliveredMail(TypedDict):
    """One line of `mairie mail undelivered` (and of its JSON)."""

    id: int | None
    kind: str
    to: list[str]
    subject: str
    attempts: int
    error: str | None


@mail_app.command("undelivered")
@handles_errors
def mail_undelivered(as_json: bool = typer.Option(False, "--json", help="Sortie JSON")) -> None:
    """Les courriels non remis (refus définitif du serveur ou trop d'essais), avec la réponse du serveur."""
    from mairie.database import unit_of_work
    from notifications.outbox import undelivered

    with unit_of_work(settings()) as uow:
        rows: list[UndeliveredMail] = [
            {
                "id": r.id,
                "kind": r.kind,
                "to": r.recipients,
                "subject": r.subject,
                "attempts": r.attempts,
                "error": r.last_error,
            }
            for r in undelivered(uow.session)
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="Courriels non remis", title_justify="left")
    for column in ("Id", "Type", "Destinataires", "Objet", "Essais", "Réponse du serveur"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]), row["kind"], ", ".join(row["to"]), row["subject"], str(row["attempts"]), row["error"] or ""
        )
    out.print(table)


@mail_app.command("retry")
@handles_errors
def mail_retry(message_id: int = typer.Argument(..., help="Id du courriel (voir « mairie mail undelivered »)")) -> None:
    """Remet un courriel non remis dans la file d'envoi (après correction de l'adresse ou du relais)."""
    from mairie.services.mail import retry_undelivered

    report = retry_undelivered(settings(), message_id)
    out.print(f"Courriel {message_id} remis en file ; envoyés : {len(report.sent)}")


from mairie.cli_chorus import chorus_app, reminders_app  # noqa: E402

app.add_typer(chorus_app, name="chorus")
app.add_typer(reminders_app, name="reminders")
