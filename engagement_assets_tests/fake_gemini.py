"""A fake Gemini Developer API on 127.0.0.1, driven by the real google-genai SDK over real HTTP.

It answers `generateContent` with a deterministic analysis per clip (from the sha256 of the audio), enforces
a sliding-window request limit with the real RESOURCE_EXHAUSTED/RetryInfo body, injects the faults a
production client meets (5xx, hangs, malformed/truncated/blocked answers, 429s) and runs inline batch jobs
through their PENDING → RUNNING → SUCCEEDED lifecycle. Wire shapes follow the Gemini Developer API as the
google-genai 3.4.0 parsers read them (`batches._BatchJob_from_mldev`).

    with FakeGemini(rpm=600) as fake:
        client = genai.Client(api_key="test-key", http_options=types.HttpOptions(
            base_url=fake.url, api_version="v1beta", timeout=5000))
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from engagement_assets.analysis.schema import CATEGORY_SETS

# ---------------------------------------------------------------------------------------------------------
# Faults

INTERNAL = "500"
UNAVAILABLE = "503"
RATE_LIMITED = "429"
TIMEOUT = "timeout"
DISCONNECT = "disconnect"  # the connection closes without any answer
MALFORMED = "malformed"
OUT_OF_RANGE = "out_of_range"
BLOCKED = "blocked"
# A proxy in front of the API that quotes the request's headers in its error (the API key among them).
ECHO_HEADERS = "echo_headers"
MAX_TOKENS = "max_tokens"
FAULTS = (
    ECHO_HEADERS,
    INTERNAL,
    UNAVAILABLE,
    RATE_LIMITED,
    TIMEOUT,
    DISCONNECT,
    MALFORMED,
    OUT_OF_RANGE,
    BLOCKED,
    MAX_TOKENS,
)

PER_MINUTE_QUOTA = "GenerateRequestsPerMinutePerProjectPerModel"
PER_DAY_QUOTA = "GenerateRequestsPerDayPerProjectPerModel"


@dataclass(frozen=True)
class Fault:
    """One injected fault. Plain strings (`"500"`, `"timeout"`, ...) work wherever a Fault is accepted."""

    kind: str
    retry_delay: float = 2.0  # "429": the RetryInfo.retryDelay to announce, in seconds
    quota_id: str = PER_MINUTE_QUOTA  # "429": lets a test send a per-day quota that won't reset soon
    hang_seconds: float | None = None  # "timeout": None means the fake's `hang_seconds`
    then: str = "answer"  # "timeout": "answer" normally after the hang, or "drop" the connection

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {FAULTS}")
        if self.then not in ("answer", "drop"):
            raise ValueError(f"then={self.then!r}; expected 'answer' or 'drop'")


def as_fault(fault: Fault | str) -> Fault:
    return fault if isinstance(fault, Fault) else Fault(str(fault))


# ---------------------------------------------------------------------------------------------------------
# What the fake answers


def audio_sha256(audio: bytes | str) -> str:
    """The key faults and answers are stored under: a hex digest is taken as already hashed."""
    if isinstance(audio, str):
        if not re.fullmatch(r"[0-9a-f]{64}", audio):
            raise ValueError("pass the audio bytes or their 64-digit hex sha256")
        return audio
    return hashlib.sha256(audio).hexdigest()


def default_analysis(audio: bytes | str) -> dict:
    """The answer the fake gives for a clip: every field drawn from the clip's sha256, so it never changes."""
    digest = bytes.fromhex(audio_sha256(audio))
    categories = {
        name: allowed[digest[2 + i] % len(allowed)] for i, (name, allowed) in enumerate(CATEGORY_SETS.items())
    }
    return {"EQ_score": digest[0] % 101, "engagement_score": digest[1] % 101, **categories}


TOPICS = ("pronunciation", "vocabulary", "grammar", "lesson_progress", "technical", "account", "general")
INTENTS = ("greeting", "complaint", "request", "question", "feedback", "statement")
SENTIMENTS = ("positive", "neutral", "negative")


