"""Retry policy for transient failures: backoff, Retry-After and throttling windows.

The delay arithmetic comes from ``backoff``'s wait generators (``expo`` and
``full_jitter``); the sleeping is done by the caller with ``anyio.sleep`` so
that it works on asyncio and trio alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import backoff

from jobwatch._exceptions import (
    THROTTLING_CODES,
    APIStatusError,
    JobwatchError,
    RateLimitError,
    TransportError,
    throttle_window,
)

__all__ = ["RetryDetails", "RetryPolicy"]

#: Error codes that, sent in an HTTP 200 error body, mean "try again".
DEFAULT_TRANSIENT_CODES = THROTTLING_CODES


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
      APIGW.0308 throttling window may impose (longer ones are clamped).
    """

    attempts: int = 5
    timeout: float = 60.0
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_exp_base: float = 2.0
    retry_after_max: float = 30.0
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
        """True when ``error`` is worth another attempt."""
        if isinstance(error, TransportError | RateLimitError):
            return True
        if isinstance(error, APIStatusError):
            status = error.status_code
            if status in (408, 429) or status >= 500:
                return True
            return status == 200 and error.error_code in self.transient_error_codes
        return False

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


@dataclass(frozen=True, slots=True)
class RetryDetails:
    """What a retry hook is told before the client waits and tries again."""

    what: str
    attempt: int
    wait_for: float
    waited_so_far: float
    caused_by: JobwatchError


RetryHook = Callable[[RetryDetails], None]


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Read ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date.

    Returns seconds (never negative) or None when absent or unreadable.
    """
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)
