"""`mairie documents …`: render sample documents so an operator or a designer can review a template.

Mounted by the main CLI as `app.add_typer(documents_app, name="documents")`. Bad input gets a plain
message and exit status 2, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import typer
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pydantic import ValidationError

from documents import render_avoir, render_convention, render_devis, render_facture
from documents.data import Issuer
from documents.samples import sample_avoir, sample_convention, sample_devis, sample_facture
from documents.seal import SealReport, certificate_of, verify
from documents.store import StoreError
from mairie.services.evidence import EvidenceCheck, check_convention
from mairie.services.sealing import dev_trust_root
from mairie.settings import get_settings
from mairie.terminal import SafeConsole
from models.errors import DomainError, StorageUnavailable

documents_app = typer.Typer(
    help="Documents PDF : devis, convention, factures et avoirs ; vérification de leur cachet ; magasin des documents.",
    no_args_is_help=True,
)
SAMPLE_KINDS = ("devis", "convention", "facture", "avoir")

out = SafeConsole()
err = SafeConsole(stderr=True)


@documents_app.callback()
def documents() -> None:
    """Documents PDF : devis, convention, factures et avoirs."""


def _fail(message: str) -> None:
    err.print(f"[bold red]Erreur :[/] {message}", highlight=False)
    raise typer.Exit(2)


def _issuers(department: str) -> tuple[Issuer, Issuer]:
    settings = get_settings()
    cdg = settings.cdg_for_department(department)
    if cdg is None:
        _fail(f"département « {department} » non desservi : 59 (Nord) ou 62 (Pas-de-Calais)")
        raise AssertionError  # unreachable: _fail exits
    return Issuer.from_identity(settings.syndicat), Issuer.from_identity(cdg)


def _render(kind: str, syndicat: Issuer, cdg: Issuer, *, cdg_side: bool, draft: bool) -> bytes:
    if kind == "devis":
        return render_devis(sample_devis(syndicat, cdg, support=cdg_side))
    if kind == "facture":
        return render_facture(sample_facture(syndicat, cdg, support=cdg_side))
    if kind == "avoir":
        return render_avoir(sample_avoir(syndicat, cdg))
    return render_convention(sample_convention(syndicat, cdg, signed=not draft))


def _check_out(path: Path) -> None:
    if path.suffix.lower() != ".pdf":
        _fail(f"le fichier de sortie doit se terminer par .pdf : « {path} »")
    if not path.parent.is_dir():
        _fail(f"le dossier « {path.parent} » n'existe pas")
    if path.is_dir():
        _fail(f"« {path} » est un dossier")


@documents_app.command("sample")
def sample(
    kind: str = typer.Argument(..., help="devis | convention | facture | avoir", show_default=False),
    out_file: Path = typer.Option(..., "--out", "-o", help="Fichier PDF à écrire.", show_default=False),
    cdg_side: bool = typer.Option(False, "--cdg", help="Devis ou facture du Centre de gestion (accompagnement)."),
    draft: bool = typer.Option(False, "--projet", help="Convention non signée, marquée « PROJET »."),
    department: str = typer.Option("62", "--departement", help="Département de la collectivité (59 ou 62)."),
) -> None:
    """Écrit un document d'exemple (commune réelle du Pas-de-Calais, grille tarifaire du 10 juillet 2025)."""
    kind = kind.strip().lower()
    if kind not in SAMPLE_KINDS:
        _fail(f"type de document inconnu « {kind} » ; types acceptés : {', '.join(SAMPLE_KINDS)}")
    if cdg_side and kind not in ("devis", "facture"):
        _fail("--cdg ne s'applique qu'à un devis ou une facture")
    if draft and kind != "convention":
        _fail("--projet ne s'applique qu'à la convention")
    _check_out(out_file)
    try:
        syndicat, cdg = _issuers(department)
        pdf = _render(kind, syndicat, cdg, cdg_side=cdg_side, draft=draft)
        out_file.write_bytes(pdf)
    except DomainError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"réglage invalide {'.'.join(str(p) for p in first['loc'])} : {first['msg']}")
    except OSError as exc:
        _fail(f"écriture impossible de « {out_file} » : {exc.strerror or exc}")
    digest = hashlib.sha256(pdf).hexdigest()
    out.print(f"{kind} écrit dans {out_file} ({len(pdf) / 1024:.0f} Ko, SHA-256 {digest})", highlight=False)


