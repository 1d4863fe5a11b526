"""The rate-limited Gemini client every group uses: structured output, validated field by field, through
one shared async client.

Throughput is set by a sliding-window rate limiter (never more than `rpm` request starts in any minute)
and a concurrency cap, not by fixed sleeps. A 429 pauses every request for the server's `retryDelay`; 5xx
answers, timeouts and dropped connections are retried with exponential backoff and full jitter. Whatever
the model returns is validated by the caller's validator: a malformed, truncated, blocked or out-of-range
answer is a failed outcome with the reason, never a crash and never a silently kept value. What is asked
(the prompt, the response schema, the validator) belongs to the group: the audio analysis
(`analysis/gemini.py`) and the conversation categorizer (`conversations/model_categories.py`).
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
from typing import Protocol

from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from engagement_assets.errors import describe

RETRYABLE_STATUS = {408, 500, 502, 503, 504}
# Requests reach the server earlier or later than they start here (tens of milliseconds on a loaded
# machine, and the first of a window may be the late one); this margin keeps the client under the
# server's count in every window, at 0.4% of a one-minute window.
WINDOW_MARGIN = 1.01
WINDOW_SLACK_SECONDS = 0.25


class ModelRequest(Protocol):
    key: str

    def contents(self) -> list: ...


@dataclass(frozen=True)
class TextRequest:
    """A text-only request (the conversation categorizer)."""

    key: str
    text: str

    def contents(self) -> list:
        return [self.text]


@dataclass(frozen=True)
class ModelOutcome:
    """One request's result: the validated values, or why there are none; attempts and tokens spent."""

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


def structured_output_config(
    model: str, system_prompt: str, schema: type[BaseModel]
) -> types.GenerateContentConfig:
    """The prompt and structured-output schema every request of one kind carries (online and batch)."""
    return types.GenerateContentConfig(
        system_instruction=system_prompt,
        response_mime_type="application/json",
        response_schema=schema,
        temperature=0,
        max_output_tokens=256,
        # 2.5 models think unless told not to, and thinking tokens are billed as output.
        thinking_config=types.ThinkingConfig(thinking_budget=0) if model.startswith("gemini-2.5") else None,
    )


class GeminiClient:
    """Sends requests (anything with a `key` and `contents()`) under the rate limit and concurrency cap, each
    with `config` (its prompt and response schema), and validates each answer with `validate`."""

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
        config: types.GenerateContentConfig,
        validate: Callable[[dict], dict],
        on_outcome: Callable[[ModelOutcome], None] | None = None,
    ):
        self.client, self.model = client, model
        self.concurrency, self.attempts, self.max_rate_limited = concurrency, attempts, max_rate_limited
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.window_seconds, self.rpm = window_seconds, rpm
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.config = config
        self.validate = validate

    def analyze(self, requests: list[ModelRequest]) -> list[ModelOutcome]:
        """Outcomes in the order of `requests`."""
        return asyncio.run(self._analyze_all(requests))

    async def _analyze_all(self, requests: list[ModelRequest]) -> list[ModelOutcome]:
        limiter = SlidingWindowLimiter(self.rpm, self.window_seconds)
        slots = asyncio.Semaphore(self.concurrency)

        async def one(request: ModelRequest) -> ModelOutcome:
            async with slots:
                outcome = await self._analyze(request, limiter)
            self.on_outcome(outcome)
            return outcome

        return await asyncio.gather(*(one(request) for request in requests))

    async def _analyze(self, request: ModelRequest, limiter: SlidingWindowLimiter) -> ModelOutcome:
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
                return ModelOutcome(request.key, None, describe(err), attempts, rate_limited=rate_limited)
            return validated_outcome(request.key, response, attempts, rate_limited, self.validate)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))


def validated_outcome(
    key: str, response, attempts: int, rate_limited: int, validate: Callable[[dict], dict]
) -> ModelOutcome:
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
        return ModelOutcome(key, None, problem, attempts, rate_limited=rate_limited, **tokens)
    try:
        metrics = validate(json.loads(response.text))
    except (ValueError, TypeError) as err:  # the validators raise ValueError subclasses
        return ModelOutcome(
            key, None, f"invalid answer: {err}", attempts, rate_limited=rate_limited, **tokens
        )
    return ModelOutcome(key, metrics, None, attempts, rate_limited=rate_limited, **tokens)


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
