"""Routes planted events into export files as storage rows, with re-sent duplicates and batch rows,
and keeps the ground truth, the sessions CSVs and the audio bucket in step."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from .audio import AudioBucket
from .ids import BatchMids, ObjectIds
from .practice import PlantedEvent, SessionRecord
from .rows import OBSRV_EVENT, Delivery, RowFactory
from .sessions_csv import SessionsFolder
from .telemetry import FileSpec, TelemetryFile
from .truth import GroundTruth

WORK_FOLDER = ".sample-data-work"
RESEND_CHANCE = 0.03  # the SDK retries a batch the server had already stored (timeouts)
BATCH_ROW_CHANCE = 0.03  # a row holding the whole batch list instead of one event
OBSRV_ROW_CHANCE = 0.015  # a bare event that went through the Obsrv extractor
BATCH_ROW, OBSRV_ROW, RESEND_SAME_FILE, RESEND_OTHER_FILE = (
    "batch_row",
    "obsrv_row",
    "resend_same",
    "resend_other",
)


class Landing:
    """The landing area being written: telemetry files, sessions folder, audio bucket and the truth."""

    def __init__(self, root: Path, specs: list[FileSpec], seed: int, write_audio: bool) -> None:
        self.root = root
        self.work = root / WORK_FOLDER
        self.work.mkdir(parents=True, exist_ok=True)
        (root / "telemetry").mkdir(parents=True, exist_ok=True)
        ids_rng = random.Random(f"{seed}:ids")
        self.rows = RowFactory(
            ObjectIds(ids_rng), BatchMids(ids_rng), first_mysql_id=ids_rng.randrange(10**5, 10**6)
        )
        self.truth = GroundTruth(self.work / "truth")
        self.audio = AudioBucket(root / "audio" / "all-prod-storage", seed, write_audio)
        self.sessions = SessionsFolder(root, ObjectIds(ids_rng), ids_rng.randrange(1_000, 90_000))
        self.files = [self.open_file(spec) for spec in specs]
        self.extra_files: list[TelemetryFile] = []
        self._rng = random.Random(f"{seed}:delivery")
        self._showcase_owed = True
        self._blank_line_added: list[TelemetryFile] = []

    def open_file(self, spec: FileSpec) -> TelemetryFile:
        return TelemetryFile(spec, self.root / "telemetry" / spec.name, self.work / spec.name)

    def file_names(self) -> list[str]:
        return [file.spec.name for file in self.files + self.extra_files]

    def bytes_written(self) -> int:
        return sum(file.written_estimate() for file in self.files)

    def add_session(self, record: SessionRecord, file_index: int) -> None:
        self.deliver(file_index, record.plan.row_style, record.events)
        file = self.files[file_index]
        if file.spec.layout is None and file not in self._blank_line_added:
            file.add_blank_line()  # hand-edited or concatenated exports have them; readers must skip them
            self._blank_line_added.append(file)
        self.sessions.append(record.plan.learner, record.lesson_rows)
        for planted in record.events:
            if planted.audio_key:
                self.audio.put(planted.audio_key, kept=planted.kept is not None)

    def deliver(self, file_index: int, style: str, planted: list[PlantedEvent]) -> None:
        """Write events as rows of `style` into one file, then the re-sent copies of some of them."""
        owed = self._take_showcase(planted)
        resends = []
        index = 0
        while index < len(planted):
            feature = owed.pop(0) if owed and planted[index].kept is not None else None
            batch = planted[index : index + self._batch_size(feature)]
            index += len(batch)
            row_style = self._row_style(style, batch, feature)
            delivery = self._delivery(batch)
            self._write(
                self.files[file_index], row_style, batch, delivery, record_truth=True, first_copy=True
            )
            if feature in (RESEND_SAME_FILE, RESEND_OTHER_FILE) or (
                not feature and self._rng.random() < RESEND_CHANCE
            ):
                resends.append((batch, row_style, delivery, feature))
        for batch, row_style, delivery, feature in resends:
            target = self._resend_target(file_index, feature)
            later = self._later(delivery)
            self._write(
                self.files[target],
                row_style,
                batch,
                later,
                record_truth=target != file_index,
                first_copy=False,
            )

    def _take_showcase(self, planted: list[PlantedEvent]) -> list[str]:
        """The first session with enough kept responses carries each rare row shape once, whatever the seed."""
        if not self._showcase_owed or sum(p.kept is not None for p in planted) < 8:
            return []
        self._showcase_owed = False
        return [BATCH_ROW, OBSRV_ROW, RESEND_SAME_FILE, RESEND_OTHER_FILE]

    def _batch_size(self, feature: str | None) -> int:
        if feature == BATCH_ROW:
            return 3
        if not feature and self._rng.random() < BATCH_ROW_CHANCE:
            return self._rng.randrange(2, 5)
        return 1

    def _row_style(self, style: str, batch: list[PlantedEvent], feature: str | None) -> str:
        if feature == OBSRV_ROW or (
            not feature and len(batch) == 1 and self._rng.random() < OBSRV_ROW_CHANCE
        ):
            return OBSRV_EVENT
        return style

    def single_rows(self, style: str, planted: list[PlantedEvent]) -> list[dict]:
        """One row per event, for files assembled by hand (the malformed drop)."""
        return [self.rows.row(style, [p.event], self._delivery([p])) for p in planted]

    def keep_truth(
        self, file: TelemetryFile, planted: list[PlantedEvent], *, first_copy: bool = True
    ) -> None:
        """Record the responses of `planted` that stage 1 must keep from `file`."""
        for item in planted:
            if item.kept is not None:
                user_id, source = item.kept
                mid, ets = item.event["mid"], item.event["ets"]
                self.truth.keep(file.spec.name, mid, ets, user_id, source, first_copy=first_copy)

    def _write(
        self,
        file: TelemetryFile,
        style: str,
        batch: list[PlantedEvent],
        delivery: Delivery,
        *,
        record_truth: bool,
        first_copy: bool,
    ) -> None:
        file.add(self.rows.row(style, [p.event for p in batch], delivery))
        # A copy re-sent into the file that already has the original adds nothing: stage 1 keeps one.
        if record_truth:
            self.keep_truth(file, batch, first_copy=first_copy)

    def _delivery(self, batch: list[PlantedEvent]) -> Delivery:
        batch_ets = max(p.event["ets"] for p in batch) + self._rng.randrange(1, 40)
        if self._rng.random() < 0.02:
            lag = self._rng.randrange(30_000, 360_000)  # a failed batch retried from memory minutes later
        else:
            lag = self._rng.randrange(150, 1_500)
        created = batch_ets + lag
        return Delivery(batch_ets=batch_ets, syncts=created - self._rng.randrange(0, 12), created_at=created)

    def _later(self, delivery: Delivery) -> Delivery:
        lag = self._rng.randrange(5_000, 480_000)
        return Delivery(delivery.batch_ets, delivery.syncts + lag, delivery.created_at + lag)

    def _resend_target(self, file_index: int, feature: str | None) -> int:
        if len(self.files) == 1 or feature == RESEND_SAME_FILE or (not feature and self._rng.random() < 0.5):
            return file_index
        other = self._rng.randrange(len(self.files) - 1)
        return other if other < file_index else other + 1

    def close_files(self) -> None:
        for file in self.files + self.extra_files:
            if not file.closed:
                file.close()

    def abort_files(self) -> None:
        for file in self.files + self.extra_files:
            file.abort()

    def discard_work(self) -> None:
        self.truth.close()
        shutil.rmtree(self.work, ignore_errors=True)
