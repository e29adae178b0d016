"""What a watcher emits: state transitions, give-ups, and the poll policy that paces it."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

import backoff

from jobwatch._exceptions import JobwatchError
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobSnapshot, JobState

__all__ = [
    "Event",
    "GaveUp",
    "GiveUpReason",
    "JobFailed",
    "PollDetails",
    "PollPolicy",
    "Transition",
    "WatchGaveUp",
]


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often a watcher polls each job.

    Each job is polled after ``first_poll_delay``, then at intervals growing from
    ``initial`` by ``multiplier`` up to ``maximum`` (``backoff.expo``), each
    stretched or shrunk at random by up to ``jitter`` (a fraction).  The interval
    goes back to ``initial`` whenever the job changes state.

    - ``not_found_grace``: seconds a job may answer "not found" before it is first
      seen (jobs take a moment to become visible); then the watch gives up with
      ``not_found``.  A job seen before that vanishes gives up with ``expired``.
    - ``deadline``: seconds a job may be watched before the watch gives up with
      ``timed_out`` (None: no deadline).
    - ``max_consecutive_errors``: failed polls in a row (after the client's own
      retries) before the watch gives up with ``error``.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.1
    first_poll_delay: float = 0.0
    not_found_grace: float = 15.0
    deadline: float | None = None
    max_consecutive_errors: int = 20
    _table: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.first_poll_delay < 0 or self.not_found_grace < 0:
            raise ValueError("first_poll_delay and not_found_grace must not be negative")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError("deadline must be positive")
        if self.max_consecutive_errors < 1:
            raise ValueError("max_consecutive_errors must be at least 1")
        # The schedule is the same for every job: compute it once, index it per job.
        gen = backoff.expo(base=self.multiplier, factor=self.initial, max_value=self.maximum)
        next(gen)  # prime: expo yields None first
        table: list[float] = []
        for value in gen:
            table.append(value)
            if value >= self.maximum or len(table) >= 64:
                break
        object.__setattr__(self, "_table", tuple(table))

    def interval(self, step: int, rng: random.Random | None = None) -> float:
        """The delay before poll number ``step + 1`` since the last change, jittered."""
        base = self._table[min(step, len(self._table) - 1)]
        if not self.jitter:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return base * (1.0 + spread)


class GiveUpReason(enum.StrEnum):
    """Why a watch ended without the job reaching a final state."""

    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    TIMED_OUT = "timeout"
    AUTH = "auth"
    ERROR = "error"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Transition:
    """A job was seen in a state for the first time, or in a new state.

    ``previous`` is None on first sight.  States the job passed through between
    two polls are not invented: a job seen ``pending`` and then ``succeeded``
    gives exactly those two events.  ``parent`` is the batch job of a sub-job
    (None at the top).  ``final`` is True when ``state`` is terminal.  A batch
    job's events come before its sub-jobs' events, except its final one, which
    comes after them: once it arrives, everything about the batch has.
    """

    ref: JobRef
    parent: JobRef | None
    previous: JobState | None
    state: JobState
    snapshot: JobSnapshot
    observed_at: datetime

    @property
    def final(self) -> bool:
        """True when this is the job's final outcome."""
        return self.state.terminal

    @property
    def failed_sub_jobs(self) -> tuple[JobSnapshot, ...]:
        """Sub-jobs at any depth that failed, even when this job says it succeeded."""
        return self.snapshot.failed_sub_jobs


@dataclass(frozen=True, slots=True)
class GaveUp:
    """The watcher stopped watching a job before it reached a final state.

    ``error`` is the error behind ``auth`` and ``error`` give-ups (and the last
    not-found answer for ``not_found``/``expired``); ``last`` the last snapshot seen.
    """

    ref: JobRef
    parent: JobRef | None
    reason: GiveUpReason
    message: str
    observed_at: datetime
    error: JobwatchError | None = None
    last: JobSnapshot | None = None

    @property
    def final(self) -> bool:
        """Always True: a give-up is a job's final outcome."""
        return True


Event: TypeAlias = Transition | GaveUp


@dataclass(frozen=True, slots=True)
class PollDetails:
    """What a per-poll hook is told after each poll of a job (or of a graph's list).

    ``next_delay`` is None when the watch of the job ended with this poll.
    """

    ref: JobRef
    attempt: int
    snapshot: JobSnapshot | None
    error: JobwatchError | None
    next_delay: float | None


PollHook = Callable[[PollDetails], None]


class JobFailed(JobwatchError):
    """``Watcher.wait(..., raise_on_failure=True)``: the job (or a sub-job) failed."""

    def __init__(self, snapshot: JobSnapshot) -> None:
        self.snapshot = snapshot
        subs = len(snapshot.failed_sub_jobs)
        detail = f" ({subs} failed sub-jobs)" if subs else ""
        reason = f": {snapshot.fail_reason}" if snapshot.fail_reason else ""
        super().__init__(f"job {snapshot.ref} ended {snapshot.state.value}{detail}{reason}")


class WatchGaveUp(JobwatchError):
    """``Watcher.wait``: the watcher gave up on the job (``outcome`` says why)."""

    def __init__(self, outcome: GaveUp) -> None:
        self.outcome = outcome
        super().__init__(f"gave up on job {outcome.ref}: {outcome.reason.value}: {outcome.message}")
