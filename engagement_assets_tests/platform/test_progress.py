"""Progress lines: at most one per interval, with counts, share, rate and bytes read."""

from __future__ import annotations

import io
import json
import threading

from engagement_assets.ingestion.cleaning import clean_drop
from engagement_assets.platform.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_interval_with_share_and_rate():
    said, clock = [], Clock()
    progress = Progress(
        said.append, "copying recordings", total=200, unit="clips", every_seconds=5, clock=clock
    )
    for second in range(1, 21):
        clock.now = float(second)
        progress.advance(10)
    assert said == [
        "copying recordings: 50 of 200 clips (25%), 10.0 clips/s",
        "copying recordings: 100 of 200 clips (50%), 10.0 clips/s",
        "copying recordings: 150 of 200 clips (75%), 10.0 clips/s",
        "copying recordings: 200 of 200 clips (100%), 10.0 clips/s",
    ]


def test_bytes_read_are_told_with_their_rate():
    said, clock = [], Clock()
    progress = Progress(said.append, "cleaning d", unit="records", every_seconds=1, clock=clock)
    clock.now = 2.0
    progress.reached(5000, (100_000_000, 400_000_000))
    assert said == ["cleaning d: 5,000 records, 2,500.0 records/s; 100 of 400 MB read, 50.0 MB/s"]


def test_advancing_from_many_threads_counts_every_item():
    progress = Progress(lambda line: None, "x", every_seconds=0)
    threads = [threading.Thread(target=lambda: [progress.advance() for _ in range(1000)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.done == 8000


def test_stage_one_tells_its_progress_as_it_reads(tmp_path):
    lines = b"".join(
        json.dumps({"mid": str(n), "events": {"eid": "LOG"}}).encode() + b"\n" for n in range(5000)
    )
    told = []
    clean_drop(
        io.BytesIO(lines), "d.jsonl", tmp_path, chunk_size=1000, progress=lambda *seen: told.append(seen)
    )
    records = [records for records, _ in told]
    assert records == sorted(records) and records[-1] == 5000 and told[-1][1] == len(lines)
