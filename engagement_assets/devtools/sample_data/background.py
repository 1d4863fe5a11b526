"""Telemetry of other ALL apps sharing the table: page views, taps, logins, errors.

None of it is a learner's spoken answer, so it only adds volume and variety for stage 1 to drop.
"""

from __future__ import annotations

import random

from . import events as ev
from .events import Surroundings
from .identity import LearnerIds, device_only
from .ids import hex_id, session_id
from .jsonfmt import compact
from .practice import PlantedEvent

_APPS = (
    ("all-rig-app", {"id": "all-rig-app", "ver": "2.0.0", "pid": "all-rig-app"}),
    ("learner-ai-app", {"id": "all.tn.app", "ver": "1.4.1", "pid": "learner-ai-app"}),
)
_PAGES = ("home", "login", "discover-start", "assesment-end", "profile", "story")


class OtherApps:
    def __init__(self, rng: random.Random, devices: int = 64) -> None:
        self._rng = rng
        self._devices = [hex_id(rng, 32) for _ in range(devices)]
        self._counter = 0

    def burst(self, around_ms: int, count: int) -> list[PlantedEvent]:
        """`count` events of one visit to another app, starting near `around_ms`."""
        rng = self._rng
        channel, pdata = _APPS[rng.randrange(len(_APPS))]
        device = rng.choice(self._devices)
        ids = LearnerIds(user_id="0", device_id=device, token="", buddy_login="")
        surroundings = Surroundings(session_id(rng), device_only(ids, rng), device, None, (), pdata, channel)
        actor, context = ev.event_context(surroundings, session_id(rng))
        clock = around_ms + rng.randrange(-3_600_000, 3_600_000)
        planted = []
        for _ in range(count):
            clock += rng.randrange(500, 30_000)
            self._counter += 1
            eid, edata = self._page_event(rng)
            planted.append(PlantedEvent(ev.event(eid, clock, actor, context, edata, "bg", self._counter)))
        return planted

    @staticmethod
    def _page_event(rng: random.Random) -> tuple[str, dict]:
        page = rng.choice(_PAGES)
        draw = rng.random()
        if draw < 0.45:
            return "IMPRESSION", {
                "type": "view",
                "pageid": page,
                "uri": f"/{page}",
                "duration": rng.randrange(0, 90),
            }
        if draw < 0.8:
            return "INTERACT", {
                "type": "TOUCH",
                "id": rng.choice(("start-btn", "next", "mic", "speaker")),
                "pageid": page,
            }
        if draw < 0.95:
            message = compact({"url": "/v1/user/login", "status": 200, "time_ms": rng.randrange(40, 900)})
            return "LOG", {"type": "api_login_call", "level": "INFO", "pageid": page, "message": message}
        return "ERROR", ev.error_edata(rng)
