import secrets

import pytest
from pydantic import ValidationError

from mairie.settings import PLACEHOLDER_SECRET, Settings


def test_one_nested_issuer_setting_keeps_the_rest(monkeypatch):
    monkeypatch.setenv("MAIRIE_CDG62__IBAN", "FR7612345678901234567890123")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cdg62.iban == "FR7612345678901234567890123"
    assert settings.cdg62.vat_regime == "outside_scope" and settings.cdg62.siren == "286200621"


def test_production_refuses_the_placeholder_secret():
    with pytest.raises(ValidationError, match="MAIRIE_SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=PLACEHOLDER_SECRET)  # type: ignore[call-arg]
    Settings(_env_file=None, environment="production", secret_key=secrets.token_urlsafe(32))  # type: ignore[call-arg]


def test_an_issuer_with_a_bad_siret_is_refused(monkeypatch):
    monkeypatch.setenv("MAIRIE_SYNDICAT__SIRET", "20003938600013")
    with pytest.raises(ValidationError, match="SIRET"):
        Settings(_env_file=None)  # type: ignore[call-arg]
