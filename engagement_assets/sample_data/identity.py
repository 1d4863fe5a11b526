"""Where a learner's id sits in an event, per app build (DATA_FORMATS §4), and which id stage 1 must resolve.

Each style states the expected `user_id` and `user_id_source` itself, so the ground truth comes from what was
planted rather than from parsing the files back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NO_ENTRY = _Marker("NO_ENTRY")  # the cdata entry is not there at all
NO_ID = _Marker("NO_ID")  # the entry (or field) is there but its `id` key is missing, as JS drops undefined
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class LearnerIds:
    user_id: str  # the virtual id (CSV userId)
    device_id: str  # FingerprintJS visitorId of the device the learner used
    token: str  # the API token (JWT) of the learner's login
    buddy_login: str  # "<emis>/<buddyEmis>" as cdata `Buddy User` carries it


@dataclass(frozen=True)
class Identity:
    """The user fields of one event, and what stage 1 must make of them."""

    style: str
    user_cdata: tuple[dict[str, Any], ...]  # cdata entries of type User / Buddy User / virtualId, in order
    uid: Any  # context.uid, or NO_ID to leave the key out
    actor_id: Any  # actor.id, or NO_ID to leave the key out
    expected_user_id: str | None
    expected_source: str | None

    def actor(self) -> dict[str, Any]:
        return {"type": "User"} if self.actor_id is NO_ID else {"id": self.actor_id, "type": "User"}


def _entry(kind: str, value: Any) -> list[dict[str, Any]]:
    if value is NO_ENTRY:
        return []
    return [{"type": kind}] if value is NO_ID else [{"id": value, "type": kind}]


def _identity(style, *, user, virtual, uid, actor, expected, source, buddy=NO_ENTRY) -> Identity:
    entries = _entry("User", user) + _entry("Buddy User", buddy) + _entry("virtualId", virtual)
    return Identity(style, tuple(entries), uid, actor, expected, source)


def numeric_virtual_id(ids: LearnerIds, rng: random.Random) -> Identity:
    """Build 4ad8b8e (2025-01): the numeric virtual id only in cdata virtualId, the rest anonymous."""
    return _identity(
        "numeric_virtual_id",
        user=ANONYMOUS,
        virtual=ids.user_id,
        uid=ANONYMOUS,
        actor=ids.device_id,
        expected=ids.user_id,
        source="virtualId",
    )


def server_overwritten(ids: LearnerIds, rng: random.Random) -> Identity:
    """v2 middleware: every user field overwritten with the token's virtual id."""
    return _identity(
        "server_overwritten",
        user=ids.user_id,
        virtual=ids.user_id,
        uid=ids.user_id,
        actor=ids.user_id,
        expected=ids.user_id,
        source="virtualId",
    )


def token_in_virtual_id(ids: LearnerIds, rng: random.Random) -> Identity:
    """Builds d34f6bb…d884058 (2025-05..09): virtualId holds the API token; the id is in cdata User."""
    return _identity(
        "token_in_virtual_id",
        user=ids.user_id,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.user_id,
        expected=ids.user_id,
        source="User",
    )


def uid_only(ids: LearnerIds, rng: random.Random) -> Identity:
    """cdata User is "anonymous" and virtualId a token: only context.uid has the id."""
    return _identity(
        "uid_only",
        user=ANONYMOUS,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.user_id,
        source="uid",
    )


def empty_cdata_ids(ids: LearnerIds, rng: random.Random) -> Identity:
    """cdata entries without an `id` key, or with null / "": the id falls through to context.uid."""
    return _identity(
        "empty_cdata_ids",
        user=rng.choice((NO_ID, None, "")),
        virtual=rng.choice((NO_ID, None, "")),
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.user_id,
        source="uid",
    )


def null_virtual_id(ids: LearnerIds, rng: random.Random) -> Identity:
    """Build 4ad8b8e before the virtual id was loaded: virtualId null, cdata User has the id."""
    return _identity(
        "null_virtual_id",
        user=ids.user_id,
        virtual=None,
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.user_id,
        source="User",
    )


def device_only(ids: LearnerIds, rng: random.Random) -> Identity:
    """2024 builds: no virtualId entry, User and uid anonymous; actor.id is the device fingerprint."""
    return _identity(
        "device_only",
        user=ANONYMOUS,
        virtual=NO_ENTRY,
        uid=ANONYMOUS,
        actor=ids.device_id,
        expected=ids.device_id,
        source="actor",
    )


def emptied_sep_2025(ids: LearnerIds, rng: random.Random) -> Identity:
    """Build d884058 (2025-09): virtualId, User and uid are ""; actor.id is the device fingerprint."""
    return _identity(
        "emptied_sep_2025",
        user="",
        virtual="",
        uid="",
        actor=ids.device_id,
        expected=ids.device_id,
        source="actor",
    )


def buddy_login(ids: LearnerIds, rng: random.Random) -> Identity:
    """A buddy logged in: `Buddy User` replaces `User` and is not a user id; context.uid has the learner."""
    return _identity(
        "buddy_login",
        user=NO_ENTRY,
        buddy=ids.buddy_login,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.user_id,
        source="uid",
    )


def unresolvable_v2(ids: LearnerIds, rng: random.Random) -> Identity:
    """v2 middleware copying an undefined `req.user.virtual_id`: ids null or missing, nothing resolves."""
    return _identity(
        "unresolvable_v2",
        user=None,
        virtual=NO_ID,
        uid=NO_ID,
        actor=NO_ID,
        expected=None,
        source=None,
    )


# (style, weight): the first len(STYLES) sessions take each style once so every variant is present.
STYLES = (
    (numeric_virtual_id, 24),
    (token_in_virtual_id, 20),
    (server_overwritten, 14),
    (uid_only, 8),
    (device_only, 8),
    (empty_cdata_ids, 6),
    (null_virtual_id, 6),
    (emptied_sep_2025, 5),
    (buddy_login, 5),
    (unresolvable_v2, 4),
)


def identity_for_session(ids: LearnerIds, rng: random.Random, session_number: int) -> Identity:
    if session_number < len(STYLES):
        style = STYLES[session_number][0]
    else:
        style = rng.choices([s for s, _ in STYLES], weights=[w for _, w in STYLES])[0]
    return style(ids, rng)
