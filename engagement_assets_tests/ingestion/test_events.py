"""Per-event rules of stage 1: which events are kept, with which learner, text, score and timestamps."""

from __future__ import annotations

import base64
import json

import pytest

from engagement_assets.ingestion.events import (
    ATTRIBUTE_COLUMNS,
    LANGUAGE_MISSING,
    NO_USER_ID,
    NOT_ENGLISH,
    NOT_RESPONSE,
    NOT_SCORABLE,
    NOT_SPEAK,
    RESPONSE_COLUMNS,
    MalformedEvent,
    classify,
    clean_attributes,
    events_of,
)

ETS = 1749723822998


def event(
    *,
    cdata=None,
    uid="",
    actor="device-fingerprint",
    values=None,
    eid="RESPONSE",
    kind="SPEAK",
    target="k.wav",
):
    return {
        "eid": eid,
        "ets": ETS,
        "mid": "RESPONSE:abc",
        "actor": {"id": actor, "type": "User"},
        "context": {
            "cdata": cdata
            if cdata is not None
            else [
                {"id": "S1", "type": "ContentSession"},
                {"id": "4829163057", "type": "virtualId"},
                {"id": "en", "type": "language"},
            ],
            "uid": uid,
        },
        "edata": {
            "target": target,
            "type": kind,
            "values": values
            if values is not None
            else [
                {"original_text": "The cat\u00a0sat."},
                {"response_text": "the cat sat"},
                {"accuracy_percentage": 86.5},
            ],
        },
    }


def row_of(record, ev=None) -> dict:
    outcome = classify(record, ev if ev is not None else record["events"])
    assert isinstance(outcome, tuple), outcome
    *response, attributes = outcome
    return dict(zip(RESPONSE_COLUMNS, response, strict=True)) | dict(
        zip(ATTRIBUTE_COLUMNS, clean_attributes(attributes), strict=True)
    )


def test_a_response_becomes_a_row_with_every_column():
    record = {"createdAt": {"$date": "2025-06-12T10:23:45.123Z"}, "syncts": 1, "events": event()}
    row = row_of(record)
    assert row == {
        "event_mid": "RESPONSE:abc",
        "event_ets": ETS,
        "user_id": "4829163057",
        "user_id_source": "virtualId",
        "session_id": "S1",
        "language": "en",
        "original_text": "The cat\u00a0sat.",
        "response_text": "the cat sat",
        "accuracy_percentage": 86.5,
        "audio_link": "k.wav",
        "created_at": 1749723825123,
        **dict.fromkeys(ATTRIBUTE_COLUMNS),
    }


def test_the_learners_attributes_come_with_the_row_and_tokens_never_do():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJ2aXJ0dWFsX2lkIjo0ODI5MTYzMDU3fQ.c2ln"
    cdata = [
        {"id": "4829163057", "type": "virtualId"},
        {"id": "en", "type": "language"},
        {"id": " Govt School Hosur ", "type": "school_name"},
        {"type": "udise_code"},  # the app's undefined id: the key is missing
        {"id": token, "type": "class_studying_id"},
    ]
    record = {"events": event(cdata=cdata)}
    record["events"]["context"] |= {
        "did": "b1e5c0f2",
        "pdata": {"id": "all.ll.app", "ver": {"$numberInt": "3"}},
    }
    row = row_of(record)
    assert {name: row[name] for name in ATTRIBUTE_COLUMNS} == {
        "device_id": "b1e5c0f2",
        "app_id": "all.ll.app",
        "app_version": "3",
        "school_name": "Govt School Hosur",
        "udise_code": None,
        "class_studying_id": None,
    }


