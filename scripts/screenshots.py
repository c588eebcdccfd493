#!/usr/bin/env python3
"""Take the pictures of docs/screenshots.md: the Prefect UI and the approval page, with headless Chromium;
with --documents, the pages of the sample documents instead (PDF → PNG with pdftoppm, no stack needed).

Against a running stack (`mairie up`) that went through `mairie demo` and the two extra requests of
docs/screenshots.md (an open approval link, a run paused for an operator), run from the repository root:

    .venv/bin/python scripts/screenshots.py                      # defaults: the stack's loopback URLs
    .venv/bin/python scripts/screenshots.py --prefect-url http://127.0.0.1:4300 --mail-dir "$MAIRIE_DATA_DIR/mail"
    .venv/bin/python scripts/screenshots.py --only approbation-telephone approbation-confirmation

What is shown is found, not hard-coded: the runs, deployments and artifacts through the Prefect API, the
approval links in the loopback SMTP folder (the mayor's open link and an already signed one, told apart by
fetching each page). Nothing is changed on the stack: the confirmation page is shown but not confirmed,
the resume form is opened but not submitted.

Chromium is Debian's (`apt-get install chromium`), never a Playwright download.

    .venv/bin/python scripts/screenshots.py --documents          # docs/images/document-*.png

renders the samples of `mairie documents sample` (quotes, invoices, credit note, signed convention) with
the issuers of the settings — in development, their marked placeholders — and converts every page with
pdftoppm (Debian's poppler-utils).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEZONE = "Europe/Paris"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# Pollers (every minute, every 5 minutes): left out of the runs list, where their many runs, mostly idle,
# would push the lifecycle's runs out of the picture.
NOISY_DEPLOYMENTS = {"envoi-courriels", "suivi-conventions"}
LINK = re.compile(r"https?://\S+/approbation/[A-Za-z0-9._~-]+")


class Missing(Exception):
    """Something to photograph is not on the stack; the message says what to run first."""


# --- the Prefect API -------------------------------------------------------------------------------


@dataclass
class Prefect:
    url: str
    auth: str | None = None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = Request(
            f"{self.url}/api{path}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", **self._auth_header()},
        )
        with urlopen(request, timeout=10) as response:
            return json.load(response)

    def _auth_header(self) -> dict[str, str]:
        if not self.auth:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(self.auth.encode()).decode()}

    def deployments(self) -> dict[str, str]:
        """Deployment name → id."""
        return {d["name"]: d["id"] for d in self.post("/deployments/filter", {"limit": 200})}

    def artifacts(self, key_like: str) -> list[dict[str, Any]]:
        """Artifacts whose key contains `key_like`, oldest first."""
        body = {"artifacts": {"key": {"like_": key_like}}, "sort": "CREATED_DESC", "limit": 200}
        return list(reversed(self.post("/artifacts/filter", body)))

    def runs(self, deployment_id: str, state: str) -> list[dict[str, Any]]:
        """Flow runs of a deployment in a state type, newest first."""
        body = {
            "flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": [state]}}},
            "sort": "START_TIME_DESC",
            "limit": 50,
        }
        return list(self.post("/flow_runs/filter", body))


@dataclass
class Targets:
    """What to photograph, found on the running stack."""

    runs_query: str
    request_run: str
    quotes_artifact: str
    file_artifact: str
    campaign_run: str
    review_artifact: str
    campaign_deployment: str
    paused_run: str


def find_targets(prefect: Prefect) -> Targets:
    deployments = prefect.deployments()
    for name in ("traitement-demande", "campagne-renouvellement"):
        if name not in deployments:
            raise Missing(f"pas de déploiement « {name} » : « mairie up » tourne-t-il sur {prefect.url} ?")

    # The demo's request: the first run with both its quotes table and its file of issued documents.
    quotes = {a["flow_run_id"]: a for a in prefect.artifacts("devis") if a["key"] == "devis"}
    files = {a["flow_run_id"]: a for a in prefect.artifacts("dossier") if a["key"] == "dossier"}
    both = [run for run in quotes if run in files]
    if not both:
        raise Missing(
            "aucun run « traitement-demande » avec ses artefacts « devis » et « dossier » : lancez « mairie demo »."
        )
    request_run = both[0]

    reviews = [a for a in prefect.artifacts("revue-renouvellement-") if a["key"].startswith("revue-renouvellement-")]
    if not reviews:
        raise Missing("aucune revue de campagne de renouvellement : lancez « mairie demo » jusqu'au bout.")
    review = reviews[-1]

    paused = prefect.runs(deployments["traitement-demande"], "PAUSED")
    if not paused:
        raise Missing(
            "aucun run en pause : déposez une demande « sur devis », par exemple "
            "« mairie request submit 62041 antivirus=2 --signatory-name 'Xavier Yvon' "
            "--signatory-email maire@arras.example »."
        )

    kept = [i for name, i in sorted(deployments.items()) if name not in NOISY_DEPLOYMENTS]
    return Targets(
        runs_query="&".join(f"deployment={i}" for i in kept),
        request_run=request_run,
        quotes_artifact=quotes[request_run]["id"],
        file_artifact=files[request_run]["id"],
        campaign_run=review["flow_run_id"],
        review_artifact=review["id"],
        campaign_deployment=deployments["campagne-renouvellement"],
        paused_run=paused[0]["id"],
    )


# --- the approval links in the mail folder ---------------------------------------------------------


def links_in(folder: Path) -> Iterator[str]:
    """Every approval link of the folder's messages (text bodies), newest message first, once each."""
    seen: set[str] = set()
    for path in sorted(folder.glob("*.eml"), reverse=True):
        with path.open("rb") as handle:
            message = email.message_from_binary_file(handle, policy=email.policy.default)
        for part in message.walk():
            if part.get_content_type() != "text/plain":
                continue
            for link in LINK.findall(part.get_content()):
                if link not in seen:
                    seen.add(link)
                    yield link


