"""Titres de recettes for Hélios (PES V2): the daily export of every issuer on pes_asap (also run at the end
of each renewal campaign), and the import of Hélios's acquits from the watched folders."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mairie.formatting import PARIS, euros
from mairie.services.channels import pes
from mairie.services.mail import dispatch
from mairie.settings import get_settings
from models.pes import TYP_BORD_ANNULATION


def _stamp() -> str:
    return datetime.now(PARIS).strftime("%Y%m%d-%H%M")


def _kind(bordereau: dict[str, Any]) -> str:
    return "d'annulation " if bordereau.get("typ_bord") == TYP_BORD_ANNULATION else ""


@task(cache_policy=NO_CACHE)
def export_issuer(code: str, today: date | None) -> dict[str, Any]:
    """Write one issuer's pending bordereaux to its deposit folder."""
    report = pes.export(get_settings(), code, today=today)
    return {
        "issuer": report.issuer,
        "bordereaux": [
            {
                "exercice": b.exercice,
                "number": b.number,
                "typ_bord": b.typ_bord,  # 02: annulation-réduction titres of avoirs, numbered apart
                "pieces": b.pieces,
                "total_ttc": str(b.total_ttc),
                "path": b.path,
            }
            for b in report.bordereaux
        ],
        "skipped": report.skipped,
        "warnings": report.gaps,
        "schema_version": report.schema_version,
    }


@flow(name="export-pes", flow_run_name=lambda: f"export-pes-{_stamp()}", log_prints=False)
def pes_export(today: date | None = None) -> dict[str, Any]:
    """Daily, and after each campaign: the PES files of every issuer billing through pes_asap."""
    logger = get_run_logger()
    settings = get_settings()
    results = [export_issuer(i.code, today) for i in settings.issuers() if i.billing_channel == pes.CHANNEL]
    lines = ["# Export PES (titres de recettes pour Hélios)", ""]
    for result in results:
        for warning in result["warnings"]:
            logger.warning("%s : %s", result["issuer"], warning)
        for bordereau in result["bordereaux"]:
            lines.append(
                f"- {result['issuer']} : bordereau {_kind(bordereau)}{bordereau['number']}/{bordereau['exercice']}, "
                f"{bordereau['pieces']} titre(s), {euros(Decimal(bordereau['total_ttc']))} — `{bordereau['path']}`"
            )
        lines += [f"- {result['issuer']} en attente : {s}" for s in result["skipped"]]
    if any(r["bordereaux"] or r["skipped"] for r in results):
        create_markdown_artifact(key="export-pes", markdown="\n".join(lines), description="Bordereaux PES écrits")
    return {"issuers": results}


@flow(name="acquits-pes", flow_run_name=lambda: f"acquits-pes-{_stamp()}", log_prints=False)
def pes_acquits() -> dict[str, Any]:
    """Every 15 minutes: import the acquits dropped in depot/<ISSUER>/pes_asap/acquits/, tell the operators
    of any rejection."""
    logger = get_run_logger()
    results = pes.import_acquit_folder(get_settings())
    if results:
        dispatch(get_settings())
    summary = []
    for result in results:
        if result.report is None:
            logger.error("%s non importé : %s", result.name, result.error)
        summary.append(
            {
                "file": result.name,
                "error": result.error,
                "accepted": result.report.accepted if result.report else [],
                "rejected": result.report.rejected if result.report else [],
            }
        )
    return {"acquits": summary}
