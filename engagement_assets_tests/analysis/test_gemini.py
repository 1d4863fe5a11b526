"""The Gemini analyzer through the real google-genai SDK against the fake Gemini server on 127.0.0.1:
rate limits, 429 retryDelay, 5xx and timeouts, malformed and out-of-range answers, caching, resuming."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import re
import time

import numpy as np
import pytest
from google import genai
from google.genai import types

from engagement_assets.analysis.gemini import ClipRequest, clip_analyzer
from engagement_assets.devtools.sample_data.audio import voiced, wav_bytes
from engagement_assets.platform.gemini_client import GeminiClient, SlidingWindowLimiter
from engagement_assets_tests.fake_gemini import FakeGemini, Fault

MODEL = "gemini-2.5-flash-lite"


def clip(seed: int) -> bytes:
    return wav_bytes(voiced(np.random.default_rng(seed), 0.5, 0.3))


def client_for(fake: FakeGemini, timeout_seconds: float = 2.0) -> genai.Client:
    options = types.HttpOptions(base_url=fake.url, api_version="v1beta", timeout=int(timeout_seconds * 1000))
    return genai.Client(api_key="test-key", http_options=options)


def analyzer(fake, timeout_seconds: float = 2.0, **options) -> GeminiClient:
    settings = {"rpm": 1000, "concurrency": 8, "backoff_base": 0.05, "window_seconds": 60.0, **options}
    return clip_analyzer(client_for(fake, timeout_seconds), MODEL, **settings)


def requests(count: int, offset: int = 0) -> list[ClipRequest]:
    return [
        ClipRequest(f"k{i}", lambda i=i: clip(i), "audio/wav", f"Sentence {i}")
        for i in range(offset, offset + count)
    ]


def test_every_clip_is_analysed_once_with_validated_metrics():
    with FakeGemini() as fake:
        outcomes = analyzer(fake).analyze(requests(12))
        assert [outcome.key for outcome in outcomes] == [f"k{i}" for i in range(12)]
        assert all(outcome.error is None and outcome.attempts == 1 for outcome in outcomes)
        expected = fake.analysis_for(clip(3))
        assert outcomes[3].metrics == {
            **expected,
            "EQ_score": float(expected["EQ_score"]),
            "engagement_score": float(expected["engagement_score"]),
        }
        assert len({request.audio_sha256 for request in fake.requests}) == 12 == len(fake.requests)
        assert all(outcome.input_tokens > 0 and outcome.output_tokens > 0 for outcome in outcomes)
        (sent,) = [
            request
            for request in fake.requests
            if request.audio_sha256 == hashlib.sha256(clip(0)).hexdigest()
        ]
        assert (sent.mime_type, sent.expected_sentence, sent.api_key, sent.model) == (
            "audio/wav",
            "Sentence 0",
            "test-key",
            MODEL,
        )


def test_the_rate_limit_is_respected_without_server_rejections():
    with FakeGemini(limit=5, window_seconds=1.0) as fake:
        started = time.monotonic()
        outcomes = analyzer(fake, rpm=5, window_seconds=1.0).analyze(requests(15))
        elapsed = time.monotonic() - started
    assert all(outcome.metrics for outcome in outcomes)
    assert fake.rejected_429 == 0
    assert fake.max_in_window(1.0) <= 5
    assert elapsed >= 2.0  # 15 calls at 5 per second need at least two full windows


def test_a_429_waits_the_servers_retry_delay_and_does_not_count_as_an_attempt():
    with FakeGemini() as fake:
        fake.fail_next(Fault("429", retry_delay=0.8))
        started = time.monotonic()
        (outcome,) = analyzer(fake).analyze(requests(1))
        assert time.monotonic() - started >= 0.8
    assert (outcome.error, outcome.attempts, outcome.rate_limited) == (None, 1, 1)


@pytest.mark.parametrize("faults", [("500",), ("503", "500"), ("timeout",), ("disconnect",)])
def test_server_errors_and_timeouts_are_retried(faults):
    with FakeGemini(hang_seconds=3) as fake:
        fake.fail_next(*faults)
        (outcome,) = analyzer(fake, concurrency=1, timeout_seconds=1.0).analyze(requests(1))
        sent = len(fake.requests)
    assert outcome.metrics is not None and sent == len(faults) + 1
    # With aiohttp installed (dagster-k8s brings it) the SDK resends a request whose connection dropped
    # before any answer by itself; every other fault is retried by the analyzer.
    retried_by_transport = 1 if faults == ("disconnect",) and importlib.util.find_spec("aiohttp") else 0
    assert outcome.attempts == len(faults) + 1 - retried_by_transport


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("malformed", "invalid answer"),
        ("out_of_range", "not a number in 0-100|is not one of"),
        ("blocked", "blocked: "),
        ("max_tokens", "stopped early"),
    ],
)
def test_bad_answers_are_failed_outcomes_with_the_reason(fault, error):
    with FakeGemini() as fake:
        fake.fail_clip(clip(0), fault)
        outcomes = analyzer(fake).analyze(requests(3))
    assert outcomes[0].metrics is None and outcomes[0].attempts == 1
    assert re.search(error, outcomes[0].error)
    assert all(outcome.metrics for outcome in outcomes[1:])


def test_a_clip_that_keeps_failing_gives_up_after_the_attempts():
    with FakeGemini() as fake:
        fake.fail_clip(clip(0), "500")
        (outcome,) = analyzer(fake, attempts=3).analyze(requests(1))
    assert outcome.metrics is None and outcome.attempts == 3 and "500" in outcome.error


def test_concurrency_is_capped():
    with FakeGemini(latency_seconds=0.1) as fake:
        analyzer(fake, concurrency=3).analyze(requests(10))
        assert fake.max_in_flight <= 3


def test_the_limiter_never_starts_more_than_its_budget_in_any_window():
    clock = [0.0]

    async def scenario():
        limiter = SlidingWindowLimiter(4, 10.0, clock=lambda: clock[0])
        starts = []
        real_sleep = asyncio.sleep

        async def fake_sleep(seconds):
            clock[0] += seconds
            await real_sleep(0)

        asyncio.sleep = fake_sleep
        try:
            for _ in range(12):
                await limiter.acquire()
                starts.append(clock[0])
        finally:
            asyncio.sleep = real_sleep
        return starts, limiter.period

    starts, period = asyncio.run(scenario())
    assert all(sum(1 for t in starts if start <= t < start + period) <= 4 for start in starts)
    assert starts[4] >= period  # the fifth start waits for the first to leave the window
