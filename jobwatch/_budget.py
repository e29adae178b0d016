"""The request rate a tenant's quota allows, learned from the API gateway's throttles.

An ``AdaptiveRate`` is a token bucket whose fill rate is unknown (unlimited) until
the first throttling answer.  Then:

* when the gateway's message names its window (``limit:40,time:1 second``), the
  rate is set at once just under ``limit / window`` (``headroom`` below it), which
  stays its ceiling;
* otherwise the rate is cut to ``cut`` times what was getting through (answers
  not throttled in the last second, or the rate in force when lower) and grows
  back along a cubic curve while no throttle comes: slowly near the rate it was
  cut from, faster away from it (the CUBIC shape botocore's ``adaptive`` retry
  mode uses).  Throttles answering requests sent before a cut do not cut again
  (one cut per ``cooldown`` seconds);
* a throttle while already at the gateway's own figure (others spend the same
  quota) cuts as above, below it.

Everything runs on anyio's clock and primitives, so asyncio and trio alike.
"""

from __future__ import annotations

import math
from collections import deque

import anyio

from jobwatch._exceptions import throttle_window

__all__ = ["AdaptiveRate"]

#: Seconds over which the answers that got through are counted.
_MEASURE = 1.0
#: The cubic's scale, in requests/s per s³ (botocore's figure).
_CUBIC_SCALE = 0.4


