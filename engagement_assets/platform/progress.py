"""Progress of a long step, told at most every few seconds: a step that runs for minutes says how far it
has got (and how fast) between its start and its end, without a line per item."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EVERY_SECONDS = 5.0


class Progress:
    """Counts done items (and bytes) and passes a line to `say` at most every `every_seconds`."""

    def __init__(
        self,
        say: Callable[[str], None],
        what: str,
        total: int | None = None,
        unit: str = "items",
        every_seconds: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._say, self._what, self._total, self._unit = say, what, total, unit
        self._every, self._clock = every_seconds, clock
        self._started = self._last = clock()
        self._lock = threading.Lock()
        self.done = 0

    def expect(self, total: int) -> None:
        """The number of items, once the step knows it."""
        self._total = total

    def advance(self, count: int = 1) -> None:
        """`count` more items done (thread-safe: the copier's workers call it)."""
        with self._lock:
            self.done += count
            self._maybe_say(self.done)

    def reached(self, done: int, of_bytes: tuple[int, int] | None = None) -> None:
        """`done` items so far; `of_bytes` (read, total) when the step reads a file."""
        with self._lock:
            self.done = done
            self._maybe_say(done, of_bytes)

    def _maybe_say(self, done: int, of_bytes: tuple[int, int] | None = None) -> None:
        now = self._clock()
        if now - self._last < self._every:
            return
        self._last = now
        elapsed = max(now - self._started, 1e-9)
        line = f"{self._what}: {done:,}"
        if self._total:
            line += f" of {self._total:,} {self._unit} ({done / self._total:.0%})"
        else:
            line += f" {self._unit}"
        line += f", {done / elapsed:,.1f} {self._unit}/s"
        if of_bytes:
            read, total = of_bytes
            line += f"; {read / 1e6:,.0f} of {total / 1e6:,.0f} MB read, {read / 1e6 / elapsed:,.1f} MB/s"
        self._say(line)
