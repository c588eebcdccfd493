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
