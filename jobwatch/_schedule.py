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

A target may also be held (``hold``: its request budget has no token yet, say):
it is set aside with the others of its group, and the targets after it go on
coming out at their times.  A group's targets come back, earliest due first, once
its hold ends; a target set aside is never put back in the main heap, so each is
moved once per push at most.  A target may expire (``expiry``: its deadline, when
its poll ends without a request): set aside, it comes out at that time whatever
its group's hold and place, ahead of everything (a per-group heap of expiries).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar, cast

import anyio

from jobwatch._clock import Clock
from jobwatch._stream import Signal

__all__ = ["Hold", "Schedulable", "Scheduler"]


class Schedulable(Protocol):
    """What the scheduler reads and writes of a target."""

    due: float
    earliest: float
    ended: bool
    in_flight: bool


T = TypeVar("T", bound=Schedulable)
#: Whether a target is held now: None, or its group and until when (clock time).
Hold = Callable[[T], "tuple[Hashable, float] | None"]
#: When a target set aside comes out regardless of its hold (None: never).
Expiry = Callable[[T], "float | None"]
#: A heap of (due, key), or of a group's expiries (expiry, key, due).
_Heap = list[tuple[float, int]] | list[tuple[float, int, float]]


class Scheduler(Generic[T]):
    """Due times of targets, earliest first."""

    def __init__(self, expiry: Expiry[T] | None = None) -> None:
        # Entries are (due, key) with the target in _queued[key]: a tuple of a float
        # and an int is not tracked by the garbage collector, and one is made at
        # every poll of every job.
        self._heap: list[tuple[float, int]] = []
        self._queued: dict[int, T] = {}
        self._seq = itertools.count()
        self._wake = Signal()
        self._wake_at = math.inf
        # Targets set aside because their group was held: a heap per group, and of
        # those that expire, a heap per group of (expiry, key, due).
        self._held: dict[Hashable, list[tuple[float, int]]] = {}
        self._expiry = expiry
        self._expiring: dict[Hashable, list[tuple[float, int, float]]] = {}

    def __len__(self) -> int:
        return len(self._heap) + sum(map(len, self._held.values()))

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

    def peek_due(self, now: float, early: float = 0.0, hold: Hold[T] | None = None) -> T | None:
        """The next target to hand out at ``now``, left queued: one due, or one due
        within ``early`` seconds whose slack allows (superseded entries are dropped).

        Earliest due first: a target due later is never handed out before one due
        sooner that may not go early yet.  With ``hold``, a target held is set aside
        with its group (see the module), and the earliest of the main heap and of
        the groups no longer held comes out.
        """
        heap = self._peek(now, early, hold)
        return None if heap is None else self._queued[heap[0][1]]

    def _peek(self, now: float, early: float, hold: Hold[T] | None) -> _Heap | None:
        """The heap whose head goes next (the main one or a group's), or None."""
        heap, queued = self._heap, self._queued
        horizon = now + early
        best: _Heap | None = None
        bound = horizon  # nothing due after a head that may not go yet goes before it
        while heap and heap[0][0] <= horizon:
            due, key = heap[0]
            target = queued[key]
            if target.due == due and not target.ended and not target.in_flight:
                held = None if hold is None else hold(target)
                if held is None or held[1] <= now:
                    if due <= now or target.earliest <= now:
                        best = heap
                    else:
                        bound = due
                    break
                heapq.heappop(heap)
                heapq.heappush(self._held.setdefault(held[0], []), (due, key))
                expires = None if self._expiry is None else self._expiry(target)
                if expires is not None:
                    entry = (expires, key, due)
                    heapq.heappush(self._expiring.setdefault(held[0], []), entry)
                continue
            heapq.heappop(heap)
            del queued[key]
        if hold is None or not self._held:
            return best
        for group in list(self._held):
            aside = self._live_head(group)
            if aside is None:
                continue
            expiring = self._live_expiring(group)
            if expiring is not None and expiring[0][0] <= now:
                return expiring  # expired: out now, ahead of everything
            due, key = aside[0]
            if due > bound or (best is not None and best[0][0] <= due):
                continue
            held = hold(queued[key])
            if held is not None and held[1] > now:
                continue  # still held: it bounds nothing
            if due <= now or queued[key].earliest <= now:
                best = aside
            else:
                bound = due
                if best is not None and best[0][0] > due:
                    best = None
        return best

    def _live_head(self, group: Hashable) -> list[tuple[float, int]] | None:
        """Group ``group``'s heap with its stale entries dropped (None, and the group
        forgotten, when none is left)."""
        aside, queued = self._held[group], self._queued
        while aside:
            due, key = aside[0]
            target = queued.get(key)  # (None: it came out through its expiry)
            if target is not None:
                if target.due == due and not target.ended and not target.in_flight:
                    return aside
                del queued[key]
            heapq.heappop(aside)
        del self._held[group]
        self._expiring.pop(group, None)
        return None

    def _live_expiring(self, group: Hashable) -> list[tuple[float, int, float]] | None:
        """Group ``group``'s heap of expiries with the stale ones dropped (None: none)."""
        expiring = self._expiring.get(group)
        if expiring is None:
            return None
        queued = self._queued
        while expiring:
            _, key, due = expiring[0]
            target = queued.get(key)
            stale = target is None or target.due != due or target.ended or target.in_flight
            if not stale:
                return expiring
            heapq.heappop(expiring)
        del self._expiring[group]
        return None

    def pop_due(self, now: float, early: float = 0.0, hold: Hold[T] | None = None) -> T | None:
        """The target ``peek_due`` gives, taken off the queue and marked in flight."""
        heap = self._peek(now, early, hold)
        if heap is None:
            return None
        key: int = heapq.heappop(cast("list[tuple[float, int]]", heap))[1]  # (or a 3-tuple)
        target = self._queued.pop(key)
        target.in_flight = True
        return target

    def next_held(self, hold: Hold[T] | None = None) -> float:
        """When the first held group's head may come out: its due time or the end of
        its hold, whichever is later (``inf`` when no group is aside)."""
        wake = math.inf
        for group in list(self._held):
            aside = self._live_head(group)
            if aside is None:
                continue
            due = aside[0][0]
            held = None if hold is None else hold(self._queued[aside[0][1]])
            wake = min(wake, due if held is None else max(due, held[1]))
            expiring = self._live_expiring(group)
            if expiring is not None:
                wake = min(wake, expiring[0][0])
        return wake

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
        hold: Hold[T] | None = None,
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
        cheaper reader of the same clock.  ``hold``: see ``peek_due``; a held group's
        targets wait aside while the others go (a budget with no token yet holds
        back its own targets only).
        """
        while True:
            now = clock()
            while True:
                # Waited on with the target still queued (not in flight): it can be
                # unwatched meanwhile, and an earlier one pushed meanwhile goes first.
                due = None if admit is None else self.peek_due(now, early, hold)
                waiting = None if admit is None or due is None else admit(due)
                if waiting is not None:
                    await waiting
                    now = clock()
                if (target := self.pop_due(now, early, hold)) is None:
                    break
                await dispatch(target)
                now = clock()
            next_at, held_at = self.next_due(), self.next_held(hold)
            self._wake_at = min(next_at, held_at)
            # (No linger for a hold's end: a budget's token is used when it comes.)
            with anyio.move_on_after(min(next_at + linger, held_at) - now):
                await self._wake.wait()
