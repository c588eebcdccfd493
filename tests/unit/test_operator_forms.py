"""The operators' forms in the Prefect UI (issue 18): what Prefect draws from each deployment's parameter
schema — a French title and a description with an example on every field, no str/None type switch, item
codes as a choice list showing labels and prices."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema
from pydantic import BaseModel

from flows.deployments import OPERATOR_ACTIONS, catalogue

FORMS = [spec for spec in catalogue() if spec.name == "demande-de-services"] + list(OPERATOR_ACTIONS)


def _schema(spec: Any) -> dict[str, Any]:
    return parameter_schema(spec.load().fn).model_dump()


def _fields(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(model, field, its schema) for every field of every model of the form."""
    return [
        (model, name, prop)
        for model, definition in schema["definitions"].items()
        for name, prop in (definition.get("properties") or {}).items()
    ]


def _models(spec: Any) -> list[type[BaseModel]]:
    """The pydantic models of a flow's parameters, nested ones included."""
    hints = typing.get_type_hints(spec.load().fn, include_extras=True)
    todo: list[Any] = [hints[name] for name in inspect.signature(spec.load().fn).parameters]
    found: list[type[BaseModel]] = []
    while todo:
        hint = todo.pop()
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            if hint not in found:
                found.append(hint)
                todo += [info.annotation for info in hint.model_fields.values()]
        else:
            todo += list(typing.get_args(hint))
    return found


def _null_switches(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node] if any(o == {"type": "null"} for o in node.get("anyOf", [])) else []
        return found + [f for value in node.values() for f in _null_switches(value)]
    if isinstance(node, list):
        return [f for value in node for f in _null_switches(value)]
    return []


@pytest.mark.parametrize("spec", FORMS, ids=lambda s: s.name)
def test_every_field_has_a_french_title_and_a_described_example(spec: Any) -> None:
    schema = _schema(spec)
    for name, prop in schema["properties"].items():  # top-level parameters: described by the docstring
        assert prop.get("description"), f"{spec.name}: parameter {name} has no description"
    fields = _fields(schema)
    assert fields, f"{spec.name}: its form is one model of titled fields"
    for model in _models(spec):
        untitled = [name for name, info in model.model_fields.items() if not info.title]
        assert untitled == [], f"{spec.name}: {model.__name__} fields without a title: {untitled}"
    for model, name, prop in fields:
        assert prop.get("description"), f"{spec.name}: {model}.{name} has no description"
        if prop.get("type") in ("string", "integer") and "enum" not in prop and "$ref" not in prop:
            assert "ex." in prop["description"], f"{spec.name}: {model}.{name} gives no example"


@pytest.mark.parametrize("spec", FORMS, ids=lambda s: s.name)
def test_no_field_is_a_type_switch(spec: Any) -> None:
    schema = _schema(spec)
    assert _null_switches(schema["definitions"]) == [], f"{spec.name}: an optional field is drawn as a type switch"


def test_item_codes_are_a_choice_list_with_labels_and_prices() -> None:
    for spec in FORMS:
        if spec.name not in ("demande-de-services", "nouveau-devis"):
            continue
        codes = [prop for _, name, prop in _fields(_schema(spec)) if name == "code"]
        assert codes, spec.name
        for prop in codes:
            assert prop["enum"] and all(" — " in e and "€ TTC" in e for e in prop["enum"]), spec.name


def test_the_request_form_shows_french_titles() -> None:
    from mairie.schemas import RequestForm

    titles = {name: field.title for name, field in RequestForm.model_fields.items()}
    assert titles["collectivity"] == "Collectivité" and titles["items"] == "Articles demandés"
    assert titles["signatory_name"] == "Nom du signataire" and titles["siret"] == "SIRET facturé"
    assert all(titles.values()), titles
