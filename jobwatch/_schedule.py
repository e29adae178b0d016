"""The scheduler: a heap of due times, and the task that hands due targets to the workers.

A target is a watched job or a batch (jobs answered by one request).  Pushing
a target again with another due time supersedes the earlier entry, which is
skipped when it comes up; so is a target that ended or is being polled.  The
scheduler knows nothing of any API: it reads ``due``, ``earliest``, ``ended``
and ``in_flight``, and sets ``in_flight`` when it hands a target out.

A target pushed with a slack may be handed out that much before it is due
(from ``earliest`` on): when the scheduler wakes for one due target it takes
those due within its ``early`` horizon whose slack allows, so that polls close
in time go out in one wake-up instead of one each.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import anyio

from jobwatch._clock import Clock
from jobwatch._stream import Signal

__all__ = ["Schedulable", "Scheduler"]


class Schedulable(Protocol):
    """What the scheduler reads and writes of a target."""

    due: float
    earliest: float
    ended: bool
    in_flight: bool


T = TypeVar("T", bound=Schedulable)


class Scheduler(Generic[T]):
    """Due times of targets, earliest first."""

    def __init__(self) -> None:
        # Entries are (due, key) with the target in _queued[key]: a tuple of a float
        # and an int is not tracked by the garbage collector, and one is made at
        # every poll of every job.
        self._heap: list[tuple[float, int]] = []
        self._queued: dict[int, T] = {}
        self._seq = itertools.count()
        self._wake = Signal()
        self._wake_at = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, target: T, due: float, slack: float = 0.0) -> None:
        """Hand ``target`` out at ``due``, or up to ``slack`` seconds before when the
        scheduler wakes for another target (superseding any earlier push of it)."""
        target.due = due
        target.earliest = due - slack
        key = next(self._seq)
        self._queued[key] = target
        heapq.heappush(self._heap, (due, key))
        if due < self._wake_at:
            self._wake_at = due  # recomputed when the scheduler wakes
            self._wake.fire()

    def peek_due(self, now: float, early: float = 0.0) -> T | None:
        """The next target to hand out at ``now``, left queued: one due, or one due
        within ``early`` seconds whose slack allows (superseded entries are dropped).

        Earliest due first: a target due later is never handed out before one due
        sooner that may not go early yet.
        """
        heap, queued = self._heap, self._queued
        horizon = now + early
        while heap and heap[0][0] <= horizon:
            due, key = heap[0]
            target = queued[key]
            if target.due == due and not target.ended and not target.in_flight:
                return target if due <= now or target.earliest <= now else None
            heapq.heappop(heap)
            del queued[key]
        return None

    def pop_due(self, now: float, early: float = 0.0) -> T | None:
        """The target ``peek_due`` gives, taken off the queue and marked in flight."""
        target = self.peek_due(now, early)
        if target is not None:
            _, key = heapq.heappop(self._heap)
            del self._queued[key]
            target.in_flight = True
        return target

    def next_due(self) -> float:
        """When the earliest entry is due (``inf`` when none is queued)."""
        return self._heap[0][0] if self._heap else math.inf

    async def run(
        self,
        dispatch: Callable[[T], Awaitable[None]],
        admit: Callable[[T], Awaitable[None] | None] | None = None,
        linger: float = 0.0,
        early: float = 0.0,
        clock: Clock = anyio.current_time,
    ) -> None:
        """Forever: hand each target to ``dispatch`` when it is due.

        ``admit``, when given, is called with the next due target before it is
        handed out, and may return an awaitable to wait on first (a request budget
        that is spent): due targets then wait here, earliest due first, not in
        workers, and each goes with the budget's next token.  A target that waited
        is as late as every other; its next due time counts from its poll, so when
        the budget binds every open job's interval stretches alike.

        With ``linger``, the wake-up for a due time is that much later, so that the
        targets due in between go out with it (one wake-up for them all); with
        ``early``, the targets due up to that much after a wake-up go out with it
        too, as far as their slack allows.  ``clock``: ``anyio.current_time`` or a
        cheaper reader of the same clock.
        """
        while True:
            now = clock()
            while True:
                # Waited on with the target still queued (not in flight): it can be
                # unwatched meanwhile, and an earlier one pushed meanwhile goes first.
                due = None if admit is None else self.peek_due(now, early)
                waiting = None if admit is None or due is None else admit(due)
                if waiting is not None:
                    await waiting
                    now = clock()
                if (target := self.pop_due(now, early)) is None:
                    break
                await dispatch(target)
                now = clock()
            self._wake_at = self.next_due()
            with anyio.move_on_after(self._wake_at + linger - now):
                await self._wake.wait()
