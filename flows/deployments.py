"""The catalogue of deployments: what `mairie up` serves from one process, and what deploy/prefect.yaml
declares for a worker (a test checks that both name the same flows and schedules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import Flow

TIMEZONE = "Europe/Paris"


@dataclass(frozen=True)
class DeploymentSpec:
    name: str  # deployment name; the flow's own name is its Prefect flow name
    entrypoint: str  # module:function, as in prefect.yaml
    cron: str | None = None  # Europe/Paris
    interval_s: int | None = None
    description: str = ""
    # Where a worker runs it (prefect.yaml): the everyday pool, or the campaign's own (MAIRIE_CAMPAIGN_WORK_POOL)
    pool: str = "mairie-connectee"
    concurrency_limit: int | None = None  # at most this many runs at once (the deployment's limit)

    def load(self) -> Flow[..., Any]:
        """The flow the entrypoint names."""
        module, _, attr = self.entrypoint.partition(":")
        return getattr(__import__(module, fromlist=[attr]), attr)


def catalogue(
    renewal_month: int = 1,
    renewal_day: int = 15,
    chorus_interval_s: int = 1800,
    campaign_pool: str = "mairie-campagne",
    campaign_concurrency: int = 8,
) -> list[DeploymentSpec]:
    """Every deployment with its schedule (the renewal date and the Chorus Pro interval come from the
    settings: MAIRIE_RENEWAL_*, MAIRIE_CHORUS__SYNC_INTERVAL_MINUTES; the campaign's child runs' pool and
    limit: MAIRIE_CAMPAIGN_WORK_POOL, MAIRIE_CAMPAIGN_CONCURRENCY)."""
    return [
        DeploymentSpec(
            "demande-de-services",
            "flows.intake:request_intake",
            description="Formulaire opérateur : une demande de collectivité",
        ),
        DeploymentSpec(
            "traitement-demande",
            "flows.intake:process_request",
            description="Traitement d'une demande déposée par la CLI ou l'API",
        ),
        DeploymentSpec(
            "suivi-conventions",
            "flows.lifecycle:follow_conventions",
            interval_s=300,
            description="Relances de signature, expiration, remise au syndicat",
        ),
        DeploymentSpec(
            "contre-signature-operateur",
            "flows.lifecycle:operator_countersign",
            description="Un opérateur enregistre une signature pour une partie",
        ),
        DeploymentSpec(
            "accuse-reception-commande",
            "flows.lifecycle:acknowledge_order",
            description="Accusé de réception d'un bon de commande",
        ),
        DeploymentSpec(
            "livraison-commande",
            "flows.lifecycle:deliver_order",
            description="Livraison des services et premières factures",
        ),
        DeploymentSpec(
            "campagne-renouvellement",
            "flows.billing:renewal_campaign",
            cron=f"0 6 {renewal_day} {renewal_month} *",
            description="Campagne annuelle de renouvellement (revue puis émission)",
        ),
        DeploymentSpec(
            "renouvellement-lot",
            "flows.campaign:renewal_slice",
            description="Un lot d'abonnements de la campagne de renouvellement (lancé par la campagne)",
            pool=campaign_pool,
            concurrency_limit=campaign_concurrency,
        ),
        DeploymentSpec(
            "relances-impayes",
            "flows.billing:payment_reminders",
            cron="0 7 * * *",
            description="Relances quotidiennes des factures impayées",
        ),
        DeploymentSpec(
            "envoi-courriels", "flows.billing:outbox", interval_s=300, description="Envoi des courriels en attente"
        ),
        DeploymentSpec(
            "suivi-chorus",
            "flows.chorus:follow_chorus",
            interval_s=chorus_interval_s,
            description="Dépôts sur Chorus Pro et suivi des statuts (rejets, mises en paiement)",
        ),
        DeploymentSpec(
            "export-pes",
            "flows.pes:pes_export",
            cron="0 19 * * *",
            description="Titres de recettes PES pour Hélios (quotidien, et après chaque campagne)",
        ),
        DeploymentSpec(
            "acquits-pes",
            "flows.pes:pes_acquits",
            interval_s=900,
            description="Acquits d'Hélios déposés dans les dossiers surveillés",
        ),
        DeploymentSpec(
            "tableau-de-bord",
            "flows.dashboard:business_dashboard",
            cron="30 6 * * *",
            description="Tableau de bord : retards, attentes, courriels non remis, totaux (aussi à la demande)",
        ),
        *OPERATOR_ACTIONS,
    ]


# The operators' actions: a form each in the UI ("Run" › custom run), the same service as the CLI.
OPERATOR_ACTIONS = (
    DeploymentSpec(
        "enregistrement-paiement",
        "flows.operations:record_payment",
        description="Opérateur : enregistrer un paiement reçu",
    ),
    DeploymentSpec(
        "import-paiements",
        "flows.operations:import_payments",
        description="Opérateur : importer un fichier de paiements du dossier d'import",
    ),
    DeploymentSpec(
        "emission-avoir", "flows.operations:credit_invoice", description="Opérateur : émettre un avoir sur une facture"
    ),
    DeploymentSpec(
        "nouveau-devis", "flows.operations:requote", description="Opérateur : émettre une nouvelle version des devis"
    ),
    DeploymentSpec(
        "renvoi-courriel", "flows.operations:retry_mail", description="Opérateur : renvoyer un courriel non remis"
    ),
    DeploymentSpec(
        "remise-convention",
        "flows.operations:hand_off_convention",
        description="Opérateur : remettre tout de suite une convention en vigueur au syndicat",
    ),
    DeploymentSpec(
        "exclusion-campagne",
        "flows.operations:exclude_from_campaign",
        description="Opérateur : exclure une collectivité de la campagne de renouvellement",
    ),
    DeploymentSpec(
        "identite-facturation",
        "flows.operations:correct_billing",
        description="Opérateur : corriger l'identité de facturation d'une collectivité",
    ),
    DeploymentSpec(
        "fiche-collectivite",
        "flows.operations:collectivity_file",
        description="Opérateur : la fiche d'une collectivité, par son nom ou son code",
    ),
)