def default_categories(text: str) -> dict:
    """The answer to a conversation-categories request: drawn from the text's sha256, so it never changes."""
    digest = hashlib.sha256(text.encode()).digest()
    return {
        "topic": TOPICS[digest[0] % len(TOPICS)],
        "topic_confidence": round(digest[1] / 255, 3),
        "intent": INTENTS[digest[2] % len(INTENTS)],
        "intent_confidence": round(digest[3] / 255, 3),
        "sentiment": SENTIMENTS[digest[4] % len(SENTIMENTS)],
        "sentiment_confidence": round(digest[5] / 255, 3),
    }


def asks_for_categories(body: dict) -> bool:
    """A request whose structured-output schema has a `topic` field is the conversation categorizer's."""
    config = _pick(body, "generationConfig", "generation_config") or {}
    return '"topic"' in json.dumps(config)


def format_duration(seconds: float) -> str:
    """A google.protobuf.Duration as JSON: "37s", "1.250s" (0, 3, 6 or 9 fractional digits, as the API)."""
    millis = max(0, math.ceil(seconds * 1000))  # round up: waiting the announced delay must be enough
    whole, fraction = divmod(millis, 1000)
    return f"{whole}s" if fraction == 0 else f"{whole}.{fraction:03d}s"


def retry_delay_seconds(error_body: dict | None) -> float | None:
    """RetryInfo.retryDelay of an error body (an SDK APIError's `.details`), in seconds."""
    entries = ((error_body or {}).get("error") or {}).get("details") or []
    for entry in entries:
        if str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return float(entry["retryDelay"].rstrip("s"))
    return None


AUDIO_TOKENS_PER_SECOND = 32  # ai.google.dev/gemini-api/docs/audio
UNKNOWN_AUDIO_TOKENS = 160  # a non-WAV clip is billed as if it were 5 s long


def wav_seconds(audio: bytes) -> float | None:
    """The duration a RIFF/WAVE header declares, or None if this isn't a readable WAV."""
    if len(audio) < 12 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return None
    byte_rate, offset = None, 12
    while offset + 8 <= len(audio):
        chunk, size = audio[offset : offset + 4], struct.unpack("<I", audio[offset + 4 : offset + 8])[0]
        if chunk == b"fmt " and size >= 16:
            byte_rate = struct.unpack("<I", audio[offset + 16 : offset + 20])[0]
        elif chunk == b"data":
            # Recorders that stream may leave the size unset; count what actually arrived.
            size = min(size, len(audio) - offset - 8)
            return size / byte_rate if byte_rate else None
        offset += 8 + size + (size & 1)
    return None


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)  # the usual ~4 characters per token


# ---------------------------------------------------------------------------------------------------------
# Reading request bodies (the SDK mixes camelCase and snake_case; the real API accepts both)


def _pick(mapping: dict, camel: str, snake: str, default=None):
    return mapping.get(camel, mapping.get(snake, default))


def _b64decode(data: str) -> bytes:
    # The SDK sends URL-safe base64; hand-written REST bodies usually use the standard alphabet.
    text = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ParsedRequest:
    audio: bytes = b""
    mime_type: str | None = None
    texts: list[str] = field(default_factory=list)
    system_text: str = ""

    @property
    def expected_sentence(self) -> str | None:
        for text in self.texts:
            if text.startswith("Expected sentence:"):
                return text.removeprefix("Expected sentence:").strip()
        return None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.audio).hexdigest()


class BadRequest(ValueError):
    pass


def parse_generate_request(body: dict) -> ParsedRequest:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    parsed = ParsedRequest()
    for content in contents:
        for part in content.get("parts") or []:
            _read_part(part, parsed)
    system = _pick(body, "systemInstruction", "system_instruction") or {}
    parsed.system_text = "\n".join(part.get("text", "") for part in system.get("parts") or [])
    return parsed


