"""The operators' actions as deployments: each one a form in the Prefect UI ("Run" › custom run), the
same service as its CLI command, and an artifact saying what it did.

| deployment | form | service (CLI) |
| --- | --- | --- |
| `enregistrement-paiement` | `Paiement` | `payments.record_payment` (`mairie payments record`) |
| `import-paiements` | `ImportPaiements` | `payments.import_payments_file` (`mairie payments import`) |
| `emission-avoir` | `Avoir` | `credit_notes.credit_invoice` (`mairie invoices credit`) |
| `nouveau-devis` | `NouveauDevis` | `quotes.requote` (`mairie request requote`) |
| `renvoi-courriel` | `RelanceCourriel` | `mail.retry_undelivered` (`mairie mail retry`) |
| `remise-convention` | `RemiseConvention` | `followup.hand_off_now` (`mairie convention handoff`) |
| `exclusion-campagne` | `ExclusionCampagne` | `renewal.exclude_from_campaign` (`mairie campaign exclude`) |
| `identite-facturation` | `IdentiteFacturation` | `buyers.update_billing` (`mairie collectivity billing`) |
| `fiche-collectivite` | `Collectivite` | `story.collectivity_story` (`mairie collectivity show`) |

A refusal (unknown invoice, amount above what is due…) fails the run with the service's French message,
and the artifact says what was refused and that nothing was recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.forms import (
    Avoir,
    Collectivite,
    ExclusionCampagne,
    IdentiteFacturation,
    ImportPaiements,
    NouveauDevis,
    Paiement,
    RelanceCourriel,
    RemiseConvention,
)
from mairie.formatting import PARIS, euros
from mairie.services import buyers, credit_notes, followup, payments, quotes, renewal, story
from mairie.services.intake import request_id_of
from mairie.services.mail import dispatch, retry_undelivered
from mairie.settings import get_settings
from models.clock import paris_today
from models.errors import DomainError

T = TypeVar("T")


def _stamp() -> str:
    return datetime.now(PARIS).strftime("%Y%m%d-%H%M%S")


def answer(key: str, title: str, lines: list[str], description: str) -> None:
    """The run's answer to the operator: a markdown artifact under a stable key (its history per key)."""
    create_markdown_artifact(key=key, markdown="\n".join([f"# {title}", "", *lines]), description=description)


def attempt(key: str, what: str, action: Callable[[], T]) -> T:
    """Run the service; a refusal is answered with an artifact, then fails the run with its message."""
    try:
        return action()
    except (DomainError, ValueError) as exc:
        answer(key, f"Refusé : {what}", [f"**{exc}**", "", "Rien n'a été enregistré."], f"Refusé : {what}")
        get_run_logger().error("Refusé : %s", exc)
        raise


@flow(name="enregistrement-paiement", flow_run_name=lambda: f"paiement-{_stamp()}", log_prints=False)
def record_payment(paiement: Paiement) -> dict[str, Any]:
    """Enregistre un paiement reçu (partiel possible ; au-delà du reste à payer, refusé).

    Args:
        paiement: La facture, le montant, la date et la référence du paiement
    """
    settings = get_settings()
    result = attempt(
        "paiement",
        f"paiement sur {paiement.invoice}",
        lambda: payments.record_payment(
            settings,
            paiement.invoice,
            paiement.amount_value(),
            paiement.paid_on,
            reference=paiement.reference or None,
            recorded_by=paiement.operator,
        ),
    )
    answer(
        "paiement",
        f"Paiement enregistré sur {result.invoice}",
        [
            f"- Montant : {euros(paiement.amount_value())} le {paiement.paid_on:%d/%m/%Y}"
            + (f" (réf. {paiement.reference})" if paiement.reference else ""),
            f"- Facture : {result.status} ; reste à payer {euros(result.amount_due)}",
            f"- Enregistré par {paiement.operator}",
        ],
        f"Paiement sur {result.invoice}",
    )
    return result.as_json()


