"""Error texts never carry a configured secret, whoever echoed it."""

from __future__ import annotations

import pytest

from engagement_assets.errors import MAX_ERROR_LENGTH, REDACTED, SECRET_VARIABLES, describe, redact


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_every_configured_secret_is_taken_out_of_an_error(monkeypatch, variable):
    monkeypatch.setenv(variable, "s3cr3t-value-42")
    described = describe(RuntimeError("the proxy said: key=s3cr3t-value-42; again s3cr3t-value-42"))
    assert "s3cr3t" not in described and described.count(REDACTED) == 2


def test_url_passwords_are_taken_out_whatever_the_url():
    text = "cannot reach redis://worker:hunter2pass@10.0.0.5:6379/0 nor postgresql://dagster:pw@db/dagster"
    assert redact(text) == (
        f"cannot reach redis://worker:{REDACTED}@10.0.0.5:6379/0 nor postgresql://dagster:{REDACTED}@db/dagster"
    )


def test_a_secret_given_by_the_caller_and_a_longer_one_containing_it(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "abcdef-123456")
    assert redact("token abcdef-123456 and abcdef", also=["abcdef"]) == f"token {REDACTED} and {REDACTED}"


def test_short_values_and_unset_variables_redact_nothing(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "abc")
    monkeypatch.delenv("NOCODB_API_TOKEN", raising=False)
    assert redact("abc is an ordinary word") == "abc is an ordinary word"


def test_a_description_stays_short():
    assert len(describe(ValueError("x" * 10_000))) == MAX_ERROR_LENGTH