def _read_part(part: dict, parsed: ParsedRequest) -> None:
    if "text" in part:
        parsed.texts.append(part["text"])
    inline = _pick(part, "inlineData", "inline_data")
    if inline is not None:
        try:
            parsed.audio += _b64decode(inline.get("data", ""))
        except (binascii.Error, ValueError) as err:
            raise BadRequest(f"Invalid value at 'contents[0].parts[0].inline_data.data': {err}") from err
        parsed.mime_type = _pick(inline, "mimeType", "mime_type")


# ---------------------------------------------------------------------------------------------------------
# Building answers


def _usage(parsed: ParsedRequest, answer_text: str) -> dict:
    seconds = wav_seconds(parsed.audio)
    audio_tokens = 0
    if parsed.audio:
        audio_tokens = UNKNOWN_AUDIO_TOKENS if seconds is None else round(seconds * AUDIO_TOKENS_PER_SECOND)
    text_tokens = _text_tokens(parsed.system_text + "".join(parsed.texts))
    output_tokens = _text_tokens(answer_text)
    details = [{"modality": "TEXT", "tokenCount": text_tokens}]
    if audio_tokens:
        details.append({"modality": "AUDIO", "tokenCount": audio_tokens})
    return {
        "promptTokenCount": text_tokens + audio_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": text_tokens + audio_tokens + output_tokens,
        "promptTokensDetails": details,
    }


def _candidate_response(model: str, parsed: ParsedRequest, text: str, finish: str, response_id: str) -> dict:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": _usage(parsed, text),
        "modelVersion": model,
        "responseId": response_id,
    }


def _blocked_response(model: str, parsed: ParsedRequest, response_id: str) -> dict:
    usage = _usage(parsed, "")
    del usage["candidatesTokenCount"]
    return {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def answer_body(
    model: str, parsed: ParsedRequest, analysis: dict, kind: str | None, response_id: str
) -> dict:
    """A 200 GenerateContentResponse: the analysis, or the content fault `kind` applied to it."""
    text = json.dumps(analysis)
    if kind == BLOCKED:
        return _blocked_response(model, parsed, response_id)
    if kind == MALFORMED:
        return _candidate_response(model, parsed, '{"EQ_score": 7', "STOP", response_id)
    if kind == MAX_TOKENS:
        return _candidate_response(model, parsed, text[: len(text) // 2], "MAX_TOKENS", response_id)
    if kind == OUT_OF_RANGE:
        wrong = {
            **analysis,
            **(
                {"topic_confidence": 1.7}
                if "topic" in analysis
                else {"EQ_score": 140, "dominant_emotion": "joy"}
            ),
        }
        return _candidate_response(model, parsed, json.dumps(wrong), "STOP", response_id)
    return _candidate_response(model, parsed, text, "STOP", response_id)


def error_body(code: int, status: str, message: str, details: list | None = None) -> dict:
    error = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def internal_error() -> dict:
    return error_body(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    )


def unavailable_error() -> dict:
    return error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def rate_limit_error(model: str, delay: float, limit: int | None, quota_id: str = PER_MINUTE_QUOTA) -> dict:
    """The RESOURCE_EXHAUSTED (429) body the Gemini API sends: QuotaFailure, Help, then RetryInfo."""
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
    retry = format_duration(delay)
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
        f"* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}\n"
        f"Please retry in {retry}."
    )
    violation = {
        "quotaMetric": metric,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": str(limit),
    }
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry},
    ]
    return error_body(429, "RESOURCE_EXHAUSTED", message, details)


def not_found_error(message: str) -> dict:
    return error_body(404, "NOT_FOUND", message)


def invalid_key_error() -> dict:
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return error_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [info])


# Inside a batch a failed line carries a google.rpc.Status, whose code is the canonical gRPC code, not HTTP.
# No `details` on purpose: the SDK's JobError types `details` as list[str] and would reject status objects.
_BATCH_LINE_ERRORS = {
    INTERNAL: {"code": 13, "message": "Internal error encountered."},
    UNAVAILABLE: {"code": 14, "message": "The model is overloaded. Please try again later."},
    RATE_LIMITED: {"code": 8, "message": "Resource has been exhausted (e.g. check quota)."},
    TIMEOUT: {"code": 4, "message": "Deadline expired before operation could complete."},
    DISCONNECT: {"code": 14, "message": "The service is currently unavailable."},
}