def page_text(url: str) -> str:
    try:
        with urlopen(Request(url, headers={"Accept-Language": "fr"}), timeout=10) as response:
            return str(response.read().decode("utf-8", "replace"))
    except (HTTPError, URLError, OSError):
        return ""


def find_links(folder: Path, open_link: str | None, signed_link: str | None) -> tuple[str | None, str | None]:
    """The mayor's link still open for signature, and a mayor's link already signed."""
    if open_link and signed_link:
        return open_link, signed_link
    if not folder.is_dir():
        return open_link, signed_link
    for link in links_in(folder):
        if open_link and signed_link:
            break
        html = page_text(link)
        if not open_link and 'id="habilite"' in html and "vous proposent la convention" in html:
            open_link = link
        elif not signed_link and "La collectivité a déjà signé" in html:
            signed_link = link
    return open_link, signed_link


# --- the browser -----------------------------------------------------------------------------------


def settle(page: Page, *texts: str) -> None:
    """Wait for the network to rest, for each text to be visible and for Prefect's spinners to go."""
    page.wait_for_load_state("networkidle")
    for text in texts:
        page.get_by_text(text).filter(visible=True).first.wait_for(state="visible", timeout=20_000)
    spinners = page.locator(".p-loading-icon")
    for index in range(spinners.count()):
        spinners.nth(index).wait_for(state="hidden", timeout=20_000)
    page.wait_for_timeout(600)  # chart and timeline drawing


def tab(name: str, *texts: str) -> Callable[[Page], None]:
    """Click a tab of a Prefect page, then wait for what it shows."""

    def click(page: Page) -> None:
        page.get_by_text(name, exact=True).filter(visible=True).first.click()
        settle(page, *texts)

    return click


# --- the operators' forms and the dashboard (issue 18) ----------------------------------------------

