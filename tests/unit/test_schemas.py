import pytest
from pydantic import ValidationError

from mairie.schemas import RequestForm, validation_message
from tests.conftest import mairie_siret

BASE = {
    "collectivity": "62700",
    "siret": mairie_siret("62700"),
    "items": [{"code": "antivirus", "quantity": 1}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@exemple.fr",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"signatory_email": "pas-une-adresse"}, "courriel du signataire : adresse électronique invalide"),
        ({"items": []}, "articles : trop court (au moins 1)"),
        ({"items": [{"code": "antivirus", "quantity": 0}]}, "articles › n° 1 › quantité : doit être au moins 1"),
        ({"items": [{"code": "antivirus", "quantity": "deux"}]}, "quantité : doit être un nombre entier"),
        ({"inconnu": 1}, "inconnu : champ inconnu"),
        ({"siret": "123"}, "SIRET : SIRET « 123 » invalide"),
        ({"items": [{"code": "antivirus", "quantity": 1}, {"code": "antivirus", "quantity": 2}]}, "deux fois"),
    ],
)
def test_plain_french_messages(change, expected):
    with pytest.raises(ValidationError) as raised:
        RequestForm(**{**BASE, **change})
    assert expected in validation_message(raised.value)


def test_missing_field():
    data = dict(BASE)
    del data["signatory_email"]
    with pytest.raises(ValidationError) as raised:
        RequestForm(**data)
    assert validation_message(raised.value) == "courriel du signataire : champ obligatoire"
