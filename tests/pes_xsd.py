"""Where the tests find DGFiP's PES V2 XSD: `../shared/data/pes-xsd/` beside the repository (CI has it there;
the schema is never copied into the repository). Outside CI a test that needs it is skipped with a message
saying where to put it; in CI its absence fails the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XSD_DIR = ROOT.parent / "shared" / "data" / "pes-xsd"
ENTRY = Path("5.17") / "PES_V2" / "Rev0" / "PES_Aller.xsd"


def schema_dir() -> Path | None:
    """The XSD folder, or None outside CI when it is absent (CI fails instead)."""
    if (XSD_DIR / ENTRY).is_file():
        return XSD_DIR
    if os.environ.get("CI") == "true":
        pytest.fail(f"DGFiP's PES V2 XSD is required in CI at {XSD_DIR / ENTRY}")
    return None


def require_schema() -> Path:
    """The XSD folder; skips the calling test (outside CI) when it is absent."""
    found = schema_dir()
    if found is None:
        pytest.skip(
            f"DGFiP's PES V2 XSD not found: put version 5.17 in {XSD_DIR}/5.17/ (entry point "
            "PES_V2/Rev0/PES_Aller.xsd, from megalis-bretagne/parapheur-v5 or libriciel/s2low) to run the schema checks"
        )
    return found
