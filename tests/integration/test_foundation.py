"""Init, reference data, numbering and migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from alembic import command
from sqlmodel import func, select

from mairie.database import alembic_config, unit_of_work
from mairie.services.setup import initialise
from models.directory import find, grid_on
from models.entities import Commune, CommunePopulation, Epci, Issuer, NumberSequence, PriceGridItem, SupportBand
from models.numbering import next_number
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(tmp_path, db_url)


def test_init_loads_everything_once(settings):
    first = initialise(settings)
    assert (first.issuers, first.communes, first.populations, first.epcis) == (3, 1534, 1534, 36)
    assert first.grids_added == ["2025-07-10"]
    second = initialise(settings)
    assert (second.issuers, second.communes, second.populations, second.epcis, second.grids_added) == (0, 0, 0, 0, [])
    with unit_of_work(settings) as uow:
        s = uow.session
        assert s.exec(select(func.count()).select_from(Commune)).one() == 1534
        assert s.exec(select(func.count()).select_from(CommunePopulation)).one() == 1534
        assert s.exec(select(func.count()).select_from(Epci)).one() == 36
        assert s.exec(select(func.count()).select_from(PriceGridItem)).one() == 15
        assert s.exec(select(func.count()).select_from(SupportBand)).one() == 14
        cdg62 = s.get(Issuer, "CDG62")
        assert cdg62.vat_regime == "outside_scope" and cdg62.vat_rate == 0
        gestionnaire = s.exec(select(PriceGridItem).where(PriceGridItem.code == "gestionnaire-mdp")).one()
        assert gestionnaire.price_ttc == Decimal("42.05")  # exact on both databases


def test_real_communes(settings):
    import datetime as dt

    initialise(settings)
    with unit_of_work(settings) as uow:
        arras = find(uow.session, "62041", dt.date(2026, 11, 24))
        assert (arras.name, arras.siren, arras.population_total, arras.population_municipal, arras.vintage) == (
            "Arras",
            "216200410",
            43765,
            42875,
            2023,
        )
        assert find(uow.session, "216200410", dt.date(2026, 1, 1)).insee_code == "62041"
        lille_metro = find(uow.session, "200093201", dt.date(2026, 1, 1))
        assert (lille_metro.kind, lille_metro.department) == ("epci", "59")
        assert grid_on(uow.session, dt.date(2026, 1, 1)).code == "2025-07-10"


def test_cdg59_fees_are_settable(tmp_path, db_url):
    settings = make_settings(tmp_path, db_url, cdg59_fees=["60", "110", "160", "210", "260", "310", "360"])
    initialise(settings)
    with unit_of_work(settings) as uow:
        import datetime as dt

        grid = grid_on(uow.session, dt.date(2026, 1, 1))
    assert [b.fee for b in grid.bands["CDG59"]][:2] == [Decimal("60.00"), Decimal("110.00")]
    assert [b.fee for b in grid.bands["CDG62"]][:2] == [Decimal("50.00"), Decimal("100.00")]


def test_numbering_is_gapless_and_rolls_back(settings):
    initialise(settings)
    with unit_of_work(settings) as uow:
        assert next_number(uow.session, "LFN", "DEV", 2026) == "LFN-DEV-2026-00001"
        assert next_number(uow.session, "LFN", "DEV", 2026) == "LFN-DEV-2026-00002"
        assert next_number(uow.session, "CDG62", "DEV", 2026) == "CDG62-DEV-2026-00001"
        assert next_number(uow.session, "LFN", "FAC", 2027) == "LFN-FAC-2027-00001"
        uow.commit()
    with unit_of_work(settings) as uow:
        assert next_number(uow.session, "LFN", "DEV", 2026) == "LFN-DEV-2026-00003"
        # not committed: the number goes back
    with unit_of_work(settings) as uow:
        assert next_number(uow.session, "LFN", "DEV", 2026) == "LFN-DEV-2026-00003"
        uow.commit()


def test_concurrent_numbering_gives_each_number_once(settings):
    initialise(settings)
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(15):
                with unit_of_work(settings) as uow:
                    number = next_number(uow.session, "LFN", "FAC", 2026)
                    uow.commit()
                with lock:
                    taken.append(number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(taken) == [f"LFN-FAC-2026-{i:05d}" for i in range(1, 61)]
    with unit_of_work(settings) as uow:
        assert uow.session.get(NumberSequence, ("LFN", "FAC", 2026)).last_value == 60


def test_no_migration_drift(settings):
    initialise(settings)
    command.check(alembic_config(settings))  # raises if the entities differ from the migrations