# ---------------------------------------------------------------------------------------------------------
# Rate limiting


class SlidingWindow:
    """At most `limit` accepted requests in any `window_seconds`; remembers every acceptance for audits."""

    def __init__(self, limit: int | None, window_seconds: float):
        self.limit, self.window_seconds = limit, window_seconds
        self.accepted_at: list[float] = []
        self._recent: deque[float] = deque()

    def wait_needed(self, now: float) -> float:
        """0 if a request may go now, else the seconds until the oldest request in the window expires."""
        while self._recent and now - self._recent[0] >= self.window_seconds:
            self._recent.popleft()
        if self.limit is None or len(self._recent) < self.limit:
            return 0.0
        return self._recent[0] + self.window_seconds - now

    def accept(self, now: float) -> None:
        self._recent.append(now)
        self.accepted_at.append(now)

    def max_in_window(self, window_seconds: float | None = None) -> int:
        """The most acceptances that fall in any half-open interval [t, t + window) — what the API counts."""
        window = self.window_seconds if window_seconds is None else window_seconds
        times, best, start = sorted(self.accepted_at), 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best


# ---------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RecordedRequest:
    """One generateContent call (or one line of a batch) as the fake saw it."""

    time: float  # time.monotonic() on arrival
    model: str
    api_version: str
    audio_sha256: str
    expected_sentence: str | None
    mime_type: str | None
    api_key: str | None
    status: int  # the HTTP status decided on arrival (200 for hangs, drops and every batch line)
    fault: str | None  # the injected fault, "rate_limit" for a 429 from the window, else None
    body: dict = field(repr=False, compare=False)
    batch: str | None = None  # batches/<id> for a line of a batch job


@dataclass
class BatchJob:
    name: str
    model: str
    display_name: str | None
    lines: list[dict]
    created: float
    created_iso: str
    polls: int = 0
    state: str = "BATCH_STATE_PENDING"
    outputs: list[dict] | None = None
    ended_iso: str | None = None


TERMINAL_BATCH_STATES = (
    "BATCH_STATE_SUCCEEDED",
    "BATCH_STATE_FAILED",
    "BATCH_STATE_CANCELLED",
    "BATCH_STATE_EXPIRED",
)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------------
# The server


