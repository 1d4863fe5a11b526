"""Stage 4: copy each response's recording from the source bucket into platform storage.

One thread pool serves every clip of a run (one learner, or a whole backfill batch). Each clip is
independent: a missing object or a clip that keeps failing becomes a manifest row, never an exception
that stops the others. Transient faults (5xx, throttling, timeouts, dropped connections) are retried
with exponential backoff and full jitter; a clip already stored with the source's size is skipped.
Data lands in a scratch file first and is stored atomically, so a killed run leaves no partial clip.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from engagement_assets.audio.formats import SNIFF_BYTES, sniff_format
from engagement_assets.errors import describe
from engagement_assets.ingestion.events import RESPONSE_KEY
from engagement_assets.storage.columns import column
from engagement_assets.storage.keys import object_key_problem
from engagement_assets.storage.s3 import is_transient
from engagement_assets.storage.store import Store

STORED = "stored"
SKIPPED_EXISTING = "skipped_existing"
MISSING = "missing"
FAILED = "failed"
NO_AUDIO = "no_audio"
# Deleted from platform storage after its analysis (recording_retention) and not fetched again.
PURGED = "purged"
STATUSES = (STORED, SKIPPED_EXISTING, MISSING, FAILED, NO_AUDIO, PURGED)

MANIFEST_SCHEMA = pa.schema(
    [
        *RESPONSE_KEY,
        column("audio_link", pa.string(), "the recording's key in the audio bucket; null: no recording"),
        column(
            "storage_path",
            pa.string(),
            "where the copy was stored (null when nothing was); whether it is still held: recording_retention",
        ),
        column("bytes", pa.int64(), "size of the stored recording"),
        column("sha256", pa.string(), "hash of the stored recording (the analysis cache key)"),
        column("format", pa.string(), "real format from the first bytes: wav, webm or unknown"),
        column("status", pa.string(), "stored, skipped_existing, missing, failed, no_audio, purged"),
        column("error", pa.string(), "why a copy failed or was refused"),
        column("attempts", pa.int64(), "tries made (transient faults are retried)"),
    ]
)
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class CopyPolicy:
    workers: int = 25
    attempts: int = 3
    timeout_seconds: float = 120.0
    # ALL's clips are seconds long (a 16 kHz 16-bit minute is about 2 MB): anything far larger is refused, so
    # one odd file cannot take the memory of the analysis that reads it whole.
    max_clip_megabytes: float = 20.0
    backoff_base_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0


@dataclass(frozen=True)
class Clip:
    """One response's recording to copy: `audio_link` is the key in the source, `prefix` the folder in
    platform storage it is copied under."""

    event_mid: str
    event_ets: object
    audio_link: str | None
    prefix: str


@dataclass(frozen=True)
class Known:
    """What an earlier manifest recorded about a stored clip, to skip re-reading it; `purged`: the clip
    was deleted after its analysis and is not to be fetched again."""

    bytes: int
    sha256: str
    format: str
    purged: bool = False


class ClipTimeout(TimeoutError):
    pass


class ClipTooLarge(ValueError):
    """Permanent: the clip is larger than the policy allows (a retry would download it again)."""


class AudioCopier:
    def __init__(
        self,
        source: Store,
        destination: Store,
        policy: CopyPolicy = CopyPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.source, self.destination, self.policy = source, destination, policy
        self._sleep, self._rng = sleep, rng or random.Random()

    def copy_all(
        self,
        clips: Iterable[Clip],
        known: Mapping[str, Known] | None = None,
        progress: Callable[[], None] | None = None,
    ) -> list[dict]:
        """Manifest rows, one per clip, in the order given; `progress` is called as each clip is done."""
        clips = list(clips)
        stored_sizes = self._stored_sizes({clip.prefix for clip in clips})
        known = known or {}
        with (
            tempfile.TemporaryDirectory(prefix="response-audio-") as scratch,
            ThreadPoolExecutor(max_workers=max(1, self.policy.workers), thread_name_prefix="audio") as pool,
        ):
            work = [pool.submit(self._copy, clip, stored_sizes, known, Path(scratch)) for clip in clips]
            if progress:
                for future in work:
                    future.add_done_callback(lambda _: progress())
            return [future.result() for future in work]

    def _stored_sizes(self, prefixes: set[str]) -> dict[str, int]:
        sizes = {}
        for prefix in prefixes:
            sizes.update({stored.key: stored.size for stored in self.destination.list_files(prefix + "/")})
        return sizes

    def _copy(self, clip: Clip, stored_sizes: dict, known: Mapping[str, Known], scratch: Path) -> dict:
        if not clip.audio_link:
            return _row(clip, NO_AUDIO)
        problem = object_key_problem(clip.audio_link)
        if problem:
            return _row(clip, FAILED, error=f"refused: the key would escape the storage folder ({problem})")
        target = f"{clip.prefix}/{clip.audio_link}"
        earlier = known.get(target)
        if earlier and earlier.purged:
            return _row(clip, PURGED, target=self.destination.uri(target), facts=earlier)
        for attempt in range(1, self.policy.attempts + 1):
            try:
                return self._attempt(clip, target, stored_sizes.get(target), earlier, scratch, attempt)
            except FileNotFoundError:
                return _row(clip, MISSING, error="no such object in the source bucket", attempts=attempt)
            except Exception as err:
                if attempt == self.policy.attempts or not is_transient(err):
                    return _row(clip, FAILED, error=describe(err), attempts=attempt)
                self._sleep(self._backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns")

    def _attempt(self, clip, target, stored_size, known, scratch: Path, attempt: int) -> dict:
        if stored_size is not None and self.source.size(clip.audio_link) in (stored_size, None):
            # Already copied with the source's size (or the source is gone and our copy is all there is).
            facts = known if known and known.bytes == stored_size else self._describe_stored(target)
            return _row(
                clip, SKIPPED_EXISTING, target=self.destination.uri(target), facts=facts, attempts=attempt
            )
        local = scratch / f"{hashlib.sha1(target.encode()).hexdigest()}-{attempt}"
        try:
            facts = self._download(clip.audio_link, local)
            self.destination.put_file(local, target)
        finally:
            local.unlink(missing_ok=True)
        return _row(clip, STORED, target=self.destination.uri(target), facts=facts, attempts=attempt)

    def _download(self, key: str, local: Path) -> Known:
        deadline = time.monotonic() + self.policy.timeout_seconds
        too_slow = f"download took longer than {self.policy.timeout_seconds:g} s"
        with self.source.open_read(key) as stream, open(local, "wb") as out:
            # A source that trickles keeps one read waiting far past the deadline: the watchdog cuts it.
            watchdog = threading.Timer(self.policy.timeout_seconds, _interrupt, [stream])
            watchdog.daemon = True
            watchdog.start()
            try:
                return _digest(
                    stream,
                    out.write,
                    deadline,
                    too_slow,
                    limit=int(self.policy.max_clip_megabytes * 1_000_000),
                )
            except Exception:
                if time.monotonic() >= deadline:
                    raise ClipTimeout(too_slow) from None
                raise
            finally:
                watchdog.cancel()

    def _describe_stored(self, target: str) -> Known:
        with self.destination.open_read(target) as stream:
            return _digest(stream)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_cap_seconds, self.policy.backoff_base_seconds * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)


def _interrupt(stream) -> None:
    interrupt = getattr(stream, "interrupt", None)  # local files never trickle
    if interrupt is not None:
        interrupt()


def _digest(
    stream, write=None, deadline: float | None = None, too_slow: str = "", limit: int | None = None
) -> Known:
    """Size, sha256 and sniffed format of a stream, passing each chunk to `write` on the way; at most
    `limit` bytes."""
    digest, size, head = hashlib.sha256(), 0, b""
    while chunk := stream.read(READ_CHUNK):
        if deadline is not None and time.monotonic() > deadline:
            raise ClipTimeout(too_slow)
        if limit is not None and size + len(chunk) > limit:
            raise ClipTooLarge(f"larger than {limit / 1_000_000:g} MB: not copied")
        if len(head) < SNIFF_BYTES:
            head += chunk[: SNIFF_BYTES - len(head)]
        digest.update(chunk)
        if write:
            write(chunk)
        size += len(chunk)
    return Known(size, digest.hexdigest(), sniff_format(head))


def _row(
    clip: Clip, status: str, *, target=None, facts: Known | None = None, error=None, attempts: int = 0
) -> dict:
    return {
        "event_mid": clip.event_mid,
        "event_ets": clip.event_ets,
        "audio_link": clip.audio_link,
        "storage_path": target,
        "bytes": facts.bytes if facts else None,
        "sha256": facts.sha256 if facts else None,
        "format": facts.format if facts else None,
        "status": status,
        "error": error,
        "attempts": attempts,
    }
