"""What a watcher emits: state transitions and give-ups, and what its poll hook is told."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from jobwatch._exceptions import JobwatchError
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobSnapshot, JobState

__all__ = [
    "Event",
    "GaveUp",
    "GiveUpReason",
    "PollDetails",
    "PollHook",
    "Transition",
]


class GiveUpReason(enum.StrEnum):
    """Why a watch ended without the job reaching a final state.

    ``expired``: the job was seen (by this watcher, or by the one whose resume
    token it came from), then not found: ended ECS jobs are deleted about a day
    after they end.  ``pending_payment``: the job stayed ``PENDING_PAYMENT`` (an
    unpaid ECS/BMS order) for ``PollPolicy.pending_payment_timeout``.
    """

    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    TIMED_OUT = "timeout"
    PENDING_PAYMENT = "pending_payment"
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
    ``rate``, ``throttles`` and ``paused`` are those of the client's budget at
    that moment (see ``ClientStatistics``).
    """

    ref: JobRef
    attempt: int
    snapshot: JobSnapshot | None
    error: JobwatchError | None
    next_delay: float | None
    rate: float | None = None
    throttles: int = 0
    paused: float = 0.0


PollHook = Callable[[PollDetails], None]
