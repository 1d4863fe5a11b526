"""generate_landing: a deterministic, realistic landing area (telemetry, sessions CSVs, audio) plus its truth."""

from __future__ import annotations

import random
import shutil
from calendar import timegm
from dataclasses import replace
from pathlib import Path

from . import identity as idstyles
from .audio import AudioBucket
from .background import OtherApps
from .ids import api_token, hex_id, virtual_id
from .jsonfmt import ARRAY_LAYOUTS
from .landing import Landing
from .malformed import FILE_NOTES, plant_malformed_drop
from .practice import (
    BACK,
    GAME_OVER,
    LEVEL_UP,
    VARIANTS,
    Learner,
    PlantedEvent,
    PracticeSession,
    SessionPlan,
    SessionRecord,
    new_session_plan,
)
from .rows import ROW_STYLE_WEIGHTS, ROW_STYLES
from .sessions_csv import SessionsFolder
from .summary import LandingSummary, TelemetryFileSummary, write_summary
from .telemetry import FileSpec, TelemetryFile

BASE_MS = timegm((2025, 6, 2, 0, 0, 0)) * 1000  # Monday 2 June 2025, 00:00 UTC
DAY_MS = 86_400_000
SCHOOL_DAY_MS = (3 * 3_600_000 + 30 * 60_000, 10 * 3_600_000 + 30 * 60_000)  # 09:00–16:00 IST
MEGABYTE = 1_000_000
FORMATS = ("both", "json", "jsonl")

# The first learners are fixed so that every documented shape appears even in a tiny landing area.
_FIRST_LANGUAGES = ("en", "en", "en", "ta", "en", "hi", "kn", "en")
_FIRST_CSV = (
    ("mongo", "naive"),
    ("mongo", "utc"),
    ("mongo", "ist"),
    ("mysql", "naive"),
    ("mongo", "utc"),
    ("mongo", "naive"),
    ("mysql", "naive"),
    ("mongo", "ist"),
)
# learner -> (what its first session must show, minimum steps)
_FIRST_EDGES = {0: ((GAME_OVER, VARIANTS), 4), 1: ((LEVEL_UP,), 6), 2: ((BACK,), 3)}
_NO_SESSIONS_FILE = 4  # this learner, and some later ones, have telemetry but no sessions CSV


def generate_landing(
    root: Path | str,
    *,
    learners: int = 8,
    seed: int = 7,
    target_mb: float | None = None,
    audio: bool = True,
    malformed: bool = False,
    files: int = 6,
    formats: str = "both",
    gzip_all: bool = False,
    clean: bool = False,
) -> LandingSummary:
    """Write a landing area under `root` and return (and save) what stage 1 must make of it.

    `target_mb` pads the telemetry (uncompressed, 1 MB = 10^6 bytes) with more sessions and other apps'
    events until it reaches about that size; without it each learner gets one to three sessions.
    """
    if learners < 1 or files < 1:
        raise ValueError("learners and files must be at least 1")
    if formats not in FORMATS:
        raise ValueError(f"formats must be one of {FORMATS}, not {formats!r}")
    root = Path(root)
    if clean:
        clean_landing(root)
    specs = plan_files(files, formats, gzip_all)
    landing = Landing(root, specs, seed, write_audio=audio)
    arguments = {
        "learners": learners,
        "seed": seed,
        "target_mb": target_mb,
        "audio": audio,
        "malformed": malformed,
        "files": files,
        "formats": formats,
        "gzip_all": gzip_all,
    }
    try:
        planner = SessionPlanner(seed, learners)
        _base_sessions(planner, landing)
        if target_mb:
            _pad(planner, landing, int(target_mb * MEGABYTE))
        if malformed:
            record = planner.run(planner.malformed_drop_plan())
            plant_malformed_drop(landing, record.events, planner.rng)
        landing.close_files()
        summary = _summarise(root, landing, planner, arguments)
        write_summary(
            summary, {f"telemetry/{name}": landing.truth.kept_lines(name) for name in landing.file_names()}
        )
    except BaseException:
        landing.abort_files()
        raise
    finally:
        landing.discard_work()
    return summary


def clean_landing(root: Path) -> None:
    """Remove what an earlier run wrote, and nothing else."""
    for folder in (root / "telemetry", root / "sessions", root / "audio" / "all-prod-storage"):
        shutil.rmtree(folder, ignore_errors=True)
    (root / "_generator_summary.json").unlink(missing_ok=True)