class FakeGemini:
    """A fake Gemini Developer API. See the module docstring. Every knob below is an attribute a test may
    change mid-run (the rate limit lives in `fake.window.limit` and `fake.window.window_seconds`).

    rpm: at most `rpm` accepted generateContent requests in any sliding 60 s; None means unlimited.
    limit / window_seconds: the same over a shorter window, to keep tests fast (use instead of rpm).
    latency_seconds: added to every accepted generateContent, so concurrent calls really overlap.
    hang_seconds: how long a "timeout" fault hangs (make it longer than the client's timeout).
    batch_pending_polls / batch_running_polls: how many `batches.get` calls see PENDING, then RUNNING,
        before the job finishes; batch_min_seconds additionally keeps it unfinished for that long.
    batch_final_state: the state a batch job ends in (FAILED/EXPIRED jobs carry no results).
    batch_reverse_order: return inlined responses in reverse order, as the real API may reorder them
        (python-genai #1909): clients must match results on metadata.
    models: if given, other models get the real 404 NOT_FOUND. api_keys: if given, other keys get 400.
    """

    def __init__(
        self,
        rpm: int | None = None,
        *,
        limit: int | None = None,
        window_seconds: float = 60.0,
        latency_seconds: float = 0.0,
        hang_seconds: float = 30.0,
        batch_pending_polls: int = 1,
        batch_running_polls: int = 1,
        batch_min_seconds: float = 0.0,
        batch_final_state: str = "BATCH_STATE_SUCCEEDED",
        batch_reverse_order: bool = False,
        models: Collection[str] | None = None,
        api_keys: Collection[str] | None = None,
    ):
        if rpm is not None and (limit is not None or window_seconds != 60.0):
            raise ValueError("give either rpm (per 60 s) or limit with window_seconds, not both")
        self.window = SlidingWindow(rpm if rpm is not None else limit, window_seconds)
        self.latency_seconds = latency_seconds
        self.hang_seconds = hang_seconds
        self.batch_pending_polls = batch_pending_polls
        self.batch_running_polls = batch_running_polls
        self.batch_min_seconds = batch_min_seconds
        self.batch_final_state = batch_final_state
        self.batch_reverse_order = batch_reverse_order
        self.models = None if models is None else {m.removeprefix("models/") for m in models}
        self.api_keys = None if api_keys is None else set(api_keys)

        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._stopping = threading.Event()
        self._queue: deque[Fault] = deque()
        self._clip_faults: dict[str, list] = {}  # sha256 -> [Fault, remaining uses or None for always]
        self._answers: dict[str, dict] = {}
        self._requests: list[RecordedRequest] = []
        self._batch_lines: list[RecordedRequest] = []
        self._batches: dict[str, BatchJob] = {}
        self._ids = itertools.count(1)
        self._in_flight = 0
        self.max_in_flight = 0
        self.status_counts: Counter[int] = Counter()

        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits up to one interval, and every test closes a fake.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-gemini", daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGemini:
        self._thread.start()
        return self

    def close(self) -> None:
        # Wake hung handlers first, so shutting down never waits out a "timeout" fault.
        self._stopping.set()
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- programming faults and answers ----------------------------------------------------------------

    def fail_next(self, *faults: Fault | str) -> None:
        """The next generateContent requests the rate window admits meet these faults, in order."""
        with self._lock:
            self._queue.extend(as_fault(f) for f in faults)

    def fail_clip(self, audio: bytes | str, fault: Fault | str, times: int | None = None) -> None:
        """Requests (and batch lines) for this clip meet `fault`: always, or only the next `times` of them.
        A clip fault takes precedence over the fail_next queue, which is then left untouched."""
        with self._lock:
            self._clip_faults[audio_sha256(audio)] = [as_fault(fault), times]

    def set_analysis(self, audio: bytes | str, analysis: dict) -> None:
        """Answer this clip with `analysis` instead of the sha256-derived default."""
        with self._lock:
            self._answers[audio_sha256(audio)] = dict(analysis)

    def clear_faults(self) -> None:
        with self._lock:
            self._queue.clear()
            self._clip_faults.clear()

    def analysis_for(self, audio: bytes | str) -> dict:
        """What a fault-free request for this clip is answered with."""
        with self._lock:
            return dict(self._answers.get(audio_sha256(audio)) or default_analysis(audio))

    # -- assertions --------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every generateContent request, in arrival order (rate-limited ones included)."""
        with self._lock:
            return list(self._requests)

    @property
    def batch_lines(self) -> list[RecordedRequest]:
        """Every line of every batch job the fake has run."""
        with self._lock:
            return list(self._batch_lines)

    @property
    def batches(self) -> dict[str, BatchJob]:
        with self._lock:
            return dict(self._batches)

    @property
    def accepted(self) -> int:
        """generateContent requests admitted by the rate window (a later fault doesn't un-admit them)."""
        with self._lock:
            return len(self.window.accepted_at)

    @property
    def rejected_429(self) -> int:
        """All 429 answers: from the rate window and injected ones."""
        with self._lock:
            return self.status_counts[429]

    def max_in_window(self, window_seconds: float | None = None) -> int:
        """The most admitted requests in any window (default: the enforced one)."""
        with self._lock:
            return self.window.max_in_window(window_seconds)

    # -- generateContent -------------------------------------------------------------------------------

    def _admit(self, model: str, api_version: str, parsed: ParsedRequest, body: dict, api_key: str | None):
        """Decides a request's fate atomically: (its fault or None, seconds to wait if the window is full)."""
        with self._lock:
            now = time.monotonic()
            wait = self.window.wait_needed(now)
            if wait > 0:
                status, fault = 429, None
            else:
                fault = self._take_clip_fault(parsed.sha256) or (
                    self._queue.popleft() if self._queue else None
                )
                if fault is None or fault.kind != RATE_LIMITED:
                    # An injected 429 is refused like any 429, so it doesn't use up a slot either.
                    self.window.accept(now)
                status = _status_of(fault)
            self.status_counts[status] += 1
            self._requests.append(
                RecordedRequest(
                    time=now,
                    model=model,
                    api_version=api_version,
                    audio_sha256=parsed.sha256,
                    expected_sentence=parsed.expected_sentence,
                    mime_type=parsed.mime_type,
                    api_key=api_key,
                    status=status,
                    fault=fault.kind if fault else ("rate_limit" if wait > 0 else None),
                    body=body,
                )
            )
            return fault, wait

    def _take_clip_fault(self, sha: str) -> Fault | None:
        entry = self._clip_faults.get(sha)
        if entry is None:
            return None
        fault, remaining = entry
        if remaining is not None:
            if remaining <= 1:
                del self._clip_faults[sha]
            else:
                entry[1] = remaining - 1
        return fault

    def _generate(self, model: str, api_version: str, body: dict, api_key: str | None):
        """(status, JSON body) for a generateContent call, or (None, None) to drop the connection."""
        parsed = parse_generate_request(body)
        fault, wait = self._admit(model, api_version, parsed, body, api_key)
        if wait > 0:
            return 429, rate_limit_error(model, wait, self.window.limit)
        kind = fault.kind if fault else None
        if kind == RATE_LIMITED:
            return 429, rate_limit_error(model, fault.retry_delay, self.window.limit, fault.quota_id)
        # A wait cut short by close() drops the connection: the test is over.
        if self.latency_seconds and self._stopping.wait(self.latency_seconds):
            return None, None
        if kind == DISCONNECT:
            return None, None
        if kind == TIMEOUT:
            hang = self.hang_seconds if fault.hang_seconds is None else fault.hang_seconds
            if self._stopping.wait(hang) or fault.then == "drop":
                return None, None
        if kind == ECHO_HEADERS:
            return 400, error_body(400, "INVALID_ARGUMENT", f"bad request; headers: x-goog-api-key={api_key}")
        if kind == INTERNAL:
            return 500, internal_error()
        if kind == UNAVAILABLE:
            return 503, unavailable_error()
        if asks_for_categories(body):
            answer = default_categories("\n".join(parsed.texts))
        else:
            answer = self.analysis_for(parsed.sha256)
        return 200, answer_body(model, parsed, answer, kind, self._response_id())

    def _response_id(self) -> str:
        return f"fake-{next(self._ids):06d}"

    # -- batches -----------------------------------------------------------------------------------------

    def _create_batch(self, model: str, body: dict) -> dict:
        batch = body.get("batch") or {}
        input_config = _pick(batch, "inputConfig", "input_config") or {}
        requests = (input_config.get("requests") or {}).get("requests")
        if not isinstance(requests, list) or not requests:
            raise BadRequest("* batch.input_config: only inline requests are supported by FakeGemini")
        job = BatchJob(
            name=f"batches/fake{next(self._ids):06d}",
            model=model,
            display_name=_pick(batch, "displayName", "display_name"),
            lines=requests,
            created=time.monotonic(),
            created_iso=_iso_now(),
        )
        with self._lock:
            self._batches[job.name] = job
        return self._operation(job)

    def _poll_batch(self, name: str) -> dict | None:
        # Serialised per fake, so two concurrent polls can't both run the job's lines.
        with self._batch_lock:
            job = self.batches.get(name)
            if job is None:
                return None
            with self._lock:
                job.polls += 1
                if job.state not in TERMINAL_BATCH_STATES:
                    job.state = self._batch_state(job)
            if job.state in TERMINAL_BATCH_STATES and job.ended_iso is None:
                self._finish_batch(job)
            return self._operation(job)

    def _batch_state(self, job: BatchJob) -> str:
        if job.polls <= self.batch_pending_polls:
            return "BATCH_STATE_PENDING"
        done_polling = job.polls > self.batch_pending_polls + self.batch_running_polls
        if not done_polling or time.monotonic() - job.created < self.batch_min_seconds:
            return "BATCH_STATE_RUNNING"
        return self.batch_final_state

    def _finish_batch(self, job: BatchJob) -> None:
        outputs = None
        if job.state == "BATCH_STATE_SUCCEEDED":
            outputs = [self._batch_line(job, line) for line in job.lines]
            if self.batch_reverse_order:
                outputs.reverse()
        with self._lock:
            job.outputs, job.ended_iso = outputs, _iso_now()

    def _batch_line(self, job: BatchJob, line: dict) -> dict:
        """One inlined response: the GenerateContentResponse or a google.rpc.Status, plus the echoed metadata."""
        request = line.get("request") or {}
        parsed = parse_generate_request(request)
        with self._lock:
            fault = self._take_clip_fault(parsed.sha256)
            self._batch_lines.append(
                RecordedRequest(
                    time=time.monotonic(),
                    model=job.model,
                    api_version="batch",
                    audio_sha256=parsed.sha256,
                    expected_sentence=parsed.expected_sentence,
                    mime_type=parsed.mime_type,
                    api_key=None,
                    status=200,
                    fault=fault.kind if fault else None,
                    body=request,
                    batch=job.name,
                )
            )
        kind = fault.kind if fault else None
        if kind in _BATCH_LINE_ERRORS:
            result = {"error": dict(_BATCH_LINE_ERRORS[kind])}
        else:
            analysis = self.analysis_for(parsed.sha256)
            result = {"response": answer_body(job.model, parsed, analysis, kind, self._response_id())}
        if "metadata" in line:
            result["metadata"] = line["metadata"]
        return result

    def _cancel_batch(self, name: str) -> bool:
        with self._lock:
            job = self._batches.get(name)
            if job is None:
                return False
            if job.state not in TERMINAL_BATCH_STATES:
                # Cancelling is immediately terminal on the real API too (no interim "cancelling").
                job.state, job.ended_iso = "BATCH_STATE_CANCELLED", _iso_now()
            return True

    def _delete_batch(self, name: str) -> bool:
        with self._lock:
            return self._batches.pop(name, None) is not None

    def _list_batches(self) -> dict:
        return {"operations": [self._operation(job) for job in self.batches.values()]}

    def _operation(self, job: BatchJob) -> dict:
        """The google.longrunning.Operation the API returns for create/get: the job lives in `metadata`,
        which is all the SDK reads (`_BatchJob_from_mldev`); results sit in `metadata.output` and, as on the
        real API, are repeated in `response` once done."""
        with self._lock:
            metadata = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "name": job.name,
                "model": f"models/{job.model}",
                "createTime": job.created_iso,
                "updateTime": job.ended_iso or job.created_iso,
                "batchStats": _batch_stats(job),
                "state": job.state,
            }
            if job.display_name is not None:
                metadata["displayName"] = job.display_name
            operation = {"name": job.name, "metadata": metadata}
            if job.ended_iso is not None:
                metadata["endTime"] = job.ended_iso
                operation["done"] = True
            if job.outputs is not None:
                output = {"inlinedResponses": {"inlinedResponses": job.outputs}}
                metadata["output"] = output
                operation["response"] = {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
                    **output,
                }
            elif job.state in ("BATCH_STATE_FAILED", "BATCH_STATE_EXPIRED"):
                operation["error"] = {"code": 13, "message": f"Batch job ended in {job.state}."}
            return operation


