"""Where a learner's id sits in an event, per app build (docs/identity.md), and which id stage 1 must resolve.

Each style states the expected `user_id` and `user_id_source` itself, so the ground truth comes from what was
planted rather than from parsing the files back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .ids import token_without_virtual_id


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
    tracked_user_id: str  # the userId the session's lesson-tracking rows carry

    def actor(self) -> dict[str, Any]:
        return {"type": "User"} if self.actor_id is NO_ID else {"id": self.actor_id, "type": "User"}


def _entry(kind: str, value: Any) -> list[dict[str, Any]]:
    if value is NO_ENTRY:
        return []
    return [{"type": kind}] if value is NO_ID else [{"id": value, "type": kind}]


def _identity(ids, style, *, user, virtual, uid, actor, expected, source, buddy=NO_ENTRY) -> Identity:
    entries = _entry("User", user) + _entry("Buddy User", buddy) + _entry("virtualId", virtual)
    # The orchestration service keys lesson rows by the token's virtual id; a buddy is their own learner.
    tracked = ids.buddy_login if source == "buddy" else ids.user_id
    return Identity(style, tuple(entries), uid, actor, expected, source, tracked)


def numeric_virtual_id(ids: LearnerIds, rng: random.Random) -> Identity:
    """Build 4ad8b8e (2025-01): the numeric virtual id only in cdata virtualId, the rest anonymous."""
    return _identity(
        ids,
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
        ids,
        "server_overwritten",
        user=ids.user_id,
        virtual=ids.user_id,
        uid=ids.user_id,
        actor=ids.user_id,
        expected=ids.user_id,
        source="virtualId",
    )


def token_in_virtual_id(ids: LearnerIds, rng: random.Random) -> Identity:
    """Builds d34f6bb…d884058 (2025-05..09): virtualId holds the API token, whose claim is the learner
    (cdata User holds the same id)."""
    return _identity(
        ids,
        "token_in_virtual_id",
        user=ids.user_id,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.user_id,
        expected=ids.user_id,
        source="jwt",
    )


def uid_only(ids: LearnerIds, rng: random.Random) -> Identity:
    """cdata User is "anonymous" and virtualId a token: the token's claim names the learner, as
    context.uid does."""
    return _identity(
        ids,
        "uid_only",
        user=ANONYMOUS,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.user_id,
        source="jwt",
    )


def token_in_uid_or_actor(ids: LearnerIds, rng: random.Random) -> Identity:
    """Builds d34f6bb…d884058 without a virtual id loaded: no virtualId entry, cdata User anonymous, and
    the API token in context.uid or in actor.id only."""
    in_uid = rng.random() < 0.5
    return _identity(
        ids,
        "token_in_uid_or_actor",
        user=ANONYMOUS,
        virtual=NO_ENTRY,
        uid=ids.token if in_uid else ANONYMOUS,
        actor=ids.device_id if in_uid else ids.token,
        expected=ids.user_id,
        source="jwt",
    )


def token_without_virtual_id_claim(ids: LearnerIds, rng: random.Random) -> Identity:
    """v2 middleware whose token lacks a numeric virtual_id: the token sits in virtualId and context.uid,
    names no learner and, being a credential, must never become the id; actor.id is the device."""
    token = token_without_virtual_id(rng, issued_s=1_748_000_000 + rng.randrange(86_400 * 30))
    return _identity(
        ids,
        "token_without_virtual_id_claim",
        user=ANONYMOUS,
        virtual=token,
        uid=token,
        actor=ids.device_id,
        expected=ids.device_id,
        source="actor",
    )


def empty_cdata_ids(ids: LearnerIds, rng: random.Random) -> Identity:
    """cdata entries without an `id` key, or with null / "": the id falls through to context.uid."""
    return _identity(
        ids,
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
        ids,
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
        ids,
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
        ids,
        "emptied_sep_2025",
        user="",
        virtual="",
        uid="",
        actor=ids.device_id,
        expected=ids.device_id,
        source="actor",
    )


def buddy_login(ids: LearnerIds, rng: random.Random) -> Identity:
    """A buddy logged in: `Buddy User` replaces `User`, and the buddy is their own learner, whose
    lesson-tracking rows carry the buddy login too."""
    return _identity(
        ids,
        "buddy_login",
        user=NO_ENTRY,
        buddy=ids.buddy_login,
        virtual=ids.token,
        uid=ids.user_id,
        actor=ids.device_id,
        expected=ids.buddy_login,
        source="buddy",
    )


def unresolvable_v2(ids: LearnerIds, rng: random.Random) -> Identity:
    """v2 middleware copying an undefined `req.user.virtual_id`: ids null or missing, nothing resolves."""
    return _identity(
        ids,
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
    (token_in_uid_or_actor, 6),
    (token_without_virtual_id_claim, 3),
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
