"""What the Gemini analyzer asks of each clip: the clip inline with its expected sentence, the prompt, the
response schema and the validation of every answer against the stored schema. The requests go through the
platform's rate-limited client (`platform/gemini_client.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from google import genai
from google.genai import types
from pydantic import BaseModel, Field

from engagement_assets.analysis.schema import CATEGORY_SETS, validated_metrics
from engagement_assets.platform.gemini_client import (
    GeminiClient,
    ModelOutcome,
    structured_output_config,
    validated_outcome,
)

ANALYZER = "gemini"
PROMPT_VERSION = "gemini-v1"
SYSTEM_PROMPT = (
    "You hear a child's short spoken answer in an English-learning app and the sentence the child was asked "
    "to read. Rate the recording: EQ_score (0-100, emotional expressiveness), engagement_score (0-100, how "
    "engaged the child sounds), dominant_emotion, engagement_state, pronunciation_accuracy (against the "
    "expected sentence) and audio_quality (blank when nothing is audible)."
)


class ClipAnalysis(BaseModel):
    """The response schema sent to the model (names match the stage-5 columns)."""

    EQ_score: int = Field(ge=0, le=100)
    engagement_score: int = Field(ge=0, le=100)
    # Literal of a tuple lists its items: the allowed values come from the stored schema's category sets.
    dominant_emotion: Literal[CATEGORY_SETS["dominant_emotion"]]
    engagement_state: Literal[CATEGORY_SETS["engagement_state"]]
    pronunciation_accuracy: Literal[CATEGORY_SETS["pronunciation_accuracy"]]
    audio_quality: Literal[CATEGORY_SETS["audio_quality"]]


@dataclass(frozen=True)
class ClipRequest:
    key: str
    load: Callable[[], bytes]  # read when a slot is free, so at most `concurrency` clips sit in memory
    mime_type: str
    expected_text: str

    def contents(self) -> list:
        return [
            types.Part.from_bytes(data=self.load(), mime_type=self.mime_type),
            f"Expected sentence: {self.expected_text}",
        ]


def clip_config(model: str) -> types.GenerateContentConfig:
    """The prompt and response schema of every clip request (online and batch)."""
    return structured_output_config(model, SYSTEM_PROMPT, ClipAnalysis)


def clip_analyzer(client: genai.Client, model: str, **options) -> GeminiClient:
    """The platform's client asking the clip analysis and validating answers as stage 5 stores them."""
    return GeminiClient(client, model, config=clip_config(model), validate=validated_metrics, **options)


def validated_clip_outcome(key: str, response, attempts: int, rate_limited: int) -> ModelOutcome:
    return validated_outcome(key, response, attempts, rate_limited, validated_metrics)
