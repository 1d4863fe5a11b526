"""Turn one storage row of a telemetry export into scorable learner responses (stage 1), and their columns.

Each event is either kept as a response row or dropped with exactly one reason. Reasons are checked in
the order of `DROP_REASONS`, so every event is counted once, under the first rule it fails.
"""

from __future__ import annotations

import math

import orjson
import pyarrow as pa

from engagement_assets.ingestion import tokens
from engagement_assets.ingestion.extended_json import epoch_ms, number, unwrap
from engagement_assets.storage.columns import column

RESPONSE_SCHEMA = pa.schema(
    [
        column(
            "event_mid",
            pa.string(),
            "the event's id (an MD5 of its content): with event_ets, the response key",
        ),
        column("event_ets", pa.timestamp("ms"), "when the device recorded the response (UTC)"),
        column("user_id", pa.string(), "the learner id (docs/identity.md)"),
        column(
            "user_id_source", pa.string(), "where the id came from: virtualId, buddy, jwt, User, uid or actor"
        ),
        column("session_id", pa.string(), "the app's ContentSession, the lesson-tracking export's sessionId"),
        column("language", pa.string(), "the content language (only en is kept)"),
        column("original_text", pa.string(), "the sentence the learner was asked to read, exactly as sent"),
        column("response_text", pa.string(), "what speech recognition heard"),
        column("accuracy_percentage", pa.float64(), "the app's accuracy score, 0-100"),
        column("audio_link", pa.string(), "the recording's key in the audio bucket; null: no recording"),
        column("created_at", pa.timestamp("ms"), "when the server stored the response (UTC)"),
    ]
)
# What the telemetry says about the learner beside each kept response: not part of the response row (whose
# columns the contract fixes), aggregated per learner into the drop's `learner_attributes`.
ATTRIBUTE_FIELDS = (
    column(
        "device_id", pa.string(), "the device fingerprint (context.did); shared when several learners use it"
    ),
    column("app_id", pa.string(), "the app (context.pdata.id), e.g. all.ll.app"),
    column("app_version", pa.string(), "the app build's version (context.pdata.ver)"),
    column("school_name", pa.string(), "the school (cdata school_name), where the app knows it"),
    column("udise_code", pa.string(), "the school's UDISE code (cdata udise_code), where the app knows it"),
    column("class_studying_id", pa.string(), "the learner's class (cdata class_studying_id), where known"),
)
# One row per learner and combination of attributes in a drop, with when it was seen.
LEARNER_ATTRIBUTES_SCHEMA = pa.schema(
    [
        RESPONSE_SCHEMA.field("user_id"),
        *ATTRIBUTE_FIELDS,
        column("first_seen", pa.timestamp("ms"), "the first response with these attributes (created_at)"),
        column("last_seen", pa.timestamp("ms"), "the latest response with these attributes (created_at)"),
    ]
)
# classify() builds each row as a tuple in this order, followed by the row's raw attributes.
RESPONSE_COLUMNS = tuple(RESPONSE_SCHEMA.names)
ATTRIBUTE_COLUMNS = tuple(field.name for field in ATTRIBUTE_FIELDS)
# What identifies a response in every later table.
RESPONSE_KEY = (RESPONSE_SCHEMA.field("event_mid"), RESPONSE_SCHEMA.field("event_ets"))

NOT_RESPONSE = "not_response"
NOT_SPEAK = "not_speak"
LANGUAGE_MISSING = "language_missing"
NOT_ENGLISH = "not_english"
NOT_SCORABLE = "not_scorable"
NO_USER_ID = "no_user_id"
DUPLICATE = "duplicate"
DROP_REASONS = (NOT_RESPONSE, NOT_SPEAK, LANGUAGE_MISSING, NOT_ENGLISH, NOT_SCORABLE, NO_USER_ID, DUPLICATE)

KEPT_LANGUAGE = "en"
_ANONYMOUS = "anonymous"


class MalformedEvent(ValueError):
    """The row's `events` field is neither an event, a list of events, nor a JSON string of them."""


def events_of(record: dict) -> list:
    """The events a storage row carries: its `events` (object, list, or JSON string) or the row itself."""
    if "events" not in record:
        return [record]
    events = record["events"]
    if isinstance(events, str):
        try:
            events = orjson.loads(events)
        except orjson.JSONDecodeError as err:
            raise MalformedEvent(f"events is not valid JSON: {err}") from None
    if isinstance(events, dict):
        return [events]
    if isinstance(events, list) and all(isinstance(event, dict) for event in events):
        return events
    raise MalformedEvent(f"events is a {type(events).__name__}, not an event object")


