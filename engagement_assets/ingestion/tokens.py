"""API tokens (JWTs) found where a learner id belongs, and the learner id inside them.

Several app builds put the learner's API token in cdata `virtualId`, cdata `User`, `context.uid` or
`actor.id`. The lesson-tracking export is keyed by the virtual id the orchestration service reads from
that same token, so the token's `virtual_id` claim is the learner, ahead of a `User` login.

A token is a bearer credential: only its payload is decoded, the signature is never verified, and the
token itself is never logged, returned as an id or stored. Stage 1 calls this for most kept events, so
only strings shaped like a JWT (exactly two dots, no whitespace) reach the base64 and JSON decoding.
"""

from __future__ import annotations

import base64
import binascii
import re

import orjson

VIRTUAL_ID_CLAIM = "virtual_id"
REMOVED = b"<token removed>"
# A JWT's header and payload are base64url JSON objects, so both begin with `eyJ` (`{"`).
_TOKEN_BYTES = re.compile(rb"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def first_virtual_id_claim(values) -> str | None:
    """The claim of the first value that is a JWT with a numeric `virtual_id` (see virtual_id_claim)."""
    for value in values:
        # Most ids have no dot at all: test the shape here so that they cost no call.
        if type(value) is str and value.count(".") == 2:
            claim = virtual_id_claim(value)
            if claim:
                return claim
    return None


def virtual_id_claim(value) -> str | None:
    """The `virtual_id` claim of the JWT `value` as a digit string (an int claim 4829163057 gives
    "4829163057"); None unless the payload is a JSON object with a numeric claim."""
    segments = _segments(value)
    claims = _json_object(segments[1]) if segments else None
    claim = claims.get(VIRTUAL_ID_CLAIM) if claims else None
    if type(claim) is int and claim >= 0:  # `type` rather than isinstance: true/false are not ids
        return str(claim)
    if type(claim) is str and claim.isascii() and claim.isdigit():
        return claim
    return None


def is_token(value) -> bool:
    """Whether `value` decodes as a JWT: header and payload both base64url-encoded JSON objects."""
    segments = _segments(value)
    return (
        segments is not None
        and _json_object(segments[0]) is not None
        and _json_object(segments[1]) is not None
    )


def without_tokens(raw: bytes) -> tuple[bytes, int]:
    """`raw` with every JWT-shaped run of bytes replaced by REMOVED, and how many there were: what is kept
    of a record for people to read (the quarantine) must not hand out learners' credentials."""
    return _TOKEN_BYTES.subn(REMOVED, raw)


def _segments(value) -> list[str] | None:
    if type(value) is not str or value.count(".") != 2:
        return None
    # A JWT has no whitespace; split() without a separator splits on any of it.
    return value.split(".") if value.split() == [value] else None


def _json_object(segment: str) -> dict | None:
    """A base64url segment (padding restored) decoded as a JSON object, else None."""
    try:
        raw = base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    return value if type(value) is dict else None
