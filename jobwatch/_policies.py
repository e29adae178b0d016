"""The two policies: how often a watcher polls a job, and how the client retries a request.

``PollPolicy`` paces each watched job (exponential backoff between polls, the
not-found grace, the per-job deadline); ``RetryPolicy`` paces the attempts of
one request (exponential backoff with full jitter, ``Retry-After`` and the
gateway's throttling windows).  The delay arithmetic of both comes from
``backoff``'s wait generators; the sleeping is done by their callers with
``anyio.sleep`` (or a scheduled time), so that both work on asyncio and trio.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import backoff

from jobwatch._exceptions import (
    THROTTLING_CODES,
    APIStatusError,
    JobwatchError,
    RateLimitError,
    throttle_window,
)
from jobwatch._meaning import Meaning, meaning_of

__all__ = ["PollPolicy", "RetryPolicy"]

#: Error codes that, sent in an HTTP 200 error body, mean "try again".
DEFAULT_TRANSIENT_CODES = THROTTLING_CODES


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often a watcher polls each job.

    Its names follow ``RetryPolicy``'s.  Each job is polled after
    ``first_poll_delay``, then at intervals growing from ``wait_initial`` by
    ``wait_exp_base`` up to ``wait_max`` (``backoff.expo``), each stretched or
    shrunk at random by up to ``wait_jitter`` (a fraction).  The interval goes
    back to ``wait_initial`` whenever the job changes state.

    The defaults, 1 s growing by half up to 30 s, were chosen in ``make bench``'s
    ``pressure`` scenario: against doubling (the default before) they
    halve the mean detection lag of jobs ending within a minute and cut the lag
    relative to a job's duration by a third over durations from 2 s to 30 min,
    for about three more requests per job, all in its first 75 s (then both poll
    every 30 s).  When a tenant quota binds, the schedule changes nothing: the
    request budget paces the polls.

    - ``not_found_grace``: seconds a job may answer "not found" before it is first
      seen (jobs take a moment to become visible); a poll is made when the grace
      ends, and if the job is still not found the watch gives up with
      ``not_found``.  A job seen before that vanishes gives up with ``expired``.
    - ``timeout``: seconds a job may be watched before the watch gives up with
      ``timeout``, at that time, a poll in flight cancelled (None: no limit).
    - ``max_consecutive_errors``: failed polls in a row (after the client's own
      retries) before the watch gives up with ``error``.
    - ``pending_payment_timeout``: seconds a job may answer ``PENDING_PAYMENT`` in a
      row (ECS/BMS: its yearly/monthly order is not paid) before the watch gives up
      with ``pending_payment``, at that time (None: wait for the payment as long as
      ``timeout`` allows).  A cancelled order leaves the job in that status until ECS
      deletes it 14 days later (ECS API page ecs_02_0901); the default, an hour, is
      time enough to pay by hand and short enough for an unattended watch.  It is
      counted from the first such answer of this watch (a resumed watch counts again).
    - ``settle_successes``: ``SUCCESS`` answers in a row needed before a job counts
      as succeeded (1: the first).  terraform-provider-huaweicloud waits for two on
      volume attach, because "the status on the EVS side is not complete yet" when
      the job already says ``SUCCESS``, and for three on GES graphs.  An answer
      before the last is held back (no events, sub-jobs included) and the job is
      polled again after ``wait_initial``; an answer in another state starts the
      count again; failed polls do not count.
    """

    wait_initial: float = 1.0
    wait_exp_base: float = 1.5
    wait_max: float = 30.0
    wait_jitter: float = 0.1
    first_poll_delay: float = 0.0
    not_found_grace: float = 15.0
    timeout: float | None = None
    max_consecutive_errors: int = 20
    pending_payment_timeout: float | None = 3600.0
    settle_successes: int = 1
    _table: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.wait_initial <= 0 or self.wait_max < self.wait_initial:
            raise ValueError("need 0 < wait_initial <= wait_max")
        if self.wait_exp_base < 1:
            raise ValueError("wait_exp_base must be at least 1")
        if not 0 <= self.wait_jitter < 1:
            raise ValueError("wait_jitter must be in [0, 1)")
        if self.first_poll_delay < 0 or self.not_found_grace < 0:
            raise ValueError("first_poll_delay and not_found_grace must not be negative")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.max_consecutive_errors < 1:
            raise ValueError("max_consecutive_errors must be at least 1")
        if self.pending_payment_timeout is not None and not self.pending_payment_timeout > 0:
            raise ValueError("pending_payment_timeout must be positive")
        if self.settle_successes < 1:
            raise ValueError("settle_successes must be at least 1")
        # The schedule is the same for every job: compute it once, index it per job.
        gen = backoff.expo(
            base=self.wait_exp_base, factor=self.wait_initial, max_value=self.wait_max
        )
        next(gen)  # prime: expo yields None first
        table: list[float] = []
        for value in gen:
            table.append(value)
            if value >= self.wait_max or len(table) >= 64:
                break
        object.__setattr__(self, "_table", tuple(table))

    def interval(self, step: int, rng: random.Random | None = None) -> float:
        """The delay before poll number ``step + 1`` since the last change, jittered."""
        return self.interval_and_slack(step, rng)[0]

    def interval_and_slack(
        self, step: int, rng: random.Random | None = None
    ) -> tuple[float, float]:
        """``interval(step)`` and its slack: how much shorter it may be and still be
        within the jitter band (``wait_jitter`` below the schedule's value)."""
        base = self._table[min(step, len(self._table) - 1)]
        if not self.wait_jitter:
            return base, 0.0
        spread = (rng or random).uniform(-self.wait_jitter, self.wait_jitter)
        return base * (1.0 + spread), base * (self.wait_jitter + spread)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How the client retries transient failures.

    Transient means: connection errors, timeouts, HTTP 408, 429 and 5xx, and
    HTTP 200 error bodies whose code is in ``transient_error_codes``.  HTTP
    400, 401, 403 and 404 are never retried.

    - ``attempts``: attempts in all, the first included (1 disables retries);
    - ``timeout``: seconds a call may spend in all, waits included; a wait that
      would end past it is not made and the last error is raised;
    - ``wait_initial``, ``wait_max``, ``wait_exp_base``: exponential backoff with
      full jitter (``wait_initial * base**n``, capped at ``wait_max``, drawn
      uniformly from 0 to that);
    - ``retry_after_max``: the longest wait a ``Retry-After`` header or an
      APIGW.0308 throttling window may impose (longer ones are clamped); 30
      minutes, terraform-provider-huaweicloud's cap.  The client holds all its
      requests for that wait (plus up to 10 % jitter), then lets them out spread.
      A wait that would end past ``timeout`` fails the call at once, but the
      client's requests are held all the same: the next call waits it out.
    """

    attempts: int = 5
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_exp_base: float = 1.5
    retry_after_max: float = 1800.0
    transient_error_codes: frozenset[str] = field(default=DEFAULT_TRANSIENT_CODES)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        for name in ("timeout", "wait_initial", "wait_max", "retry_after_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.wait_exp_base < 1:
            raise ValueError("wait_exp_base must be at least 1")

    def backoff_delays(self) -> Iterator[float]:
        """The jittered backoff delays, one per retry."""
        gen = backoff.expo(
            base=self.wait_exp_base, factor=self.wait_initial, max_value=self.wait_max
        )
        next(gen)  # prime: expo yields None first
        for value in gen:
            yield backoff.full_jitter(value)

    def is_transient(self, error: JobwatchError) -> bool:
        """True when ``error`` is worth another attempt (see ``jobwatch._meaning``)."""
        return meaning_of(error, self.transient_error_codes) is Meaning.TRANSIENT

    def server_delay(self, error: JobwatchError) -> float | None:
        """The wait the server asked for (Retry-After or a throttling window), clamped."""
        if not isinstance(error, APIStatusError):
            return None
        asked = error.retry_after
        if asked is None and isinstance(error, RateLimitError):
            window = throttle_window(error.message)
            asked = window[1] if window else None
        if asked is None:
            return None
        return min(max(asked, 0.0), self.retry_after_max)
