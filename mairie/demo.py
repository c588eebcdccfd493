"""`mairie demo`: a real commune of Pas-de-Calais through the whole lifecycle, against the running stack.

Every step goes where a real one would: the request through the Prefect deployment, the signatures
through the approval page (HTTP, as a browser posts its forms) from the links found in the emails of the
mailbox folder, the operators' steps as Prefect runs, the renewal campaign paused for approval and
resumed, the reminders on a simulated date. Each step prints its links.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from sqlmodel import select

from mairie.database import unit_of_work
from mairie.settings import Settings
from models.entities import Collectivity, Commune, CommunePopulation
from notifications.mailserver import ReceivedMail, list_messages

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

# Small communes of Pas-de-Calais, tried in order: the first one without a request yet is used.
CANDIDATES = ("62700", "62001", "62003", "62004", "62005", "62006", "62007", "62009", "62010", "62011")


from mairie.chorus_sandbox import mairie_siret  # noqa: E402


class DemoError(Exception):
    pass


def stack_chorus(settings: Settings) -> bool:
    """Whether the running stack deposits on a Chorus Pro sandbox (`mairie up` says so in its lock file)."""
    from mairie import stack

    return bool((stack.running(settings) or {}).get("chorus_sandbox"))


def pick_commune(settings: Settings) -> tuple[str, str, int]:
    with unit_of_work(settings) as uow:
        taken = set(uow.session.exec(select(Collectivity.insee_code)).all())
        for code in CANDIDATES + tuple(
            c for c in uow.session.exec(select(Commune.insee_code).where(Commune.department == "62")).all()
        ):
            if code in taken or code.endswith(("2", "8")):  # the sandbox's structures that require codes
                continue
            commune = uow.session.get(Commune, code)
            population = uow.session.exec(select(CommunePopulation).where(CommunePopulation.insee_code == code)).first()
            if commune and population and population.total < 3500 and len(commune.postcodes.split()) == 1:
                return code, commune.name, population.total
    raise DemoError("toutes les communes candidates ont déjà une demande ; utilisez un autre dossier de données")


def wait_for_mail(
    folder: Path, predicate: Callable[[ReceivedMail], bool], what: str, timeout: float = 90
) -> ReceivedMail:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for mail in list_messages(folder):
            if predicate(mail):
                return mail
        time.sleep(0.5)
    raise DemoError(f"aucun courriel « {what} » reçu dans {folder} après {timeout:.0f} s")


def first_link(mail: ReceivedMail, path: str) -> str:
    body = mail.message().get_body(("plain",))
    text = body.get_content() if body else ""
    match = re.search(r"https?://\S+" + re.escape(path) + r"[^\s>\"')]+", text)
    if not match:
        raise DemoError(f"pas de lien {path} dans « {mail.subject} »")
    return match.group(0)


def sign_through_page(url: str, name: str, capacity: str) -> None:
    """What a signatory does in a browser: open the link, fill the form, confirm."""
    with httpx.Client(timeout=30, follow_redirects=True) as client:
        page = client.get(url)
        page.raise_for_status()
        csrf = _hidden(page.text, "csrf")
        form = {"csrf": csrf, "nom": name, "qualite": capacity, "habilite": "oui", "deliberation": ""}
        confirm = client.post(f"{url}/signer", data=form)
        confirm.raise_for_status()
        form["documents"] = _hidden(confirm.text, "documents")
        form["csrf"] = _hidden(confirm.text, "csrf")
        done = client.post(f"{url}/signer/confirmer", data=form)
        done.raise_for_status()


def _hidden(html: str, name: str) -> str:
    match = re.search(r'name="' + re.escape(name) + r'"\s+value="([^"]*)"', html) or re.search(
        r'value="([^"]*)"\s+name="' + re.escape(name) + '"', html
    )
    if not match:
        raise DemoError(f"champ {name} absent de la page d'approbation")
    return match.group(1)


class Demo:
    def __init__(self, settings: Settings, out: Console) -> None:
        self.settings = settings
        self.out = out
        self.step = 0
        self.started = time.monotonic()

    def say(self, title: str, *lines: str) -> None:
        self.step += 1
        self.out.print(f"\n[bold cyan]{self.step}. {title}[/]  [dim]({time.monotonic() - self.started:.1f} s)[/]")
        for line in lines:
            self.out.print(f"   {line}", highlight=False)

    def run_deployment(self, name: str, parameters: dict[str, Any], wait: bool = True) -> FlowRun:
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        run = run_deployment(f"{name}/{name}", parameters=parameters, timeout=180 if wait else 0)
        assert isinstance(run, FlowRun)  # called from synchronous code: no coroutine
        if wait:
            state = run.state
            assert state is not None  # a flow run read back from the server has a state
            if not state.is_completed():
                raise DemoError(f"le run {run.name} ({name}) a fini en état {state.name} : {state.message}")
        return run

    def ui(self, run: FlowRun) -> str:
        from prefect.settings import PREFECT_UI_URL

        return f"{PREFECT_UI_URL.value()}/runs/flow-run/{run.id}"


def run_demo(settings: Settings, out: Console) -> None:
    """The whole lifecycle, step by step."""
    # One long function on purpose: it is a narrated script, read top to bottom like the lifecycle it
    # shows; each step is a call to a service or to the running stack, printed as it goes.
    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    from mairie.schemas import RequestedItem, RequestForm
    from mairie.services.story import collectivity_story
    from mairie.submission import submit

    demo = Demo(settings, out)
    folder = settings.mail_path
    code, name, population = pick_commune(settings)
    with unit_of_work(settings) as uow:
        commune = uow.session.get(Commune, code)
        siren = commune.siren if commune else ""
    mayor = f"maire.{code}@demo.mairie-connectee.example"
    today = date.today()

    form = RequestForm(
        collectivity=code,
        items=[
            RequestedItem(code="messagerie-5go", quantity=4),
            RequestedItem(code="nom-de-domaine", quantity=1),
            RequestedItem(code="page-internet", quantity=1),
            RequestedItem(code="pack-antivirus-mdp", quantity=3),
            RequestedItem(code="sauvegarde-mes-n1", quantity=1),
            RequestedItem(code="sauvegarde-abo-n1", quantity=1),
        ],
        siret=mairie_siret(siren),  # the mairie (establishment 0001), as the Chorus Pro sandbox lists it
        signatory_name="Camille Martin",
        signatory_email=mayor,
        signatory_capacity="Maire",
        domain_names=[f"mairie-{code}.fr"],
    )
    submission = submit(settings, form, channel="cli")
    demo.say(
        f"Demande de {name} ({code}, {population} habitants)",
        f"référence {submission.request.reference} — état {submission.request.status}",
        f"run Prefect : {submission.run_url or 'traitement local'}",
    )

    quotes_mail = wait_for_mail(folder, lambda m: mayor in m.to and len(m.attachments) == 3, "devis au maire")
    link = first_link(quotes_mail, "/approbation/")
    demo.say(
        "Devis et projet de convention envoyés au maire",
        f"courriel : {quotes_mail.path}",
        f"pièces jointes : {', '.join(quotes_mail.attachments)}",
        f"lien d'approbation : {link}",
    )

    sign_through_page(link, "Camille Martin", "Maire")
    demo.say("Le maire signe sur la page d'approbation", f"page : {link}")

    for party, issuer in (("CDG", settings.cdg62), ("syndicat", settings.syndicat)):
        address = issuer.signatory_email or issuer.email
        mail = wait_for_mail(folder, _asks_signature(address), f"signature {party}")
        party_link = first_link(mail, "/approbation/")
        sign_through_page(party_link, f"Signataire {party}", "Président")
        demo.say(f"Contre-signature du {party}", f"courriel : {mail.path}", f"page : {party_link}")

    final = wait_for_mail(
        folder,
        lambda m: (
            mayor in m.to and any(a.endswith(".pdf") and "-CONV-" in a and "projet" not in a for a in m.attachments)
        ),
        "convention en vigueur",
    )
    demo.say(
        "Convention en vigueur, envoyée aux trois parties",
        f"courriel : {final.path}",
        f"document : {', '.join(final.attachments)}",
    )

    run = demo.run_deployment("suivi-conventions", {})
    order_address = settings.syndicat.provisioning_email or settings.syndicat.email
    order_mail = wait_for_mail(
        folder, lambda m: order_address in m.to and any(a.endswith(".json") for a in m.attachments), "bon de commande"
    )
    order_number = order_mail.attachments[0].rsplit(".", 1)[0]
    demo.say(
        "Remise au syndicat : bon de commande",
        f"run : {demo.ui(run)}",
        f"courriel : {order_mail.path}",
        f"pièces jointes : {', '.join(order_mail.attachments)}",
    )

    run = demo.run_deployment("accuse-reception-commande", {"order": order_number, "by": "Technicien LFN (démo)"})
    demo.say("Accusé de réception du syndicat", f"run : {demo.ui(run)}")
    run = demo.run_deployment(
        "livraison-commande", {"order": order_number, "by": "Technicien LFN (démo)", "delivered_on": today.isoformat()}
    )
    invoices = [
        wait_for_mail(folder, _invoice_mail(mayor, issuer), f"facture {issuer}")
        for issuer in ("LFN", settings.cdg62.code)
    ]
    demo.say(
        "Services livrés : premières factures Factur-X",
        f"run : {demo.ui(run)}",
        *[f"facture : {m.attachments[0]} — {m.path}" for m in invoices],
        f"dépôt Chorus Pro : {settings.deposit_path}",
    )

    if any(settings.deposits_through_chorus_api(i) for i in settings.issuers()) or stack_chorus(settings):
        run = demo.run_deployment("suivi-chorus", {})
        from mairie.services.channels.chorus import status_of

        states = [status_of(settings, m.attachments[0].removesuffix(".pdf")) for m in invoices]
        demo.say(
            "Factures déposées sur Chorus Pro (bac à sable local) et statuts suivis",
            f"run (artefacts : dépôts, statuts) : {demo.ui(run)}",
            *[
                f"{s['number']} : flux {(s['chorus'] or {}).get('flux')} — {(s['chorus'] or {}).get('status')}"
                for s in states
            ],
        )

    reminder_day = today + timedelta(days=settings.payment_term_days + settings.reminder_days[0] + 1)
    run = demo.run_deployment("relances-impayes", {"today": reminder_day.isoformat()})
    reminder = wait_for_mail(folder, lambda m: mayor in m.to and m.subject.startswith("Rappel"), "relance")
    demo.say(
        f"Relance d'impayé (date simulée : {reminder_day:%d/%m/%Y})",
        f"run : {demo.ui(run)}",
        f"courriel : {reminder.path}",
    )

    year = today.year + 1
    campaign = demo.run_deployment(
        "campagne-renouvellement",
        {"year": year, "today": date(year, settings.renewal_month, settings.renewal_day).isoformat()},
        wait=False,
    )
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = client.read_flow_run(campaign.id).state
            if state and state.is_paused():
                break
            time.sleep(1)
        else:
            raise DemoError("la campagne de renouvellement n'attend pas d'approbation")
    demo.say(
        f"Campagne de renouvellement {year} : revue publiée, en attente d'approbation",
        f"run (artefacts de revue) : {demo.ui(campaign)}",
    )
    resume_flow_run(campaign.id, run_input={"approve": True, "exclude": [], "operator": "Opérateur (démo)"})
    renewal = wait_for_mail(
        folder,
        lambda m: mayor in m.to and any(f"LFN-FAC-{year}-" in a for a in m.attachments),
        "facture de renouvellement",
        timeout=180,
    )
    demo.say(f"Campagne {year} approuvée : factures de renouvellement émises", f"courriel : {renewal.path}")

    story = collectivity_story(settings, code)
    demo.say(
        "Toute l'histoire",
        f"mairie collectivity show {code}",
        f"{len(story['invoices'])} factures, convention {story['requests'][-1]['conventions'][0]['status']}",
    )


def _sign_request_to(address: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: address in m.to and "/approbation/" in _text(m)


def _with_attachment(address: str, fragment: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: address in m.to and any(fragment in a for a in m.attachments)


def _asks_signature(address: str) -> Callable[[ReceivedMail], bool]:
    """A mail to `address` with a link to the approval page."""
    return lambda m: address in m.to and "/approbation/" in _text(m)


def _invoice_mail(mayor: str, issuer: str) -> Callable[[ReceivedMail], bool]:
    """A mail to the mayor with an invoice of `issuer` attached."""
    return lambda m: mayor in m.to and any(f"{issuer}-FAC-" in a for a in m.attachments)


def _text(mail: ReceivedMail) -> str:
    body = mail.message().get_body(("plain",))
    return body.get_content() if body else ""
