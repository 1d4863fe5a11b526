"""Learners practising in learner-ai-app: the events they cause and the lesson-tracking rows the server keeps.

Practice.jsx: steps P1…S2 of five items each; after a step's last item the app saves lesson = step+1 and
progress = (step+1)*10 (S2 wraps to lesson "0", progress 0). Responses are sent before their step's row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .events import Surroundings
from .identity import Identity, LearnerIds
from .ids import session_id as new_session_id
from .vocabulary import ENGLISH_PROMPTS, INDIC_PROMPTS, RFLOW_WORDS, pick_recognition, silence

PRACTICE_STEPS = ("P1", "P2", "P3", "P4", "S1", "P5", "P6", "P7", "P8", "S2")
SHOWCASE_STEPS = (4, 9)
ITEMS_PER_STEP = 5
MAX_LEVEL = 9

GAME_OVER = "game_over"
BACK = "back"
LEVEL_UP = "level_up"
VARIANTS = "response_variants"  # the first step shows an R-flow game, an ERROR, a profanity retry and silence


@dataclass
class Learner:
    number: int
    user_id: str
    device_id: str
    token: str
    buddy_login: str
    language: str
    school: tuple[dict[str, Any], ...]
    csv_dialect: str  # "mongo" (_id, __v) or "mysql" (id, naive createdAt)
    csv_clock: str  # "naive", "utc" (Z) or "ist" (+05:30)
    has_sessions_file: bool
    level: int = 1
    next_step: int = 0
    day: int = 0

    def ids(self) -> LearnerIds:
        return LearnerIds(self.user_id, self.device_id, self.token, self.buddy_login)


@dataclass(frozen=True)
class LessonRow:
    created_ms: int
    user_id: str
    session_id: str
    milestone: str
    level: int
    language: str
    lesson: str
    progress: int
    kind: str  # "step", "level_up", "game_over" or "back"


@dataclass
class PlantedEvent:
    event: dict[str, Any]
    kept: tuple[str, str] | None = None  # (user_id, user_id_source) when stage 1 must keep it
    audio_key: str | None = None


@dataclass
class SessionPlan:
    number: int
    learner: Learner
    surroundings: Surroundings
    row_style: str
    capture_audio: bool
    start_ms: int
    steps: int
    forced: frozenset[str] = frozenset()

    @property
    def session_id(self) -> str:
        return self.surroundings.session_id

    @property
    def identity(self) -> Identity:
        return self.surroundings.identity


@dataclass
class SessionRecord:
    plan: SessionPlan
    events: list[PlantedEvent] = field(default_factory=list)
    lesson_rows: list[LessonRow] = field(default_factory=list)


def new_session_plan(
    number: int,
    learner: Learner,
    rng: random.Random,
    *,
    identity: Identity,
    row_style: str,
    start_ms: int,
    steps: int,
    language_cdata: bool,
    forced: frozenset[str] = frozenset(),
) -> SessionPlan:
    surroundings = Surroundings(
        session_id=new_session_id(rng),
        identity=identity,
        device_id=learner.device_id,
        language=learner.language if language_cdata else None,
        school=learner.school,
        pdata=rng.choices([p for p, _ in ev.APP_PDATAS], weights=[w for _, w in ev.APP_PDATAS])[0],
    )
    capture = rng.random() < 0.9
    return SessionPlan(number, learner, surroundings, row_style, capture, start_ms, steps, forced)


class PracticeSession:
    """Walks one session through its steps on a millisecond clock."""

    def __init__(self, plan: SessionPlan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.clock = plan.start_ms
        self.record = SessionRecord(plan)
        self._counter = 0
        self._actor, self._context = ev.event_context(plan.surroundings, new_session_id(rng))
        self._forced = set(plan.forced)
        self._last_response = plan.start_ms

    def run(self) -> SessionRecord:
        learner = self.plan.learner
        started = self.clock
        self._emit("START", ev.start_edata())
        step = learner.next_step
        for _ in range(self.plan.steps):
            self._page_load()
            self._emit("IMPRESSION", ev.impression_edata(PRACTICE_STEPS[step]))
            self._advance(5_000, 20_000)
            self._play_step(step)
            step = (step + 1) % len(PRACTICE_STEPS)
        self._advance(3_000, 15_000)
        self._emit("END", ev.end_edata((self.clock - started) // 1000))
        learner.next_step = step
        return self.record

    # -- steps -------------------------------------------------------------------------------------------

    def _play_step(self, step: int) -> None:
        if self._wants(GAME_OVER, step):
            self._game_over(step)
        self._items(ITEMS_PER_STEP)
        saved = self._step_row(step)
        if step in SHOWCASE_STEPS:
            self._showcase_result(step, saved)
        self._advance(10_000, 30_000)
        if self._wants(BACK, step):
            self._back(step)

    def _wants(self, edge: str, step: int) -> bool:
        playable = step not in SHOWCASE_STEPS
        eligible = {GAME_OVER: playable, BACK: playable and step >= 1, LEVEL_UP: not playable}[edge]
        if not eligible:
            return False
        if edge == GAME_OVER and GAME_OVER in self._forced and step != 2:
            return False  # the forced game over is the documented one: 3rd item of step index 2 (progress 26)
        if edge in self._forced:
            self._forced.discard(edge)
            return True
        chance = {GAME_OVER: 0.03, BACK: 0.03, LEVEL_UP: 0.35}[edge]
        return self.rng.random() < chance

    def _game_over(self, step: int) -> None:
        done = 3 if step == 2 else self.rng.randrange(2, ITEMS_PER_STEP)
        self._items(done)
        progress = round((done + step * ITEMS_PER_STEP) / 50 * 100)
        self._lesson_row(self._after_last_response(), "practice", str(step + 1), progress, GAME_OVER)
        self._advance(10_000, 40_000)
        self._page_load()
        self._emit("IMPRESSION", ev.impression_edata(PRACTICE_STEPS[step]))
        self._advance(5_000, 15_000)

    def _back(self, step: int) -> None:
        """The back button: progress goes down one step, and the learner plays the step again."""
        self._emit("INTERACT", ev.interact_edata("back-button"))
        self._lesson_row(self.clock + self.rng.randrange(200, 900), "practice", str(step), step * 10, BACK)
        self._advance(8_000, 20_000)
        self._items(ITEMS_PER_STEP)
        self._step_row(step)
        self._advance(10_000, 30_000)

    def _step_row(self, step: int) -> int:
        milestone = "showcase" if step in SHOWCASE_STEPS else "practice"
        lesson, progress = (str(step + 1), (step + 1) * 10) if step < 9 else ("0", 0)
        saved = self._after_last_response()
        if self.rng.random() < 0.6:
            self._emit("INTERACT", ev.interact_edata("next-button"), at=saved - self.rng.randrange(200, 800))
        self._lesson_row(saved, milestone, lesson, progress, "step")
        return saved

    def _showcase_result(self, step: int, saved: int) -> None:
        learner = self.plan.learner
        passed = learner.level < MAX_LEVEL and self._wants(LEVEL_UP, step)
        self._emit(
            "LOG", ev.log_edata(self.rng, learner.level, passed), at=saved + self.rng.randrange(100, 900)
        )
        if passed:
            learner.level += 1
            self._lesson_row(saved + self.rng.randrange(1_500, 3_000), "practice", "0", 0, LEVEL_UP)

    # -- items -------------------------------------------------------------------------------------------

    def _items(self, count: int) -> None:
        show_all = VARIANTS in self._forced
        self._forced.discard(VARIANTS)
        if show_all or self.rng.random() < 0.05:
            self._rflow_game()
        if show_all or self.rng.random() < 0.02:
            self._emit("ERROR", ev.error_edata(self.rng))
            self._advance(2_000, 8_000)
        for index in range(count):
            if index:
                self._advance(15_000, 50_000)
            prompt = self._prompt()
            if (show_all and index == 0) or self.rng.random() < 0.03:
                self._profanity(prompt, index)
            self._speak(prompt, index, silent=show_all and index == 1)

    def _prompt(self) -> str:
        language = self.plan.learner.language
        bank = ENGLISH_PROMPTS if language == "en" else INDIC_PROMPTS[language]
        return self.rng.choice(bank)

    def _speak(self, prompt: str, index: int, *, silent: bool = False) -> None:
        silent = silent or self.rng.random() < 0.06
        heard = silence(prompt) if silent else pick_recognition(self.rng, prompt)
        values = ev.speak_values(self.rng, prompt, heard, self.rng.randrange(2, 10))
        target = self._audio_key(index)
        planted = self._emit("RESPONSE", ev.response_edata(target, values))
        planted.kept = self._expected_keep()
        self._last_response = self.clock

    def _profanity(self, prompt: str, index: int) -> None:
        self._emit(
            "RESPONSE", ev.response_edata(self._audio_key(index), ev.profanity_values(self.rng, prompt))
        )
        self._advance(8_000, 20_000)

    def _rflow_game(self) -> None:
        for _ in range(self.rng.randrange(1, 3)):
            level = self.rng.choice(("R1", "R2", "R3", "R4"))
            self._emit(
                "RESPONSE", ev.response_edata("", ev.rflow_values(self.rng.choice(RFLOW_WORDS), level))
            )
            self._advance(5_000, 15_000)

    def _audio_key(self, index: int) -> str:
        if not self.plan.capture_audio:
            return ""
        uploaded = self.clock - self.rng.randrange(20, 600)  # Date.now() at upload, just before the event
        return f"{self.plan.surroundings.channel}/{self.plan.session_id}-{uploaded}-{index}.wav"

    def _expected_keep(self) -> tuple[str, str] | None:
        identity = self.plan.identity
        if self.plan.surroundings.language != "en" or identity.expected_user_id is None:
            return None
        return identity.expected_user_id, identity.expected_source

    # -- plumbing ----------------------------------------------------------------------------------------

    def _emit(self, eid: str, edata: dict[str, Any], at: int | None = None) -> PlantedEvent:
        self._counter += 1
        ets = self.clock if at is None else at
        event = ev.event(eid, ets, self._actor, self._context, edata, self.plan.session_id, self._counter)
        edata_target = edata.get("target") if eid == "RESPONSE" else None
        planted = PlantedEvent(event, audio_key=edata_target or None)
        self.record.events.append(planted)
        return planted

    def _page_load(self) -> None:
        """A new PlaySession per page load; the rest of the context stays."""
        self._actor, self._context = ev.event_context(self.plan.surroundings, new_session_id(self.rng))

    def _advance(self, low_ms: int, high_ms: int) -> None:
        self.clock += self.rng.randrange(low_ms, high_ms)

    def _after_last_response(self) -> int:
        # The row is saved when the learner presses Next, a few seconds after the step's last response.
        return self._last_response + self.rng.randrange(3_000, 9_000)

    def _lesson_row(self, created_ms: int, milestone: str, lesson: str, progress: int, kind: str) -> None:
        learner = self.plan.learner
        row = LessonRow(
            created_ms,
            self.plan.identity.tracked_user_id,
            self.plan.session_id,
            milestone,
            learner.level,
            learner.language,
            lesson,
            progress,
            kind,
        )
        self.record.lesson_rows.append(row)
        self.clock = max(self.clock, created_ms)
