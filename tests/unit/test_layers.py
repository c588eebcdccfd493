"""Dependencies point inward, as `docs/architecture.md` draws them; every arrow is checked here.

models/          imports no Prefect, SMTP, PDF, web or application code
documents/       imports models only (no mairie, flows, notifications)
notifications/   imports models (and mairie.settings for the SMTP configuration), no flows, web or CLI
mairie/services  imports models, documents, notifications, mairie.settings/database/links/adapters/…;
                 never flows, the CLI, the web app, the stack, Prefect or Rich
flows/           imports services, never the CLI or the web app
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package (folder) → top-level or dotted module prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": (
        "prefect",
        "aiosmtplib",
        "aiosmtpd",
        "weasyprint",
        "facturx",
        "jinja2",
        "flows",
        "documents",
        "notifications",
        "mairie",
        "fastapi",
        "typer",
        "rich",
        "httpx",
    ),
    "documents": ("mairie", "flows", "notifications", "prefect", "fastapi", "typer", "sqlmodel", "sqlalchemy"),
    "notifications": ("flows", "mairie.services", "mairie.web", "mairie.cli", "mairie.stack", "prefect", "typer"),
    "mairie/services": (
        "flows",
        "mairie.cli",
        "mairie.cli_chorus",
        "mairie.chorus_sandbox",
        "mairie.cli_documents",
        "mairie.cli_mail",
        "mairie.cli_story",
        "mairie.cli_web",
        "mairie.web",
        "mairie.stack",
        "mairie.submission",
        "mairie.demo",
        "prefect",
        "rich",
        "typer",
        "fastapi",
    ),
    "mairie/adapters": ("flows", "mairie.services", "mairie.web", "mairie.cli", "prefect"),
    "flows": ("mairie.cli", "mairie.web", "mairie.demo"),
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from mairie import submission` imports mairie.submission
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_inward(package: str) -> None:
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for name in _imports(path):
            offenders += [f"{path.relative_to(ROOT)}: {name}" for p in FORBIDDEN[package] if _matches(name, p)]
    assert offenders == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The walker itself: a module importing the CLI is an offender (the test above is not vacuous)."""
    module = tmp_path / "m.py"
    module.write_text("from mairie import cli\nimport flows.billing\n", encoding="utf-8")
    names = _imports(module)
    assert any(_matches(n, "mairie.cli") for n in names)
    assert any(_matches(n, "flows") for n in names)
