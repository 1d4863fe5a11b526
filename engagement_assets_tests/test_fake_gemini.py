"""The fake Gemini API, driven by the real google-genai SDK: every fault must surface exactly as the SDK
surfaces the real API's, or tests written against the fake would prove nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from typing import Literal

import httpx2
import numpy as np
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from engagement_assets.devtools.sample_data.audio import SAMPLE_RATE, wav_bytes
from engagement_assets_tests.fake_gemini import (
    FakeGemini,
    Fault,
    SlidingWindow,
    default_analysis,
    format_duration,
    retry_delay_seconds,
)

MODEL = "gemini-2.5-flash-lite"
SYSTEM = "Rate the child's recording."


class Analysis(BaseModel):
    """The analyzer's response schema (names as in engagement_assets.analysis.schema)."""

    EQ_score: int = Field(ge=0, le=100)
    engagement_score: int = Field(ge=0, le=100)
    dominant_emotion: Literal["happiness", "sadness", "anger", "fear", "calmness"]
    engagement_state: Literal["engaged", "neutral", "disengaged"]
    pronunciation_accuracy: Literal["good", "average", "poor"]
    audio_quality: Literal["good", "poor", "distorted", "blank"]


CONFIG = types.GenerateContentConfig(
    system_instruction=SYSTEM,
    response_mime_type="application/json",
    response_schema=Analysis,
    temperature=0,
    max_output_tokens=256,
)


def clip(seed: int, seconds: float = 1.0) -> bytes:
    samples = np.random.default_rng(seed).normal(0, 2000, int(seconds * SAMPLE_RATE))
    return wav_bytes(samples.astype(np.int16))


def contents(audio: bytes, sentence: str = "I like cats") -> list:
    return [types.Part.from_bytes(data=audio, mime_type="audio/wav"), f"Expected sentence: {sentence}"]


pytestmark = pytest.mark.usefixtures("clean_gemini_env")


@pytest.fixture
def fake():
    with FakeGemini(hang_seconds=3.0) as server:
        yield server


def make_client(fake: FakeGemini, timeout_ms: int = 5000, **options) -> genai.Client:
    http = types.HttpOptions(base_url=fake.url, api_version="v1beta", timeout=timeout_ms, **options)
    return genai.Client(api_key="test-key", http_options=http)


@pytest.fixture
def client(fake):
    with make_client(fake) as sdk_client:
        yield sdk_client


def generate(client: genai.Client, audio: bytes, sentence: str = "I like cats"):
    return client.models.generate_content(model=MODEL, contents=contents(audio, sentence), config=CONFIG)


# ---------------------------------------------------------------------------------------------------------
# Normal answers


def test_structured_call_parses_and_is_recorded(fake, client):
    audio = clip(1, seconds=2.0)
    response = generate(client, audio, "The sun is hot")

    assert isinstance(response.parsed, Analysis)
    assert response.parsed.model_dump() == fake.analysis_for(audio) == default_analysis(audio)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == MODEL
    usage = response.usage_metadata
    by_modality = {detail.modality.value: detail.token_count for detail in usage.prompt_tokens_details}
    assert by_modality["AUDIO"] == 64  # 2 s at 32 tokens/s
    assert usage.prompt_token_count == by_modality["AUDIO"] + by_modality["TEXT"]
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count

    (record,) = fake.requests
    assert (record.model, record.api_version, record.api_key) == (MODEL, "v1beta", "test-key")
    assert (record.expected_sentence, record.mime_type, record.status) == ("The sun is hot", "audio/wav", 200)
    assert record.audio_sha256 == hashlib.sha256(audio).hexdigest()
    assert record.body["generationConfig"]["responseMimeType"] == "application/json"


def test_answers_are_deterministic_per_clip(fake, client):
    first, second = clip(1), clip(2)
    answers = [generate(client, audio).text for audio in (first, second, first)]
    assert answers[0] == answers[2] != answers[1]
    # A fresh fake answers the same: the answer depends on the clip's bytes only.
    with FakeGemini() as other, make_client(other) as other_client:
        assert generate(other_client, first).text == answers[0]


def test_set_analysis_overrides_one_clip(fake, client):
    silent = wav_bytes(np.zeros(SAMPLE_RATE, dtype=np.int16))
    scripted = {**default_analysis(silent), "audio_quality": "blank", "EQ_score": 0}
    fake.set_analysis(silent, scripted)
    assert generate(client, silent).parsed.model_dump() == scripted


def test_default_api_version_and_snake_case_keys_are_accepted(fake):
    audio = clip(3)
    # The 3.x SDK calls /v1/ when no api_version is given.
    with genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.url)) as v1_client:
        assert json.loads(v1_client.models.generate_content(model=MODEL, contents=contents(audio)).text)
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "audio/wav", "data": base64.b64encode(audio).decode()}},
                    {"text": "Expected sentence: A dog"},
                ],
            }
        ],
        "system_instruction": {"parts": [{"text": SYSTEM}]},
    }
    raw = httpx2.post(f"{fake.url}/v1beta/models/{MODEL}:generateContent", json=body, timeout=5)
    assert raw.status_code == 200
    assert [r.api_version for r in fake.requests] == ["v1", "v1beta"]
    assert fake.requests[1].mime_type == "audio/wav"
    assert fake.requests[1].audio_sha256 == fake.requests[0].audio_sha256


