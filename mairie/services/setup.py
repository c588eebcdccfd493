"""`mairie init`: schema, issuers, communes, grids — idempotent."""

from __future__ import annotations

from dataclasses import dataclass, field

from mairie.database import migrate, unit_of_work
from mairie.services.sealing import ensure_dev_certificates
from mairie.settings import Settings, placeholder_problems
from models.catalog import bundled_grid_files, load_grid_file
from models.reference_data import LoadReport, load_communes, store_grid, sync_issuers


@dataclass
class InitReport:
    issuers: int
    communes: int
    populations: int
    epcis: int
    grids_added: list[str]
    database: str
    # What production would refuse in these settings (development examples), one sentence per setting.
    to_fill: list[str] = field(default_factory=list)
    # Development only: the test sealing certificates (PKCS#12) of the issuers without their own.
    seal_certificates: list[str] = field(default_factory=list)

    @property
    def settings_to_fill(self) -> list[str]:
        """The names of the settings to fill before production (`MAIRIE_CDG62__IBAN`, …), once each."""
        return list(dict.fromkeys(problem.split(" ", 1)[0] for problem in self.to_fill))


def band_overrides(settings: Settings) -> dict[str, list[dict[str, object]]]:
    """CDG 59's fees in the shape of CDG 62's bands, when set."""
    if settings.cdg59_fees is None:
        return {}
    bounds = [0, 500, 1000, 1500, 2000, 2500, 3000, 3500]
    if len(settings.cdg59_fees) != len(bounds) - 1:
        raise ValueError(f"MAIRIE_CDG59_FEES attend {len(bounds) - 1} montants (une par strate)")
    return {
        "CDG59": [
            {"min": lo, "max": hi, "fee": str(fee), "label": f"moins de {hi:,} habitants".replace(",", "\u202f")}
            for lo, hi, fee in zip(bounds[:-1], bounds[1:], settings.cdg59_fees, strict=True)
        ]
    }


def initialise(settings: Settings) -> InitReport:
    """Migrate the schema and load the reference data; running it again changes nothing."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    overrides = band_overrides(settings)
    grids = [load_grid_file(path, overrides) for path in bundled_grid_files(settings.grids_dir)]
    with unit_of_work(settings) as uow:
        issuers = sync_issuers(uow.session, settings.issuers())
        report: LoadReport = load_communes(uow.session)
        added = [grid.code for grid in grids if store_grid(uow.session, grid)]
        uow.commit()
    from models.db import describe_url

    return InitReport(
        issuers=issuers,
        communes=report.communes,
        populations=report.populations,
        epcis=report.epcis,
        grids_added=added,
        database=describe_url(settings.sqlalchemy_url),
        to_fill=placeholder_problems(settings),  # empty outside development: the settings refused them
        seal_certificates=[str(path) for path in ensure_dev_certificates(settings)],
    )
