#!/usr/bin/env python3
"""Build the reference data of the communes and EPCIs of Nord (59) and Pas-de-Calais (62).

Writes, deterministically (rows sorted, UTF-8, ``\\n`` line endings, comma-separated, minimal quoting):

``models/data/communes-59-62.csv``
    ``insee_code,name,department,siren,population_municipale,population_totale,vintage,epci_siren,postcodes``
    -- one row per current commune (``type == "commune-actuelle"``) of departments 59 and 62;
    ``postcodes`` lists its postcodes (La Poste), sorted, separated by spaces.

``models/data/epci-59-62.csv``
    ``siren,name,nature,population_municipale,population_totale,member_count``
    -- one row per EPCI à fiscalité propre having at least one member commune in 59 or 62; the
    populations are the sums over *all* its member communes, whatever their department (an EPCI can
    straddle departments), taken from the whole-France INSEE file.

Sources
-------
1. INSEE, populations légales 2023 (millésime 2023, in force since 1 January 2026), whole France, as kept
   in ``sources/donnees_communes.csv`` of the ``datagouv/decoupage-administratif`` repository; the project
   copy is ``../shared/data/insee-populations-legales-2023-communes.csv`` (``;``-separated, columns
   ``REG;Région;DEP;CODARR;CODCAN;CODCOM;COM;Commune;PMUN;PCAP;PTOT``). Gives ``PMUN`` (population
   municipale) and ``PTOT`` (population totale).
2. Etalab, découpage administratif 6.0.0: the npm package ``@etalab/decoupage-administratif@6.0.0``
   (COG of INSEE, EPCI composition of the DGCL ``epcicom2026``). Fields used:

   * ``data/communes.json``: ``code`` (INSEE code), ``nom``, ``departement``, ``siren``, ``type``
     (only ``"commune-actuelle"`` is kept), ``population`` (cross-checked against ``PMUN``),
     ``codesPostaux`` (at least one per commune).
     The communes carry no EPCI field: membership is read from ``epci.json``.
   * ``data/epci.json``: ``code`` (the EPCI's SIREN), ``nom``, ``type`` (nature: CA, CC, CU, METRO,
     MET69), ``membres`` (list of ``{code, siren, nom, populationMunicipale, populationTotale}``).
     The populations stored in ``epci.json`` (EPCI and members) come from the DGCL and differ from the
     INSEE 2023 ones; they are deliberately *not* used.

The name of a commune is the package's (current COG); it may differ from the INSEE file's name when a
commune was renamed after the population's reference geography (e.g. 62486 Lambres -> Lambres-lez-Aire).

Licence
-------
Both sources are published under the Licence Ouverte / Open Licence v2.0 (Etalab); so are the generated
files. Credit: "INSEE, populations légales 2023" and "Etalab, découpage administratif 6.0.0".

Usage
-----
::

    python3 scripts/build_communes.py                      # runs `npm pack` into a temporary directory
    python3 scripts/build_communes.py --package-dir /tmp/x/package   # an already unpacked package

Only the Python 3.11 standard library is used. Any inconsistency between the sources (a commune of 59/62
present in one source only, a duplicate code, a missing or invalid SIREN, a population disagreement, an
EPCI member absent from the INSEE file) stops the script with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POPULATIONS = REPO_ROOT.parent / "shared" / "data" / "insee-populations-legales-2023-communes.csv"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "models" / "data"

NPM_PACKAGE = "@etalab/decoupage-administratif"
NPM_VERSION = "6.0.0"
# dist.shasum published by the npm registry for the 6.0.0 tarball.
NPM_SHASUM = "0330556cf07e21fff21111e5775a316ec18b9636"

DEPARTMENTS = ("59", "62")
VINTAGE = "2023"

COMMUNES_FILE = "communes-59-62.csv"
EPCI_FILE = "epci-59-62.csv"
COMMUNES_HEADER = (
    "insee_code",
    "name",
    "department",
    "siren",
    "population_municipale",
    "population_totale",
    "vintage",
    "epci_siren",
    "postcodes",
)
EPCI_HEADER = ("siren", "name", "nature", "population_municipale", "population_totale", "member_count")

INSEE_COLUMNS = ("DEP", "COM", "Commune", "PMUN", "PCAP", "PTOT")


class BuildError(Exception):
    """An inconsistency in the sources: the build must not produce any file."""


def info(message: str) -> None:
    print(message, file=sys.stderr)


# --------------------------------------------------------------------------- validation helpers


def luhn_ok(digits: str) -> bool:
    """Luhn checksum, as used by the SIREN (same algorithm as ``stdnum.luhn``)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def valid_siren(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9]{9}", value)) and luhn_ok(value)