def _status_of(fault: Fault | None) -> int:
    if fault is None:
        return 200
    return {INTERNAL: 500, UNAVAILABLE: 503, RATE_LIMITED: 429}.get(fault.kind, 200)


def _batch_stats(job: BatchJob) -> dict:
    # The API sends these int64 counts as JSON strings.
    total = len(job.lines)
    if job.outputs is None:
        return {"requestCount": str(total), "pendingRequestCount": str(total)}
    failed = sum(1 for output in job.outputs if "error" in output)
    return {
        "requestCount": str(total),
        "successfulRequestCount": str(total - failed),
        "failedRequestCount": str(failed),
    }


# ---------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Don't join handler threads on close: a hung "timeout" handler or an idle keep-alive connection
    # would otherwise hold up every test's teardown.
    block_on_close = False
    # 50 clients connecting at once overflow the default backlog of 5, and the kernel then drops SYNs
    # that are only retried after a second, which would distort every timing-based test.
    request_queue_size = 256

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        # A client that times out or closes a pooled connection is routine here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def drop_connections(self) -> None:
        """Close idle keep-alive connections so their handler threads end with the fake."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


_VERSION = r"/(?P<ver>v1|v1beta|v1alpha)"
_ROUTES = [
    ("POST", re.compile(_VERSION + r"/models/(?P<model>[^/:]+):generateContent"), "generate"),
    ("POST", re.compile(_VERSION + r"/models/(?P<model>[^/:]+):batchGenerateContent"), "create_batch"),
    ("GET", re.compile(_VERSION + r"/batches"), "list_batches"),
    ("GET", re.compile(_VERSION + r"/batches/(?P<id>[^/:]+)"), "get_batch"),
    ("POST", re.compile(_VERSION + r"/batches/(?P<id>[^/:]+):cancel"), "cancel_batch"),
    ("DELETE", re.compile(_VERSION + r"/batches/(?P<id>[^/:]+)"), "delete_batch"),
]


def _handler_for(fake: FakeGemini):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as httpx2 pools connections

        def setup(self) -> None:
            super().setup()
            fake._server.track(self.connection, True)

        def finish(self) -> None:
            fake._server.track(self.connection, False)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, *args) -> None:
            return

        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            for method, pattern, action in _ROUTES:
                match = pattern.fullmatch(path)
                if match and method == self.command:
                    return self._dispatch(action, match.groupdict(), raw)
            return self._send(404, not_found_error(f"{self.command} {path} is not served by FakeGemini"))

        do_GET = do_POST = do_DELETE = _handle

        def _dispatch(self, action: str, params: dict, raw: bytes) -> None:
            key = self.headers.get("x-goog-api-key")
            if fake.api_keys is not None and key not in fake.api_keys:
                return self._send(400, invalid_key_error())
            model = params.get("model", "")
            if model and fake.models is not None and model not in fake.models:
                return self._send(404, _unknown_model(model, params["ver"]))
            try:
                body = json.loads(raw) if raw else {}
                status, payload = self._run(action, params, body, key)
            except (BadRequest, json.JSONDecodeError) as err:
                status, payload = 400, error_body(400, "INVALID_ARGUMENT", f"Invalid JSON payload: {err}")
            if status is None:
                return self._drop()
            return self._send(status, payload)

        def _run(self, action: str, params: dict, body: dict, key: str | None):
            name = f"batches/{params.get('id')}"
            if action == "generate":
                return self._counted(lambda: fake._generate(params["model"], params["ver"], body, key))
            if action == "create_batch":
                return 200, fake._create_batch(params["model"], body)
            if action == "list_batches":
                return 200, fake._list_batches()
            if action == "get_batch":
                operation = fake._poll_batch(name)
                return (200, operation) if operation else (404, _unknown_batch(name))
            if action == "cancel_batch":
                return (200, {}) if fake._cancel_batch(name) else (404, _unknown_batch(name))
            return (200, {}) if fake._delete_batch(name) else (404, _unknown_batch(name))

        def _counted(self, call):
            """Tracks how many generateContent calls are open at once (the client's concurrency)."""
            with fake._lock:
                fake._in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
            try:
                return call()
            finally:
                with fake._lock:
                    fake._in_flight -= 1

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                # The client gave up (its timeout fired) before the answer was ready.
                self.close_connection = True

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _unknown_model(model: str, version: str) -> dict:
    return not_found_error(
        f"models/{model} is not found for API version {version}, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )


def _unknown_batch(name: str) -> dict:
    return not_found_error(f"Batch {name} not found.")
