"""`mairie chorus …` (deposit, sync, status, reissue, sandbox) and `mairie reminders run`."""

from __future__ import annotations

import typer
from rich.table import Table

from mairie.chorus_sandbox import SandboxState
from mairie.cli import err, handles_errors, out, parse_day, print_json, settings
from models.chorus import STATUS_LABELS

chorus_app = typer.Typer(help="Chorus Pro par son API : dépôts, suivi des statuts, bac à sable.", no_args_is_help=True)
reminders_app = typer.Typer(help="Relances des factures impayées.", no_args_is_help=True)


@chorus_app.command("deposit")
@handles_errors
def chorus_deposit(
    limit: int | None = typer.Option(None, "--limit", min=1, help="Au plus ce nombre de dépôts"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Dépose maintenant sur Chorus Pro ce qui attend (au rythme du réglage MAIRIE_CHORUS__DEPOSITS_PER_MINUTE)."""
    from mairie.services.channels import chorus
    from mairie.services.mail import dispatch

    report = chorus.deposit_pending(settings(), limit=limit)
    dispatch(settings())
    if as_json:
        print_json(report.as_json())
        return
    out.print(
        f"Déposées : {len(report.deposited)} ; retrouvées après incident : {len(report.recovered)} ; "
        f"bloquées : {len(report.blocked)} ; à réessayer : {len(report.retry_later)} ; "
        f"en attente de recherche : {len(report.waiting)}"
    )
    for number, reason in report.blocked:
        out.print(f"[yellow]Bloquée[/] {number} : {reason}")
    for number, error in report.retry_later:
        err.print(f"[red]À réessayer[/] {number} : {error}")


@chorus_app.command("sync")
@handles_errors
def chorus_sync(as_json: bool = typer.Option(False, "--json", help="Sortie JSON")) -> None:
    """Suit maintenant les flux et les factures déposés (états, statuts, rejets, mises en paiement)."""
    from mairie.services.channels import chorus
    from mairie.services.mail import dispatch

    report = chorus.sync(settings())
    dispatch(settings())
    if as_json:
        print_json(report.as_json())
        return
    out.print(f"Suivies : {report.checked} ; changements : {len(report.changes)} ; rejets : {len(report.rejected)}")
    for number, what, value in report.changes:
        out.print(f"  {number} : {STATUS_LABELS.get(value, value)}" + (" (flux)" if what == "flux" else ""))
    for number, reason in report.rejected:
        out.print(f"[red]Rejetée[/] {number} : {reason}")
    for number, error in report.errors:
        err.print(f"[red]Erreur[/] {number} : {error}")


@chorus_app.command("status")
@handles_errors
def chorus_status(
    number: str = typer.Argument(..., help="Numéro de facture"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Où en est une facture sur Chorus Pro : flux, statut, motif, historique."""
    from mairie.services.channels import chorus

    data = chorus.status_of(settings(), number)
    if as_json:
        print_json(data)
        return
    info = data["chorus"]
    if info is None:
        out.print(f"{data['number']} : pas déposée par l'API Chorus Pro (canal dossier)")
        return
    status = info["status"] or info["flux_state"] or ""
    label = STATUS_LABELS.get(status, status or data["deposit_state"])
    out.print(
        f"[bold]{data['number']}[/] — flux {info['flux'] or '—'} ({info['flux_state'] or 'non déposé'}), "
        f"facture Chorus Pro {info['invoice_id'] or '—'} : {label}"
    )
    if info["reason"]:
        out.print(f"Motif : {info['reason']}")
    if not data["reminders"]:
        out.print("Aucune relance ne concerne cette facture (rejetée ou en paiement sur Chorus Pro).")
    if data["replaced_by"]:
        out.print(f"Réémise sous le numéro {data['replaced_by']}")
    table = Table(title="Historique", title_justify="left")
    for column in ("Date", "Quoi", "Valeur", "Motif"):
        table.add_column(column)
    for entry in data["history"]:
        value = entry.get("value") or ""
        table.add_row(entry["at"], entry["what"], STATUS_LABELS.get(value, value), entry.get("reason") or "")
    out.print(table)


@chorus_app.command("reissue")
@handles_errors
def chorus_reissue(
    number: str = typer.Argument(..., help="Numéro de la facture rejetée"),
    operator: str = typer.Option(..., "--operator", help="Opérateur qui réémet"),
    service_code: str | None = typer.Option(None, "--service-code", help="Code service Chorus Pro corrigé"),
    commitment_number: str | None = typer.Option(None, "--commitment-number", help="Numéro d'engagement"),
    on: str | None = typer.Option(None, "--date", help="Date de la nouvelle facture (AAAA-MM-JJ)"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Réémet une facture rejetée par Chorus Pro : un avoir l'annule, une nouvelle facture part à son tour."""
    from mairie.services.channels import chorus

    result = chorus.reissue(
        settings(),
        number,
        operator=operator,
        on=parse_day(on),
        service_code=service_code,
        commitment_number=commitment_number,
    )
    if as_json:
        print_json(result.as_json())
        return
    out.print(f"{result.rejected} annulée par l'avoir {result.credit_note} ; nouvelle facture {result.invoice}")


@chorus_app.command("sandbox")
@handles_errors
def chorus_sandbox(
    port: int = typer.Option(8095, "--port", help="Port (127.0.0.1)"),
    host: str = typer.Option("127.0.0.1", "--host", help="Adresse d'écoute"),
    advance_every: float | None = typer.Option(
        None, "--advance-every", help="Secondes entre deux statuts pris d'eux-mêmes (aucun par défaut)"
    ),
) -> None:
    """Sert un bac à sable Chorus Pro local (un double de test, pas Chorus Pro) avec les comptes des réglages."""
    import uvicorn

    from mairie.chorus_sandbox import create_app

    state = sandbox_state(advance_every)
    out.print(f"Bac à sable Chorus Pro (double de test) : http://{host}:{port} — jeton : /api/oauth/token")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


def sandbox_state(advance_every: float | None = None) -> SandboxState:
    """The sandbox's state with the settings' PISTE client and the issuers' technical accounts."""
    from models.errors import InvalidInput

    s = settings()
    if not (s.chorus.client_id and s.chorus.client_secret):
        raise InvalidInput("réglez MAIRIE_CHORUS__CLIENT_ID et MAIRIE_CHORUS__CLIENT_SECRET (ceux du bac à sable)")
    accounts = {i.chorus_login: i.chorus_password for i in s.issuers() if i.chorus_login and i.chorus_password}
    return SandboxState(
        client_id=s.chorus.client_id,
        client_secret=s.chorus.client_secret,
        accounts=accounts,
        advance_every_s=advance_every,
    )


@reminders_app.command("run")
@handles_errors
def reminders_run(
    on: str | None = typer.Option(None, "--date", help="Jour des relances (AAAA-MM-JJ), par défaut aujourd'hui"),
    as_json: bool = typer.Option(False, "--json", help="Sortie JSON"),
) -> None:
    """Les relances du jour, comme le déploiement « relances-impayes » les fait, à cette date."""
    from mairie.services.dunning import run_reminders
    from mairie.services.mail import dispatch

    report = run_reminders(settings(), parse_day(on))
    sent = dispatch(settings())
    if as_json:
        print_json({"reminders": report.sent, "handed_over": report.handed_over, "mail_sent": len(sent.sent)})
        return
    out.print(f"Relances : {len(report.sent)} ; transmises au comptable : {len(report.handed_over)}")
    for item in report.sent:
        out.print(f"  {item}")