@flow(name="import-paiements", flow_run_name=lambda: f"import-paiements-{_stamp()}", log_prints=False)
def import_payments(fichier: ImportPaiements) -> dict[str, Any]:
    """Importe un fichier de paiements (CSV) du dossier d'import : tout ou rien, et rien deux fois.

    Args:
        fichier: Le nom du fichier dans le dossier d'import, et qui l'importe
    """
    settings = get_settings()
    rows = attempt(
        "import-paiements",
        f"import de {fichier.file}",
        lambda: payments.import_payments_file(settings, fichier.file, recorded_by=fichier.operator),
    )
    recorded = [r for r in rows if not r.already_recorded]
    already = [r for r in rows if r.already_recorded]
    create_table_artifact(
        key="import-paiements-lignes",
        table=[
            {"ligne": r.line, "facture": r.invoice, "état": str(r.status), "déjà enregistré": r.already_recorded}
            for r in rows
        ],
        description=f"Lignes de {fichier.file}",
    )
    answer(
        "import-paiements",
        f"Import de {fichier.file}",
        [
            f"- Paiements enregistrés : {len(recorded)}",
            f"- Déjà enregistrés, ignorés : {len(already)}"
            + (f" (lignes {', '.join(str(r.line) for r in already)})" if already else ""),
            f"- Importé par {fichier.operator} depuis {settings.import_path}",
        ],
        f"Import de {fichier.file}",
    )
    return {"file": fichier.file, "recorded": len(recorded), "already_recorded": [r.line for r in already]}


@flow(name="emission-avoir", flow_run_name=lambda: f"avoir-{_stamp()}", log_prints=False)
def credit_invoice(avoir: Avoir) -> dict[str, Any]:
    """Émet un avoir qui annule une facture, dans la séquence de son émetteur ; il part comme la facture.

    Args:
        avoir: La facture à annuler et le motif imprimé sur l'avoir
    """
    settings = get_settings()
    result = attempt(
        "avoir",
        f"avoir sur {avoir.invoice}",
        lambda: credit_notes.credit_invoice(settings, avoir.invoice, avoir.reason, paris_today()),
    )
    answer(
        "avoir",
        f"Avoir {result.credit_note} émis",
        [
            f"- Annule la facture {result.invoice} : {euros(result.total_ttc)}",
            f"- Motif : {avoir.reason}",
            f"- Document `{result.credit_note}.pdf`, SHA-256 `{result.sha256[:16]}…`",
        ],
        f"Avoir sur {result.invoice}",
    )
    return result.as_json()


@flow(name="nouveau-devis", flow_run_name=lambda: f"nouveau-devis-{_stamp()}", log_prints=False)
def requote(nouveau_devis: NouveauDevis) -> dict[str, Any]:
    """Émet une nouvelle version des devis et du projet de convention d'une demande ; le signataire reçoit
    un nouveau lien, les précédents ne signent plus rien.

    Args:
        nouveau_devis: La demande, les montants « sur devis » éventuels et qui émet
    """
    settings = get_settings()

    def issue() -> quotes.QuotesOutcome:
        request_id = request_id_of(settings, nouveau_devis.request)
        return quotes.requote(
            settings, request_id, paris_today(), nouveau_devis.operator, nouveau_devis.operator_amounts()
        )

    result = attempt("nouveau-devis", f"nouveau devis de {nouveau_devis.request}", issue)
    sent = len(dispatch(settings).sent)
    answer(
        "nouveau-devis",
        f"Nouvelle version des devis de {result.reference} — {result.collectivity}",
        [f"- Devis **{q.number}** ({q.issuer}) : {euros(q.total_ttc)} TTC" for q in result.quotes]
        + [f"- Projet de convention **{result.convention}**", f"- Courriels envoyés : {sent}"],
        f"Nouveau devis de {result.reference}",
    )
    return {"reference": result.reference, "quotes": [q.number for q in result.quotes], "convention": result.convention}


@flow(name="renvoi-courriel", flow_run_name="renvoi-courriel-{relance.message_id}", log_prints=False)
def retry_mail(relance: RelanceCourriel) -> dict[str, Any]:
    """Remet un courriel non remis dans la file d'envoi (après correction de l'adresse ou du relais).

    Args:
        relance: Le numéro du courriel non remis
    """
    settings = get_settings()
    report = attempt(
        "renvoi-courriel",
        f"renvoi du courriel {relance.message_id}",
        lambda: retry_undelivered(settings, relance.message_id),
    )
    answer(
        "renvoi-courriel",
        f"Courriel {relance.message_id} remis en file",
        [
            f"- Envoyés maintenant : {len(report.sent)}",
            f"- À réessayer : {len(report.retried)} ; non remis : {len(report.undelivered)}",
        ],
        f"Renvoi du courriel {relance.message_id}",
    )
    return {"message_id": relance.message_id, "sent": len(report.sent), "undelivered": len(report.undelivered)}


