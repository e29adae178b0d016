"""The event stream: a bounded buffer between the watcher's workers and its consumer.

Each queued item is an event and the record of the top-level job it belongs
to, so that when the consumer takes it the watcher can note what was
*delivered* at any depth (what resume tokens record).  Nothing is dropped:

- ``send`` waits while the buffer is full (a slow consumer holds back the polls
  that have something to report);
- ``reserve`` waits for room without adding anything, and ``put`` adds at once,
  past the bound if need be: a job's final events go in together, synchronously,
  so that a job ends in one step.  The overshoot is bounded by the final events
  of one job per worker, and of the jobs you ``unwatch``.

A stream made with ``auto=True`` turns itself off when its buffer is full,
nobody ever asked for the events, and someone waits for an outcome (which
would otherwise wait forever behind a buffer nobody reads): the buffered events
are then acknowledged as delivered (as with ``events=False``) and ``events()``
raises from then on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from jobwatch._events import Event
from jobwatch._wakeup import Wakeup, wakeup

__all__ = ["EventStream", "Signal"]

logger = logging.getLogger("jobwatch")

R = TypeVar("R")


class Signal:
    """A level-free wake-up: ``wait`` returns at the next ``fire``."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[Wakeup] = []  # one each: a waiter's cancellation is its own

    async def wait(self) -> None:
        """Wait for the next ``fire``."""
        woken = wakeup()
        self._waiters.append(woken)
        try:
            await woken.wait()
        finally:
            if not woken.is_set():  # cancelled before the fire
                self._waiters.remove(woken)

    def fire(self) -> None:
        """Wake every task waiting now (nothing to do when none waits)."""
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for woken in waiters:
                woken.set()


class EventStream(Generic[R]):
    """Events with the record of their top-level job, in the order they were sent."""

    def __init__(
        self,
        capacity: int,
        *,
        enabled: bool,
        auto: bool,
        ack: Callable[[Event, R], None],
        waited_on: Callable[[], bool],
    ) -> None:
        self.capacity = capacity
        self.enabled = enabled
        self.auto = auto
        self.subscribed = False
        self.closed = False
        self.emitted = 0
        #: Told every event as it is queued (an instrumentation's: ``jobwatch.otel``).
        self.tap: Callable[[Event], None] | None = None
        self._ack = ack
        self._waited_on = waited_on
        self._items: deque[tuple[Event, R]] = deque()
        self._readable = Signal()
        self._writable = Signal()

    def __len__(self) -> int:
        return len(self._items)

    async def reserve(self) -> None:
        """Wait until the buffer has room (at once when the stream is off)."""
        while not self.has_room():
            if self.auto and not self.subscribed and self._waited_on():
                self._switch_off()
                return
            await self._writable.wait()

    def has_room(self) -> bool:
        """Whether ``reserve`` would return at once (without switching the stream off)."""
        return not self.enabled or self.closed or len(self._items) < self.capacity

    async def send(self, event: Event, root: R) -> None:
        """Queue ``event``, waiting while the buffer is full."""
        await self.reserve()
        self.put(event, root)

    def put(self, event: Event, root: R) -> None:
        """Queue ``event`` at once, past the bound if need be."""
        self.emitted += 1
        if self.tap is not None:
            self.tap(event)
        if not self.enabled:
            self._ack(event, root)
            return
        self._items.append((event, root))
        self._readable.fire()

    def notify(self) -> None:
        """Wake the readers (the number of open jobs changed)."""
        self._readable.fire()

    def nudge(self) -> None:
        """Wake the writers waiting for room (someone started waiting for an outcome)."""
        self._writable.fire()

    def subscribe(self) -> None:
        """Note that someone reads the events (``events()`` was called)."""
        if not self.enabled:
            raise RuntimeError(
                "this watcher's event stream is off: it was made with events=False, or "
                f"its buffer of {self.capacity} filled while an outcome was awaited and "
                "nobody had read events() (pass events=True to keep every event)"
            )
        self.subscribed = True

    async def receive(self, idle: Callable[[], bool] | None) -> tuple[Event, R] | None:
        """The next event and its root, acknowledged; None at the end.

        The end is the stream's closing, or, with ``idle``, the moment it is empty
        and ``idle()`` is true.
        """
        while True:
            if self._items:
                item = self._items.popleft()
                self._writable.fire()
                self._ack(*item)
                return item
            if self.closed or not self.enabled or (idle is not None and idle()):
                return None
            await self._readable.wait()

    def close(self) -> None:
        """End the stream: readers get None, writers stop waiting."""
        self.closed = True
        self._readable.fire()
        self._writable.fire()

    def _switch_off(self) -> None:
        logger.info(
            "nobody reads the watcher's events, its buffer of %d is full and an outcome is "
            "awaited: the event stream is off (pass events=False to skip it)",
            self.capacity,
        )
        self.enabled = False
        while self._items:
            self._ack(*self._items.popleft())
        self._readable.fire()
        self._writable.fire()
