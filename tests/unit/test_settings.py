import json
import secrets
import shutil
from datetime import date

import pytest
from pydantic import ValidationError
from stdnum import iban as stdnum_iban
from stdnum.fr import tva

from mairie.settings import (
    EXAMPLE_IBANS,
    PLACEHOLDER_SECRET,
    Settings,
    expected_vat_number,
    placeholder_problems,
    tariff_dates_required,
)
from models.catalog import GRIDS_DIR
from tests.conftest import real_identities

STRONG_SECRET = secrets.token_urlsafe(32)  # a production-grade secret: the identities are under test here


def _production(**overrides):
    values = {"environment": "production", "secret_key": STRONG_SECRET, **real_identities()}
    for key, changes in overrides.items():
        values[key] = {**values[key], **changes} if isinstance(changes, dict) else changes
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_one_nested_issuer_setting_keeps_the_rest(monkeypatch):
    monkeypatch.setenv("MAIRIE_CDG62__IBAN", "FR76 3000 1006 2000 0000 6270 025")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cdg62.iban == "FR7630001006200000006270025"  # checked (stdnum.iban), kept compact
    assert settings.cdg62.vat_regime == "outside_scope" and settings.cdg62.siren == "286200621"


def test_production_refuses_the_placeholder_secret():
    with pytest.raises(ValidationError, match="MAIRIE_SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=PLACEHOLDER_SECRET)  # type: ignore[call-arg]
    # a good secret is enough once the identities are real (the examples are refused, see below)
    Settings(_env_file=None, environment="production", secret_key=secrets.token_urlsafe(32), **real_identities())  # type: ignore[call-arg]


def test_an_issuer_with_a_bad_siret_is_refused(monkeypatch):
    monkeypatch.setenv("MAIRIE_SYNDICAT__SIRET", "20003938600013")
    with pytest.raises(ValidationError, match="SIRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]


# --- identifiers checked in every environment (python-stdnum) ------------------------------------


def test_the_syndicat_vat_number_has_the_key_of_its_siren():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.syndicat.vat_number == "FR25200039386" == expected_vat_number("200039386")
    assert tva.is_valid(settings.syndicat.vat_number)


def test_a_vat_number_with_a_wrong_key_is_refused_with_the_right_one(monkeypatch):
    monkeypatch.setenv("MAIRIE_SYNDICAT__VAT_NUMBER", "FR62200039386")  # the old example's wrong key
    with pytest.raises(ValidationError, match=r"FR62200039386 invalide.*FR25200039386") as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["loc"] == ("syndicat", "vat_number")


def test_a_vat_number_of_another_siren_is_refused(monkeypatch):
    monkeypatch.setenv("MAIRIE_CDG62__VAT_NUMBER", "FR25200039386")  # valid, but the syndicat's
    with pytest.raises(ValidationError, match="autre SIREN que 286200621"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAIRIE_CDG62__IBAN", "FR7612345678901234567890123", "IBAN"),  # wrong check digits
        ("MAIRIE_CDG62__IBAN", "FR76300010061", "IBAN"),  # too short
        ("MAIRIE_CDG59__BIC", "BDFEFRP", "BIC"),
        ("MAIRIE_CDG59__BIC", "BDFE FRPP CCT!", "BIC"),
    ],
)
def test_bad_ibans_and_bics_are_refused(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_each_example_issuer_has_its_own_valid_iban():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    ibans = [issuer.iban for issuer in settings.issuers()]
    assert len(set(ibans)) == 3 and set(ibans) == set(EXAMPLE_IBANS.values())
    assert all(stdnum_iban.is_valid(value) and value.startswith("FR7630001") for value in ibans)  # Banque de France


# --- outside development: no example identity -----------------------------------------------------


def test_development_accepts_the_examples_and_lists_what_production_refuses():
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    problems = placeholder_problems(settings)
    for setting in ("MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS", "MAIRIE_SYNDICAT__SIRET", "MAIRIE_CDG62__IBAN",
                    "MAIRIE_CDG59__ORDONNATEUR_NAME", "MAIRIE_SYNDICAT__EMAIL", "MAIRIE_CDG62__ACCOUNTANT_NAME",
                    "MAIRIE_CDG59__CONVENTION_DELIBERATIONS", "MAIRIE_SYNDICAT__CONVENTION"):  # fmt: skip
        assert any(p.startswith(f"{setting} : ") for p in problems), setting
    # the CDG 62 deliberation of 10 July 2025 is known (seeds/003): nothing to fill there
    assert not any(p.startswith("MAIRIE_CDG62__TARIFF_DELIBERATIONS") for p in problems)
    assert placeholder_problems(_production()) == []


def test_production_refuses_the_example_identities_naming_each_setting():
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, environment="production", secret_key=STRONG_SECRET)  # type: ignore[call-arg]
    message = str(caught.value)
    assert "identités d'exemple refusées hors développement" in message
    for setting in ("MAIRIE_SYNDICAT__IBAN", "MAIRIE_CDG62__IBAN", "MAIRIE_CDG59__IBAN", "MAIRIE_CDG62__SIRET",
                    "MAIRIE_SYNDICAT__SIGNATORY_EMAIL", "MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS"):  # fmt: skip
        assert f"- {setting} : " in message, setting


@pytest.mark.parametrize(
    ("issuer", "changes", "setting"),
    [
        ("syndicat", {"signatory_name": "Signataire syndicat"}, "MAIRIE_SYNDICAT__SIGNATORY_NAME"),
        ("cdg62", {"signatory_name": "Le Président du Centre de gestion"}, "MAIRIE_CDG62__SIGNATORY_NAME"),
        ("cdg59", {"ordonnateur_name": ""}, "MAIRIE_CDG59__ORDONNATEUR_NAME"),
        ("cdg59", {"email": "numerique@cdg59.example"}, "MAIRIE_CDG59__EMAIL"),
        ("cdg62", {"signatory_email": "president@cdg62.test"}, "MAIRIE_CDG62__SIGNATORY_EMAIL"),
        ("syndicat", {"siret": "20003938600012"}, "MAIRIE_SYNDICAT__SIRET"),  # the example SIRET
        ("cdg62", {"iban": EXAMPLE_IBANS["CDG62"]}, "MAIRIE_CDG62__IBAN"),
        ("cdg62", {"iban": None}, "MAIRIE_CDG62__IBAN"),
        ("syndicat", {"bic": None}, "MAIRIE_SYNDICAT__BIC"),
        ("syndicat", {"vat_number": None}, "MAIRIE_SYNDICAT__VAT_NUMBER"),  # standard VAT regime
        ("syndicat", {"accountant_name": "CHANGE-ME comptable public"}, "MAIRIE_SYNDICAT__ACCOUNTANT_NAME"),
        ("syndicat", {"address": "CHANGE-ME adresse"}, "MAIRIE_SYNDICAT__ADDRESS"),
        ("syndicat", {"tariff_deliberations": {}}, "MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS"),
        ("cdg59", {"convention_deliberations": []}, "MAIRIE_CDG59__CONVENTION_DELIBERATIONS"),
        ("syndicat", {"convention": {"hosting_place": "(à renseigner : lieu)"}}, "MAIRIE_SYNDICAT__CONVENTION"),
    ],
)
def test_production_refuses_each_placeholder(issuer, changes, setting):
    with pytest.raises(ValidationError, match=f"- {setting} : "):
        _production(**{issuer: changes})


def test_production_refuses_two_issuers_sharing_one_iban():
    shared = real_identities()["cdg62"]["iban"]
    with pytest.raises(ValidationError, match="MAIRIE_CDG62__IBAN et MAIRIE_CDG59__IBAN : le même IBAN"):
        _production(cdg59={"iban": shared})


def test_a_tariff_deliberation_is_needed_for_the_grid_in_force_and_every_later_one(tmp_path):
    grids = tmp_path / "grids"
    grids.mkdir()
    later = json.loads((GRIDS_DIR / "2025-07-10.json").read_text(encoding="utf-8"))
    later.update(code="2099-01-01", effective_from="2099-01-01")
    (grids / "2099-01-01.json").write_text(json.dumps(later), encoding="utf-8")
    settings = _production().model_copy(update={"grids_dir": grids})
    assert tariff_dates_required(settings, date(2026, 11, 24)) == [date(2025, 7, 10), date(2099, 1, 1)]
    assert tariff_dates_required(settings, date(2099, 3, 1)) == [date(2099, 1, 1)]  # an older grid: not needed
    problems = placeholder_problems(settings, date(2026, 11, 24))
    assert {p.split(" ", 1)[0] for p in problems} == {
        "MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS", "MAIRIE_CDG62__TARIFF_DELIBERATIONS",
        "MAIRIE_CDG59__TARIFF_DELIBERATIONS",
    }  # fmt: skip
    assert all("grille du 01/01/2099" in p for p in problems)
    with pytest.raises(ValidationError, match="grille du 01/01/2099"):
        Settings(
            _env_file=None,
            environment="production",
            secret_key=STRONG_SECRET,
            grids_dir=grids,  # type: ignore[call-arg]
            **real_identities(),
        )


def test_the_gdpr_annex_template_must_exist(tmp_path):
    with pytest.raises(ValidationError, match="modèle d'annexe RGPD introuvable"):
        _production(syndicat={"convention": {"hosting_place": "France", "gdpr_annex_template": tmp_path / "x.html"}})
    annex = tmp_path / "annexe.html"
    shutil.copy(GRIDS_DIR.parents[2] / "documents" / "convention" / "annexe_rgpd.html", annex)
    settings = _production(syndicat={"convention": {"hosting_place": "France", "gdpr_annex_template": annex}})
    assert settings.syndicat.convention.gdpr_annex_template == annex


def test_deliberations_and_convention_terms_from_the_environment(monkeypatch):
    deliberation = "Délibération n° 2025-31 du 26 juin 2025"
    monkeypatch.setenv("MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS", json.dumps({"2025-07-10": deliberation}))
    monkeypatch.setenv("MAIRIE_SYNDICAT__CONVENTION", '{"max_renewals": 2, "hosting_place": "France"}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.syndicat.tariff_deliberations == {date(2025, 7, 10): deliberation}
    assert settings.syndicat.convention.max_renewals == 2 and settings.syndicat.convention.initial_years == 1
    assert settings.syndicat.convention_deliberations[0].startswith("Délibération n° 2021-16 du comité syndical")


def test_mairie_init_outside_development_says_which_settings_to_fill(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from mairie.cli import app

    env = {"MAIRIE_ENVIRONMENT": "production", "MAIRIE_SECRET_KEY": STRONG_SECRET, "MAIRIE_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["init"], env=env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    output = " ".join(result.output.split())
    assert "identités d'exemple refusées hors développement" in output
    for setting in ("MAIRIE_SYNDICAT__TARIFF_DELIBERATIONS", "MAIRIE_CDG62__IBAN", "MAIRIE_CDG59__SIRET"):
        assert f"- {setting} : " in output, setting
    assert not (tmp_path / "mairie.sqlite3").exists()  # refused before anything is written
    result = CliRunner().invoke(app, ["init"], env={**env, "MAIRIE_CDG62__IBAN": "FR761234"})
    assert result.exit_code == 2
    assert "réglage invalide MAIRIE_CDG62__IBAN : IBAN FR761234 invalide" in " ".join(result.output.split())


def _production(**chorus_and_identities):
    values = {"environment": "production", "secret_key": STRONG_SECRET, **real_identities()}
    for key, value in chorus_and_identities.items():
        if key in ("syndicat", "cdg62", "cdg59"):
            values[key] = {**values[key], **value}  # type: ignore[dict-item]
        else:
            values[key] = value
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


REAL_CHORUS = {
    "api_url": "https://api.piste.gouv.fr",
    "oauth_url": "https://oauth.piste.gouv.fr/api/oauth/token",
    "client_id": "a1b2c3d4-application-piste",
    "client_secret": secrets.token_urlsafe(24),
}


@pytest.mark.parametrize(
    ("chorus", "account", "named"),
    [
        ({"api_url": REAL_CHORUS["api_url"]}, {}, "MAIRIE_CHORUS__OAUTH_URL, MAIRIE_CHORUS__CLIENT_ID"),
        ({**REAL_CHORUS, "api_url": "http://127.0.0.1:8095"}, {}, "MAIRIE_CHORUS__API_URL : une adresse https://"),
        (
            {**REAL_CHORUS, "client_id": "mairie-dev", "client_secret": "bac-a-sable-dev-seulement"},
            {},
            "bac à sable local",
        ),
        (REAL_CHORUS, {"chorus_login": "TECH_LFN_PROD"}, "MAIRIE_SYNDICAT__CHORUS_PASSWORD : à renseigner"),
        (REAL_CHORUS, {"chorus_login": "TECH_LFN_DEV", "chorus_password": "dev-lfn"}, "compte de développement"),
    ],
)
def test_production_refuses_unusable_chorus_settings(chorus, account, named):
    with pytest.raises(ValidationError) as refused:
        _production(chorus=chorus, syndicat=account)
    assert named in str(refused.value) and "docs/chorus-pro.md" in str(refused.value)


def test_production_takes_a_complete_chorus_api_or_none():
    assert not _production().chorus.configured  # no API: the folder channel
    settings = _production(
        chorus=REAL_CHORUS, syndicat={"chorus_login": "TECH_LFN", "chorus_password": "s3cret-du-compte"}
    )
    assert settings.deposits_through_chorus_api(settings.syndicat)
    # development keeps the sandbox's (mairie up points every process at it)
    dev = Settings(_env_file=None, chorus={**REAL_CHORUS, "api_url": "http://127.0.0.1:8095"})  # type: ignore[call-arg]
    assert dev.chorus.api_url == "http://127.0.0.1:8095"
