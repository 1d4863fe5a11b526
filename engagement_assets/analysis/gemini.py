"""The Gemini analyzer: each clip inline with its expected sentence, structured output, validated field by
field, through one shared async client.

Throughput is set by a sliding-window rate limiter (never more than `rpm` request starts in any minute)
and a concurrency cap, not by fixed sleeps. A 429 pauses every request for the server's `retryDelay`; 5xx
answers, timeouts and dropped connections are retried with exponential backoff and full jitter. Whatever
the model returns is validated with our own schema: a malformed, truncated, blocked or out-of-range
answer is a failed outcome with the reason, never a crash and never a silently kept value.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from engagement_assets.analysis.schema import CATEGORY_SETS, InvalidAnalysis, validated_metrics
from engagement_assets.errors import describe

ANALYZER = "gemini"
PROMPT_VERSION = "gemini-v1"
SYSTEM_PROMPT = (
    "You hear a child's short spoken answer in an English-learning app and the sentence the child was asked "
    "to read. Rate the recording: EQ_score (0-100, emotional expressiveness), engagement_score (0-100, how "
    "engaged the child sounds), dominant_emotion, engagement_state, pronunciation_accuracy (against the "
    "expected sentence) and audio_quality (blank when nothing is audible)."
)
RETRYABLE_STATUS = {408, 500, 502, 503, 504}
# Requests reach the server a few milliseconds earlier or later than they start here; this margin keeps
# the client under the server's count in every window.
WINDOW_MARGIN = 1.01
WINDOW_SLACK_SECONDS = 0.05


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


@dataclass(frozen=True)
class TextRequest:
    """A text-only request (the conversation categorizer): the same limiter, retries and validation."""

    key: str
    text: str

    def contents(self) -> list:
        return [self.text]


@dataclass(frozen=True)
class ClipOutcome:
    key: str
    metrics: dict | None
    error: str | None
    attempts: int
    input_tokens: int = 0
    output_tokens: int = 0
    rate_limited: int = 0


class SlidingWindowLimiter:
    """At most `max_calls` starts in any `period` seconds, and nothing while paused after a 429."""

    def __init__(self, max_calls: int, period: float, clock: Callable[[], float] = time.monotonic):
        self.max_calls, self._clock = max_calls, clock
        self.period = period * WINDOW_MARGIN + WINDOW_SLACK_SECONDS
        self._starts: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self._wait()) > 0:
                await asyncio.sleep(wait)
            self._starts.append(self._clock())

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _wait(self) -> float:
        now = self._clock()
        while self._starts and now - self._starts[0] >= self.period:
            self._starts.popleft()
        wait = self._paused_until - now
        if len(self._starts) >= self.max_calls:
            wait = max(wait, self._starts[0] + self.period - now)
        return wait


def generation_config(
    model: str, system_prompt: str = SYSTEM_PROMPT, schema: type[BaseModel] = ClipAnalysis
) -> types.GenerateContentConfig:
    """The prompt and structured-output schema every request carries (online and batch)."""
    return types.GenerateContentConfig(
        system_instruction=system_prompt,
        response_mime_type="application/json",
        response_schema=schema,
        temperature=0,
        max_output_tokens=256,
        # 2.5 models think unless told not to, and thinking tokens are billed as output.
        thinking_config=types.ThinkingConfig(thinking_budget=0) if model.startswith("gemini-2.5") else None,
    )


class GeminiAnalyzer:
    """Sends requests (anything with a `key` and `contents()`) under the rate limit and concurrency cap and
    validates each answer with `validate` (the clip analysis by default)."""

    price_factor = 1.0

    def __init__(
        self,
        client: genai.Client,
        model: str,
        *,
        rpm: int,
        concurrency: int,
        attempts: int = 4,
        max_rate_limited: int = 10,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        window_seconds: float = 60.0,
        on_outcome: Callable[[ClipOutcome], None] | None = None,
        config: types.GenerateContentConfig | None = None,
        validate: Callable[[dict], dict] = validated_metrics,
    ):
        self.client, self.model = client, model
        self.concurrency, self.attempts, self.max_rate_limited = concurrency, attempts, max_rate_limited
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.window_seconds, self.rpm = window_seconds, rpm
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.config = config or generation_config(model)
        self.validate = validate

    def analyze(self, requests: list[ClipRequest]) -> list[ClipOutcome]:
        """Outcomes in the order of `requests`."""
        return asyncio.run(self._analyze_all(requests))

    async def _analyze_all(self, requests: list[ClipRequest]) -> list[ClipOutcome]:
        limiter = SlidingWindowLimiter(self.rpm, self.window_seconds)
        slots = asyncio.Semaphore(self.concurrency)

        async def one(request: ClipRequest) -> ClipOutcome:
            async with slots:
                outcome = await self._analyze(request, limiter)
            self.on_outcome(outcome)
            return outcome

        return await asyncio.gather(*(one(request) for request in requests))

    async def _analyze(self, request: ClipRequest, limiter: SlidingWindowLimiter) -> ClipOutcome:
        attempts = rate_limited = 0
        contents = await asyncio.to_thread(request.contents)
        while True:
            await limiter.acquire()
            attempts += 1
            try:
                response = await self.client.aio.models.generate_content(
                    model=self.model, contents=contents, config=self.config
                )
            except Exception as err:
                if _is_rate_limit(err) and rate_limited < self.max_rate_limited:
                    # A 429 is the server telling us to slow down, not a failed attempt.
                    attempts, rate_limited = attempts - 1, rate_limited + 1
                    limiter.pause(retry_delay(err) or self._backoff(rate_limited))
                    continue
                if _is_transient(err) and attempts < self.attempts:
                    await asyncio.sleep(self._backoff(attempts))
                    continue
                return ClipOutcome(request.key, None, describe(err), attempts, rate_limited=rate_limited)
            return validated_outcome(request.key, response, attempts, rate_limited, self.validate)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


def validated_outcome(
    key: str, response, attempts: int, rate_limited: int, validate: Callable[[dict], dict] = validated_metrics
) -> ClipOutcome:
    """The outcome of one answer: its values if it is complete, valid JSON that `validate` accepts."""
    usage = response.usage_metadata
    tokens = {
        "input_tokens": (usage.prompt_token_count or 0) if usage else 0,
        "output_tokens": ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0))
        if usage
        else 0,
    }
    problem = _answer_problem(response)
    if problem:
        return ClipOutcome(key, None, problem, attempts, rate_limited=rate_limited, **tokens)
    try:
        metrics = validate(json.loads(response.text))
    except (ValueError, TypeError, InvalidAnalysis) as err:
        return ClipOutcome(key, None, f"invalid answer: {err}", attempts, rate_limited=rate_limited, **tokens)
    return ClipOutcome(key, metrics, None, attempts, rate_limited=rate_limited, **tokens)


def _answer_problem(response) -> str | None:
    if not response.candidates:
        feedback = response.prompt_feedback
        return f"blocked: {feedback.block_reason}" if feedback and feedback.block_reason else "no answer"
    finish = response.candidates[0].finish_reason
    if finish not in (None, types.FinishReason.STOP):
        return f"the answer stopped early ({finish})"
    return None


def retry_delay(err: BaseException) -> float | None:
    """Seconds from the google.rpc.RetryInfo of a 429, if the server gave one."""
    details = getattr(err, "details", None)
    entries = details.get("error", {}).get("details", []) if isinstance(details, dict) else []
    for entry in entries:
        if str(entry.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(entry.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _is_rate_limit(err: BaseException) -> bool:
    return isinstance(err, errors.APIError) and err.code == 429


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, errors.APIError):
        return err.code in RETRYABLE_STATUS
    # Timeouts and dropped connections come from the SDK's HTTP stack (httpx2, or aiohttp when installed).
    module = type(err).__module__.split(".")[0]
    return module in ("httpx2", "httpx", "aiohttp") or isinstance(err, (TimeoutError, ConnectionError))