def test_unknown_model_and_bad_key_answer_like_the_api():
    with FakeGemini(models=[MODEL], api_keys=["good"]) as server:
        with make_client(server) as wrong_key, pytest.raises(errors.ClientError) as bad_key:
            generate(wrong_key, clip(1))
        assert (bad_key.value.code, bad_key.value.status) == (400, "INVALID_ARGUMENT")
        http = types.HttpOptions(base_url=server.url, api_version="v1beta")
        with (
            genai.Client(api_key="good", http_options=http) as good,
            pytest.raises(errors.ClientError) as gone,
        ):
            good.models.generate_content(model="gemini-2.0-flash-lite", contents=contents(clip(1)))
        assert (gone.value.code, gone.value.status) == (404, "NOT_FOUND")


# ---------------------------------------------------------------------------------------------------------
# Faults


@pytest.mark.parametrize(("fault", "status"), [("500", "INTERNAL"), ("503", "UNAVAILABLE")])
def test_server_errors_raise_server_error(fake, client, fault, status):
    fake.fail_next(fault)
    with pytest.raises(errors.ServerError) as caught:
        generate(client, clip(1))
    assert (caught.value.code, caught.value.status) == (int(fault), status)
    assert caught.value.details["error"]["code"] == int(fault)
    assert generate(client, clip(1)).parsed is not None  # the fault was used up


def test_timeout_raises_read_timeout_and_hang_does_not_delay_teardown(fake):
    fake.fail_next("timeout")
    started = time.monotonic()
    with make_client(fake, timeout_ms=300) as short, pytest.raises(httpx2.ReadTimeout):
        generate(short, clip(1))
    assert time.monotonic() - started < 2.0  # the client's timeout fired, not the 3 s hang


@pytest.mark.parametrize("fault", ["disconnect", Fault("timeout", hang_seconds=0.1, then="drop")])
def test_dropped_connection_raises_remote_protocol_error(fake, client, fault):
    fake.fail_next(fault)
    with pytest.raises(httpx2.RemoteProtocolError):
        generate(client, clip(1))


