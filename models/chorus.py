"""Chorus Pro as plain values: the states of a deposited flux and the statuses of an invoice there (as AIFE
names them), what each means for our invoice (payable, reminded, finished), what a buyer's structure
requires, and the states of our own deposit queue.

A flux (`numeroFluxDepot`) is what we deposit; once integrated (`IN_INTEGRE`) Chorus Pro has made an invoice
of it (`identifiantFactureCPP`) whose status then moves on the buyer's side. A rejection — of the flux
(`IN_REJETE`) or of the invoice (`REJETEE`) — makes the invoice not payable: it is cancelled by a credit
note and issued again once corrected. An invoice `MISE_EN_PAIEMENT` is being paid by the public accountant:
no reminder concerns it any more (the payment itself is still recorded from the accountant's data).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SYNTAX_FACTURX = "IN_DP_E2_CII_FACTURX"  # syntaxeFlux of a Factur-X PDF/A-3 (CII inside)


class DepositState(StrEnum):
    """Our side of one deposit (table chorusdeposit)."""

    QUEUED = "queued"  # waiting to be deposited
    CLAIMED = "claimed"  # a run is depositing it (or crashed while doing so: see `recovery`)
    DEPOSITED = "deposited"  # numeroFluxDepot recorded; followed by the sync
    BLOCKED = "blocked"  # not deposited: the buyer's structure requires what the invoice lacks (operator)
    CLOSED = "closed"  # nothing more to follow (rejected, paid on Chorus Pro, or replaced)


DEPOSIT_MOVES: dict[DepositState, frozenset[DepositState]] = {
    DepositState.QUEUED: frozenset({DepositState.CLAIMED, DepositState.BLOCKED}),
    # back to queued: the API refused the file outright (codeRetour ≠ 0) or a claim found nothing to recover
    DepositState.CLAIMED: frozenset({DepositState.DEPOSITED, DepositState.QUEUED, DepositState.BLOCKED}),
    DepositState.DEPOSITED: frozenset({DepositState.CLOSED}),
    DepositState.BLOCKED: frozenset({DepositState.QUEUED, DepositState.CLOSED}),
    DepositState.CLOSED: frozenset(),
}


def can_move(current: DepositState, target: DepositState) -> bool:
    return target in DEPOSIT_MOVES[current]


# Flux states (consulterCR `etatCourantFlux`) ---------------------------------------------------------------

FLUX_INTEGRATED = frozenset({"IN_INTEGRE", "IN_INTEGRE_PARTIEL"})
FLUX_REJECTED = frozenset({"IN_REJETE"})
FLUX_FINAL = FLUX_INTEGRATED | FLUX_REJECTED

# Invoice statuses (consulter/historique `statutCourantCode`, rechercher/fournisseur `statut`) -------------

INVOICE_REJECTED = frozenset({"REJETEE"})
INVOICE_IN_PAYMENT = frozenset({"MISE_EN_PAIEMENT"})
# Statuses after which nothing more is expected from Chorus Pro for our purpose
INVOICE_FINAL = INVOICE_REJECTED | INVOICE_IN_PAYMENT
INVOICE_STATUSES = (
    "DEPOSEE",
    "EN_COURS_ACHEMINEMENT",
    "MISE_A_DISPOSITION",
    "A_RECYCLER",
    "SUSPENDUE",
    "COMPLETEE",
    "SERVICE_FAIT",
    "MANDATEE",
    "MISE_A_DISPOSITION_COMPTABLE",
    "COMPTABILISEE",
    "MISE_EN_PAIEMENT",
    "REJETEE",
)

STATUS_LABELS = {
    "DEPOSEE": "déposée",
    "EN_COURS_ACHEMINEMENT": "en cours d'acheminement",
    "MISE_A_DISPOSITION": "mise à disposition du destinataire",
    "A_RECYCLER": "à recycler",
    "SUSPENDUE": "suspendue",
    "COMPLETEE": "complétée",
    "SERVICE_FAIT": "service fait",
    "MANDATEE": "mandatée",
    "MISE_A_DISPOSITION_COMPTABLE": "mise à disposition du comptable",
    "COMPTABILISEE": "comptabilisée",
    "MISE_EN_PAIEMENT": "mise en paiement",
    "REJETEE": "rejetée",
    "IN_INTEGRE": "flux intégré",
    "IN_INTEGRE_PARTIEL": "flux intégré partiellement",
    "IN_REJETE": "flux rejeté",
}


def rejected(flux_state: str | None, status: str | None) -> bool:
    """Whether Chorus Pro refused the invoice: its flux rejected, or the invoice rejected by the buyer."""
    return flux_state in FLUX_REJECTED or status in INVOICE_REJECTED


def in_payment(status: str | None) -> bool:
    return status in INVOICE_IN_PAYMENT


def payable(flux_state: str | None, status: str | None) -> bool:
    """Whether the debtor still has to pay the invoice on our side of things: not rejected on Chorus Pro."""
    return not rejected(flux_state, status)


def dunned(flux_state: str | None, status: str | None) -> bool:
    """Whether reminders may concern the invoice: payable and not already in payment."""
    return payable(flux_state, status) and not in_payment(status)


def followed(flux_state: str | None, status: str | None) -> bool:
    """Whether the sync still has something to learn about this deposit."""
    if flux_state in FLUX_REJECTED:
        return False
    return status not in INVOICE_FINAL


# What a buyer's structure requires (structures/v1/consulter `parametres`) -----------------------------


@dataclass(frozen=True)
class StructureRequirements:
    """What the buyer's Chorus Pro structure asks of each invoice, and its active service codes."""

    id_structure: int
    service_code: bool = False  # codeServiceDoitEtreRenseigne
    commitment_number: bool = False  # numeroEJDoitEtreRenseigne
    service_or_commitment: bool = False  # gestionNumeroEJOuCodeService: one of the two
    active_services: tuple[str, ...] = ()


def missing_for_structure(
    requirements: StructureRequirements, service_code: str | None, commitment_number: str | None
) -> list[str]:
    """What an invoice lacks for its buyer's structure, in French (empty: nothing): a service code, a
    commitment number, one of the two, or a service code that is not an active service of the structure."""
    missing: list[str] = []
    if requirements.service_or_commitment and not (service_code or commitment_number):
        missing.append("un code service ou un numéro d'engagement")
    if requirements.service_code and not service_code:
        missing.append("le code service")
    if requirements.commitment_number and not commitment_number:
        missing.append("le numéro d'engagement")
    if service_code and requirements.active_services and service_code not in requirements.active_services:
        known = ", ".join(requirements.active_services)
        missing.append(f"un code service actif de la structure (« {service_code} » n'en est pas un ; actifs : {known})")
    return missing


def recovery(
    claimed_minutes_ago: float, *, found_flux: bool, claim_timeout_minutes: float, redeposit_after_minutes: float
) -> str:
    """What to do with a deposit claimed without its flux number recorded (a crash between the deposit's
    answer and its record): "wait" (the claim may still be running), "record" (the flux was found on
    Chorus Pro), "wait-integration" (not found yet, the flux may not be integrated), or "redeposit"."""
    if claimed_minutes_ago < claim_timeout_minutes:
        return "wait"
    if found_flux:
        return "record"
    if claimed_minutes_ago < redeposit_after_minutes:
        return "wait-integration"
    return "redeposit"