def plan_files(count: int, formats: str, gzip_all: bool) -> list[FileSpec]:
    """Alternate formats; the last one (two, from four files on) are gzip-compressed unless all are."""
    compressed_from = count if count == 1 else count - (2 if count >= 4 else 1)
    specs, arrays = [], 0
    for index in range(count):
        kind = formats if formats != "both" else ("json", "jsonl")[index % 2]
        compressed = gzip_all or index >= compressed_from
        layout = None
        if kind == "json":
            layout = ARRAY_LAYOUTS[arrays % len(ARRAY_LAYOUTS)]
            arrays += 1
        name = f"all_telemetry_part{index + 1}.{kind}" + (".gz" if compressed else "")
        specs.append(FileSpec(name, layout, compressed))
    return specs


class SessionPlanner:
    """Decides who practises when, under which app build and export dialect; consumes one rng stream."""

    def __init__(self, seed: int, learner_count: int) -> None:
        self.rng = random.Random(f"{seed}:sessions")
        self.learners: list[Learner] = []
        self._user_ids: set[str] = set()
        for number in range(learner_count):
            self.learners.append(self._learner(number))
        self.sessions = 0
        self.english_sessions = 0
        self.sessions_per_learner: dict[str, int] = {}
        self._language_gap_planted = False
        self._background = OtherApps(random.Random(f"{seed}:background"))

    # -- learners ----------------------------------------------------------------------------------------

    def _learner(self, number: int) -> Learner:
        rng = self.rng
        user_id = virtual_id(rng)
        while user_id in self._user_ids:
            user_id = virtual_id(rng)
        self._user_ids.add(user_id)
        language = _FIRST_LANGUAGES[number] if number < len(_FIRST_LANGUAGES) else self._language()
        dialect, clock = _FIRST_CSV[number] if number < len(_FIRST_CSV) else self._csv_style()
        has_file = number != _NO_SESSIONS_FILE and (number < len(_FIRST_LANGUAGES) or rng.random() > 0.1)
        issued = BASE_MS // 1000 - rng.randrange(0, 30 * 86_400)
        return Learner(
            number=number,
            user_id=user_id,
            device_id=self._device(number),
            token=api_token(rng, user_id, issued),
            buddy_login=f"{rng.randrange(10**6, 10**7)}/{rng.randrange(10**6, 10**7)}",
            language=language,
            school=self._school(),
            csv_dialect=dialect,
            csv_clock=clock,
            has_sessions_file=has_file,
            day=rng.randrange(0, 14),
        )

    def _device(self, number: int) -> str:
        # Every fifth learner shares a school tablet with the learner before, so one fingerprint covers two.
        if number % 5 == 4 and number > 0:
            return self.learners[number - 1].device_id
        return hex_id(self.rng, 32)

    def _language(self) -> str:
        return self.rng.choices(("en", "ta", "hi", "kn"), weights=(70, 12, 9, 9))[0]

    def _csv_style(self) -> tuple[str, str]:
        if self.rng.random() < 0.25:
            return "mysql", "naive"
        return "mongo", self.rng.choice(("naive", "utc", "ist"))

    def _school(self) -> tuple[dict, ...]:
        if self.rng.random() < 0.4:
            return (
                {
                    "id": f"PUPS {self.rng.choice(('MELUR', 'THIRUPPUVANAM', 'KALLIKUDI', 'PERAIYUR'))}",
                    "type": "school_name",
                },
                {"id": str(self.rng.randrange(1, 6)), "type": "class_studying_id"},
                {"id": f"3326{self.rng.randrange(10**6, 10**7)}", "type": "udise_code"},
            )
        return ({"type": "school_name"}, {"type": "udise_code"})

    # -- sessions ----------------------------------------------------------------------------------------

    def plan(
        self, learner: Learner, *, forced=frozenset(), min_steps: int = 3, language_cdata=None
    ) -> SessionPlan:
        rng = self.rng
        if self.sessions_per_learner.get(learner.user_id):
            learner.day += rng.randrange(1, 4)
        start = BASE_MS + learner.day * DAY_MS + rng.randrange(*SCHOOL_DAY_MS)
        if language_cdata is None:
            language_cdata = self._has_language_cdata(learner, forced)
        counts_for_coverage = language_cdata and learner.language == "en"
        number = self.english_sessions if counts_for_coverage else len(idstyles.STYLES)
        identity = idstyles.identity_for_session(learner.ids(), rng, number)
        self.english_sessions += counts_for_coverage
        row_style = ROW_STYLES[self.sessions] if self.sessions < len(ROW_STYLES) else self._row_style()
        plan = new_session_plan(
            self.sessions,
            learner,
            rng,
            identity=identity,
            row_style=row_style,
            start_ms=start,
            steps=rng.randrange(min_steps, 11),
            language_cdata=language_cdata,
            forced=frozenset(forced),
        )
        self.sessions += 1
        self.sessions_per_learner[learner.user_id] = self.sessions_per_learner.get(learner.user_id, 0) + 1
        return plan

    def run(self, plan: SessionPlan) -> SessionRecord:
        return PracticeSession(plan, self.rng).run()

    def background(self, around_ms: int, count: int) -> list[PlantedEvent]:
        return self._background.burst(around_ms, count)

    def malformed_drop_plan(self) -> SessionPlan:
        """A session of the first learner, telemetry only (no lesson rows), captured without audio."""
        learner = self.learners[0]
        plan = self.plan(learner, min_steps=3, language_cdata=True)
        plan.capture_audio = False
        plan.surroundings = replace(
            plan.surroundings, identity=idstyles.numeric_virtual_id(learner.ids(), self.rng)
        )
        return plan

    def _has_language_cdata(self, learner: Learner, forced) -> bool:
        # One English session from a pre-2024-04 build (no language cdata) early on, a few more later.
        if forced or learner.language != "en":
            return True
        if not self._language_gap_planted and self.sessions >= 3:
            self._language_gap_planted = True
            return False
        return self.rng.random() > 0.06

    def _row_style(self) -> str:
        return self.rng.choices(ROW_STYLES, weights=ROW_STYLE_WEIGHTS)[0]


