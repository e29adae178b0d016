"""Final outcomes, kept apart from the event stream.

A job's outcome is recorded the moment the job ends, whether or not anyone
reads its events, and handed to every listener registered then.  With
``keep`` true it is also kept for later ``wait`` calls (an int keeps at most
that many, the oldest dropped first); with ``keep`` false nothing is kept
once the listeners have it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol, Self

from jobwatch._events import Event
from jobwatch._refs import JobRef
from jobwatch._stream import Signal

__all__ = ["Gather", "Outcomes"]


class Listener(Protocol):
    """Who waits for outcomes."""

    def deliver(self, final: Event) -> None:
        """``final`` is the outcome of a reference it listens to."""

    def abort(self) -> None:
        """The watcher closed: no more outcomes will come."""


class Outcomes:
    """The final outcomes of top-level jobs, and who waits for them."""

    def __init__(self, keep: bool | int) -> None:
        if not isinstance(keep, bool) and keep < 0:
            raise ValueError("keep_outcomes must be a bool or a count >= 0")
        self._limit: int | None = None if keep is True else int(keep)
        self._done: dict[JobRef, Event] = {}
        self._listeners: dict[JobRef, list[Listener]] = {}
        self.closed = False

    def __len__(self) -> int:
        return len(self._done)

    def __contains__(self, ref: object) -> bool:
        return ref in self._done

    @property
    def awaited(self) -> bool:
        """True when someone waits for an outcome."""
        return bool(self._listeners)

    def get(self, ref: JobRef) -> Event | None:
        """The kept outcome of ``ref``, if any."""
        return self._done.get(ref)

    def record(self, final: Event) -> None:
        """``final`` is a job's outcome: tell its listeners, keep it if asked to."""
        ref = final.ref
        for listener in self._listeners.pop(ref, ()):
            listener.deliver(final)
        if self._limit == 0:
            return
        self._done.pop(ref, None)  # re-inserted last: the newest
        self._done[ref] = final
        if self._limit is not None and len(self._done) > self._limit:
            del self._done[next(iter(self._done))]

    def forget(self, ref: JobRef) -> None:
        """Drop the kept outcome of ``ref`` (a new watch of it starts, or the user asks)."""
        self._done.pop(ref, None)

    def close(self) -> None:
        """The watcher closed: every listener still waiting is told, and let go."""
        self.closed = True
        waiting = {id(one): one for group in self._listeners.values() for one in group}
        self._listeners.clear()
        for listener in waiting.values():
            listener.abort()

    def listen(self, ref: JobRef, listener: Listener) -> None:
        """Call ``listener`` with the outcome of ``ref`` when its watch ends."""
        self._listeners.setdefault(ref, []).append(listener)

    def unlisten(self, ref: JobRef, listener: Listener) -> None:
        """Stop ``listener`` waiting for ``ref`` (its waiter was cancelled)."""
        listeners = self._listeners.get(ref)
        if listeners is None:
            return
        try:
            listeners.remove(listener)
        except ValueError:
            return
        if not listeners:
            del self._listeners[ref]


class Gather:
    """The outcomes of some references, as they come: ``wait``, ``wait_all``, ``as_completed``.

    ``start`` is called for each reference that has no kept outcome, after its
    listener is registered (so that an outcome cannot slip between the two).
    """

    def __init__(
        self, outcomes: Outcomes, refs: Iterable[JobRef], start: Callable[[JobRef], None]
    ) -> None:
        self._outcomes = outcomes
        self._ready: deque[Event] = deque()
        self._pending: set[JobRef] = set()
        self._signal = Signal()
        self.left = 0
        for ref in dict.fromkeys(refs):
            self.left += 1
            done = outcomes.get(ref)
            if done is not None:
                self._ready.append(done)
                continue
            self._pending.add(ref)
            outcomes.listen(ref, self)
            start(ref)

    def deliver(self, final: Event) -> None:
        """See ``Listener``."""
        self._pending.discard(final.ref)
        self._ready.append(final)
        self._signal.fire()

    def abort(self) -> None:
        """See ``Listener``."""
        self._signal.fire()

    async def next(self) -> Event:
        """The next outcome to arrive (kept ones first).

        ``RuntimeError`` when the watcher closed before it came.
        """
        while not self._ready:
            if self._outcomes.closed:
                left = ", ".join(sorted(map(str, self._pending)))
                raise RuntimeError(f"the watcher closed before these jobs ended: {left}")
            await self._signal.wait()
        self.left -= 1
        return self._ready.popleft()

    def close(self) -> None:
        """Stop listening for the outcomes not arrived yet."""
        for ref in self._pending:
            self._outcomes.unlisten(ref, self)
        self._pending.clear()

    async def aclose(self) -> None:
        """``close``, for ``contextlib.aclosing`` around ``as_completed``."""
        self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self.left == 0:
            self.close()
            raise StopAsyncIteration
        return await self.next()