# Every operator action's "Run" form, and the dashboard's artifacts (published by `tableau-de-bord`).
OPERATOR_FORMS = (
    "demande-de-services",
    "enregistrement-paiement",
    "import-paiements",
    "emission-avoir",
    "nouveau-devis",
    "renvoi-courriel",
    "remise-convention",
    "exclusion-campagne",
    "identite-facturation",
    "fiche-collectivite",
)
DASHBOARD_KEYS = (
    "tableau-de-bord",
    "factures-en-retard",
    "retards-par-anciennete",
    "conventions-en-attente",
    "commandes-non-livrees",
    "courriels-non-remis",
    "demandes-sur-devis",
    "totaux-par-emetteur",
)


def operator_form(session: Session, deployment: str, choices: bool = False) -> Callable[[Browser], None]:
    """The deployment's custom-run form (whole page), never submitted; with `choices`, an article added
    and its list of items (labels and prices) unfolded."""

    def take(browser: Browser) -> None:
        ids = session.prefect.deployments()
        if deployment not in ids:
            raise Missing(f"pas de déploiement « {deployment} » : « mairie up » tourne-t-il ({session.prefect.url}) ?")
        with session.page(browser, {"width": 1280, "height": 1100}) as page:
            page.goto(f"{session.prefect.url}/deployments/deployment/{ids[deployment]}/run", wait_until="networkidle")
            settle(page, "Parameters")
            if choices:
                page.get_by_text("Add item").filter(visible=True).first.click()
                page.locator(".p-select-button__control").first.click()
                page.keyboard.press("ArrowDown")
                settle(page, "€ TTC")
                session.save(page, f"prefect-formulaire-{deployment}-articles")
                return
            session.save(page, f"prefect-formulaire-{deployment}", full_page=True)

    return take


def dashboard_artifact(session: Session, key: str) -> Callable[[Browser], None]:
    """The latest version of a dashboard artifact (the Artifacts page keeps the others under its key)."""

    def take(browser: Browser) -> None:
        latest = [a for a in session.prefect.artifacts(key) if a["key"] == key]
        if not latest:
            raise Missing(f"pas d'artefact « {key} » : lancez une fois le déploiement « tableau-de-bord » (Run).")
        session.prefect_shot(
            browser,
            f"prefect-tableau-{key}",
            f"/artifacts/artifact/{latest[-1]['id']}",
            (key,),
            viewport={"width": 1600, "height": 900},
        )

    return take


def operator_shots(session: Session) -> list[Shot]:
    shots = [Shot(f"prefect-formulaire-{name}", operator_form(session, name)) for name in OPERATOR_FORMS]
    shots.append(
        Shot("prefect-formulaire-demande-de-services-articles", operator_form(session, "demande-de-services", True))
    )
    shots += [Shot(f"prefect-tableau-{key}", dashboard_artifact(session, key)) for key in DASHBOARD_KEYS]
    return shots


@dataclass
class Shot:
    name: str
    take: Callable[[Browser], None]