class AdaptiveRate:
    """A tenant's request budget, learned from throttles; share one between clients.

    Every ``Client`` has its own unless given one (``Client(adaptive=...)``): pass
    the same ``AdaptiveRate`` to the clients of one tenant (one project or access
    key) that the gateway counts together, and they spend one budget.  Until the
    first throttle it costs nothing and holds nothing back, unless the user set
    its ceiling (``ceiling=``, ``limit_to``): it paces at that from the start.

    ``headroom``: the share of a limit the gateway names that is left unused
    (requests arrive unevenly); ``cut``: the factor a throttle cuts the rate by
    when the gateway names no limit; ``floor``: the lowest rate it falls to,
    requests/s; ``ceiling``: a rate never exceeded (requests/s; None: none).
    ``cooldown``: seconds after a cut in which further throttles do not cut again.
    """

    def __init__(
        self,
        *,
        headroom: float = 0.02,
        cut: float = 0.7,
        floor: float = 0.01,
        ceiling: float | None = None,
        cooldown: float = 1.0,
    ) -> None:
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"headroom must be in [0, 1), not {headroom!r}")
        if not 0.0 < cut < 1.0:
            raise ValueError(f"cut must be in (0, 1), not {cut!r}")
        if not floor > 0.0 or not math.isfinite(floor):
            raise ValueError(f"floor must be a positive number, not {floor!r}")
        if ceiling is not None and not ceiling >= floor:
            raise ValueError(f"ceiling must be None or at least floor, not {ceiling!r}")
        if not cooldown >= 0.0:
            raise ValueError(f"cooldown must not be negative, not {cooldown!r}")
        self.headroom = headroom
        self.cut = cut
        self.floor = floor
        self._ceiling = None if ceiling == math.inf else ceiling  # (inf: no ceiling)
        self.cooldown = cooldown
        self._told: float | None = None  # the tightest limit a gateway message named
        self._learned = False  # a throttle came: the bucket is in force
        self._w_max = 0.0  # the rate of the last cut (the cubic's plateau)
        self._cut_at = -math.inf  # where the cubic starts (its time 0)
        self._changed_at = -math.inf  # when a throttle last set the rate
        self._tokens = 1.0
        self._filled_at = 0.0
        self._passed: deque[float] = deque()  # times of answers not throttled
        self._lock = anyio.Lock()
        self.throttles = 0
        """Throttling answers received."""
        self.paused = 0.0
        """Seconds requests were held back for the budget (overlapping waits once)."""
        if self._ceiling is not None:
            self._pace_at(self._ceiling)

    def __repr__(self) -> str:
        rate = self.rate
        shown = "unlimited" if rate is None else f"{rate:.3g}/s"
        return f"AdaptiveRate({shown}, throttles={self.throttles})"

    @property
    def limited(self) -> bool:
        """True while requests are paced: once a throttle came, and from the start
        under a ceiling the user set (``ceiling=``, a client's ``RateLimit``)."""
        return self._learned

    @property
    def ceiling(self) -> float | None:
        """The highest rate allowed (the tightest of the user's and the gateway's), or None."""
        told = None if self._told is None else self._told * (1.0 - self.headroom)
        given = self._ceiling
        if told is None:
            return given
        return told if given is None else min(told, given)

    def limit_to(self, rate: float) -> None:
        """Never go above ``rate`` requests/s (a client's ``RateLimit`` sets it), and
        before any throttle, pace at it (for every client sharing this budget)."""
        if not rate > 0.0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        if rate == math.inf:
            return  # no limit
        self._ceiling = rate if self._ceiling is None else min(self._ceiling, rate)
        if not self._learned:
            self._pace_at(self._ceiling)

    def _pace_at(self, ceiling: float) -> None:
        """Before any throttle, under a user's ceiling: pace at it from now on, one
        token at hand (the clock is not read: no event loop may be running yet).

        Requests then go evenly spaced, and a ``Watcher`` waits for them in its
        scheduler, as under a learned rate: a ``RateLimit``'s window full of
        requests that wait in the workers would hold back every other client's polls
        (and its window lets a burst out each time it turns)."""
        self._learned = True
        self._w_max = ceiling
        self._cut_at = -math.inf  # (the cubic long past its plateau: the ceiling holds)
        self._tokens, self._filled_at = 1.0, -math.inf

    @property
    def rate(self) -> float | None:
        """The rate in force now, requests/s; None before the first throttle (unlimited),
        unless a ceiling was set.  Outside an event loop: as of its last use."""
        if not self._learned:
            return None
        try:
            now = anyio.current_time()
        except RuntimeError:  # no event loop (a repr or statistics() after it ended)
            now = max(self._filled_at, self._changed_at, 0.0)
        return self._rate_at(now)

    def _rate_at(self, now: float) -> float:
        w_max = self._w_max
        rate = _CUBIC_SCALE * (now - self._cut_at - self._k(w_max)) ** 3 + w_max
        ceiling = self.ceiling
        # Past its plateau the cubic climbs ever faster: at most to twice the plateau.
        rate = min(rate, 2.0 * w_max) if ceiling is None else min(rate, ceiling)
        return max(rate, self._lowest(ceiling))

    def _lowest(self, ceiling: float | None) -> float:
        """The floor, or the ceiling when that is lower (a ``RateLimit`` under the floor)."""
        return self.floor if ceiling is None else min(self.floor, ceiling)

    # -- what the client tells it ---------------------------------------------

    def throttled(self, message: str | None) -> None:
        """A throttling answer came (its message, if any, may name the window)."""
        self.throttles += 1
        now = anyio.current_time()
        # (The rate in force before this message's window caps it.)
        current = self._rate_at(now) if self._learned else math.inf
        window = throttle_window(message)
        if window is not None and window[0] > 0 and window[1] > 0:
            told = window[0] / window[1]
            self._told = told if self._told is None else min(self._told, told)
        ceiling = self.ceiling
        if ceiling is not None and current > ceiling * (1.0 + 1e-9):
            self._set(ceiling, now)  # above the limit named: straight to it
            return
        if self._learned and now - self._changed_at < self.cooldown:
            return  # an answer to a request sent before the last cut
        passing = self._passing(now)
        base = min(current, passing) if passing > 0 else current
        if not math.isfinite(base):
            base = max(self.floor, 1.0 / max(self.cooldown, 1e-3))
        self._set(base * self.cut, now, plateau=base)

    def passed(self) -> None:
        """An answer came that was not a throttle (it got through the gateway)."""
        self._passed_at(anyio.current_time())

    def _passed_at(self, now: float) -> None:
        """``passed``, with the clock (``anyio.current_time()``) already read: ``now``."""
        passed = self._passed
        passed.append(now)
        while passed[0] < now - _MEASURE:
            passed.popleft()

    def _passing(self, now: float) -> float:
        """Answers per second that got through, over the last second."""
        passed = self._passed
        while passed and passed[0] < now - _MEASURE:
            passed.popleft()
        return len(passed) / _MEASURE

    def _set(self, rate: float, now: float, *, plateau: float | None = None) -> None:
        """Put the rate at ``rate`` now, growing back towards ``plateau`` (default: stay)."""
        if self._learned:
            self._refill(now)
        else:
            self._learned = True
            self._tokens, self._filled_at = 0.0, now
        rate = max(rate, self._lowest(self.ceiling))
        self._changed_at = now
        if plateau is None:
            # A cubic that starts at its plateau: rate = w_max at once, held there.
            self._w_max, self._cut_at = rate, now - self._k(rate)
        else:
            self._w_max, self._cut_at = max(plateau, rate), now
            self._cut_at -= self._offset(self._w_max, rate)

    def _k(self, w_max: float) -> float:
        return math.cbrt(w_max * (1.0 - self.cut) / _CUBIC_SCALE)

    def _offset(self, w_max: float, rate: float) -> float:
        """How far along a cubic of plateau ``w_max`` the rate is ``rate`` (0: its start)."""
        start = w_max * self.cut
        if rate <= start:
            return 0.0
        return self._k(w_max) - math.cbrt((w_max - rate) / _CUBIC_SCALE)

    # -- the bucket -------------------------------------------------------------

    def _refill(self, now: float) -> float:
        rate = self._rate_at(now)
        elapsed = max(now - self._filled_at, 0.0)
        # One token at most: requests go evenly spaced, never two at once (the gateway's
        # own burst is unknown, and may be one).
        self._tokens = min(1.0, self._tokens + elapsed * rate)
        self._filled_at = now
        return rate

    def expected_wait(self) -> float:
        """Seconds a request asking now would wait for a token (0 while unlimited)."""
        if not self._learned:
            return 0.0
        now = anyio.current_time()
        rate = self._refill(now)
        queued = self._lock.statistics().tasks_waiting + (1 if self._lock.locked() else 0)
        ahead = queued + 1 - self._tokens
        return max(ahead, 0.0) / rate

    async def _take(self) -> None:
        async with self._lock:
            while True:
                now = anyio.current_time()
                rate = self._refill(now)
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(self._tokens - 1.0, 0.0)
                    return
                wait = (1.0 - self._tokens) / rate
                await anyio.sleep(wait)
                self.paused += anyio.current_time() - now

    async def acquire(self) -> None:
        """Wait until the budget allows one more request, and count it."""
        if not self._learned:
            return
        await self._take()
