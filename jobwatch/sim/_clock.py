"""The simulator's clocks: sim time is a float number of seconds."""

from __future__ import annotations

import math
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FirstReadClock", "ManualClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now() -> float``: the simulator's time in seconds."""

    def now(self) -> float:
        """The current sim time in seconds."""
        ...


class MonotonicClock:
    """Real time: seconds of ``time.monotonic()`` since this clock was made (starts at 0)."""

    __slots__ = ("_origin",)

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        """Seconds since this clock was made."""
        return time.monotonic() - self._origin

    def __repr__(self) -> str:
        return f"MonotonicClock(now={self.now():.3f})"


class FirstReadClock(MonotonicClock):
    """Real time that starts at the first reading after ``arm()``: 0 until then.

    ``jobwatch sim`` arms it once its jobs are made, so their timelines start with
    the first request (the simulator reads its clock as each request arrives), not
    when the server started.
    """

    __slots__ = ("_armed", "_started")

    def __init__(self) -> None:
        super().__init__()
        self._armed = self._started = False

    def arm(self) -> None:
        """Start at the next reading."""
        self._armed = True

    def now(self) -> float:
        """0 until the first reading after ``arm()``; seconds since that reading after it."""
        if not self._started:
            if not self._armed:
                return 0.0
            self._origin = time.monotonic()
            self._started = True
            return 0.0
        return super().now()

    def __repr__(self) -> str:
        return (
            f"FirstReadClock(started={self._started}, now={self.now() if self._started else 0:.3f})"
        )


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``advance(seconds)`` moves it forward, ``set(t)`` puts it anywhere (backwards too,
    to replay a moment).  Reading it from another thread (a ``serve()`` server) is safe.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = finite("start", start)

    def now(self) -> float:
        """The current sim time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (not negative) and return the new time."""
        if finite("seconds", seconds) < 0:
            raise ValueError(f"seconds must not be negative, not {seconds!r}")
        self._now += seconds
        return self._now

    def set(self, t: float) -> None:
        """Put the clock at sim time ``t``."""
        self._now = finite("t", t)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


def finite(name: str, value: float) -> float:
    """Return ``value`` as a float if it is a finite number, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)