def non_negative_int(value: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", value or ""):
        raise BuildError(f"{what}: {value!r} is not a non-negative integer")
    return int(value)


# --------------------------------------------------------------------------- sources


def fetch_package(workdir: Path) -> Path:
    """`npm pack` the pinned package into ``workdir``, check its shasum, unpack it; return ``package/``."""
    spec = f"{NPM_PACKAGE}@{NPM_VERSION}"
    info(f"npm pack {spec} ...")
    try:
        result = subprocess.run(
            ["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)],
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError as exc:
        raise BuildError("npm not found; install it or pass --package-dir") from exc
    except subprocess.CalledProcessError as exc:
        raise BuildError(f"`npm pack {spec}` failed:\n{exc.stderr}") from exc
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise BuildError(f"`npm pack` produced {len(tarballs)} tarballs ({result.stdout.strip()!r})")
    tarball = tarballs[0]
    shasum = hashlib.sha1(tarball.read_bytes()).hexdigest()
    if shasum != NPM_SHASUM:
        raise BuildError(f"{tarball.name}: sha1 {shasum} differs from the registry's {NPM_SHASUM}")
    with tarfile.open(tarball) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package"


def check_package_dir(package_dir: Path) -> Path:
    if not (package_dir / "data").is_dir() and (package_dir / "package" / "data").is_dir():
        package_dir = package_dir / "package"
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        raise BuildError(f"{package_dir}: no package.json (expected an unpacked {NPM_PACKAGE} package)")
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if (meta.get("name"), meta.get("version")) != (NPM_PACKAGE, NPM_VERSION):
        raise BuildError(
            f"{manifest}: {meta.get('name')}@{meta.get('version')}, expected {NPM_PACKAGE}@{NPM_VERSION}"
        )
    return package_dir


def load_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, list):
        raise BuildError(f"{path}: expected a JSON array")
    return data


def unique_by(items: Iterable[dict], key: str, what: str) -> dict[str, dict]:
    result: dict[str, dict] = {}
    duplicates = []
    for item in items:
        code = item[key]
        if code in result:
            duplicates.append(code)
        result[code] = item
    if duplicates:
        raise BuildError(f"{what}: duplicate {key} {sorted(set(duplicates))}")
    return result


def load_populations(path: Path) -> dict[str, dict]:
    """INSEE file -> {COM: {dep, name, pmun, ptot}} for the whole of France."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise BuildError(f"cannot read the INSEE populations file: {exc}") from exc
    rows = []
    with handle:
        reader = csv.DictReader(handle, delimiter=";")
        missing = [c for c in INSEE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BuildError(f"{path}: missing columns {missing} (header {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            where = f"{path.name}:{line} ({row['COM']})"
            pmun = non_negative_int(row["PMUN"], f"{where} PMUN")
            pcap = non_negative_int(row["PCAP"], f"{where} PCAP")
            ptot = non_negative_int(row["PTOT"], f"{where} PTOT")
            if pmun + pcap != ptot:
                raise BuildError(f"{where}: PMUN {pmun} + PCAP {pcap} != PTOT {ptot}")
            rows.append(
                {"code": row["COM"], "dep": row["DEP"], "name": row["Commune"], "pmun": pmun, "ptot": ptot}
            )
    return unique_by(rows, "code", path.name)


# --------------------------------------------------------------------------- build


def build(package_dir: Path, populations: Path) -> tuple[list[tuple], list[tuple]]:
    data_dir = package_dir / "data"
    all_communes = load_json(data_dir / "communes.json")
    epcis = unique_by(load_json(data_dir / "epci.json"), "code", "epci.json")
    insee = load_populations(populations)

    current = unique_by(
        (c for c in all_communes if c.get("type") == "commune-actuelle"),
        "code",
        "communes.json (commune-actuelle)",
    )
    info(f"package: {len(current)} current communes, {len(epcis)} EPCIs; INSEE file: {len(insee)} rows")

    # Whole-France comparison: informational only (the known differences are outside 59/62).
    only_insee = sorted(set(insee) - set(current))
    only_package = sorted(set(current) - set(insee))
    arrondissements = {c["code"] for c in all_communes if c.get("type") == "arrondissement-municipal"}
    plm = len(set(only_insee) & arrondissements)
    by_department = dict(sorted(collections.Counter(current[c]["departement"] for c in only_package).items()))
    info(
        f"whole France: {len(only_insee)} codes only in the INSEE file "
        f"({plm} of them municipal arrondissements of Paris/Lyon/Marseille), "
        f"{len(only_package)} current communes only in the package (by department: {by_department})"
    )

    # EPCI membership, from epci.json.
    epci_of: dict[str, str] = {}
    for siren, epci in epcis.items():
        if not valid_siren(siren):
            raise BuildError(f"epci.json: EPCI {epci.get('nom')!r} has an invalid SIREN {siren!r}")
        for member in epci["membres"]:
            code = member["code"]
            if code in epci_of:
                raise BuildError(f"epci.json: commune {code} is a member of both {epci_of[code]} and {siren}")
            if code not in current:
                raise BuildError(
                    f"epci.json: member {code} of {siren} is not a current commune of communes.json"
                )
            if member.get("siren") != current[code].get("siren"):
                raise BuildError(
                    f"commune {code}: SIREN {member.get('siren')!r} in epci.json "
                    f"but {current[code].get('siren')!r} in communes.json"
                )
            epci_of[code] = siren

    package_local = {code: c for code, c in current.items() if c["departement"] in DEPARTMENTS}
    insee_local = {code: r for code, r in insee.items() if r["dep"] in DEPARTMENTS}
    problems = []
    for code in sorted(set(insee_local) - set(package_local)):
        where = f"in department {current[code]['departement']}" if code in current else "absent"
        problems.append(f"{code} {insee_local[code]['name']}: in the INSEE file, {where} in the package")
    for code in sorted(set(package_local) - set(insee_local)):
        where = f"in department {insee[code]['dep']}" if code in insee else "absent"
        problems.append(f"{code} {package_local[code]['nom']}: in the package, {where} in the INSEE file")
    if problems:
        raise BuildError(
            f"{len(problems)} commune(s) of {'/'.join(DEPARTMENTS)} not in both sources:\n  "
            + "\n  ".join(problems)
        )

    communes_rows = []
    for code in sorted(package_local):
        commune, population = package_local[code], insee_local[code]
        siren = commune.get("siren") or ""
        if not valid_siren(siren):
            raise BuildError(f"commune {code} {commune['nom']}: missing or invalid SIREN {siren!r}")
        if commune.get("population") != population["pmun"]:
            raise BuildError(
                f"commune {code} {commune['nom']}: population {commune.get('population')} in the package but "
                f"PMUN {population['pmun']} in the INSEE file -- not the same vintage?"
            )
        if commune["nom"] != population["name"]:
            info(f"note: {code} is named {commune['nom']!r} in the package, {population['name']!r} by INSEE")
        epci_siren = epci_of.get(code, "")
        if not epci_siren:
            info(f"note: {code} {commune['nom']} belongs to no EPCI")
        postcodes = sorted(set(commune.get("codesPostaux") or []))
        if not postcodes or not all(len(p) == 5 and p.isdigit() for p in postcodes):
            raise BuildError(f"commune {code} {commune['nom']}: postcodes {commune.get('codesPostaux')!r}")
        communes_rows.append(
            (
                code,
                commune["nom"],
                commune["departement"],
                siren,
                population["pmun"],
                population["ptot"],
                VINTAGE,
                epci_siren,
                " ".join(postcodes),
            )
        )

    epci_rows = []
    for siren in sorted({row[7] for row in communes_rows if row[7]}):
        epci = epcis[siren]
        members = [m["code"] for m in epci["membres"]]
        absent = [code for code in members if code not in insee]
        if absent:
            raise BuildError(f"EPCI {siren} {epci['nom']}: members {absent} absent from the INSEE file")
        departments = collections.Counter(current[code]["departement"] for code in members)
        if len(departments) > 1:
            info(
                f"note: EPCI {siren} {epci['nom']} straddles departments {dict(sorted(departments.items()))}"
            )
        epci_rows.append(
            (
                siren,
                epci["nom"],
                epci["type"],
                sum(insee[code]["pmun"] for code in members),
                sum(insee[code]["ptot"] for code in members),
                len(members),
            )
        )
    return communes_rows, epci_rows


FRANCE_FILE = "communes-hors-59-62.csv"
FRANCE_HEADER = ("insee_code", "name", "department", "siren", "population_municipale", "population_totale")


def build_rest_of_france(package_dir: Path, populations: Path) -> list[tuple]:
    """Every other current commune of France found in both sources (code, name, department, SIREN, both
    populations): lets the software refuse a collectivity outside Nord and Pas-de-Calais with its reason,
    and gives realistic data for national-scale benchmarks."""
    current = {
        c["code"]: c
        for c in load_json(package_dir / "data" / "communes.json")
        if c.get("type") == "commune-actuelle" and c.get("departement") not in ("59", "62")
    }
    insee = load_populations(populations)
    rows = []
    for code, commune in sorted(current.items()):
        pop = insee.get(code)
        siren = commune.get("siren") or ""
        if pop is None or not valid_siren(siren):
            continue  # Mayotte, overseas collectivities, Paris/Lyon/Marseille (arrondissements in the INSEE file)
        rows.append((code, commune["nom"], commune["departement"], siren, pop["pmun"], pop["ptot"]))
    return rows


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    temporary.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package-dir",
        type=Path,
        help=f"an unpacked {NPM_PACKAGE}@{NPM_VERSION} (the directory holding package.json); "
        "default: run `npm pack` into a temporary directory",
    )
    parser.add_argument(
        "--populations", type=Path, default=DEFAULT_POPULATIONS, help="INSEE populations légales 2023 file"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where to write the CSV files"
    )
    args = parser.parse_args(argv)

    try:
        with tempfile.TemporaryDirectory(prefix="decoupage-administratif-") as workdir:
            package_dir = args.package_dir or fetch_package(Path(workdir))
            communes_rows, epci_rows = build(check_package_dir(package_dir), args.populations)
            france_rows = build_rest_of_france(package_dir, args.populations)
    except BuildError as exc:
        print(f"build_communes: error: {exc}", file=sys.stderr)
        return 1

    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_csv(args.output_dir / COMMUNES_FILE, COMMUNES_HEADER, communes_rows)
    write_csv(args.output_dir / EPCI_FILE, EPCI_HEADER, epci_rows)
    write_csv(args.output_dir / FRANCE_FILE, FRANCE_HEADER, france_rows)
    info(f"wrote {args.output_dir / FRANCE_FILE}: {len(france_rows)} other communes of France")
    per_department = collections.Counter(row[2] for row in communes_rows)
    info(
        f"wrote {args.output_dir / COMMUNES_FILE}: {len(communes_rows)} communes "
        f"({', '.join(f'{d}: {n}' for d, n in sorted(per_department.items()))}); "
        f"{args.output_dir / EPCI_FILE}: {len(epci_rows)} EPCIs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