@dataclass
class Session:
    out: Path
    prefect: Prefect
    targets: Targets | None
    open_link: str | None
    signed_link: str | None
    taken: list[Path] = field(default_factory=list)

    @contextlib.contextmanager
    def page(self, browser: Browser, viewport: dict[str, int], prefect: bool = True, **extra: Any) -> Iterator[Page]:
        """A fresh page in its own context (no state shared between pictures), Paris time."""
        options: dict[str, Any] = {"viewport": viewport, "timezone_id": TIMEZONE, "reduced_motion": "reduce", **extra}
        if prefect and self.prefect.auth:
            user, _, password = self.prefect.auth.partition(":")
            options["http_credentials"] = {"username": user, "password": password}
        context = browser.new_context(**options)
        try:
            yield context.new_page()
        finally:
            context.close()

    def phone(self, browser: Browser) -> contextlib.AbstractContextManager[Page]:
        return self.page(browser, PHONE, prefect=False, is_mobile=True, has_touch=True, locale="fr-FR")

    def desktop(self, browser: Browser) -> contextlib.AbstractContextManager[Page]:
        return self.page(browser, {"width": 1280, "height": 900}, prefect=False, locale="fr-FR")

    def save(self, page: Page, name: str, full_page: bool = False) -> None:
        path = self.out / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)

    def need_targets(self) -> Targets:
        if self.targets is None:
            raise Missing("les runs et artefacts Prefect n'ont pas été trouvés (voir plus bas).")
        return self.targets

    # Prefect UI ------------------------------------------------------------------------------------

    def prefect_shot(
        self,
        browser: Browser,
        name: str,
        path: str,
        texts: tuple[str, ...],
        viewport: dict[str, int] = DESKTOP,
        before: Callable[[Page], None] | None = None,
    ) -> None:
        with self.page(browser, viewport) as page:
            page.goto(self.prefect.url + path, wait_until="networkidle")
            settle(page, *texts)
            if before is not None:
                before(page)
            self.save(page, name)

    def runs(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-runs",
            f"/runs?{t.runs_query}",
            ("traitement-demande", "Suspended"),
            viewport={"width": 1440, "height": 1500},
        )

    def deployments(self, browser: Browser) -> None:
        def unfold(page: Page) -> None:
            # The yearly schedule's description is too long for its column: Prefect folds it into "+1";
            # hovering the badge shows it.
            folded = page.get_by_text(re.compile(r"^\s*\+\d+\s*$")).filter(visible=True)
            if folded.count():
                folded.first.hover()
                page.wait_for_timeout(800)  # the tooltip's delay

        self.prefect_shot(
            browser,
            "prefect-deployments",
            "/deployments",
            ("campagne-renouvellement", "Every 5 minutes"),
            before=unfold,
        )

    def campaign_deployment(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-deployment-campagne",
            f"/deployments/deployment/{t.campaign_deployment}",
            ("Next Run", "Schedules", "Completed"),
        )

    def request_run(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-run-demande-artefacts",
            f"/runs/flow-run/{t.request_run}",
            ("Completed", "Artifacts"),
            viewport={"width": 1440, "height": 1100},
            before=tab("Artifacts", "Devis de la demande", "Documents émis"),
        )

    def campaign_run(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-run-campagne-artefacts",
            f"/runs/flow-run/{t.campaign_run}",
            ("Completed", "Artifacts"),
            viewport={"width": 1440, "height": 1100},
            before=tab("Artifacts", "revue-renouvellement-"),
        )

    def quotes_artifact(self, browser: Browser) -> None:
        # Twelve columns: wide enough for the amounts to show.
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-artefact-devis",
            f"/artifacts/artifact/{t.quotes_artifact}",
            ("total TTC",),
            viewport={"width": 2048, "height": 640},
        )

    def file_artifact(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-artefact-dossier",
            f"/artifacts/artifact/{t.file_artifact}",
            ("Lien d'approbation",),
            viewport={"width": 1440, "height": 640},
        )

    def review_artifact(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-artefact-revue",
            f"/artifacts/artifact/{t.review_artifact}",
            ("raisons",),
            viewport={"width": 2048, "height": 640},
        )

    def paused_run(self, browser: Browser) -> None:
        t = self.need_targets()
        self.prefect_shot(browser, "prefect-run-en-pause", f"/runs/flow-run/{t.paused_run}", ("Suspended", "Resume"))

    def resume_form(self, browser: Browser) -> None:
        def open_form(page: Page) -> None:  # opened, never submitted
            page.get_by_role("button", name="Resume").first.click()
            page.get_by_text("Resume Flow Run").first.wait_for(state="visible", timeout=10_000)
            page.get_by_text("Montant").first.wait_for(state="visible", timeout=10_000)
            page.wait_for_timeout(600)

        t = self.need_targets()
        self.prefect_shot(
            browser,
            "prefect-formulaire-reprise",
            f"/runs/flow-run/{t.paused_run}",
            ("Suspended", "Resume"),
            before=open_form,
        )

    # Approval page ---------------------------------------------------------------------------------

    def approval_link(self) -> str:
        if not self.open_link:
            raise Missing(
                "aucun lien d'approbation ouvert dans le dossier des courriels : déposez une demande, par exemple "
                "« mairie request submit 62001 messagerie-5go=2 nom-de-domaine=1 --signatory-name 'Claire Petit' "
                "--signatory-email maire@exemple.fr », ou passez --open-link."
            )
        return self.open_link

    def approval_phone(self, browser: Browser) -> None:
        with self.phone(browser) as page:
            page.goto(self.approval_link(), wait_until="networkidle")
            settle(page, "Accepter et signer")
            self.save(page, "approbation-telephone", full_page=True)

    def approval_desktop(self, browser: Browser) -> None:
        with self.desktop(browser) as page:
            page.goto(self.approval_link(), wait_until="networkidle")
            settle(page, "Les deux devis")
            self.save(page, "approbation-bureau")

    def approval_confirm(self, browser: Browser) -> None:
        """Fill the form and go to the confirmation step; « Signer la convention » is not clicked."""
        with self.phone(browser) as page:
            page.goto(self.approval_link(), wait_until="networkidle")
            page.fill("#nom", "Claire Petit")
            page.fill("#qualite", "Maire")
            page.check("#habilite")
            page.get_by_role("button", name="Vérifier avant de signer").click()
            settle(page, "Confirmez votre signature", "Signer la convention")
            self.save(page, "approbation-confirmation", full_page=True)

    def approval_signed(self, browser: Browser) -> None:
        if not self.signed_link:
            raise Missing("aucun lien d'approbation déjà signé : lancez « mairie demo », ou passez --signed-link.")
        with self.desktop(browser) as page:
            page.goto(self.signed_link, wait_until="networkidle")
            settle(page, "Convention déjà signée")
            self.save(page, "approbation-deja-signee", full_page=True)

    def shots(self) -> list[Shot]:
        return [
            Shot("prefect-runs", self.runs),
            Shot("prefect-deployments", self.deployments),
            Shot("prefect-deployment-campagne", self.campaign_deployment),
            Shot("prefect-run-demande-artefacts", self.request_run),
            Shot("prefect-artefact-devis", self.quotes_artifact),
            Shot("prefect-artefact-dossier", self.file_artifact),
            Shot("prefect-run-campagne-artefacts", self.campaign_run),
            Shot("prefect-artefact-revue", self.review_artifact),
            Shot("prefect-run-en-pause", self.paused_run),
            Shot("prefect-formulaire-reprise", self.resume_form),
            Shot("approbation-telephone", self.approval_phone),
            Shot("approbation-bureau", self.approval_desktop),
            Shot("approbation-confirmation", self.approval_confirm),
            Shot("approbation-deja-signee", self.approval_signed),
            *operator_shots(self),
        ]