def _trust_roots(paths: list[Path]) -> list[asn1_x509.Certificate]:
    roots: list[asn1_x509.Certificate] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            _fail(f"certificat illisible « {path} » : {exc.strerror or exc}")
        try:
            if pem.detect(data):
                roots += [asn1_x509.Certificate.load(der) for _t, _h, der in pem.unarmor(data, multiple=True)]
            else:
                roots.append(asn1_x509.Certificate.load(data))
            _ = [root.subject for root in roots]  # parse now: a bad file fails here, not in the verification
        except (ValueError, TypeError) as exc:
            _fail(f"« {path} » n'est pas un certificat X.509 (PEM ou DER) : {exc}")
    return roots


def _when(moment: datetime | None) -> str:
    return f"{moment:%d/%m/%Y à %H:%M:%S} UTC" if moment else "inconnu"


def _yes(value: bool | None) -> str:
    return "non vérifié (aucune autorité donnée)" if value is None else ("oui" if value else "non")


def _print_report(path: Path, report: SealReport) -> None:
    out.print(f"[bold]{path}[/]", highlight=False)
    if report.sealed:
        out.print(f"  Scellé par : {report.sealed_by}", highlight=False)
        out.print(f"  Le : {_when(report.sealed_at)} (heure déclarée par le signataire)", highlight=False)
        if report.timestamped_at is not None:
            out.print(
                f"  Horodaté le : {_when(report.timestamped_at)} par {report.timestamp_authority} (RFC 3161)",
                highlight=False,
            )
        out.print(f"  Niveau PAdES : {report.level}", highlight=False)
        out.print(f"  Contenu scellé intact : {_yes(report.intact)}", highlight=False)
        out.print(f"  Non modifié depuis le cachet : {_yes(report.unchanged_since)}", highlight=False)
        out.print(f"  Certificat reconnu : {_yes(report.trusted)}", highlight=False)
        out.print(f"  Certificat : {report.certificate_subject}", highlight=False)
        out.print(f"  Empreinte SHA-256 du certificat : {report.certificate_sha256}", highlight=False)
        out.print(f"  Certificat valable jusqu'au : {_when(report.certificate_valid_until)}", highlight=False)
    if report.facturx_present:
        state = "valide" if report.facturx_valid else "NON VALIDE"
        out.print(f"  XML Factur-X : présent, {state}", highlight=False)
        for problem in report.facturx_problems:
            out.print(f"    - {problem}", highlight=False)
    else:
        out.print("  XML Factur-X : absent", highlight=False)
    for problem in report.problems:
        out.print(f"  [red]{problem}[/]", highlight=False)
    verdict = "[green]AUTHENTIQUE[/]" if report.genuine else "[bold red]NON AUTHENTIQUE[/]"
    out.print(f"  Verdict : {verdict}", highlight=False)


def _print_evidence(check: EvidenceCheck | None) -> None:
    if check is None:
        return
    out.print(f"  Page de preuve de la convention {check.convention} :", highlight=False)
    if not check.compared:
        out.print(f"    [yellow]Non comparée à la base de données[/] : {check.reason}.", highlight=False)
        return
    same = "oui" if check.same_file else "[red]non[/]"
    out.print(f"    Fichier identique à la convention finale enregistrée en base : {same}", highlight=False)
    for party in check.parties:
        state = "[green]concorde avec la base[/]" if party.matches else "[bold red]ne concorde pas[/]"
        out.print(f"    Signature ({party.party}) de {party.name} : {state}", highlight=False)
        for difference in party.differences:
            out.print(f"      - {difference}", highlight=False)
    verdict = "[green]CONCORDANTES[/]" if check.matches else "[bold red]DIFFÉRENTES[/]"
    out.print(f"    Signatures et base de données : {verdict}", highlight=False)


def _evidence(pdf: bytes) -> EvidenceCheck | None:
    """The convention's evidence page against the settings' database (not compared if none is reachable)."""
    from documents.evidence import convention_evidence

    try:
        settings = get_settings()
    except ValidationError:
        found = convention_evidence(pdf)
        if found is None:
            return None
        return EvidenceCheck(found[0], compared=False, reason="réglages invalides : base de données inconnue")
    return check_convention(settings, pdf)