@pytest.mark.parametrize(
    ("cdata_users", "uid", "actor", "expected"),
    [
        ([{"id": {"$numberLong": "4829163057"}, "type": "virtualId"}], "", "d", ("4829163057", "virtualId")),
        (
            [{"id": "eyJhbGciOi.token", "type": "virtualId"}, {"id": "emis77", "type": "User"}],
            "",
            "d",
            ("emis77", "User"),
        ),
        (
            [{"id": "anonymous", "type": "User"}, {"id": None, "type": "virtualId"}],
            "7310562948",
            "d",
            ("7310562948", "uid"),
        ),
        ([{"type": "User"}, {"id": "", "type": "virtualId"}], "anonymous", "fp-123", ("fp-123", "actor")),
        ([{"id": "  ", "type": "User"}], "", "", None),
        ([{"id": "Anonymous", "type": "User"}], "ANONYMOUS", "anonymous", None),
    ],
)
def test_user_id_precedence(cdata_users, uid, actor, expected):
    cdata = [{"id": "en", "type": "language"}, *cdata_users]
    ev = event(cdata=cdata, uid=uid, actor=actor)
    if expected is None:
        assert classify({}, ev) == NO_USER_ID
    else:
        row = row_of({}, ev)
        assert (row["user_id"], row["user_id_source"]) == expected


def jwt(payload) -> str:
    def b64url(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{b64url({'alg': 'HS256', 'typ': 'JWT'})}.{b64url(payload)}.c2lnbmF0dXJl"


TOKEN = jwt({"virtual_id": 4829163057, "iat": 1750000000})
OTHER_TOKEN = jwt({"virtual_id": "7310562948"})
CLAIMLESS = jwt({"sub": "guest", "virtual_id": None})
BUDDY = "1234567/7654321"


def resolved(*, virtual=None, buddy=None, user=None, uid="", actor="") -> tuple[str, str] | str:
    cdata = [{"id": "en", "type": "language"}]
    for kind, value in (("virtualId", virtual), ("Buddy User", buddy), ("User", user)):
        if value is not None:
            cdata.append({"id": value, "type": kind})
    ev = event(cdata=cdata, uid=uid, actor=actor)
    if classify({}, ev) == NO_USER_ID:
        return NO_USER_ID
    row = row_of({}, ev)
    return row["user_id"], row["user_id_source"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"virtual": "4829163057", "buddy": BUDDY, "user": "emis77", "uid": OTHER_TOKEN},
            ("4829163057", "virtualId"),
        ),
        ({"virtual": TOKEN, "buddy": BUDDY, "user": "emis77"}, (BUDDY, "buddy")),
        ({"virtual": TOKEN, "user": "emis77", "uid": "emis77", "actor": "fp"}, ("4829163057", "jwt")),
        ({"virtual": "", "user": TOKEN, "uid": OTHER_TOKEN}, ("4829163057", "jwt")),
        ({"user": "anonymous", "uid": TOKEN, "actor": OTHER_TOKEN}, ("4829163057", "jwt")),
        ({"user": "emis77", "uid": "", "actor": OTHER_TOKEN}, ("7310562948", "jwt")),
        ({"virtual": None, "user": "emis77", "uid": "7310562948", "actor": "fp"}, ("emis77", "User")),
        ({"user": "anonymous", "uid": "7310562948", "actor": "fp"}, ("7310562948", "uid")),
        ({"user": "", "uid": "anonymous", "actor": "fp"}, ("fp", "actor")),
    ],
    ids=[
        "virtualId",
        "buddy",
        "jwt-in-virtualId",
        "jwt-in-User",
        "jwt-in-uid",
        "jwt-in-actor",
        "User",
        "uid",
        "actor",
    ],
)
def test_each_rule_of_the_precedence(fields, expected):
    assert resolved(**fields) == expected


def test_a_virtual_id_in_other_digits_is_no_virtual_id():
    # str.isdigit() accepts Arabic-Indic and other digits; a virtual id is ASCII.
    assert resolved(virtual="٤٨٢٩١٦٣٠٥٧", user="emis77") == ("emis77", "User")


def test_a_buddy_id_is_kept_exactly_slash_included():
    assert resolved(buddy=f"  {BUDDY} ", user="emis77") == (BUDDY, "buddy")


@pytest.mark.parametrize("buddy", ["", "  ", "anonymous", "ANONYMOUS"])
def test_an_empty_or_anonymous_buddy_is_skipped(buddy):
    assert resolved(buddy=buddy, user="emis77") == ("emis77", "User")


def test_a_token_without_a_numeric_claim_does_not_count_and_the_next_token_does():
    assert resolved(virtual=CLAIMLESS, user="emis77", actor=TOKEN) == ("4829163057", "jwt")
    assert resolved(virtual=CLAIMLESS, user="emis77") == ("emis77", "User")


