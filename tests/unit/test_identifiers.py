import pytest

from models.directory import parse_identifier
from models.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("62041", "insee", "62041"),
        (" 2a004 ", "insee", "2A004"),
        ("216200410", "siren", "216200410"),
        ("216 200 410", "siren", "216200410"),
        ("21620041000001", "siren", "216200410"),
    ],
)
def test_accepted(text, kind, value):
    ident = parse_identifier(text)
    assert (ident.kind, ident.value) == (kind, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("216200411", "clé de contrôle"), ("21620041000012", "SIRET"), ("abc", "ni un code INSEE"), ("1234", "ni un")],
)
def test_refused(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_identifier(text)