@documents_app.command("verify")
def verify_command(
    pdf_file: Path = typer.Argument(..., help="Le PDF à vérifier.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Rapport en JSON."),
    ca: list[Path] = typer.Option(
        [], "--ca", help="Certificat d'autorité de confiance (PEM ou DER), répétable."
    ),
) -> None:
    """Vérifie le cachet d'un PDF sans la base : qui l'a scellé, quand, s'il a changé depuis, son XML Factur-X ;
    pour une convention, compare sa page de preuve à la base de données quand elle est joignable.

    Code de sortie 0 : authentique ; 1 : non scellé, modifié, certificat non reconnu ou signatures de la page
    de preuve différentes de la base ; 2 : erreur.
    Sans --ca, en développement, l'autorité de test de `mairie init` sert d'autorité de confiance."""
    try:
        pdf = pdf_file.read_bytes()
    except OSError as exc:
        _fail(f"lecture impossible de « {pdf_file} » : {exc.strerror or exc}")
    # pyHanko logs an untrusted path with its traceback; the report says it in French instead.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    paths = list(ca)
    if not paths:
        dev_ca = dev_trust_root(get_settings())
        paths = [dev_ca] if dev_ca else []
    report = verify(pdf, trust_roots=_trust_roots(paths))
    evidence = _evidence(pdf)
    if as_json:
        data = asdict(report) | {"genuine": report.genuine, "facturx_valid": report.facturx_valid}
        data["evidence"] = evidence.as_json() if evidence is not None else None
        print(json.dumps(data, default=_json_default, ensure_ascii=False, indent=2))
    else:
        _print_report(pdf_file, report)
        _print_evidence(evidence)
    raise typer.Exit(0 if report.genuine and (evidence is None or evidence.matches is not False) else 1)


@documents_app.command("check-seals")
def check_seals() -> None:
    """Vérifie que le certificat de cachet de chaque émetteur peut sceller (hors développement) : présent,
    lisible, en cours de validité, clé assortie, usage de signature. Code 2 sinon (lancé avant le worker)."""
    from mairie.services.sealing import seal_key_for, startup_problems

    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"réglage invalide {'.'.join(str(p) for p in first['loc'])} : {first['msg']}")
        raise AssertionError from exc  # unreachable: _fail exits
    problems = startup_problems(settings)
    if problems:
        _fail("certificats de cachet refusés :\n" + "\n".join(f"  - {p}" for p in problems))
    for identity in settings.issuers():
        try:
            key = seal_key_for(settings, identity)
            cert = certificate_of(key)
        except DomainError as exc:  # development: a test certificate that `mairie init` renews
            _fail(str(exc))
            raise AssertionError from exc
        out.print(
            f"{identity.code} : {cert.subject} (n° {cert.serial}), valable jusqu'au {cert.not_after:%d/%m/%Y}, "
            f"PAdES {key.level}",
            highlight=False,
        )


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@documents_app.command("copy-to-database")
def copy_to_database_command(
    folder: Path | None = typer.Option(
        None, "--dossier", help="Le dossier des documents (par défaut : MAIRIE_DOCUMENTS_DIR).", show_default=False
    ),
) -> None:
    """Copie dans la base (table documentblob) les documents d'un dossier de fichiers, chacun vérifié par
    son empreinte SHA-256 : pour passer de MAIRIE_DOCUMENT_STORE=files à database. Relancer ne change rien ;
    le dossier reste tel quel (à supprimer une fois la copie vérifiée)."""
    from mairie.database import migrate
    from mairie.services.paperwork import copy_files_to_database

    settings = get_settings()
    source = folder or settings.documents_path
    if not source.is_dir():
        _fail(f"dossier introuvable : « {source} »")
    try:
        migrate(settings)
        report = copy_files_to_database(settings, source)
    except (StoreError, StorageUnavailable) as exc:
        _fail(str(exc))
    out.print(
        f"{len(report.copied)} document(s) copié(s) dans la base, {len(report.present)} déjà présent(s), "
        f"{len(report.refused)} refusé(s) — depuis {source}",
        highlight=False,
    )
    for sha, reason in report.refused:
        out.print(f"  [red]refusé {sha[:12]}… : {reason}[/]", highlight=False)
    raise typer.Exit(1 if report.refused else 0)


@documents_app.command("extract")
def extract_command(
    sha256: str = typer.Argument(..., help="L'empreinte SHA-256 du document (64 caractères).", show_default=False),
    out_file: Path = typer.Option(..., "--out", "-o", help="Le fichier à écrire.", show_default=False),
) -> None:
    """Écrit dans un fichier un document du magasin configuré (base ou dossier), vérifié par son empreinte :
    par exemple pour `mairie documents verify` d'une facture émise."""
    from mairie.services.paperwork import load

    if not out_file.parent.is_dir() or out_file.is_dir():
        _fail(f"« {out_file} » : le dossier n'existe pas, ou c'est un dossier")
    try:
        content = load(get_settings(), sha256.strip().lower())
    except (StoreError, StorageUnavailable) as exc:
        _fail(str(exc))
    try:
        out_file.write_bytes(content)
    except OSError as exc:
        _fail(f"écriture impossible de « {out_file} » : {exc.strerror or exc}")
    out.print(f"document {sha256[:12]}… écrit dans {out_file} ({len(content) / 1024:.0f} Ko)", highlight=False)