def _base_sessions(planner: SessionPlanner, landing: Landing) -> None:
    for learner in planner.learners:
        count = 1 + (planner.rng.random() < 0.6) + (planner.rng.random() < 0.25)
        edge = _FIRST_EDGES.get(learner.number)
        for index in range(count):
            forced, min_steps = edge if edge and index == 0 else ((), 3)
            _play(planner, landing, planner.plan(learner, forced=forced, min_steps=min_steps), background=3)
    # Every identity style must appear among English sessions with a language entry.
    english = [learner for learner in planner.learners if learner.language == "en"]
    turn = 0
    while planner.english_sessions < len(idstyles.STYLES):
        learner = english[turn % len(english)]
        _play(planner, landing, planner.plan(learner, language_cdata=True), background=3)
        turn += 1


def _pad(planner: SessionPlanner, landing: Landing, target_bytes: int) -> None:
    """More sessions round-robin over the learners, each followed by a visit to another app."""
    turn = 0
    while landing.bytes_written() < target_bytes:
        learner = planner.learners[turn % len(planner.learners)]
        _play(planner, landing, planner.plan(learner), background=planner.rng.randrange(20, 80))
        turn += 1


def _play(planner: SessionPlanner, landing: Landing, plan: SessionPlan, *, background: int) -> None:
    record = planner.run(plan)
    file_index = plan.number % len(landing.files)
    landing.add_session(record, file_index)
    noise = planner.background(plan.start_ms, planner.rng.randrange(0, background + 1))
    if noise:
        landing.deliver(file_index, plan.row_style, noise)


def _summarise(root: Path, landing: Landing, planner: SessionPlanner, arguments: dict) -> LandingSummary:
    sessions = landing.sessions
    return LandingSummary(
        root=root,
        arguments=arguments,
        files=tuple(_file_summary(landing, file) for file in landing.files + landing.extra_files),
        expected_per_user=dict(sorted(landing.truth.per_user.items())),
        sessions={
            "files": dict(sorted(sessions.files.items())),
            "rows": sessions.rows,
            "rows_by_kind": dict(sorted(sessions.rows_by_kind.items())),
            "learners_without_file": [x.user_id for x in planner.learners if not x.has_sessions_file],
        },
        audio=_audio_summary(landing.audio),
        learners=tuple(_learner_summary(planner, sessions, learner) for learner in planner.learners),
    )


def _file_summary(landing: Landing, file: TelemetryFile) -> TelemetryFileSummary:
    name = file.spec.name
    return TelemetryFileSummary(
        path=f"telemetry/{name}",
        format=file.spec.format,
        gzip=name.endswith(".gz"),
        layout=file.spec.layout.name if file.spec.layout else None,
        records=file.records,
        malformed=file.malformed,
        kept_count=landing.truth.kept_count[name],
        kept_by_source=dict(sorted(landing.truth.kept_by_source.get(name, {}).items())),
        bytes_uncompressed=file.bytes_uncompressed,
        bytes_on_disk=file.bytes_on_disk,
        note=FILE_NOTES.get(name, ""),
    )


def _audio_summary(bucket: AudioBucket) -> dict:
    return {
        "written": bucket.write,
        "objects": bucket.objects,
        "bytes": bucket.bytes_written,
        "keys_in_telemetry": bucket.keys_seen,
        **bucket.faults,
    }


def _learner_summary(planner: SessionPlanner, sessions: SessionsFolder, learner: Learner) -> dict:
    return {
        "user_id": learner.user_id,
        "device_id": learner.device_id,
        "language": learner.language,
        "sessions": planner.sessions_per_learner.get(learner.user_id, 0),
        "sessions_file": sessions.file_name(learner.user_id) if learner.has_sessions_file else None,
        "csv_dialect": learner.csv_dialect,
        "csv_clock": learner.csv_clock,
    }
