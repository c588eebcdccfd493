"""The business at a glance in the Prefect UI: `tableau-de-bord` (daily, and "Run" on demand) publishes
`mairie.services.dashboard` as table artifacts under stable keys, so the Artifacts page keeps each one's
history; `fiche-collectivite` publishes a collectivity's story (`mairie collectivity show`'s twin).

| key | what |
| --- | --- |
| `factures-en-retard` | each overdue invoice: issuer, collectivity, due date, days late, age, amount due, reminders |
| `retards-par-anciennete` | overdue invoices counted and summed per issuer and age band |
| `conventions-en-attente` | conventions waiting for a signature: for whom, since when, next reminder, expiry |
| `commandes-non-livrees` | provisioning orders not fully delivered, and what is left |
| `courriels-non-remis` | undelivered emails with the relay's answer (resend: `renvoi-courriel`) |
| `demandes-sur-devis` | requests waiting for an operator's amount |
| `totaux-par-emetteur` | per issuer and year of issue: invoiced, credited, collected, outstanding |
| `tableau-de-bord` | the counts of all of the above |
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from mairie.formatting import PARIS, euros
from mairie.services import dashboard as svc
from mairie.services.story import Story
from mairie.settings import get_settings

NONE = "—"


def _day(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else NONE


def _table(key: str, rows: list[dict[str, Any]], columns: tuple[str, ...], description: str) -> None:
    """A table artifact; an empty one keeps its columns with a single "aucun" row."""
    if not rows:
        rows = [{c: ("aucun" if i == 0 else NONE) for i, c in enumerate(columns)}]
    create_table_artifact(key=key, table=rows, description=description)


def publish(board: svc.Dashboard) -> dict[str, int]:
    """Every table of the dashboard, then the summary; returns the counts."""
    on = _day(board.today)
    _table(
        "factures-en-retard",
        [
            {
                "facture": i.number,
                "émetteur": i.issuer,
                "collectivité": i.collectivity,
                "échéance": _day(i.due_on),
                "jours de retard": i.days_late,
                "ancienneté": i.age,
                "reste dû": euros(i.amount_due),
                "relances": i.reminders,
                "transmise au comptable": "oui" if i.handed_to_accountant else "",
            }
            for i in board.overdue
        ],
        ("facture", "émetteur", "collectivité", "échéance", "jours de retard", "ancienneté", "reste dû"),
        f"Factures échues non payées au {on}",
    )
    _table(
        "retards-par-anciennete",
        [
            {"émetteur": b.issuer, "ancienneté": b.age, "factures": b.invoices, "reste dû": euros(b.amount_due)}
            for b in board.overdue_by_age()
        ],
        ("émetteur", "ancienneté", "factures", "reste dû"),
        f"Retards par émetteur et ancienneté au {on}",
    )
    _table(
        "conventions-en-attente",
        [
            {
                "convention": c.reference,
                "collectivité": c.collectivity,
                "en attente de": c.waiting_for,
                "courriel": c.signatory_email,
                "depuis le": _day(c.since),
                "prochaine relance": _day(c.next_reminder),
                "expire le": _day(c.expires_on),
            }
            for c in board.conventions
        ],
        ("convention", "collectivité", "en attente de", "depuis le", "prochaine relance", "expire le"),
        f"Conventions en attente de signature au {on}",
    )
    _table(
        "commandes-non-livrees",
        [
            {
                "bon": o.number,
                "collectivité": o.collectivity,
                "état": o.status,
                "envoyé le": _day(o.sent_on),
                "accusé de réception": "oui" if o.acknowledged else "non",
                "reste à livrer": ", ".join(o.items_left) or NONE,
            }
            for o in board.orders
        ],
        ("bon", "collectivité", "état", "envoyé le", "accusé de réception", "reste à livrer"),
        f"Bons de commande non livrés au {on}",
    )
    _table(
        "courriels-non-remis",
        [
            {
                "id": m.id,
                "type": m.kind,
                "destinataires": ", ".join(m.to),
                "objet": m.subject,
                "essais": m.attempts,
                "réponse du serveur": m.error or NONE,
            }
            for m in board.emails
        ],
        ("id", "type", "destinataires", "objet", "essais", "réponse du serveur"),
        "Courriels non remis (renvoi : déploiement « renvoi-courriel »)",
    )
    _table(
        "demandes-sur-devis",
        [
            {
                "demande": a.reference,
                "n°": a.request_id,
                "collectivité": a.collectivity,
                "depuis le": _day(a.since),
                "montants à saisir": ", ".join(a.pending) or NONE,
                "raisons": " ; ".join(a.reasons) or NONE,
            }
            for a in board.amounts
        ],
        ("demande", "n°", "collectivité", "depuis le", "montants à saisir", "raisons"),
        "Demandes « sur devis » en attente d'un montant (run suspendu : « Resume »)",
    )
    _table(
        "totaux-par-emetteur",
        [
            {
                "émetteur": t.issuer,
                "année": t.year,
                "factures": t.invoices,
                "facturé TTC": euros(t.invoiced),
                "avoirs": euros(t.credited),
                "encaissé": euros(t.collected),
                "reste dû": euros(t.outstanding),
            }
            for t in board.totals
        ],
        ("émetteur", "année", "factures", "facturé TTC", "avoirs", "encaissé", "reste dû"),
        "Facturé et encaissé par émetteur et année d'émission",
    )
    counts = {
        "overdue": len(board.overdue),
        "conventions": len(board.conventions),
        "orders": len(board.orders),
        "emails": len(board.emails),
        "amounts": len(board.amounts),
    }
    overdue_total = sum((i.amount_due for i in board.overdue), svc.ZERO)
    create_markdown_artifact(
        key="tableau-de-bord",
        description=f"Tableau de bord au {on}",
        markdown="\n".join(
            [
                f"# Tableau de bord au {on}",
                "",
                "| à regarder | nombre | artefact |",
                "|---|---|---|",
                f"| factures en retard ({euros(overdue_total)}) | {counts['overdue']} | `factures-en-retard`, "
                "`retards-par-anciennete` |",
                f"| conventions en attente de signature | {counts['conventions']} | `conventions-en-attente` |",
                f"| bons de commande non livrés | {counts['orders']} | `commandes-non-livrees` |",
                f"| courriels non remis | {counts['emails']} | `courriels-non-remis` |",
                f"| demandes « sur devis » en attente d'un montant | {counts['amounts']} | `demandes-sur-devis` |",
                "",
                "Facturé et encaissé par émetteur et année : `totaux-par-emetteur`.",
            ]
        ),
    )
    return counts


@flow(name="tableau-de-bord", flow_run_name=lambda: f"tableau-{datetime.now(PARIS):%Y%m%d-%H%M}", log_prints=False)
def business_dashboard(today: date | None = None) -> dict[str, int]:
    """Chaque jour (et à la demande) : factures en retard, conventions et commandes en attente, courriels
    non remis, demandes « sur devis », totaux par émetteur — en artefacts à clés stables.

    Args:
        today: Date d'observation (vide : aujourd'hui)
    """
    return publish(svc.dashboard(get_settings(), today))


def publish_story(story: Story) -> None:
    """`mairie collectivity show` as artifacts: a summary, and the invoices as a table (key per SIREN)."""
    c = story["collectivity"]
    key = f"fiche-{c['siren']}"
    lines = [
        f"# {c['name']}",
        "",
        f"{c['kind']}, SIREN {c['siren']}"
        + (f", INSEE {c['insee_code']}" if c["insee_code"] else "")
        + (f", SIRET facturé {c['siret']}" if c["siret"] else ""),
    ]
    for request in story["requests"]:
        lines += ["", f"## Demande {request['reference']} du {request['requested_on']} : {request['status_label']}"]
        lines += [f"- refus : {reason}" for reason in request["refusal_reasons"]]
        lines += [
            f"- devis {q['number']} ({q['issuer']}) : {q['total_ttc']} € TTC — {q['status']}" for q in request["quotes"]
        ]
        for conv in request["conventions"]:
            lines.append(f"- convention {conv['reference']} : {conv['status']}")
            for sig in conv["signatures"]:
                by = f" (enregistrée par {sig['recorded_by_operator']})" if sig["recorded_by_operator"] else ""
                lines.append(f"  - {sig['party']} : {sig['status']} {sig['name'] or ''} {sig['at'] or ''}{by}")
            if conv["order"]:
                lines.append(f"- bon de commande {conv['order']['number']} : {conv['order']['status']}")
    for sub in story["subscriptions"]:
        lines += ["", f"## Abonnement depuis le {sub['started_on']} : {sub['status']}"]
        for item in sub["items"]:
            ended = f" (fin {item['ended_on']})" if item["ended_on"] else ""
            lines.append(f"- {item['code']} × {item['quantity']} depuis le {item['started_on']}{ended}")
    create_markdown_artifact(key=key, markdown="\n".join(lines), description=f"Fiche de {c['name']}")
    _table(
        f"{key}-factures",
        [
            {
                "numéro": i["number"],
                "émetteur": i["issuer"],
                "année": i["year"],
                "échéance": i["due_on"],
                "total TTC": i["total_ttc"],
                "reste dû": i["amount_due"],
                "état": i["status"] + (" (avoir)" if i["credit_notes"] else ""),
                "paiements": ", ".join(f"{p['amount']} € le {p['paid_on']}" for p in i["payments"]) or NONE,
            }
            for i in story["invoices"]
        ],
        ("numéro", "émetteur", "année", "échéance", "total TTC", "reste dû", "état"),
        f"Factures de {c['name']}",
    )