# The sample documents photographed by --documents: picture name → how to render it. Every page is kept
# (`document-facture-1.png`, `-2`…): the mentions and the convention's annexes are on the later pages.
DOCUMENT_KINDS = ("devis", "devis-accompagnement", "facture", "facture-accompagnement", "avoir", "convention")
DOCUMENT_DPI = 100


def render_sample(kind: str) -> bytes:
    """A sample document as `mairie documents sample` writes it, with the issuers of the settings."""
    from documents import render_avoir, render_convention, render_devis, render_facture
    from documents.data import Issuer
    from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture
    from mairie.settings import get_settings

    settings = get_settings()
    syndicat, cdg = Issuer.from_identity(settings.syndicat), Issuer.from_identity(settings.cdg62)
    support = kind.endswith("-accompagnement")
    if kind.startswith("devis"):
        return render_devis(sample_devis(syndicat, cdg, support=support))
    if kind.startswith("facture"):
        return render_facture(sample_facture(syndicat, cdg, support=support))
    if kind == "avoir":
        return render_avoir(sample_avoir(syndicat, cdg))
    return render_convention(sample_convention(syndicat, cdg))


def document_pictures(out: Path, only: list[str] | None, dpi: int = DOCUMENT_DPI) -> list[Path]:
    """Every page of each sample document as `document-<kind>-<page>.png` in `out` (pdftoppm)."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        raise Missing("pdftoppm introuvable : apt-get install poppler-utils")
    taken: list[Path] = []
    for kind in DOCUMENT_KINDS:
        if only and f"document-{kind}" not in only:
            continue
        with tempfile.TemporaryDirectory() as work:
            pdf = Path(work) / f"{kind}.pdf"
            pdf.write_bytes(render_sample(kind))
            subprocess.run([pdftoppm, "-r", str(dpi), "-png", str(pdf), str(Path(work) / "page")], check=True)
            pages = sorted(Path(work).glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
            for old in out.glob(f"document-{kind}-*.png"):  # a document that lost a page loses its picture
                old.unlink()
            for number, page in enumerate(pages, start=1):
                target = out / f"document-{kind}-{number}.png"
                shutil.move(page, target)
                taken.append(target)
    return taken


def default_mail_dir() -> Path:
    try:
        from mairie.settings import get_settings

        return Path(get_settings().mail_path)
    except Exception:  # the script also runs outside the project's environment
        return Path(os.environ.get("MAIRIE_DATA_DIR", ".")) / "mail"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--prefect-url", default=os.environ.get("MAIRIE_PREFECT_UI_URL", "http://127.0.0.1:4200"))
    parser.add_argument(
        "--prefect-auth",
        default=os.environ.get("MAIRIE_PREFECT_AUTH_STRING"),
        help="user:password when the Prefect server requires it (default: MAIRIE_PREFECT_AUTH_STRING)",
    )
    parser.add_argument("--mail-dir", type=Path, help="loopback SMTP folder (default: the settings' mail folder)")
    parser.add_argument("--open-link", help="an approval link still open for signature (default: found in --mail-dir)")
    parser.add_argument("--signed-link", help="an approval link already signed (default: found in --mail-dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="take only these pictures (names without .png)")
    parser.add_argument(
        "--documents",
        action="store_true",
        help="the pages of the sample documents (document-devis, …, document-convention) instead; no stack needed",
    )
    args = parser.parse_args(argv)
    if args.documents:
        args.out.mkdir(parents=True, exist_ok=True)
        try:
            pictures = document_pictures(args.out, args.only)
        except Missing as exc:
            print(f"Problème : {exc}", file=sys.stderr)
            return 1
        for path in pictures:
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} kB")
        return 0

    prefect = Prefect(args.prefect_url.rstrip("/"), args.prefect_auth)
    problems: list[str] = []
    try:
        targets: Targets | None = find_targets(prefect)
    except (Missing, HTTPError, URLError, OSError) as exc:
        targets = None
        problems.append(f"Prefect ({prefect.url}) : {exc}")
    mail_dir = args.mail_dir or default_mail_dir()
    open_link, signed_link = find_links(mail_dir, args.open_link, args.signed_link)

    args.out.mkdir(parents=True, exist_ok=True)
    session = Session(args.out, prefect, targets, open_link, signed_link)
    shots = session.shots()
    if args.only:
        unknown = set(args.only) - {s.name for s in shots}
        if unknown:
            parser.error(f"unknown picture(s): {', '.join(sorted(unknown))}; known: {', '.join(s.name for s in shots)}")
        shots = [s for s in shots if s.name in args.only]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            for shot in shots:
                try:
                    shot.take(browser)
                    print(f"ok    {shot.name}")
                except Missing as exc:
                    problems.append(f"{shot.name} : {exc}")
                    print(f"SKIP  {shot.name}: {exc}", file=sys.stderr)
                except Exception as exc:  # one failed picture must not lose the others
                    problems.append(f"{shot.name} : {type(exc).__name__}: {exc}")
                    print(f"FAIL  {shot.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            browser.close()

    for path in session.taken:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} kB")
    if problems:
        print("\n".join(["", "Problèmes :", *problems]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
