"""The box's two clocks, and noticing when the wall clock is set.

A box without a real-time clock may boot days or years off until NTP steps the wall clock; the
monotonic clock is never stepped. Whatever measures an age within one boot uses the monotonic clock;
what keeps wall-clock stamps (the face history) corrects the ones it made before a step. A step is
logged once, however many parts notice it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_daemon.logs import get_logger

log = get_logger(__name__)

# The wall clock moved this much more (or less) than the monotonic clock between two looks: a step.
# NTP slews small errors without a step; anything this large was set.
WALL_CLOCK_STEP_S = 2.0


@dataclass(frozen=True)
class Clock:
    """The clocks a part reads; tests give a wall clock that steps."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


_logged_lock = threading.Lock()
_logged_offset: float | None = None  # the wall-minus-monotonic offset of the last step logged, process-wide


class WallClockSteps:
    """``step()``: by how many seconds the wall clock was set since the last look (0.0 when it was
    not), measured against the monotonic clock."""

    def __init__(self, clock: Clock = Clock()):
        self._clock = clock
        self._offset = clock.wall() - clock.monotonic()

    def step(self) -> float:
        global _logged_offset
        offset = self._clock.wall() - self._clock.monotonic()
        step = offset - self._offset
        if abs(step) < WALL_CLOCK_STEP_S:
            return 0.0
        self._offset = offset
        with _logged_lock:
            first = _logged_offset is None or abs(offset - _logged_offset) >= WALL_CLOCK_STEP_S
            _logged_offset = offset
        if first:
            log.warning("the wall clock stepped: ages inside this run go by the monotonic clock", step_s=round(step, 1))
        return step