def classify(record: dict, event: dict) -> tuple | str:
    """Keep `event` (carried by storage row `record`) as a response row (a tuple in RESPONSE_COLUMNS order,
    then one more item: the learner's attributes as sent, for `clean_attributes`), or return the reason it
    is dropped. This runs once per event of every drop: the helpers' common cases are inlined (plain
    strings, dicts), the rest goes through them; attributes are cleaned once per distinct combination."""
    if event.get("eid") != "RESPONSE":
        return NOT_RESPONSE
    edata = event.get("edata")
    if type(edata) is not dict:
        edata = _EMPTY
    if edata.get("type") != "SPEAK":
        return NOT_SPEAK
    context = event.get("context")
    if type(context) is not dict:
        context = _EMPTY
    cdata = _cdata_ids(context.get("cdata"))
    language = cdata.get("language")
    language = (language.strip() or None) if type(language) is str else _identifier(language)
    if not language:
        return LANGUAGE_MISSING
    language = language.lower()
    if language != KEPT_LANGUAGE:
        return NOT_ENGLISH
    values = first_values(edata.get("values"))
    original_text = values.get("original_text")
    if type(original_text) is not str:
        original_text = _text(original_text)
    accuracy = values.get("accuracy_percentage")
    accuracy = accuracy if type(accuracy) is float and math.isfinite(accuracy) else number(accuracy)
    if original_text is None or accuracy is None:
        return NOT_SCORABLE
    user = resolve_user(cdata, context, event)
    if user is None:
        return NO_USER_ID
    mid, ets, session, response_text = (
        event.get("mid"),
        event.get("ets"),
        cdata.get("ContentSession"),
        values.get("response_text"),
    )
    target = edata.get("target")
    pdata = context.get("pdata")
    if type(pdata) is not dict:
        pdata = _EMPTY
    return (
        (mid.strip() or None) if type(mid) is str else _identifier(mid),
        epoch_ms(ets),
        user[0],
        user[1],
        (session.strip() or None) if type(session) is str else _identifier(session),
        language,
        original_text,
        response_text if type(response_text) is str else _text(response_text),
        accuracy,
        target if isinstance(target, str) and target else None,
        created_at_ms(record, event),
        (
            _hashable(context.get("did")),
            _hashable(pdata.get("id")),
            _hashable(pdata.get("ver")),
            _hashable(cdata.get("school_name")),
            _hashable(cdata.get("udise_code")),
            _hashable(cdata.get("class_studying_id")),
        ),
    )


def clean_attributes(raw: tuple) -> tuple:
    """A row's attributes (ATTRIBUTE_COLUMNS order) as identifiers; a token is a credential, never stored."""
    return tuple(_attribute(value) for value in raw)


def first_values(values) -> dict:
    """`edata.values` is a list of one-key objects; the first occurrence of each key wins."""
    found: dict = {}
    if type(values) is list:
        # Later updates win, so going backwards leaves each key's first occurrence.
        for item in reversed(values):
            if type(item) is dict:
                found.update(item)
    return found


def resolve_user(cdata: dict, context: dict, event: dict) -> tuple[str, str] | None:
    """(user_id, user_id_source): cdata virtualId if all digits, then cdata `Buddy User` (a buddy is their
    own learner), then the `virtual_id` claim of the first token in virtualId, User, context.uid or
    actor.id, then cdata User, context.uid, actor.id. Empty and "anonymous" values are skipped, and so is
    a token wherever it sits: it is a credential, never an id to store."""
    virtual_id = _identifier(cdata.get("virtualId"))
    if virtual_id and virtual_id.isascii() and virtual_id.isdigit():
        return virtual_id, "virtualId"
    buddy = _identifier(cdata.get("Buddy User"))
    if _usable(buddy):
        return buddy, "buddy"
    user = _identifier(cdata.get("User"))
    uid = _identifier(context.get("uid"))
    actor = _identifier(_mapping(event.get("actor")).get("id"))
    claim = tokens.first_virtual_id_claim((virtual_id, user, uid, actor))
    if claim:
        return claim, "jwt"
    for value, source in ((user, "User"), (uid, "uid"), (actor, "actor")):
        if _usable(value):
            return value, source
    return None


def created_at_ms(record: dict, event: dict) -> int | None:
    """Storage createdAt, else storage syncts, else events.syncts, else events.ets."""
    created = record.get("createdAt")
    if type(created) is dict and len(created) == 1 and type(date := created.get("$date")) is str:
        # The common form, without unwrapping it generically: {"$date": "2025-06-12T10:23:45.123Z"}.
        ms = epoch_ms(date)
        if ms is not None:
            return ms
    for value in (record.get("createdAt"), record.get("syncts"), event.get("syncts"), event.get("ets")):
        ms = epoch_ms(value)
        if ms is not None:
            return ms
    return None


def _cdata_ids(cdata) -> dict:
    """cdata as {type: id}, the first entry of each type winning; entries without an id are skipped."""
    if type(cdata) is not list:
        return {}
    # Later entries overwrite earlier ones, so going backwards leaves each type's first entry.
    return {
        entry.get("type"): found
        for entry in reversed(cdata)
        if type(entry) is dict and (found := entry.get("id")) is not None
    }


_EMPTY: dict = {}


def _mapping(value) -> dict:
    return value if type(value) is dict else _EMPTY


def _text(value) -> str | None:
    """A scalar as text, exactly as sent (expected sentences keep their NBSPs and punctuation)."""
    if type(value) is str:
        return value
    value = unwrap(value)
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def _usable(text: str | None) -> bool:
    """A learner id: present, not "anonymous", and not a token (a credential must never be stored)."""
    return text is not None and text.lower() != _ANONYMOUS and not tokens.is_token(text)


def _attribute(value) -> str | None:
    text = _identifier(value)
    return None if text is None or tokens.is_token(text) else text


def _hashable(value):
    """A value as sent when it can key a dict (the common case: a string or absent), else as text."""
    return value if value is None or type(value) is str else _identifier(value)


def _identifier(value) -> str | None:
    """An id or code: surrounding whitespace is noise, and blank means absent."""
    if value is None:  # the common case for absent cdata entries: no call
        return None
    text = value if type(value) is str else _text(value)
    return text.strip() or None if text is not None else None
