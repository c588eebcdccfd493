"""The text policy (models/text.py): properties over any text (hypothesis), and the probes of issue 17."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mairie.schemas import OperatorAmounts, RequestForm, validation_message
from models.errors import InvalidInput
from models.text import (
    BIDI_CONTROLS,
    UnsafeText,
    check_text,
    clean_text,
    for_terminal,
    is_safe_text,
    text_problem,
    without_unsafe,
)
from tests.conftest import mairie_siret

CONTROLS = [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
REFUSED_ONE_LINE = [*CONTROLS, *sorted(BIDI_CONTROLS), "\u2028", "\u2029"]
REFUSED_MULTILINE = [c for c in REFUSED_ONE_LINE if c not in "\n\t\r\u2028\u2029"]

refused_char = st.sampled_from(REFUSED_ONE_LINE)
any_text = st.text(st.characters(exclude_categories=[]), max_size=60)  # lone surrogates included


def _dangerous(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in BIDI_CONTROLS or 0xD800 <= code <= 0xDFFF


@given(st.text(max_size=40), refused_char, st.text(max_size=40))
def test_a_refused_character_anywhere_is_refused_in_a_one_line_field(before: str, char: str, after: str) -> None:
    with pytest.raises(UnsafeText) as refused:
        clean_text(before + char + after, "nom")
    message = str(refused.value)
    assert message.startswith("nom : contient un ")
    assert "U+" in message and "retirez-le" in message
    assert isinstance(refused.value, InvalidInput) and isinstance(refused.value, ValueError)


@given(st.text(max_size=40), st.sampled_from(REFUSED_MULTILINE), st.text(max_size=40))
def test_a_multiline_field_refuses_the_same_but_line_feeds_and_tabs(before: str, char: str, after: str) -> None:
    assert text_problem(before + char + after, multiline=True) is not None


@given(any_text)
def test_what_the_policy_accepts_is_nfc_and_holds_nothing_dangerous(value: str) -> None:
    try:
        cleaned = check_text(value)
    except UnsafeText:
        assert not is_safe_text(value)
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert not any(_dangerous(c) or c in "\u2028\u2029" for c in cleaned)
    assert check_text(cleaned) == cleaned  # idempotent


@given(any_text)
def test_multiline_keeps_only_line_feeds_and_tabs_as_controls(value: str) -> None:
    try:
        cleaned = check_text(value, multiline=True)
    except UnsafeText:
        return
    assert "\r" not in cleaned
    assert {c for c in cleaned if _dangerous(c)} <= {"\n", "\t"}


def test_crlf_and_cr_are_line_feeds_in_a_multiline_field() -> None:
    assert check_text("Bonjour,\r\nune question.\rMerci", multiline=True) == "Bonjour,\nune question.\nMerci"


def test_nfc_normalisation() -> None:
    decomposed = "Me\u0301lanie Be\u0301thune"  # e + combining acute accent
    assert check_text(decomposed) == "Mélanie Béthune"


@given(any_text)
def test_for_terminal_never_prints_a_control_whatever_is_stored(value: str) -> None:
    shown = for_terminal(value)
    assert not any(_dangerous(c) or c in "\u2028\u2029" for c in shown)
    if is_safe_text(value):
        assert shown == value  # safe text is printed as it is


def test_for_terminal_escapes_what_would_take_over_a_terminal() -> None:
    assert for_terminal("Jeanne\x1b[2J\x1b]0;pwned\x07") == "Jeanne\\x1b[2J\\x1b]0;pwned\\x07"
    assert for_terminal("Maire \u202eeriaM") == "Maire \\u202eeriaM"
    assert for_terminal("ligne 1\nligne 2\tfin", keep_newlines=True) == "ligne 1\nligne 2\tfin"
    assert for_terminal("ligne 1\nligne 2") == "ligne 1\\x0aligne 2"
    assert for_terminal(None) == ""


@given(any_text)
def test_without_unsafe_leaves_only_what_the_policy_accepts(value: str) -> None:
    assert is_safe_text(without_unsafe(value, keep_newlines=False))
    assert is_safe_text(without_unsafe(value), multiline=True)
    assert without_unsafe("Maire \u202eeriaM\x1b[0m") == "Maire eriaM[0m"


# The probes of issue 17 on the schemas (shared by the API, the CLI and the Prefect forms).

BASE = {
    "collectivity": "62700",
    "siret": mairie_siret("62700"),
    "items": [{"code": "antivirus", "quantity": 1}],
    "signatory_name": "Jeanne Dupont",
    "signatory_email": "maire@exemple.fr",
}


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("signatory_name", "Jeanne \x1b[31mDupont", "nom du signataire"),
        ("signatory_name", "Jeanne \u202eDupont", "nom du signataire"),
        ("signatory_capacity", "Maire\u2066", "qualité du signataire"),
        ("chorus_service_code", "SERVICE\x00", "code service Chorus Pro"),
        ("commitment_number", "ENG\u200f42", "numéro d'engagement"),
        ("collectivity", "627\x1b00", "collectivité"),
    ],
)
def test_request_form_refuses_controls_and_bidi_naming_the_field(field: str, value: str, label: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RequestForm.model_validate({**BASE, field: value})
    message = validation_message(refused.value)
    assert message.startswith(f"{label} : ")
    assert "non autorisé" in message or "ni un code INSEE" in message


@pytest.mark.parametrize("quantity", [True, False, "3", "1"])
def test_quantity_is_not_coerced_from_bool_or_string(quantity: object) -> None:
    with pytest.raises(ValidationError) as refused:
        RequestForm.model_validate({**BASE, "items": [{"code": "antivirus", "quantity": quantity}]})
    assert "doit être un nombre entier" in validation_message(refused.value)


def test_operator_amounts_apply_the_policy() -> None:
    with pytest.raises(ValidationError) as refused:
        OperatorAmounts(comment="montant\x1b[8m caché", operator="Paul")
    assert validation_message(refused.value).startswith("commentaire : contient un caractère de contrôle")
    with pytest.raises(ValidationError):
        OperatorAmounts(operator="Paul\u202e")
    amounts = OperatorAmounts(comment="ligne 1\r\nligne 2", operator="  Paul  Martin ")
    assert (amounts.comment, amounts.operator) == ("ligne 1\nligne 2", "Paul Martin")
