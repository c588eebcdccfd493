"""What the approval pages show, built from the service's `ApprovalView` (plain values for templates)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from mairie.formatting import euros, moment, number
from mairie.services.approvals import OPEN_STATUSES, PARTY_LABELS, ApprovalView
from mairie.settings import Settings
from mairie.web.rendering import public_url_for

INVITATIONS = {
    "collectivity": "La Fibre Numérique 59-62 et le Centre de gestion vous proposent la convention ci-dessous et "
    "ses deux devis. Lisez-les, puis acceptez et signez, refusez, ou posez une question.",
    "cdg": "la collectivité a signé la convention ci-dessous. Il revient au Centre de gestion de la contresigner.",
    "syndicat": "la collectivité et le Centre de gestion ont signé la convention ci-dessous. Il revient au syndicat "
    "de la contresigner.",
}
NEXT_STEPS = {
    "collectivity": "Le Centre de gestion puis le syndicat vont contresigner ; la convention signée par les trois "
    "parties vous sera envoyée par courriel.",
    "cdg": "Le syndicat va contresigner ; la convention signée par les trois parties vous sera envoyée par courriel.",
    "syndicat": "La convention signée par les trois parties sera envoyée par courriel.",
}
NOTICES = {
    "signature": "Merci : votre signature est enregistrée.",
    "refus": "Votre refus est enregistré. Les autres parties en sont informées.",
    "question": "Votre question a été transmise à l'équipe Mairie Connectée, qui vous répondra par courriel.",
}
# Status of the page for each state: a decision taken is information (200); a closed link is not usable.
STATE_STATUS = {"form": 200, "signed": 200, "declined": 200, "expired": 410, "closed": 409, "waiting": 409}


@dataclass(frozen=True)
class Page:
    """The approval page's content for one link."""

    convention: str
    collectivity: str
    signatory_name: str
    party: str
    party_label: str
    signing_for: str
    invitation: str
    next_steps: str
    state: str
    decided_name: str | None
    decided_at: str | None
    population: str | None
    band: str | None
    quotes: list[dict[str, str]]
    documents: list[dict[str, str]]
    final: dict[str, str] | None
    closed_title: str = ""
    closed_text: str = ""

    @property
    def status_code(self) -> int:
        return STATE_STATUS[self.state]


def state_of(view: ApprovalView) -> str:
    """form | signed | declined | expired | closed | waiting."""
    if view.approval_status in ("signed", "declined"):
        return view.approval_status
    if view.approval_status == "expired" or view.convention_status == "expired":
        return "expired"
    if view.approval_status == "waiting":
        return "waiting"
    if view.convention_status not in OPEN_STATUSES:
        return "closed"
    return "form"


CLOSED_TEXTS = {
    "expired": (
        "Délai de signature dépassé",
        "Aucune décision n'a été prise dans le délai prévu : la convention a expiré. "
        "L'équipe Mairie Connectée en a été informée et peut établir une nouvelle proposition.",
    ),
    "closed": (
        "Convention close",
        "Cette convention n'est plus ouverte à la signature.",
    ),
    "waiting": (
        "Pas encore à vous de signer",
        "La signature précédente est attendue. Vous recevrez un courriel dès que ce sera à vous.",
    ),
}


def document_label(filename: str, convention: str) -> str:
    """A reader's name for a document bound to a link."""
    stem = filename.removesuffix(".pdf")
    if "-DEV-" in filename:
        return f"Devis n° {stem}"
    if filename == f"{convention}-projet.pdf":
        return f"Projet de convention {convention}"
    if filename == f"{convention}.pdf":
        return f"Convention {convention} signée"
    return stem


def document_url(request: Request, token: str, filename: str) -> str:
    return public_url_for(request, "approval_document", token=token, filename=filename)


def build_page(request: Request, settings: Settings, token: str, view: ApprovalView) -> Page:
    """Everything the page shows, formatted the French way."""
    issuers = {issuer.code: issuer.name for issuer in settings.issuers()}
    state = state_of(view)
    title, text = CLOSED_TEXTS.get(state, ("", ""))
    signing_for = {"collectivity": view.collectivity}.get(view.party) or _issuer_for(settings, view, issuers)
    final_name = f"{view.convention}.pdf"
    return Page(
        convention=view.convention,
        collectivity=view.collectivity,
        signatory_name=view.signatory_name,
        party=view.party,
        party_label=PARTY_LABELS.get(view.party, view.party),
        signing_for=signing_for,
        invitation=INVITATIONS.get(view.party, ""),
        next_steps=NEXT_STEPS.get(view.party, ""),
        state=state,
        decided_name=view.decided_name,
        decided_at=moment(view.decided_at) if view.decided_at else None,
        population=number(view.population) if view.population is not None else None,
        band=view.band,
        quotes=[
            {
                "number": q.number,
                "issuer": issuers.get(q.issuer, q.issuer),
                "total_ht": euros(q.total_ht),
                "total_vat": euros(q.total_vat),
                "total_ttc": euros(q.total_ttc),
                "url": document_url(request, token, q.filename),
                "sha256": q.sha256,
            }
            for q in view.quotes
        ],
        documents=[
            {
                "label": document_label(name, view.convention),
                "filename": name,
                "sha256": sha,
                "url": document_url(request, token, name),
            }
            for name, sha in sorted(view.documents.items(), key=lambda item: _document_order(item[0]))
        ],
        final=None
        if not view.final_sha256
        else {
            "url": document_url(request, token, final_name),
            "sha256": view.final_sha256,
            "sealed_by": settings.syndicat.name,  # the syndicat seals the final convention (services.sealing)
        },
        closed_title=title,
        closed_text=text,
    )


def _document_order(filename: str) -> tuple[int, str]:
    return (0 if "-CONV-" in filename else 1, filename)


def _issuer_for(settings: Settings, view: ApprovalView, names: dict[str, str]) -> str:
    if view.party == "syndicat":
        return settings.syndicat.name
    cdg = next((q.issuer for q in view.quotes if q.issuer != settings.syndicat.code), None)
    return names.get(cdg or "", "le Centre de gestion")
