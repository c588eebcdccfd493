"""The file adapter: the local folder and its in-memory fake behave alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from mairie.adapters.files import FileDrop, LocalFolder, MemoryDrop


@pytest.fixture(params=["local", "memory"])
def drop(request: pytest.FixtureRequest, tmp_path: Path) -> FileDrop:
    return LocalFolder(tmp_path) if request.param == "local" else MemoryDrop()


def test_write_replaces_and_reads_back(drop: FileDrop) -> None:
    drop.write("LFN/facturx_chorus/LFN-FAC-2026-00001.pdf", b"v1")
    drop.write("LFN/facturx_chorus/LFN-FAC-2026-00001.pdf", b"v2")
    assert drop.read("LFN/facturx_chorus/LFN-FAC-2026-00001.pdf") == b"v2"
    assert drop.read("LFN/absent.pdf") is None


def test_csv_rows_get_one_header(drop: FileDrop) -> None:
    drop.append_csv_row("CDG62/comptable/impayes-2027.csv", ("a", "b"), ("1", "x;y"))
    drop.append_csv_row("CDG62/comptable/impayes-2027.csv", ("a", "b"), ("2", "z"))
    assert drop.read("CDG62/comptable/impayes-2027.csv") == b'a;b\r\n1;"x;y"\r\n2;z\r\n'


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "LFN/../../x"])
def test_paths_stay_inside_the_drop(drop: FileDrop, bad: str) -> None:
    with pytest.raises(ValueError, match="chemin de dépôt refusé"):
        drop.write(bad, b"x")