def test_injected_429_carries_retry_info_and_quota_failure(fake, client):
    fake.fail_next(Fault("429", retry_delay=1.5, quota_id="GenerateRequestsPerDayPerProjectPerModel"))
    with pytest.raises(errors.ClientError) as caught:
        generate(client, clip(1))
    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert retry_delay_seconds(error.details) == 1.5
    types_sent = [entry["@type"].rsplit("/", 1)[-1] for entry in error.details["error"]["details"]]
    assert types_sent == ["google.rpc.QuotaFailure", "google.rpc.Help", "google.rpc.RetryInfo"]
    violation = error.details["error"]["details"][0]["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"
    assert fake.rejected_429 == 1 and fake.accepted == 0  # a 429 doesn't use up a slot


def test_malformed_answer_is_not_json(fake, client):
    fake.fail_next("malformed")
    response = generate(client, clip(1))
    assert response.parsed is None  # the SDK stays silent, which is why the analyzer validates
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_out_of_range_answer_is_valid_json_but_fails_the_schema(fake, client):
    fake.fail_next("out_of_range")
    response = generate(client, clip(1))
    assert response.parsed is None
    values = json.loads(response.text)
    assert (values["EQ_score"], values["dominant_emotion"]) == (140, "joy")


def test_blocked_prompt_has_no_text(fake, client):
    fake.fail_next("blocked")
    response = generate(client, clip(1))
    assert response.text is None and not response.candidates
    assert response.prompt_feedback.block_reason == types.BlockedReason.SAFETY


def test_max_tokens_answer_is_truncated(fake, client):
    audio = clip(1)
    fake.fail_next("max_tokens")
    response = generate(client, audio)
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.parsed is None
    full = json.dumps(default_analysis(audio))
    assert full.startswith(response.text) and len(response.text) < len(full)


def test_clip_faults_follow_the_clip(fake, client):
    broken, healthy = clip(1), clip(2)
    fake.fail_clip(broken, "503")
    fake.fail_clip(clip(3), "500", times=1)
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            generate(client, broken)
        assert generate(client, healthy).parsed is not None
    with pytest.raises(errors.ServerError):
        generate(client, clip(3))
    assert generate(client, clip(3)).parsed is not None  # times=1: only the first request failed
    fake.clear_faults()
    assert generate(client, broken).parsed is not None


# ---------------------------------------------------------------------------------------------------------
# Rate limit and concurrency


def test_rate_window_answers_429_until_a_slot_frees():
    with FakeGemini(limit=4, window_seconds=0.6) as server, make_client(server) as sdk:

        async def burst(count: int) -> list:
            calls = (
                sdk.aio.models.generate_content(model=MODEL, contents=contents(clip(i))) for i in range(count)
            )
            return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(burst(6))
        refused = [r for r in results if isinstance(r, errors.APIError)]
        assert len(refused) == 2 and all(r.code == 429 for r in refused)
        delays = [retry_delay_seconds(r.details) for r in refused]
        assert all(0 < delay <= 0.6 for delay in delays)

        time.sleep(max(delays))  # the announced delay is enough for the next request to pass
        assert sdk.models.generate_content(model=MODEL, contents=contents(clip(9))).text
        assert (server.accepted, server.rejected_429, server.max_in_window()) == (5, 2, 4)
        assert [r.fault for r in server.requests].count("rate_limit") == 2


def test_many_concurrent_async_requests_are_served_in_parallel():
    with FakeGemini(latency_seconds=0.3) as server, make_client(server) as sdk:

        async def run_all() -> list:
            calls = [
                sdk.aio.models.generate_content(model=MODEL, contents=contents(clip(i))) for i in range(40)
            ]
            return await asyncio.gather(*calls)

        started = time.monotonic()
        responses = asyncio.run(run_all())
        elapsed = time.monotonic() - started
    assert [json.loads(r.text) for r in responses] == [default_analysis(clip(i)) for i in range(40)]
    assert elapsed < 3.0  # 40 × 0.3 s one after another would take 12 s
    assert server.max_in_flight >= 20


def test_max_in_window_counts_any_half_open_window():
    window = SlidingWindow(limit=None, window_seconds=1.0)
    for moment in (0.0, 0.2, 0.9, 1.0, 1.1, 2.5):
        window.accept(moment)
    assert window.max_in_window() == 4  # 0.2, 0.9, 1.0, 1.1
    assert window.max_in_window(0.15) == 2


def test_retry_delay_format_matches_protobuf_duration():
    assert [format_duration(s) for s in (37, 1.25, 0.0004, 0)] == ["37s", "1.250s", "0.001s", "0s"]


# ---------------------------------------------------------------------------------------------------------
# Batch API


def inlined(audio: bytes, key: str) -> types.InlinedRequest:
    return types.InlinedRequest(contents=contents(audio, key), config=CONFIG, metadata={"key": key})


def test_batch_runs_through_its_states_and_returns_inlined_responses(fake, client):
    good, failing, garbled = clip(1), clip(2), clip(3)
    fake.fail_clip(failing, "500")
    fake.fail_clip(garbled, "malformed")
    job = client.batches.create(
        model=MODEL,
        src=[inlined(good, "a"), inlined(failing, "b"), inlined(garbled, "c")],
        config=types.CreateBatchJobConfig(display_name="clips"),
    )
    assert job.name.startswith("batches/") and job.display_name == "clips"
    assert job.state == types.JobState.JOB_STATE_PENDING

    states = [client.batches.get(name=job.name) for _ in range(3)]
    assert [s.state.name for s in states] == ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    results = {item.metadata["key"]: item for item in states[-1].dest.inlined_responses}

    assert json.loads(results["a"].response.text) == default_analysis(good)
    assert results["b"].response is None and results["b"].error.code == 13  # google.rpc.Code INTERNAL
    with pytest.raises(json.JSONDecodeError):
        json.loads(results["c"].response.text)
    assert [line.expected_sentence for line in fake.batch_lines] == ["a", "b", "c"]
    assert fake.requests == []  # batch lines don't count against the generateContent window


def test_async_batch_with_reordered_results_and_cancel():
    server = FakeGemini(batch_pending_polls=0, batch_running_polls=0, batch_reverse_order=True)
    with server, make_client(server) as sdk:

        async def run() -> tuple:
            job = await sdk.aio.batches.create(model=MODEL, src=[inlined(clip(i), str(i)) for i in range(3)])
            done = await sdk.aio.batches.get(name=job.name)
            other = await sdk.aio.batches.create(model=MODEL, src=[inlined(clip(7), "7")])
            await sdk.aio.batches.cancel(name=other.name)
            return done, await sdk.aio.batches.get(name=other.name)

        done, cancelled = asyncio.run(run())
    assert [r.metadata["key"] for r in done.dest.inlined_responses] == ["2", "1", "0"]
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED and cancelled.dest is None


def test_failed_batch_has_no_results():
    server = FakeGemini(batch_pending_polls=0, batch_running_polls=0, batch_final_state="BATCH_STATE_FAILED")
    with server, make_client(server) as sdk:
        job = sdk.batches.create(model=MODEL, src=[inlined(clip(1), "1")])
        failed = sdk.batches.get(name=job.name)
    assert failed.state == types.JobState.JOB_STATE_FAILED and failed.dest is None
