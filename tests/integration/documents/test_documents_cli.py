"""`mairie documents sample`: writes a PDF, refuses bad input with exit status 2 and no traceback."""

import pytest
from facturx import get_xml_from_pdf
from typer.testing import CliRunner

from documents import schematron
from mairie.cli_documents import documents_app

runner = CliRunner()


@pytest.mark.parametrize("kind", ["devis", "convention", "facture", "avoir"])
def test_sample_writes_a_pdf(tmp_path, kind):
    target = tmp_path / f"{kind}.pdf"
    result = runner.invoke(documents_app, ["sample", kind, "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"%PDF-")
    assert "SHA-256" in result.output
    if kind in ("facture", "avoir"):  # the sample's Factur-X XML passes the XSD, CEN and BR-FR rules
        _name, xml = get_xml_from_pdf(target.read_bytes(), check_xsd=True)
        assert schematron.check_all(xml) == []


def test_sample_options(tmp_path):
    for args in (["devis", "--cdg"], ["facture", "--cdg", "--departement", "59"], ["convention", "--projet"]):
        target = tmp_path / "x.pdf"
        result = runner.invoke(documents_app, ["sample", *args, "--out", str(target)])
        assert result.exit_code == 0, result.output
        if args[0] == "facture":
            _name, xml = get_xml_from_pdf(target.read_bytes(), check_xsd=True)
            assert schematron.check_all(xml) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bon-de-commande", "--out", "x.pdf"], "types acceptés : devis, convention, facture, avoir"),
        (["devis", "--out", "x.txt"], ".pdf"),
        (["devis", "--out", "/nonexistent/folder/x.pdf"], "n'existe pas"),
        (["avoir", "--cdg", "--out", "x.pdf"], "--cdg"),
        (["devis", "--projet", "--out", "x.pdf"], "--projet"),
        (["devis", "--departement", "75", "--out", "x.pdf"], "non desservi"),
    ],
)
def test_bad_input_exit_2_without_traceback(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(documents_app, ["sample", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.pdf").exists()


def test_missing_out_is_a_usage_error():
    result = runner.invoke(documents_app, ["sample", "devis"])
    assert result.exit_code == 2
