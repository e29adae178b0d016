"""Connection and throttle trouble, as it happens: what the client's and watcher's hooks say.

The client's ``on_retry`` hook reports every retry (a throttled answer, a refused
connection...) and the watcher's ``on_poll`` hook every poll's error.  The CLI
shows the counts in the live table's status line and the summary, and names the
last error behind a job in its ``gave_up`` event (a timed-out run then still says
that every connection was refused).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from jobwatch import JobRef, JobwatchError, PollDetails, RateLimitError, TransportError
from jobwatch._cli._summary import trouble_line
from jobwatch._retry import RetryDetails

__all__ = ["Cause", "Trouble", "cause_of"]


@dataclass(frozen=True, slots=True)
class Cause:
    """An error as the CLI names it: its class, and for a transport error its cause."""

    error: str  # the class name, e.g. "ConnectError", "RateLimitError"
    cause: str | None  # TransportError.cause, e.g. "refused"; None for other errors


def cause_of(error: BaseException) -> Cause:
    """The class name of ``error`` and, for a ``TransportError``, its ``cause``."""
    cause = str(error.cause) if isinstance(error, TransportError) else None
    return Cause(type(error).__name__, cause)


class Trouble:
    """Counts the run's throttled answers and transport failures; keeps each job's last error.

    ``clock`` (default ``time.monotonic``) is only read to add up the pauses: pauses
    that overlap (every request waits out the same throttle) count once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.throttled = 0  # answers that asked the client to slow down (retried)
        self.paused = 0.0  # seconds the client held its requests for them, overlaps once
        self._paused_until = -float("inf")
        self.transport: Counter[str] = Counter()  # retried transport failures by cause
        self._last: dict[JobRef, JobwatchError] = {}  # each job's last failed poll
        self._answered: dict[JobRef, int] = {}  # each job's last answer, as a tick
        self._last_any: JobwatchError | None = None  # the run's last error, at tick _any_at
        self._any_at = 0
        self._ticks = 0

    def on_retry(self, details: RetryDetails) -> None:
        """The client's ``on_retry`` hook."""
        error = details.caused_by
        self._remember(error)
        if isinstance(error, RateLimitError):
            self.throttled += 1
            now = self._clock()
            end = now + details.wait_for
            if end > self._paused_until:
                self.paused += end - max(now, self._paused_until)
                self._paused_until = end
        elif isinstance(error, TransportError):
            self.transport[str(error.cause)] += 1

    def on_poll(self, details: PollDetails) -> None:
        """The watcher's ``on_poll`` hook: remember each job's last failed poll."""
        if details.error is not None:
            self._last[details.ref] = details.error
            self._remember(details.error)
        elif details.snapshot is not None:
            self._ticks += 1
            self._last.pop(details.ref, None)
            self._answered[details.ref] = self._ticks

    def _remember(self, error: JobwatchError) -> None:
        self._ticks += 1
        self._last_any, self._any_at = error, self._ticks

    def last_error(self, ref: JobRef, given: JobwatchError | None = None) -> Cause | None:
        """What went wrong last for ``ref``: ``given`` (the give-up's own error), else its
        last failed poll, else the run's last error if it came after the job's last answer
        (a poll still retrying when the job timed out has reported nothing of its own).
        """
        error = given or self._last.get(ref)
        if error is None and self._any_at > self._answered.get(ref, 0):
            error = self._last_any
        return cause_of(error) if error is not None else None

    def line(self) -> str:
        """The status line (``trouble_line``); empty while there was no trouble."""
        return trouble_line(self.throttled, self.paused, dict(self.transport))
