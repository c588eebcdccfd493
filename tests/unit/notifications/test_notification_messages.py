"""Message building: escaping, strict context, every template with its documented context."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from notifications.examples import example_context
from notifications.messages import MESSAGE_NAMES, Attachment, build, documented_keys, environment

TO = ["maire@henin-beaumont.example"]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"
TEMPLATES = Path(__file__).resolve().parents[3] / "notifications" / "templates"


def _build(name: str, **changes: object):
    context = example_context(name)
    context.update(changes)
    return build(name, context, to=TO)


# --- escaping -----------------------------------------------------------------------------------


def test_html_escapes_markup_and_ampersand_but_keeps_accents() -> None:
    draft = _build("quotes_to_signatory", collectivity_name="Commune d'Hénin & Cie <script>alert(1)</script>")
    assert "<script>" not in draft.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in draft.html
    assert "Hénin &amp; Cie" in draft.html
    assert "&eacute;" not in draft.html and "&#233;" not in draft.html  # accents stay characters
    assert "Éloïse Lefèvre-Dupré" in draft.html


def test_text_and_subject_keep_the_raw_characters() -> None:
    name = "Commune d'Hénin & Cie <script>alert(1)</script>"
    draft = _build("quotes_to_signatory", collectivity_name=name)
    assert name in draft.text
    assert name in draft.subject
    assert "&amp;" not in draft.text and "&lt;" not in draft.text


def test_links_are_attribute_escaped_in_html_and_plain_in_text() -> None:
    draft = _build("quotes_to_signatory")
    assert 'href="https://mairie-connectee.example/approbation/abc.def?x=1&amp;y=2"' in draft.html
    assert "https://mairie-connectee.example/approbation/abc.def?x=1&y=2" in draft.text


def test_multiline_question_is_escaped_and_kept() -> None:
    draft = _build("question_forwarded", question="Ligne 1 <b>gras</b>\nLigne 2 & fin")
    assert "Ligne 1 &lt;b&gt;gras&lt;/b&gt;\nLigne 2 &amp; fin" in draft.html
    assert "Ligne 1 <b>gras</b>\nLigne 2 & fin" in draft.text


# --- strict context -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_every_required_key_is_needed(name: str) -> None:
    for key in documented_keys(name):
        if key.optional:
            continue
        context = example_context(name)
        del context[key.name]
        with pytest.raises((UndefinedError, ValueError)):
            build(name, context, to=TO)


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_optional_keys_may_be_left_out(name: str) -> None:
    context = example_context(name)
    for key in documented_keys(name):
        if key.optional:
            del context[key.name]
    draft = build(name, context, to=TO)
    assert draft.text and draft.html


def test_a_missing_nested_key_fails_loudly() -> None:
    context = example_context("quotes_to_signatory")
    context["services_quote"] = {"number": "LFN-DEV-2026-00007", "issuer_name": "La Fibre Numérique 59-62"}
    with pytest.raises(UndefinedError, match="total_ttc"):
        build("quotes_to_signatory", context, to=TO)


def test_the_environment_is_strict_and_autoescapes_html_only() -> None:
    env = environment()
    with pytest.raises(UndefinedError):
        env.from_string("{{ missing }}").render()
    assert env.get_template("_macros.html").environment.autoescape("x.html") is True  # type: ignore[operator]
    assert env.autoescape("x.txt") is False  # type: ignore[operator]


# --- every template -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_every_template_renders_with_its_documented_context(name: str) -> None:
    documented = {key.name for key in documented_keys(name)}
    context = example_context(name)
    assert documented == set(context), "the example context and the header comment disagree"
    draft = build(name, context, to=TO)
    assert draft.subject and "\n" not in draft.subject and len(draft.subject) <= 300
    assert draft.text.endswith("Message envoyé automatiquement par la plateforme du Pack Mairie Connectée.\n")
    assert "\n-- \n" in draft.text  # signature delimiter
    for body in (draft.text, draft.html):
        assert "{{" not in body and "{%" not in body and "None" not in body
    assert draft.html.startswith("<!DOCTYPE html>") and '<html lang="fr">' in draft.html
    assert "\n\n\n" not in draft.text


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_html_header_lists_the_same_keys_as_the_text_header(name: str) -> None:
    header = (TEMPLATES / f"{name}.html").read_text(encoding="utf-8").split("-#}", 1)[0]
    listed = header.split(".txt:", 1)[1]
    keys = {re.sub(r"\s*\(optional\)", "", k).strip() for k in listed.replace("\n", " ").split(",")}
    assert keys == {key.name for key in documented_keys(name)}


@pytest.mark.parametrize("name", MESSAGE_NAMES)
def test_the_docs_list_every_context_key(name: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    section = docs.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
    for key in documented_keys(name):
        assert f"`{key.name}`" in section, f"docs/notifications.md: {name} lacks {key.name}"


# --- content --------------------------------------------------------------------------------------


def test_quotes_email_names_both_quotes_the_band_the_link_and_its_expiry() -> None:
    draft = _build("quotes_to_signatory")
    for needle in ("LFN-DEV-2026-00007", "CDG62-DEV-2026-00007", "1\u202f234,50\xa0€ TTC", "150,00\xa0€ TTC",
                   "1\u202f234 habitants", "millésime 2023", "de 1 000 à moins de 1 500 habitants",
                   "CONV-2026-00012", "1er mars 2026", "numerique@cdg62.example"):  # fmt: skip
        assert needle in draft.text, needle
    assert "Lire et signer la convention" in draft.html


@pytest.mark.parametrize(
    ("level", "subject_start", "final"),
    [(1, "Rappel :", False), (2, "Second rappel :", False), (3, "Dernier rappel avant transmission", True)],
)
def test_payment_reminder_levels(level: int, subject_start: str, final: bool) -> None:
    draft = _build("payment_reminder", level=level)
    assert draft.subject.startswith(subject_start)
    assert ("comptable public de l'émetteur" in draft.text) is final
    assert "IBAN : FR76 3000 1007 9412 3456 7890 185" in draft.text


@pytest.mark.parametrize("level", [0, 4, "1", None])
def test_payment_reminder_refuses_other_levels(level: object) -> None:
    with pytest.raises(ValueError, match="niveau"):
        _build("payment_reminder", level=level)


def test_signature_reminder_levels() -> None:
    assert _build("signature_reminder", level=1).subject.startswith("Rappel :")
    assert _build("signature_reminder", level=2).subject.startswith("Second rappel :")
    assert _build("signature_reminder", level=5).subject.startswith("Rappel n° 5 :")
    with pytest.raises(ValueError):
        _build("signature_reminder", level=0)


@pytest.mark.parametrize(
    ("channel", "needle"),
    [("facturx_chorus", "déposée sur Chorus Pro"), ("pes_asap", "PES ASAP"), ("email_pdf", "adressée par courriel")],
)
def test_invoice_mentions_its_billing_channel(channel: str, needle: str) -> None:
    draft = _build("invoice_issued", billing_channel=channel, total_ttc=Decimal("80"))
    assert needle in draft.text and needle in draft.html
    assert "Montant : 80,00\xa0€" in draft.text


def test_declined_without_reason_says_so() -> None:
    assert "(aucun motif indiqué)" in _build("convention_declined", reason="  ").text


# --- boundary checks ------------------------------------------------------------------------------


def test_unknown_message_is_refused() -> None:
    with pytest.raises(ValueError, match="message inconnu"):
        build("nope", {}, to=TO)


@pytest.mark.parametrize("address", ["pas-une-adresse", "maire@", "a b@exemple.fr"])
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="adresse électronique invalide"):
        build("operator_task", example_context("operator_task"), to=[address])


def test_at_least_one_recipient() -> None:
    with pytest.raises(ValueError, match="destinataire"):
        build("operator_task", example_context("operator_task"), to=[])


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative", "ftp://x.example/"])
def test_links_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="approval_url"):
        _build("quotes_to_signatory", approval_url=url)


def test_draft_carries_recipients_and_attachments() -> None:
    attachment = Attachment("devis.pdf", "application/pdf", "a" * 64)
    draft = build(
        "operator_task", example_context("operator_task"), to=TO, cc=["b@c.example"], reply_to="r@c.example",
        attachments=[attachment],
    )  # fmt: skip
    assert (draft.to, draft.cc, draft.reply_to, draft.attachments) == (
        tuple(TO),
        ("b@c.example",),
        "r@c.example",
        (attachment,),
    )


def test_attachment_needs_a_sha256_and_a_content_type() -> None:
    with pytest.raises(ValueError):
        Attachment("x.pdf", "application/pdf", "abc")
    with pytest.raises(ValueError):
        Attachment("x.pdf", "pdf", "a" * 64)
