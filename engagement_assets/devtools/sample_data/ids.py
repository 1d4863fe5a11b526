"""Identifiers shaped like the real ones: ObjectIds, session ids, uuid-v1 batch mids, md5 event mids, tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string

ALPHANUMERIC = string.ascii_letters + string.digits

# 100-ns intervals between the Gregorian reform (uuid v1 epoch) and the Unix epoch.
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def session_id(rng: random.Random) -> str:
    """32 chars [A-Za-z0-9], like the app's uniqueId() (ContentSession / CSV sessionId)."""
    return "".join(rng.choices(ALPHANUMERIC, k=32))


def hex_id(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(4 * length):0{length}x}"


def virtual_id(rng: random.Random) -> str:
    """Orchestration's virtual ids are 10-digit numbers in 1000000000–9999999999."""
    return str(rng.randrange(1_000_000_000, 10_000_000_000))


class ObjectIds:
    """Mongo ObjectIds: 4-byte seconds, 5 bytes per process, a 3-byte counter."""

    def __init__(self, rng: random.Random) -> None:
        self._process = rng.getrandbits(40)
        self._counter = rng.getrandbits(24)

    def at(self, epoch_ms: int) -> str:
        self._counter = (self._counter + 1) & 0xFFFFFF
        return f"{epoch_ms // 1000 & 0xFFFFFFFF:08x}{self._process:010x}{self._counter:06x}"


class BatchMids:
    """Server-made uuid v1 for the batch `mid`: the time fields follow the server clock."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._node = rng.getrandbits(48) | (1 << 40)  # multicast bit, as for a random node id

    def at(self, epoch_ms: int) -> str:
        ticks = epoch_ms * 10_000 + self._rng.randrange(10_000) + _UUID_EPOCH_OFFSET
        time_low = ticks & 0xFFFFFFFF
        time_mid = (ticks >> 32) & 0xFFFF
        time_hi = ((ticks >> 48) & 0x0FFF) | 0x1000
        clock_seq = self._rng.getrandbits(14) | 0x8000
        return f"{time_low:08x}-{time_mid:04x}-{time_hi:04x}-{clock_seq:04x}-{self._node:012x}"


def event_mid(eid: str, *parts: object) -> str:
    """`<EID>:<md5>`: the SDK hashes the event content, so identical content gives an identical mid."""
    digest = hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()
    return f"{eid}:{digest}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def api_token(rng: random.Random, user_id: str, issued_s: int) -> str:
    """A JWT carrying the learner's virtual id as its `virtual_id` claim, as the orchestration service
    issues it (and 2025 builds put it in cdata virtualId by mistake)."""
    return _jwt(rng, {"virtual_id": int(user_id), "iat": issued_s, "exp": issued_s + 86_400})


def token_without_virtual_id(rng: random.Random, issued_s: int) -> str:
    """A decodable JWT whose `virtual_id` claim is missing, null or a login name: it names no learner."""
    claims: dict = {"sub": hex_id(rng, 24), "iat": issued_s, "exp": issued_s + 86_400}
    claim = rng.choice(("missing", None, "emis-guest"))
    if claim != "missing":
        claims["virtual_id"] = claim
    return _jwt(rng, claims)


def _jwt(rng: random.Random, claims: dict) -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64url(rng.getrandbits(256).to_bytes(32, "big"))
    return f"{header}.{payload}.{signature}"
