"""The PES settings of an issuer, by their exact environment names, checked; and the acquits' folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mairie.adapters.inbox import FolderInbox, MemoryInbox
from mairie.settings import Settings


def test_flat_names_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MAIRIE_CDG62__BILLING_CHANNEL": "pes_asap",
        "MAIRIE_CDG62__PES_ID_POST": "062045",
        "MAIRIE_CDG62__PES_ID_COLL": "28620062100022",
        "MAIRIE_CDG62__PES_COD_COL": "162",
        "MAIRIE_CDG62__PES_COD_BUD": "00",
        "MAIRIE_CDG62__PES_PRODUCTS": '{"nas-2-disques": "NAS:7078:020"}',
        "MAIRIE_PES_XSD_DIR": "/srv/pes-xsd/5.17",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    cdg62 = settings.cdg62
    assert (cdg62.billing_channel, cdg62.pes_id_post, cdg62.pes_id_coll, cdg62.pes_cod_col, cdg62.pes_cod_bud) == (
        "pes_asap",
        "062045",
        "28620062100022",
        "162",
        "00",
    )
    assert cdg62.pes_products == {"nas-2-disques": "NAS:7078:020"} and cdg62.pes_missing() == []
    assert cdg62.name.startswith("Centre de Gestion")  # the rest of the identity is kept
    assert settings.cdg59.pes_missing() == ["PES_ID_POST", "PES_COD_COL", "PES_COD_BUD"]
    assert settings.pes_xsd_dir == Path("/srv/pes-xsd/5.17")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAIRIE_CDG62__PES_ID_POST", "62045"),  # a codique has 6 or 7 digits
        ("MAIRIE_CDG62__PES_COD_COL", "62"),
        ("MAIRIE_CDG62__PES_COD_BUD", "0"),
        ("MAIRIE_CDG62__PES_ID_COLL", "28620062100023"),  # its Luhn key is wrong
        ("MAIRIE_CDG62__PES_PRODUCTS", '{"nas-2-disques": "NAS-7078"}'),
        ("MAIRIE_CDG62__PES_PRODUCT_CODE", "TROPLONG"),
    ],
)
def test_a_wrong_value_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_acquits_folder_moves_what_it_handled(tmp_path: Path) -> None:
    inbox = FolderInbox(tmp_path)
    (tmp_path / "b.xml").write_bytes(b"2")
    (tmp_path / "a.XML").write_bytes(b"1")
    (tmp_path / "notes.txt").write_text("ignored")
    assert inbox.waiting() == ["a.XML", "b.xml"]
    assert inbox.read("a.XML") == b"1"
    assert inbox.done("a.XML", ok=True) == str(tmp_path / "traites" / "a.XML")
    inbox.done("b.xml", ok=False, note="illisible")
    assert (tmp_path / "erreurs" / "b.xml.txt").read_text(encoding="utf-8") == "illisible\n"
    assert inbox.waiting() == []
    assert FolderInbox(tmp_path / "absent").waiting() == []
    memory = MemoryInbox({"x.xml": b"x"})
    memory.done("x.xml", ok=False, note="non")
    assert memory.waiting() == [] and memory.handled == {"x.xml": (False, "non")}


# --- production refuses an issuer on pes_asap whose PES settings are incomplete -----------------------

COMPLETE_PES = {
    "billing_channel": "pes_asap",
    "pes_id_post": "062045",
    "pes_cod_col": "162",
    "pes_cod_bud": "00",
    "pes_ref_bdf": "621234",
    "pes_signatory_first_name": "Claude",
    "pes_signatory_last_name": "Lefèvre",
    "pes_accountant_address": "Rue Eugène Haynaut",
    "pes_accountant_postcode": "62400",
    "pes_accountant_city": "Béthune",
}
PES_SUFFIXES = [
    "PES_ID_POST",
    "PES_COD_COL",
    "PES_COD_BUD",
    "PES_REF_BDF",
    "PES_SIGNATORY_FIRST_NAME",
    "PES_SIGNATORY_LAST_NAME",
    "PES_ACCOUNTANT_ADDRESS",
    "PES_ACCOUNTANT_POSTCODE",
    "PES_ACCOUNTANT_CITY",
]


def _settings(environment: str, tmp_path: Path, cdg62: dict[str, object], **values: object) -> Settings:
    import secrets

    from tests.conftest import real_identities

    identities = real_identities()
    identities["cdg62"] = {**identities["cdg62"], **cdg62}
    return Settings(  # type: ignore[call-arg]
        _env_file=None, environment=environment, secret_key=secrets.token_urlsafe(32), **identities, **values
    )


def test_production_refuses_an_issuer_on_pes_asap_naming_each_missing_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings("production", tmp_path, {"billing_channel": "pes_asap"})
    message = str(refused.value)
    assert "réglages PES incomplets" in message
    for suffix in PES_SUFFIXES:
        assert f"MAIRIE_CDG62__{suffix} :" in message, suffix
    assert "MAIRIE_PES_XSD_DIR :" in message
    assert "MAIRIE_CDG59__PES" not in message and "MAIRIE_SYNDICAT__PES" not in message  # not on pes_asap


@pytest.mark.parametrize("suffix", PES_SUFFIXES)
def test_production_refuses_each_missing_pes_setting_alone(tmp_path: Path, suffix: str) -> None:
    blank = {**COMPLETE_PES, suffix.lower(): None if suffix in ("PES_ID_POST", "PES_COD_COL", "PES_COD_BUD") else " "}
    if suffix in ("PES_REF_BDF", "PES_ACCOUNTANT_POSTCODE"):
        blank[suffix.lower()] = None  # their pattern refuses a blank value already
    with pytest.raises(ValidationError) as refused:
        _settings("production", tmp_path, blank, pes_xsd_dir=tmp_path)
    lines = [line for line in str(refused.value).splitlines() if line.strip().startswith("- MAIRIE_")]
    assert [line.split(" : ")[0].strip(" -") for line in lines] == [f"MAIRIE_CDG62__{suffix}"]


def test_production_accepts_complete_pes_settings_and_development_any(tmp_path: Path) -> None:
    complete = _settings("production", tmp_path, COMPLETE_PES, pes_xsd_dir=tmp_path)
    assert complete.cdg62.billing_channel == "pes_asap" and complete.cdg62.pes_asap_missing() == []
    # in development the export names what is missing instead (docs/pes.md)
    loose = _settings("development", tmp_path, {"billing_channel": "pes_asap"})
    assert loose.cdg62.pes_missing() == ["PES_ID_POST", "PES_COD_COL", "PES_COD_BUD"]
    assert "PES_REF_BDF" in loose.cdg62.pes_asap_missing()