@pytest.mark.parametrize(
    "fields",
    [
        {"user": CLAIMLESS, "uid": "7310562948"},
        {"user": "anonymous", "uid": CLAIMLESS, "actor": "7310562948"},
        {"buddy": CLAIMLESS, "user": CLAIMLESS, "uid": CLAIMLESS, "actor": "7310562948"},
    ],
    ids=["in-User", "in-uid", "everywhere"],
)
def test_a_token_is_never_the_id_itself(fields):
    user_id, _ = resolved(**fields)
    assert user_id == "7310562948"


def test_only_tokens_and_nothing_else_is_no_user_id():
    assert resolved(virtual=CLAIMLESS, user=CLAIMLESS, uid=CLAIMLESS, actor=CLAIMLESS) == NO_USER_ID


def test_a_string_that_only_looks_like_a_token_is_an_ordinary_id():
    looks_like = "eyJhbGciOiJIUzI1NiJ9.bf4116f0e9852c61e6e5.c2ln"  # the payload is not base64 of JSON
    assert resolved(virtual=looks_like, user="anonymous", uid=looks_like) == (looks_like, "uid")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"eid": "IMPRESSION"}, NOT_RESPONSE),
        ({"kind": "CHOOSE"}, NOT_SPEAK),
        ({"cdata": [{"id": "4829163057", "type": "virtualId"}]}, LANGUAGE_MISSING),
        (
            {"cdata": [{"id": "4829163057", "type": "virtualId"}, {"id": "ta", "type": "language"}]},
            NOT_ENGLISH,
        ),
        ({"values": [{"profanity": "true"}, {"original_text": "I like to play."}]}, NOT_SCORABLE),
        ({"values": [{"original_text": "Apple"}, {"level": "R1"}, {"isCorrect": "true"}]}, NOT_SCORABLE),
        ({"values": [{"original_text": "A"}, {"accuracy_percentage": "n/a"}]}, NOT_SCORABLE),
        ({"values": [{"response_text": "a"}, {"accuracy_percentage": 50}]}, NOT_SCORABLE),
    ],
)
def test_drop_reasons(change, reason):
    assert classify({}, event(**change)) == reason


def test_language_is_case_insensitive():
    cdata = [{"id": "EN", "type": "language"}, {"id": "4829163057", "type": "virtualId"}]
    assert row_of({}, event(cdata=cdata))["language"] == "en"


def test_values_first_occurrence_wins_and_wrapped_numbers_unwrap():
    values = [
        {"accuracy_percentage": {"$numberDouble": "63.8"}},
        {"original_text": "first"},
        {"original_text": "second"},
        {"response_text": ""},
        {"duration": {"$numberInt": "7"}},
    ]
    row = row_of({}, event(values=values))
    assert (row["original_text"], row["response_text"], row["accuracy_percentage"]) == ("first", "", 63.8)


@pytest.mark.parametrize("target", ["", None, {"id": "x", "type": "audio"}])
def test_no_audio_link_unless_a_non_empty_key(target):
    assert row_of({}, event(target=target))["audio_link"] is None


@pytest.mark.parametrize(
    ("record", "event_extra", "expected"),
    [
        ({"createdAt": {"$date": 3000}, "syncts": 2000}, {"syncts": 1000}, 3000),
        ({"syncts": {"$numberLong": "2000"}}, {"syncts": 1000}, 2000),
        ({}, {"syncts": 1000}, 1000),
        ({}, {}, ETS),
    ],
)
def test_created_at_precedence(record, event_extra, expected):
    ev = {**event(), **event_extra}
    assert row_of({**record, "events": ev})["created_at"] == expected


def test_events_as_string_list_or_the_row_itself():
    ev = event()
    assert events_of({"events": json.dumps(ev)}) == [ev]
    assert events_of({"events": [ev, ev]}) == [ev, ev]
    assert events_of(ev) == [ev]


@pytest.mark.parametrize("events", ["{not json", 42, ["a"], None])
def test_malformed_events_field(events):
    with pytest.raises(MalformedEvent):
        events_of({"events": events})
