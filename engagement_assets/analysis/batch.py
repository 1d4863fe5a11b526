"""Batch mode: a backfill's clips through the Gemini Batch API, at half the price, read back into the cache.

The trade-off is latency: a batch job's target turnaround is 24 hours (usually much less), so a run in
batch mode submits, polls every `poll_seconds`, and gives up after `max_wait_seconds` with a clear
failure. Submitted jobs are recorded in platform storage (`analysis_batches/<job>.json` with the clip keys
they carry), so the next run resumes polling those jobs instead of submitting (and paying for) them again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from google import genai
from google.genai import types

from engagement_assets.analysis.gemini import ClipRequest, clip_config, validated_clip_outcome
from engagement_assets.platform.gemini_client import ModelOutcome
from engagement_assets.storage.layout import ANALYSIS_BATCHES_PREFIX
from engagement_assets.storage.store import Store

# Inline batch requests must stay under 20 MB in total; base64 adds a third to the audio.
MAX_JOB_AUDIO_BYTES = 12 << 20
DONE = {
    types.JobState.JOB_STATE_SUCCEEDED,
    types.JobState.JOB_STATE_FAILED,
    types.JobState.JOB_STATE_CANCELLED,
    types.JobState.JOB_STATE_EXPIRED,
}
PRICE_FACTOR = 0.5


class BatchStillRunning(RuntimeError):
    """Jobs are submitted and recorded but not finished: materialize again later to collect them."""


@dataclass(frozen=True)
class _Job:
    name: str
    keys: list[str]


class GeminiBatchAnalyzer:
    """Same surface as GeminiClient (`model`, `on_outcome`, `analyze`), through the Batch API."""

    price_factor = PRICE_FACTOR

    def __init__(
        self,
        client: genai.Client,
        model: str,
        store: Store,
        poll_seconds: float = 30.0,
        max_wait_seconds: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client, self.model, self.store = client, model, store
        self.poll_seconds, self.max_wait_seconds, self._sleep = poll_seconds, max_wait_seconds, sleep
        self.config = clip_config(model)
        self.on_outcome: Callable[[ModelOutcome], None] = lambda outcome: None
        self.submitted = 0
        self.resumed = 0

    def analyze(self, requests: list[ClipRequest]) -> list[ModelOutcome]:
        wanted = {request.key: request for request in requests}
        jobs = [job for job in self._recorded_jobs() if wanted.keys() & set(job.keys)]
        self.resumed = len(jobs)
        in_flight = {key for job in jobs for key in job.keys}
        jobs += self._submit_all([request for request in requests if request.key not in in_flight])
        outcomes: dict[str, ModelOutcome] = {}
        for job, state in self._wait(jobs):
            for outcome in self._results(job, state):
                if outcome.key in wanted:
                    outcomes[outcome.key] = outcome
                    self.on_outcome(outcome)
            self.store.delete(_record_key(job.name))
        no_result = "the batch job returned no result for this clip"
        return [outcomes.get(key) or ModelOutcome(key, None, no_result, 1) for key in wanted]

    def _submit_all(self, requests: list[ClipRequest]) -> list[_Job]:
        """One job per ~MAX_JOB_AUDIO_BYTES of audio, each clip read once, one chunk in memory at a time."""
        jobs, chunk, size = [], [], 0
        for request in requests:
            audio = request.load()
            if chunk and size + len(audio) > MAX_JOB_AUDIO_BYTES:
                jobs.append(self._submit(chunk))
                chunk, size = [], 0
            chunk.append((request, audio))
            size += len(audio)
        return [*jobs, self._submit(chunk)] if chunk else jobs

    def _submit(self, chunk: list[tuple[ClipRequest, bytes]]) -> _Job:
        inlined = [
            types.InlinedRequest(
                contents=[
                    types.Part.from_bytes(data=audio, mime_type=request.mime_type),
                    f"Expected sentence: {request.expected_text}",
                ],
                config=self.config,
                metadata={"key": request.key},
            )
            for request, audio in chunk
        ]
        created = self.client.batches.create(
            model=self.model,
            src=inlined,
            config=types.CreateBatchJobConfig(display_name="engagement-audio-analysis"),
        )
        job = _Job(created.name, [request.key for request, _ in chunk])
        self.store.put_bytes(json.dumps({"name": job.name, "keys": job.keys}).encode(), _record_key(job.name))
        self.submitted += 1
        return job

    def _wait(self, jobs: list[_Job]) -> list[tuple[_Job, types.BatchJob]]:
        deadline = time.monotonic() + self.max_wait_seconds
        finished = {}
        while True:
            for job in jobs:
                if job.name not in finished:
                    state = self.client.batches.get(name=job.name)
                    if state.state in DONE:
                        finished[job.name] = (job, state)
            if len(finished) == len(jobs):
                return list(finished.values())
            if time.monotonic() >= deadline:
                waiting = [job.name for job in jobs if job.name not in finished]
                raise BatchStillRunning(
                    f"{len(waiting)} Gemini batch job(s) still running after {self.max_wait_seconds:g} s "
                    f"({', '.join(waiting[:3])}); they are recorded, so materializing again collects them"
                )
            self._sleep(self.poll_seconds)

    def _results(self, job: _Job, state) -> list[ModelOutcome]:
        if state.state != types.JobState.JOB_STATE_SUCCEEDED or not state.dest:
            error = f"the batch job ended {state.state}"
            return [ModelOutcome(key, None, error, 1) for key in job.keys]
        outcomes = []
        for item in state.dest.inlined_responses or []:
            key = (item.metadata or {}).get("key", "")
            if item.error:
                outcomes.append(
                    ModelOutcome(key, None, f"batch line error {item.error.code}: {item.error.message}", 1)
                )
            else:
                outcomes.append(validated_clip_outcome(key, item.response, attempts=1, rate_limited=0))
        return outcomes

    def _recorded_jobs(self) -> list[_Job]:
        records = [
            json.loads(self.store.read_bytes(f.key)) for f in self.store.list_files(ANALYSIS_BATCHES_PREFIX)
        ]
        return [_Job(record["name"], record["keys"]) for record in records]


def _record_key(job_name: str) -> str:
    return f"{ANALYSIS_BATCHES_PREFIX}{job_name.replace('/', '_')}.json"
