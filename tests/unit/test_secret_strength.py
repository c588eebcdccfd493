"""Production secrets are checked for randomness, not length only (issue 17): the probes, random tokens of
every usual recipe accepted, and the refusal saying how to make a good one."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mairie.settings import SECRET_MIN_BITS, SECRET_RECIPE, Settings, entropy_estimate, secret_strength
from tests.conftest import real_identities

WEAK = [
    " " * 32,
    "a" * 32,
    "a" * 64,
    "abcdefghijklmnopqrstuvwxyz012345",
    "0123456789" * 4,
    "Password123!Password123!Password",
    "aaaaaaaabbbbbbbbccccccccdddddddd",
    "CHANGE-ME",
    "CHANGE-ME-but-long-enough-to-pass-the-length-check",
    "correct horse battery staple yes",
    "x" * 40,
]


def production(**values: str) -> Settings:
    # real-looking identities: only the secrets are under test (example identities are refused too)
    return Settings(_env_file=None, environment="production", **real_identities(), **values)  # type: ignore[call-arg]


@pytest.mark.parametrize("weak", WEAK)
def test_a_weak_secret_key_is_refused_with_the_recipe(weak: str) -> None:
    with pytest.raises(ValidationError) as refused:
        production(secret_key=weak)
    message = str(refused.value)
    assert "MAIRIE_SECRET_KEY" in message and SECRET_RECIPE in message


@pytest.mark.parametrize("weak", WEAK)
def test_a_weak_api_key_is_refused_with_the_recipe(weak: str) -> None:
    with pytest.raises(ValidationError) as refused:
        production(secret_key=secrets.token_urlsafe(32), api_key=weak)
    assert "MAIRIE_API_KEY" in str(refused.value) and SECRET_RECIPE in str(refused.value)


def test_the_messages_are_french_and_say_what_is_wrong() -> None:
    assert "espaces" in (secret_strength(" " * 32, "MAIRIE_SECRET_KEY", min_length=32) or "")
    assert "prévisible" in (secret_strength("a" * 32, "MAIRIE_SECRET_KEY", min_length=32) or "")
    assert "trop courte (10 caractères, 32 au moins)" in (secret_strength("k7Qp2Zx9Lm", "X", min_length=32) or "")
    assert "valeur d'exemple" in (secret_strength("CHANGE-ME", "X", min_length=32) or "")


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: secrets.token_hex(16),
        lambda: secrets.token_urlsafe(24),
    ],
    ids=["token_urlsafe(32)", "token_hex(32)", "token_hex(16)", "token_urlsafe(24)"],
)
def test_random_tokens_of_the_usual_recipes_are_accepted(make: object) -> None:
    for _ in range(200):
        token = make()  # type: ignore[operator]
        assert secret_strength(token, "MAIRIE_SECRET_KEY", min_length=32) is None, token
    production(secret_key=secrets.token_urlsafe(32), api_key=secrets.token_urlsafe(24))


@given(st.binary(min_size=24, max_size=48))
def test_any_random_urlsafe_token_of_24_bytes_or_more_passes(raw: bytes) -> None:
    # hypothesis's bytes are not random (they shrink towards zeros): only a sample that looks random must
    # pass; what matters is that a repetition never does
    import base64

    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if len(set(raw)) >= len(raw) * 3 // 4:
        assert entropy_estimate(token) >= SECRET_MIN_BITS
    assert entropy_estimate(token[:4] * 16) < SECRET_MIN_BITS


def test_development_accepts_the_placeholder() -> None:
    Settings(_env_file=None)  # type: ignore[call-arg]
