"""What a retry hook is told, and reading the delay an answer asks for (``Retry-After``).

The policy itself is ``jobwatch._policies.RetryPolicy``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from jobwatch._exceptions import JobwatchError

__all__ = ["RetryDetails", "parse_retry_after"]


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
            value_ms = float(millis)
        except ValueError:
            value_ms = math.nan
        if math.isfinite(value_ms):
            return max(value_ms / 1000.0, 0.0)
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
    if not math.isfinite(seconds):  # "nan", "inf": not a delay anyone can wait
        return None
    return max(seconds, 0.0)
