"""Per-message, per-conversation, per-learner and per-period analytics, on small hand-made conversations."""

from __future__ import annotations

import pandas as pd
import pytest

from engagement_assets.conversations.analytics import (
    conversation_analytics,
    message_analytics,
    report,
    user_analytics,
)
from engagement_assets.conversations.categorize import categorize
from engagement_assets.conversations.records import latest_versions, parse_rows


def rows(table: str, raw: list[dict]) -> pd.DataFrame:
    numbered = [
        {"Id": index + 1, "CreatedAt": "2024-03-04 08:00:00+00:00", **row} for index, row in enumerate(raw)
    ]
    return parse_rows(table, numbered).rows


def message(mid, cid, role, sent, text="hello", user="u1", translated=None):
    return {
        "message_id": mid,
        "conversation_id": cid,
        "user_id": user,
        "role": role,
        "text": text,
        "language": "en",
        "translated_text": translated,
        "sent_at": sent,
    }


@pytest.fixture
def sample():
    conversations = rows(
        "conversations",
        [
            {
                "conversation_id": "c1",
                "user_id": "u1",
                "language": "en",
                "started_at": "2024-03-04 10:00:00+00:00",
                "ended_at": "2024-03-04 10:05:00+00:00",
                "status": "closed",
            },
            {
                "conversation_id": "c2",
                "user_id": "u1",
                "language": "hi",
                "started_at": "2024-03-05 09:00:00+05:30",
                "ended_at": None,
                "status": "open",
            },
            {
                "conversation_id": "c3",
                "user_id": "u2",
                "language": "en",
                "started_at": "2024-03-11 12:00:00+00:00",
                "ended_at": None,
                "status": "open",
            },
        ],
    )
    messages = rows(
        "messages",
        [
            message("m1", "c1", "user", "2024-03-04 10:00:00+00:00", "How do I say world?"),
            message("m2", "c1", "assistant", "2024-03-04 10:00:20+00:00"),
            message("m3", "c1", "user", "2024-03-04 10:01:00+00:00", "thanks great"),
            message("m4", "c1", "user", "2024-03-04 10:01:30+00:00", "and again"),
            message("m5", "c1", "assistant", "2024-03-04 10:02:00+00:00"),
            message("m6", "c2", "user", "2024-03-05 03:30:00+00:00", "x", translated="the app crashed"),
            message("m7", "c2", "assistant", "2024-03-05 03:31:00+00:00"),
        ],
    )
    return conversations, messages


def test_a_reply_is_timed_from_the_other_sides_last_message(sample):
    _, messages = sample
    table = message_analytics(messages).set_index("message_id")
    assert table.loc["m1", "position"] == 1 and pd.isna(table.loc["m1", "response_seconds"])
    assert table.loc["m2", "response_seconds"] == 20
    assert table.loc["m3", "response_seconds"] == 40  # the learner answering the tutor
    assert pd.isna(table.loc["m4", "response_seconds"])  # a second message in a row is not a reply
    assert table.loc["m5", "response_seconds"] == 30
    assert table.loc["m1", "word_count"] == 5 and bool(table.loc["m6", "has_translation"])


def test_conversation_counts_durations_and_response_times(sample):
    conversations, messages = sample
    table = conversation_analytics(conversations, messages).set_index("conversation_id")
    c1 = table.loc["c1"]
    assert (c1.message_count, c1.user_message_count, c1.assistant_message_count) == (5, 3, 2)
    assert c1.duration_seconds == 300  # ended_at - started_at
    assert c1.avg_response_seconds == 25 and c1.first_response_seconds == 20
    # An open conversation lasts until its last message; times with an offset are read as UTC.
    assert table.loc["c2", "started_at"] == pd.Timestamp("2024-03-05 03:30:00")
    assert table.loc["c2", "duration_seconds"] == 60
    assert table.loc["c2", "translated_messages"] == 1
    # A conversation without messages is kept, with zero counts.
    assert table.loc["c3", "message_count"] == 0 and pd.isna(table.loc["c3", "avg_response_seconds"])


def test_learners_and_reports(sample):
    conversations, messages = sample
    table = conversation_analytics(conversations, messages)
    categories = pd.DataFrame(
        [
            {"conversation_id": "c1", "topic": "pronunciation", "sentiment": "positive"},
            {"conversation_id": "c2", "topic": "technical", "sentiment": "negative"},
        ]
    )
    users = user_analytics(table, categories).set_index("user_id")
    assert users.loc["u1", "conversations"] == 2 and users.loc["u1", "active_days"] == 2
    assert users.loc["u1", "top_topic"] == "pronunciation"  # a tie: the alphabetically first
    assert users.loc["u1", "negative_share"] == 0.5 and users.loc["u1", "languages"] == "en,hi"

    weekly = report(table, categories, "weekly")
    assert list(weekly["period_start"]) == [pd.Timestamp("2024-03-04"), pd.Timestamp("2024-03-11")]
    assert list(weekly["conversations"]) == [2, 1] and weekly.loc[0, "users"] == 1
    monthly = report(table, categories, "monthly")
    assert list(monthly["period_start"]) == [pd.Timestamp("2024-03-01")] and monthly.loc[0, "messages"] == 7
    assert len(report(table, categories, "daily")) == 3


def test_rows_that_cannot_be_used_are_set_aside_with_a_reason():
    parsed = parse_rows(
        "conversations",
        [
            {"Id": 1, "conversation_id": "c1", "started_at": "2024-03-04 10:00:00+00:00"},
            {"Id": 2, "conversation_id": None, "started_at": "2024-03-04 10:00:00+00:00"},
            {"Id": 3, "conversation_id": "c3", "started_at": "yesterday"},
            {"Id": 4, "conversation_id": " ", "started_at": None},
        ],
    )
    assert list(parsed.rows["conversation_id"]) == ["c1"]
    assert dict(parsed.reasons) == {"missing conversation_id": 2, "unreadable started_at": 1}
    assert list(parsed.rejected["Id"]) == [2, 3, 4] and "yesterday" in parsed.rejected.loc[1, "row"]


def test_the_latest_version_of_a_row_wins():
    frame = rows(
        "conversations",
        [
            {"conversation_id": "c1", "status": "open", "started_at": "2024-03-04 10:00:00+00:00"},
            {
                "conversation_id": "c1",
                "status": "closed",
                "started_at": "2024-03-04 10:00:00+00:00",
                "UpdatedAt": "2024-03-04 11:00:00+00:00",
            },
        ],
    )
    assert list(latest_versions(frame.iloc[::-1], "conversation_id")["status"]) == ["closed"]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["The app crashed again", "This is boring and too hard."], ("technical", "complaint", "negative")),
        (
            ["How do I pronounce 'world'?", "Thanks, this is great and fun!"],
            ("pronunciation", "question", "positive"),
        ),
        (["hello", "not bad"], ("general", "greeting", "positive")),
        (["Ok."], ("general", "statement", "neutral")),
    ],
)
def test_rule_based_categories_are_deterministic(texts, expected):
    first, second = categorize(texts), categorize(list(texts))
    assert first == second
    assert (first.topic, first.intent, first.sentiment) == expected
    assert 0 <= first.topic_confidence <= 1 and 0 <= first.sentiment_confidence <= 1
