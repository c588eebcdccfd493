"""How `mairie collectivity show` prints a collectivity's story (the data comes from
`mairie.services.story`; this is presentation only)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mairie.services.story import Story


def print_story(out: Console, story: Story) -> None:
    c = story["collectivity"]
    out.print(
        f"[bold]{c['name']}[/] — {c['kind']}, SIREN {c['siren']}"
        + (f", INSEE {c['insee_code']}" if c["insee_code"] else "")
    )
    for request in story["requests"]:
        out.print(f"\n[bold]Demande {request['reference']}[/] du {request['requested_on']} : {request['status_label']}")
        for reason in request["refusal_reasons"]:
            out.print(f"  refus : {reason}")
        for quote in request["quotes"]:
            out.print(f"  devis {quote['number']} ({quote['issuer']}) : {quote['total_ttc']} € TTC — {quote['status']}")
        for conv in request["conventions"]:
            out.print(f"  convention {conv['reference']} : {conv['status']}")
            for sig in conv["signatures"]:
                by = f" (enregistrée par {sig['recorded_by_operator']})" if sig["recorded_by_operator"] else ""
                out.print(f"    {sig['party']} : {sig['status']} {sig['name'] or ''} {sig['at'] or ''}{by}")
            if conv["order"]:
                order = conv["order"]
                out.print(f"  bon de commande {order['number']} : {order['status']}")
    for sub in story["subscriptions"]:
        out.print(f"\n[bold]Abonnement[/] depuis le {sub['started_on']} : {sub['status']}")
        for item in sub["items"]:
            ended = f" (fin {item['ended_on']})" if item["ended_on"] else ""
            out.print(f"  {item['code']} × {item['quantity']} depuis le {item['started_on']}{ended}")
    if story["invoices"]:
        table = Table(title="Factures", title_justify="left")
        for column in ("Numéro", "Émetteur", "Année", "Échéance", "Total TTC", "Reste dû", "État"):
            table.add_column(column)
        for inv in story["invoices"]:
            table.add_row(
                inv["number"],
                inv["issuer"],
                str(inv["year"]),
                inv["due_on"],
                inv["total_ttc"],
                inv["amount_due"],
                inv["status"] + (" (avoir)" if inv["credit_notes"] else ""),
            )
        out.print(table)
