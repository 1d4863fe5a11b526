"""The Gemini option of the categorizer (CONVERSATION_CATEGORIZER=gemini): one structured-output request per
conversation through the audio analysis's client, with its rate limiter, retries and answer validation, and
its own paid-for-results cache, keyed by the text, model and prompt version, so nothing is paid for twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from engagement_assets.conversations.categorize import CATEGORY_FIELDS, INTENT_PATTERNS, TOPICS, Category
from engagement_assets.platform.gemini_client import GeminiClient, TextRequest, structured_output_config
from engagement_assets.platform.result_cache import ResultCache, cache_key, cache_schema
from engagement_assets.storage.layout import CATEGORIES_CACHE_PREFIX
from engagement_assets.storage.store import Store

PROMPT_VERSION = "categories-v1"
TOPIC_NAMES = (*TOPICS, "general")
INTENTS = (*(name for name, _ in INTENT_PATTERNS), "statement")
SENTIMENTS = ("positive", "neutral", "negative")
SYSTEM_PROMPT = (
    "You read what a child learning English wrote to a tutor bot in one conversation. Classify it: the topic, "
    "the learner's intent and their sentiment, each with your confidence from 0 to 1."
)
CACHE_SCHEMA = cache_schema(CATEGORY_FIELDS)


class CategoryAnswer(BaseModel):
    """The response schema sent to the model (the same categories the rules give)."""

    topic: Literal[TOPIC_NAMES]
    topic_confidence: float = Field(ge=0, le=1)
    intent: Literal[INTENTS]
    intent_confidence: float = Field(ge=0, le=1)
    sentiment: Literal[SENTIMENTS]
    sentiment_confidence: float = Field(ge=0, le=1)


def validated_categories(values: dict) -> dict:
    """The answer checked field by field; ValueError names every field that is out of its set or range."""
    problems = []
    for name, allowed in (("topic", TOPIC_NAMES), ("intent", INTENTS), ("sentiment", SENTIMENTS)):
        if values.get(name) not in allowed:
            problems.append(f"{name}={values.get(name)!r} is not one of {'|'.join(allowed)}")
        confidence = values.get(f"{name}_confidence")
        if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
            problems.append(f"{name}_confidence={confidence!r} is not a number in 0-1")
    if problems:
        raise ValueError("; ".join(problems))
    return {name: values[name] for name in CACHE_SCHEMA.names if name in values}


@dataclass
class ModelCategories:
    categories: dict[str, Category] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    cache_hits: int = 0


def model_config(model: str):
    return structured_output_config(model, SYSTEM_PROMPT, CategoryAnswer)


def categorize_with_model(
    texts: dict[str, list[str]], analyzer: GeminiClient, store: Store, model: str
) -> ModelCategories:
    """Categories of each conversation ({conversation_id: learner texts}); failures keep their reason."""
    cache = ResultCache(store, CATEGORIES_CACHE_PREFIX, CACHE_SCHEMA)
    prompts = {cid: "\n".join(t for t in lines if t) for cid, lines in texts.items()}
    keys = {
        cid: cache_key(hashlib.sha256(text.encode()).hexdigest(), None, model, PROMPT_VERSION)
        for cid, text in prompts.items()
    }
    result = ModelCategories()
    cached = cache.lookup(set(keys.values()))
    to_ask = {}
    for cid, key in keys.items():
        if key in cached:
            result.categories[cid] = _category(cached[key])
            result.cache_hits += 1
        else:
            to_ask.setdefault(key, []).append(cid)
    outcomes = analyzer.analyze([TextRequest(key, prompts[cids[0]]) for key, cids in to_ask.items()])
    result.calls = sum(outcome.attempts for outcome in outcomes)
    for outcome in outcomes:
        for cid in to_ask[outcome.key]:
            if outcome.metrics is None:
                result.errors[cid] = outcome.error or "no answer"
            else:
                result.categories[cid] = _category(outcome.metrics)
        if outcome.metrics is not None:
            cache.add_outcome(outcome, model, PROMPT_VERSION)
    cache.flush()
    return result


def _category(values: dict) -> Category:
    return Category(**{name: values[name] for name in Category.__dataclass_fields__})
