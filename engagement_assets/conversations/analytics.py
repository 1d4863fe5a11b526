"""Analytics-ready tables from typed conversations and messages: per message (position, length, response
time), per conversation (counts, duration, response times), per user, and daily/weekly/monthly reports."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from engagement_assets.conversations.records import TIMESTAMP, record_schema

PERIODS = {"daily": "D", "weekly": "W-SUN", "monthly": "M"}
# The stored tables these functions build: what every day's file holds, and the UI shows.
MESSAGES_SCHEMA = pa.schema(
    [
        *record_schema("messages"),
        ("position", pa.int64()),
        ("text_length", pa.int64()),
        ("word_count", pa.int64()),
        ("has_translation", pa.bool_()),
        ("response_seconds", pa.float64()),
        ("conversation_date", pa.date32()),
    ]
)
CONVERSATIONS_SCHEMA = pa.schema(
    [
        *record_schema("conversations"),
        ("message_count", pa.int64()),
        ("user_message_count", pa.int64()),
        ("assistant_message_count", pa.int64()),
        ("user_word_count", pa.int64()),
        ("first_message_at", TIMESTAMP),
        ("last_message_at", TIMESTAMP),
        ("avg_response_seconds", pa.float64()),
        ("median_response_seconds", pa.float64()),
        ("first_response_seconds", pa.float64()),
        ("translated_messages", pa.int64()),
        ("duration_seconds", pa.float64()),
        ("conversation_date", pa.date32()),
    ]
)
TRANSLATIONS_SCHEMA = pa.schema(
    [
        record_schema("messages").field(name)
        for name in (
            "message_id",
            "conversation_id",
            "user_id",
            "language",
            "text",
            "translated_text",
            "sent_at",
        )
    ]
)
USER_ANALYTICS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("conversations", pa.int64()),
        ("messages", pa.int64()),
        ("user_messages", pa.int64()),
        ("avg_duration_seconds", pa.float64()),
        ("avg_response_seconds", pa.float64()),
        ("first_seen", TIMESTAMP),
        ("last_seen", TIMESTAMP),
        ("active_days", pa.int64()),
        ("languages", pa.string()),
        ("top_topic", pa.string()),
        ("negative_share", pa.float64()),
    ]
)
REPORTS_SCHEMA = pa.schema(
    [
        ("period", pa.string()),
        ("period_start", TIMESTAMP),
        ("conversations", pa.int64()),
        ("messages", pa.int64()),
        ("users", pa.int64()),
        ("avg_duration_seconds", pa.float64()),
        ("avg_response_seconds", pa.float64()),
        ("top_topic", pa.string()),
        ("positive_share", pa.float64()),
        ("negative_share", pa.float64()),
    ]
)


MODEL_REPORTS_SCHEMA = pa.schema(
    [
        ("period", pa.string()),
        ("period_start", TIMESTAMP),
        ("model", pa.string()),
        ("replies", pa.int64()),
        ("conversations", pa.int64()),
        ("avg_response_seconds", pa.float64()),
        ("median_response_seconds", pa.float64()),
        ("avg_reply_words", pa.float64()),
        ("rated_replies", pa.int64()),
        ("avg_rating", pa.float64()),
    ]
)
UNKNOWN_MODEL = "(not recorded)"


def model_reports(messages: pd.DataFrame) -> pd.DataFrame:
    """How each assistant model (or agent) performs, per day, week and month: replies, how fast they came
    after the learner's message, how long they were, and the learners' ratings where there are any."""
    replies = messages[messages["role"] == "assistant"].copy()
    replies["model"] = replies["model"].fillna(UNKNOWN_MODEL)
    replies["rating_value"] = pd.to_numeric(replies["rating"], errors="coerce")
    frames = []
    for period, frequency in PERIODS.items():
        replies["period_start"] = replies["sent_at"].dt.to_period(frequency).dt.start_time
        grouped = replies.groupby(["period_start", "model"])
        table = pd.DataFrame(
            {
                "replies": grouped.size(),
                "conversations": grouped["conversation_id"].nunique(),
                "avg_response_seconds": grouped["response_seconds"].mean(),
                "median_response_seconds": grouped["response_seconds"].median(),
                "avg_reply_words": grouped["word_count"].mean(),
                "rated_replies": grouped["rating_value"].count(),
                "avg_rating": grouped["rating_value"].mean(),
            }
        ).reset_index()
        table.insert(0, "period", period)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)[list(MODEL_REPORTS_SCHEMA.names)]


def message_analytics(messages: pd.DataFrame) -> pd.DataFrame:
    """Each message with its place in the conversation and, for a reply, how long after the other side's
    last message it came (the assistant's response time, or the learner's)."""
    frame = messages.sort_values(["conversation_id", "sent_at", "Id"], kind="stable").reset_index(drop=True)
    by_conversation = frame.groupby("conversation_id", sort=False)
    frame["position"] = by_conversation.cumcount() + 1
    text = frame["text"].fillna("")
    frame["text_length"] = text.str.len().astype("int64")
    frame["word_count"] = text.str.split().str.len().fillna(0).astype("int64")
    frame["has_translation"] = frame["translated_text"].notna()
    previous_role = by_conversation["role"].shift()
    previous_time = by_conversation["sent_at"].shift()
    replied = previous_role.notna() & (previous_role != frame["role"])
    frame["response_seconds"] = (frame["sent_at"] - previous_time).dt.total_seconds().where(replied)
    frame["conversation_date"] = frame["sent_at"].dt.date
    return frame


def conversation_analytics(conversations: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """One row per conversation: message counts by side, duration, words, the assistant's response times."""
    per_message = message_analytics(messages)
    grouped = per_message.groupby("conversation_id")
    assistant = per_message[per_message["role"] == "assistant"].groupby("conversation_id")["response_seconds"]
    summary = pd.DataFrame(
        {
            "message_count": grouped.size(),
            "user_message_count": grouped["role"].apply(lambda roles: int((roles == "user").sum())),
            "assistant_message_count": grouped["role"].apply(lambda roles: int((roles == "assistant").sum())),
            "user_word_count": per_message[per_message["role"] == "user"]
            .groupby("conversation_id")["word_count"]
            .sum(),
            "first_message_at": grouped["sent_at"].min(),
            "last_message_at": grouped["sent_at"].max(),
            "avg_response_seconds": assistant.mean(),
            "median_response_seconds": assistant.median(),
            "first_response_seconds": assistant.first(),
            "translated_messages": grouped["has_translation"].sum(),
        }
    )
    table = conversations.merge(summary, left_on="conversation_id", right_index=True, how="left")
    for column in ("message_count", "user_message_count", "assistant_message_count", "user_word_count"):
        table[column] = table[column].fillna(0).astype("int64")
    table["translated_messages"] = table["translated_messages"].fillna(0).astype("int64")
    # A conversation still open has no end: its messages span its duration so far.
    end = table["ended_at"].fillna(table["last_message_at"])
    table["duration_seconds"] = (end - table["started_at"]).dt.total_seconds().clip(lower=0)
    table["conversation_date"] = table["started_at"].dt.date
    return table.reset_index(drop=True)


