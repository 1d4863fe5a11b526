"""A deterministic, rule-based categorizer: topic, intent and sentiment of a conversation from the words
its learner used, each with a confidence in [0, 1]. No model to download, the same answer on every run;
the Gemini analyzer is the option when rules are not enough."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_type_hints

import pandas as pd
import pyarrow as pa

TOPICS = {
    "pronunciation": ("pronounce", "pronunciation", "sound", "accent", "say", "speak", "speaking"),
    "vocabulary": ("word", "words", "meaning", "mean", "vocabulary", "spell", "spelling", "synonym"),
    "grammar": ("grammar", "tense", "sentence", "verb", "noun", "plural", "past", "article"),
    "lesson_progress": ("lesson", "level", "practice", "exercise", "next", "finished", "complete", "score"),
    "technical": (
        "app",
        "crash",
        "error",
        "login",
        "password",
        "microphone",
        "mic",
        "audio",
        "loading",
        "bug",
    ),
    "account": ("account", "subscription", "payment", "profile", "email", "register"),
}
INTENT_PATTERNS = (
    ("greeting", re.compile(r"^\s*(hi|hello|hey|namaste|good (morning|evening|afternoon))\b", re.I)),
    (
        "complaint",
        re.compile(r"\b(not working|doesn'?t work|broken|crash(es|ed)?|stuck|can'?t|cannot|problem)\b", re.I),
    ),
    ("request", re.compile(r"\b(please|can you|could you|i want|i need|help me|show me|give me)\b", re.I)),
    ("question", re.compile(r"\?|^\s*(what|why|how|when|where|which|who|is|are|do|does|can)\b", re.I)),
    ("feedback", re.compile(r"\b(thanks?|thank you|great|love|nice|awesome|boring|hate)\b", re.I)),
)
POSITIVE = frozenset(
    [
        "good",
        "great",
        "love",
        "like",
        "nice",
        "awesome",
        "thanks",
        "thank",
        "happy",
        "easy",
        "fun",
        "helpful",
        "excellent",
        "better",
        "best",
        "enjoy",
    ]
)
NEGATIVE = frozenset(
    [
        "bad",
        "hate",
        "boring",
        "hard",
        "difficult",
        "wrong",
        "error",
        "crash",
        "stuck",
        "sad",
        "angry",
        "confusing",
        "worse",
        "worst",
        "slow",
        "problem",
    ]
)
NEGATIONS = frozenset(["not", "no", "never", "don't", "dont", "isn't", "isnt", "wasn't", "can't", "cant"])
WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class Category:
    topic: str
    topic_confidence: float
    intent: str
    intent_confidence: float
    sentiment: str
    sentiment_confidence: float


# A Category's fields as table columns: the categories table and the model's result cache both hold them.
CATEGORY_FIELDS = pa.schema(
    [(name, {str: pa.string(), float: pa.float64()}[hint]) for name, hint in get_type_hints(Category).items()]
)
CATEGORIES_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        *CATEGORY_FIELDS,
        ("categorizer", pa.string()),
        ("error", pa.string()),
    ]
)


def categorize(texts: list[str]) -> Category:
    """Categories of one conversation from its learner's messages (English, or their translations)."""
    joined = " ".join(text for text in texts if text)
    words = WORD.findall(joined.lower())
    topic, topic_confidence = _topic(words)
    intent, intent_confidence = _intent(texts)
    sentiment, sentiment_confidence = _sentiment(words)
    return Category(topic, topic_confidence, intent, intent_confidence, sentiment, sentiment_confidence)


def categories_table(
    conversation_ids: list[str], found: dict[str, Category], errors: dict[str, str], categorizer: str
) -> pd.DataFrame:
    """One row per conversation: its categories, or the error that left it without any."""
    rows = [
        {
            "conversation_id": cid,
            **(vars(found[cid]) if cid in found else {}),
            "categorizer": categorizer,
            "error": errors.get(cid),
        }
        for cid in conversation_ids
    ]
    return pd.DataFrame(rows, columns=CATEGORIES_SCHEMA.names)


def _topic(words: list[str]) -> tuple[str, float]:
    hits = {topic: sum(word in keywords for word in words) for topic, keywords in TOPICS.items()}
    total = sum(hits.values())
    if total == 0:
        return "general", 0.0
    # Ties go to the first topic listed, so the answer never depends on dict order at run time.
    best = max(TOPICS, key=lambda topic: hits[topic])
    return best, round(hits[best] / total, 3)


def _intent(texts: list[str]) -> tuple[str, float]:
    matches = [name for text in texts for name, pattern in INTENT_PATTERNS if pattern.search(text or "")]
    if not matches:
        return "statement", 0.0
    # The first message that matches anything says why the learner came; later ones only confirm it.
    first = matches[0]
    return first, round(matches.count(first) / len(matches), 3)


def _sentiment(words: list[str]) -> tuple[str, float]:
    score = positive = negative = 0
    for index, word in enumerate(words):
        polarity = (word in POSITIVE) - (word in NEGATIVE)
        if polarity and index and words[index - 1] in NEGATIONS:
            polarity = -polarity  # "not good" is negative, "not bad" positive
        score += polarity
        positive += polarity > 0
        negative += polarity < 0
    if positive + negative == 0:
        return "neutral", 0.0
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return label, round(abs(score) / (positive + negative), 3)
