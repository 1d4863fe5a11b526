"""Sunbird telemetry v3 events as learner-ai-app emits them (README, "Stage 1")."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .identity import NO_ID, Identity
from .ids import event_mid
from .jsonfmt import Shared, compact
from .vocabulary import Recognition

CHANNEL = "learner-ai-demo"
PAGE = "practice"

# (pdata, weight): the story-demo deployment dominates; test-rig builds share the table.
APP_PDATAS = (
    ({"id": "all.ll.app", "ver": "1.4.1", "pid": "learner-ai-story-demo"}, 70),
    ({"id": "all.ll.app", "ver": "1.1.0", "pid": "learner-ai-story-demo"}, 15),
    ({"id": "all.rig.app", "ver": "0.3.0", "pid": "all-dev-rig"}, 15),
)


@dataclass(frozen=True)
class Surroundings:
    """Everything of an event's context that stays fixed during a session."""

    session_id: str
    identity: Identity
    device_id: str
    language: str | None  # None: a build from before the language cdata existed
    school: tuple[dict[str, Any], ...]
    pdata: dict[str, str]
    channel: str = CHANNEL


def event_context(surroundings: Surroundings, play_session: str) -> tuple[Shared, Shared]:
    """The (actor, context) pair, shared by every event of one page load."""
    cdata: list[dict[str, Any]] = [
        {"id": surroundings.session_id, "type": "ContentSession"},
        {"id": play_session, "type": "PlaySession"},
        *surroundings.identity.user_cdata,
    ]
    if surroundings.language is not None:
        cdata.append({"id": surroundings.language, "type": "language"})
    cdata.extend(surroundings.school)
    context = Shared(
        channel=surroundings.channel,
        pdata=surroundings.pdata,
        env="all-player",
        sid="",
        did=surroundings.device_id,
        cdata=cdata,
        rollup={},
    )
    if surroundings.identity.uid is not NO_ID:
        context["uid"] = surroundings.identity.uid
    return Shared(surroundings.identity.actor()), context


def event(eid: str, ets: int, actor: Shared, context: Shared, edata: dict[str, Any], *salt: object) -> dict:
    return {
        "eid": eid,
        "ets": ets,
        "ver": "3.0",
        "mid": event_mid(eid, context["did"], ets, *salt),
        "actor": actor,
        "context": context,
        "object": {},
        "tags": [""],
        "edata": edata,
    }


def speak_values(
    rng: random.Random, original: str, heard: Recognition, duration_s: int
) -> list[dict[str, Any]]:
    """RESPONSE values: one-key objects whose order differs between app versions."""
    accuracy: float | int = heard.accuracy
    if accuracy in (0.0, 100.0) and rng.random() < 0.5:
        accuracy = int(accuracy)  # JS sends whole numbers as integers
    values = [
        {"original_text": original},
        {"response_text": heard.response_text},
        {"response_correct_words_array": list(heard.correct_words)},
        {"response_incorrect_words_array": list(heard.incorrect_words)},
        {"response_word_array_result": list(heard.word_results)},
        {"response_word_result": "correct" if heard.accuracy == 100.0 else "incorrect"},
        {"accuracy_percentage": accuracy},
        {"duration": duration_s},
    ]
    if rng.random() < 0.2:
        values.append({"level": rng.choice(("m1", "m2", "R1"))})
    rng.shuffle(values)
    return values


def profanity_values(rng: random.Random, original: str) -> list[dict[str, Any]]:
    values = [{"profanity": "true"}, {"original_text": original}]
    rng.shuffle(values)
    return values


def rflow_values(word: str, level: str) -> list[dict[str, Any]]:
    return [{"original_text": word}, {"level": level}, {"isCorrect": "true"}]


def response_edata(target: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {"target": target, "type": "SPEAK", "values": values}


def start_edata() -> dict[str, Any]:
    return {"type": "content", "mode": "play", "pageid": PAGE, "duration": 0}


def end_edata(duration_s: int) -> dict[str, Any]:
    return {
        "type": "content",
        "mode": "play",
        "pageid": PAGE,
        "summary": [{"progress": 100}],
        "duration": duration_s,
    }


def impression_edata(step_name: str) -> dict[str, Any]:
    return {"type": "view", "subtype": step_name, "pageid": PAGE, "uri": "/practice", "duration": 0}


def interact_edata(button: str) -> dict[str, Any]:
    return {"type": "TOUCH", "id": button, "pageid": PAGE}


def log_edata(rng: random.Random, level_before: int, passed: bool) -> dict[str, Any]:
    """Practice.jsx logs getSetResult's answer as a JSON string in `message`."""
    result = {
        "sessionResult": "pass" if passed else "fail",
        "totalTargets": rng.randrange(2, 12),
        "currentLevel": f"m{level_before + 1 if passed else level_before}",
        "previous_level": f"m{level_before}",
        "totalSyllables": rng.randrange(20, 80),
        "fluency": round(rng.uniform(1.0, 5.0), 1),
        "fluencyResult": "pass" if passed else "fail",
        "prosodyResult": "",
        "percentage": rng.randrange(40, 100),
        "targetsPercentage": round(rng.uniform(0, 40), 1),
        "total_correctness_score": 0,
        "comprehensionScore": 0,
    }
    return {"type": "api_call", "level": "TRACE", "pageid": PAGE, "message": compact(result)}


def error_edata(rng: random.Random) -> dict[str, Any]:
    error, kind, trace = rng.choice(
        (
            ("Network Error", "SYSTEM", "AxiosError: Network Error\n    at XMLHttpRequest.handleError"),
            ("Request failed with status code 500", "API", "AxiosError: Request failed with status code 500"),
            ("NotAllowedError: Permission denied", "MIC", "DOMException: Permission denied"),
        )
    )
    return {"err": error, "errtype": kind, "stacktrace": trace, "pageid": PAGE}
