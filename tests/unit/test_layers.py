"""Dependencies point inward: `models` imports no Prefect, SMTP, PDF or application code."""

import ast
from pathlib import Path

FORBIDDEN = (
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
)


def test_models_import_only_inward():
    root = Path(__file__).resolve().parents[2] / "models"
    offenders = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
