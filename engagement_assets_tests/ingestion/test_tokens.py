"""Learner ids inside API tokens: only the payload is decoded, and only a numeric `virtual_id` counts."""

from __future__ import annotations

import base64
import json

import pytest

from engagement_assets.ingestion.tokens import first_virtual_id_claim, is_token, virtual_id_claim


def b64url(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(payload, header=None) -> str:
    return f"{b64url(header or {'alg': 'HS256', 'typ': 'JWT'})}.{b64url(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("claim", "expected"),
    [(4829163057, "4829163057"), ("4829163057", "4829163057"), (0, "0")],
    ids=["int", "digit-string", "zero"],
)
def test_a_numeric_claim_is_the_id_as_a_digit_string(claim, expected):
    assert virtual_id_claim(jwt({"virtual_id": claim, "iat": 1})) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"virtual_id": None},
        {"virtual_id": "emis-guest"},
        {"virtual_id": ""},
        {"virtual_id": 12.5},
        {"virtual_id": True},
        {"virtual_id": -5},
        {"virtual_id": "١٢٣"},
        {"virtualId": 4829163057},
    ],
    ids=["missing", "null", "login", "empty", "float", "bool", "negative", "non-ascii-digits", "other-name"],
)
def test_a_missing_or_non_numeric_claim_names_no_one(payload):
    token = jwt(payload)
    assert is_token(token)
    assert virtual_id_claim(token) is None


@pytest.mark.parametrize(
    "value",
    [
        "eyJhbGciOiJIUzI1NiJ9.bf4116f0e9852c61e6e5.c2ln",  # payload is not base64 of JSON
        f"{b64url({'alg': 'HS256'})}.!!!.c2ln",  # not base64url at all
        f"{b64url({'alg': 'HS256'})}.{b64url([1, 2])}.c2ln",  # a JSON array, not an object
        f"{b64url({'alg': 'HS256'})}.{b64url(b'not json')}.c2ln",
        f"{b64url({'alg': 'HS256'})}.{b64url('a string')}.c2ln",
        f"{b64url({'alg': 'HS256'})}.{b64url(bytes([0xFF, 0xFE]))}.c2ln",  # not UTF-8
        f"{b64url({'alg': 'HS256'})}.x.c2ln",  # one character: impossible base64 length
    ],
    ids=["hex-payload", "bad-base64", "array", "not-json", "json-string", "not-utf8", "bad-length"],
)
def test_a_payload_that_does_not_decode_to_an_object_is_not_a_token(value):
    assert virtual_id_claim(value) is None
    assert not is_token(value)


def test_padding_is_restored_whatever_the_payload_length():
    for digits in range(1, 12):
        claim = "7" * digits
        token = jwt({"virtual_id": claim})
        assert "=" not in token
        assert virtual_id_claim(token) == claim


def test_a_padded_token_decodes_too():
    payload = base64.urlsafe_b64encode(b'{"virtual_id":42}').decode()
    assert "=" in payload
    assert virtual_id_claim(f"{b64url({'alg': 'none'})}.{payload}.sig") == "42"


def test_the_header_must_be_an_object_for_a_token_but_not_for_the_claim():
    token = f"{b64url(b'garbage')}.{b64url({'virtual_id': 1})}.sig"
    assert not is_token(token)
    assert virtual_id_claim(token) == "1"


@pytest.mark.parametrize(
    "value",
    ["4829163057", "1234567/7654321", "a.b", "a.b.c.d", "", None, 4829163057, {"id": 1}],
)
def test_only_two_dot_strings_are_looked_at(value):
    assert virtual_id_claim(value) is None
    assert not is_token(value)


def test_whitespace_disqualifies_a_token():
    token = jwt({"virtual_id": 1})
    for spoiled in (f" {token}", f"{token}\n", token.replace(".", ". ", 1)):
        assert virtual_id_claim(spoiled) is None
        assert not is_token(spoiled)


def test_the_signature_is_never_checked():
    assert virtual_id_claim(jwt({"virtual_id": 9}).rsplit(".", 1)[0] + ".") == "9"


def test_the_first_token_with_a_claim_wins():
    no_claim, first, second = jwt({"sub": "x"}), jwt({"virtual_id": 1}), jwt({"virtual_id": 2})
    assert first_virtual_id_claim((None, "4829163057", no_claim, first, second)) == "1"
    assert first_virtual_id_claim((None, "", no_claim)) is None