@flow(name="remise-convention", flow_run_name="remise-{remise.convention}", log_prints=False)
def hand_off_convention(remise: RemiseConvention) -> dict[str, Any]:
    """Remet au syndicat une convention en vigueur tout de suite : son bon de commande part (le même si
    déjà émis).

    Args:
        remise: La convention à remettre
    """
    settings = get_settings()
    order = attempt(
        "remise-convention",
        f"remise de {remise.convention}",
        lambda: followup.hand_off_now(settings, remise.convention),
    )
    sent = len(dispatch(settings).sent)
    answer(
        "remise-convention",
        f"Convention {remise.convention} remise au syndicat",
        [
            f"- Bon de commande **{order.number}** : {order.status}" + ("" if order.created else " (déjà émis)"),
            f"- Courriels envoyés : {sent}",
        ],
        f"Remise de {remise.convention}",
    )
    return {"convention": remise.convention, "order": order.number, "created": order.created}


@flow(name="exclusion-campagne", flow_run_name="exclusion-{exclusion.year}-{exclusion.collectivity}", log_prints=False)
def exclude_from_campaign(exclusion: ExclusionCampagne) -> dict[str, Any]:
    """Exclut une collectivité de la campagne de renouvellement d'une année avant son émission (ou l'y
    remet) ; la revue de la campagne le montre et l'émission l'ignore.

    Args:
        exclusion: L'année, la collectivité, le motif et la décision
    """
    settings = get_settings()
    done = attempt(
        "exclusion-campagne",
        f"exclusion de {exclusion.collectivity}",
        lambda: renewal.exclude_from_campaign(
            settings,
            exclusion.year,
            exclusion.collectivity,
            reason=exclusion.reason,
            operator=exclusion.operator,
            exclude=exclusion.exclude,
        ),
    )
    what = "exclue de" if done.excluded else "remise dans"
    answer(
        "exclusion-campagne",
        f"{done.collectivity} {what} la campagne {done.year}",
        [
            f"- SIREN {done.siren}" + ("" if done.changed else " — c'était déjà le cas : rien de changé"),
            f"- Motif : {done.reason or '—'}",
            f"- Décidé par {done.operator}",
        ],
        f"Campagne {done.year} : {done.collectivity}",
    )
    return {"year": done.year, "siren": done.siren, "excluded": done.excluded, "changed": done.changed}


@flow(name="identite-facturation", flow_run_name="facturation-{identite.collectivity}", log_prints=False)
def correct_billing(identite: IdentiteFacturation) -> dict[str, Any]:
    """Corrige l'identité de facturation d'une collectivité ; les premières factures retenues faute
    d'identité complète partent aussitôt.

    Args:
        identite: La collectivité et les champs à corriger (un champ vide ne change pas)
    """
    settings = get_settings()
    identity = attempt(
        "identite-facturation",
        f"identité de facturation de {identite.collectivity}",
        lambda: buyers.update_billing(
            settings, identite.collectivity, identite.update(), operator=identite.operator, today=paris_today()
        ),
    )
    sent = len(dispatch(settings).sent)
    answer(
        "identite-facturation",
        f"Identité de facturation de {identite.collectivity}",
        [
            f"- SIRET : {identity.siret or '—'}",
            f"- Adresse : {identity.address_line}, {identity.postcode} {identity.city}",
            f"- Code service : {identity.service_code or '—'}",
            f"- Corrigée par {identite.operator} ; courriels envoyés : {sent}",
        ],
        f"Facturation de {identite.collectivity}",
    )
    return {"siret": identity.siret, "postcode": identity.postcode, "city": identity.city}


@flow(name="fiche-collectivite", flow_run_name="fiche-{collectivite.identifier}", log_prints=False)
def collectivity_file(collectivite: Collectivite) -> dict[str, Any]:
    """La fiche d'une collectivité, comme « mairie collectivity show » : demandes, devis, convention,
    commande, abonnement, factures et paiements.

    Args:
        collectivite: Son nom ou son code (INSEE, SIREN, SIRET)
    """
    from flows.dashboard import publish_story

    settings = get_settings()
    found = attempt(
        "fiche-collectivite",
        f"fiche de {collectivite.identifier}",
        lambda: story.collectivity_story_named(settings, collectivite.identifier),
    )
    publish_story(found)
    return {"collectivity": found["collectivity"]["name"], "siren": found["collectivity"]["siren"]}