def translations(messages: pd.DataFrame) -> pd.DataFrame:
    """The messages that came with an English translation, the original beside it."""
    translated = messages.loc[messages["translated_text"].notna(), TRANSLATIONS_SCHEMA.names]
    return translated.reset_index(drop=True)


def user_analytics(conversations: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """Per learner: how much they talk, how long, how fast they are answered, and what about."""
    grouped = conversations.groupby("user_id")
    table = pd.DataFrame(
        {
            "conversations": grouped.size(),
            "messages": grouped["message_count"].sum(),
            "user_messages": grouped["user_message_count"].sum(),
            "avg_duration_seconds": grouped["duration_seconds"].mean(),
            "avg_response_seconds": grouped["avg_response_seconds"].mean(),
            "first_seen": grouped["started_at"].min(),
            "last_seen": grouped["started_at"].max(),
            "active_days": grouped["conversation_date"].nunique(),
            "languages": grouped["language"].agg(lambda values: ",".join(sorted(set(values.dropna())))),
        }
    )
    topics = conversations[["conversation_id", "user_id"]].merge(categories, on="conversation_id")
    table["top_topic"] = topics.groupby("user_id")["topic"].agg(_mode)
    negative = topics.assign(negative=topics["sentiment"] == "negative").groupby("user_id")["negative"]
    table["negative_share"] = negative.mean()
    return table.reset_index()


def reports(conversations: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """The daily, weekly and monthly reports in one table."""
    return pd.concat([report(conversations, categories, period) for period in PERIODS], ignore_index=True)


def report(conversations: pd.DataFrame, categories: pd.DataFrame, period: str) -> pd.DataFrame:
    """Aggregates per day, week (Monday start) or month, built from the daily tables."""
    frame = conversations.merge(
        categories[["conversation_id", "topic", "sentiment"]], on="conversation_id", how="left"
    )
    frame["period_start"] = frame["started_at"].dt.to_period(PERIODS[period]).dt.start_time
    grouped = frame.groupby("period_start")
    table = pd.DataFrame(
        {
            "conversations": grouped.size(),
            "messages": grouped["message_count"].sum(),
            "users": grouped["user_id"].nunique(),
            "avg_duration_seconds": grouped["duration_seconds"].mean(),
            "avg_response_seconds": grouped["avg_response_seconds"].mean(),
            "top_topic": grouped["topic"].agg(_mode),
            "positive_share": grouped["sentiment"].agg(lambda s: float((s == "positive").mean())),
            "negative_share": grouped["sentiment"].agg(lambda s: float((s == "negative").mean())),
        }
    ).reset_index()
    table.insert(0, "period", period)
    return table


def _mode(values: pd.Series):
    counts = values.dropna().value_counts()
    # Ties go to the alphabetically first value, so reports are the same on every run.
    return None if counts.empty else sorted(counts[counts == counts.max()].index)[0]
