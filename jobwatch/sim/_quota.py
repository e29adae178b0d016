"""A tenant quota: the API gateway's request throttling, as a token bucket per tenant.

Huawei's FAQs "How Do I Handle the Error APIG.0308?" (Customer Operation
Capabilities FAQ en-us_topic_0000001887959462; OCR FAQ ocr_01_0041) give the
answer beyond the limit: error code ``APIG.0308`` with the message "The throttling
threshold has been reached: policy user over ratelimit,limit:XX,time:1 second"
(or "time:1 minute").  The shared gateway sends the same under ``APIGW.0308``
(the code the simulator already sends for its ``throttle_429`` fault), with HTTP
429.  No page mentions a ``Retry-After`` header, so none is sent.

What no page settles, and what the simulator chooses: how the gateway counts (a
token bucket here, refilled continuously at ``limit`` per ``period``, holding at
most ``burst`` requests, ``limit`` by default); whether a refused request counts
(it does not here: it takes no token); and what a tenant is (the project in the
path, or the access key of an AK/SK signature, ``key="ak"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from jobwatch.sim._clock import finite

__all__ = ["Quota", "QuotaBook", "QuotaKey"]

QuotaKey: TypeAlias = Literal["project", "ak"]

_PERIOD = re.compile(r"([1-9][0-9]*) (second|minute|hour|day)")
_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_ACCESS = re.compile(r"Access=([^,\s]+)")


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` requests per ``period`` for each tenant, as the gateway throttles.

    ``period`` is written as the gateway writes it (``"1 second"``, ``"5 minute"``);
    ``burst`` is how many requests a tenant that sent nothing for a while may send at
    once (``limit`` when None).  ``key`` says what a tenant is: the project ID in
    the path, or the access key of an AK/SK signature (requests without one count
    under their project).  Beyond it a request gets HTTP 429 ``APIGW.0308`` "The
    throttling threshold has been reached: policy user over
    ratelimit,limit:{limit},time:{period}", without ``Retry-After``.
    """

    limit: int
    period: str = "1 second"
    burst: int | None = None
    key: QuotaKey = "project"

    def __post_init__(self) -> None:
        for name in ("limit", "burst"):
            value = getattr(self, name)
            if value is None and name == "burst":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(self.period, str) or _PERIOD.fullmatch(self.period) is None:
            raise ValueError(f"period must be like '1 second' or '5 minute', not {self.period!r}")
        if self.key not in ("project", "ak"):
            raise ValueError(f"key must be 'project' or 'ak', not {self.key!r}")

    @property
    def seconds(self) -> float:
        """The period in seconds."""
        match = _PERIOD.fullmatch(self.period)
        assert match is not None
        return int(match.group(1)) * _SECONDS[match.group(2)]

    @property
    def rate(self) -> float:
        """Requests per second a tenant gets in the long run."""
        return self.limit / self.seconds

    @property
    def message(self) -> str:
        """The gateway's message for a throttled request."""
        return (
            "The throttling threshold has been reached: policy user over ratelimit,"
            f"limit:{self.limit},time:{self.period}"
        )


class QuotaBook:
    """The token buckets of a quota, one per tenant (guarded by the simulator's lock)."""

    __slots__ = ("_buckets", "quota")

    def __init__(self, quota: Quota) -> None:
        if not isinstance(quota, Quota):
            raise TypeError(f"expected a Quota, not {type(quota).__name__}")
        self.quota = quota
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def tenant(self, project_id: str, headers: Mapping[str, str]) -> str:
        """Who a request counts for: its project, or its access key."""
        if self.quota.key == "ak":
            found = _ACCESS.search(headers.get("authorization", ""))
            if found is not None:
                return "ak:" + found.group(1)
        return "project:" + project_id

    def admit(self, tenant: str, now: float) -> bool:
        """Take one token of ``tenant``'s bucket at sim time ``now``; False when empty."""
        now = finite("now", now)
        quota = self.quota
        capacity = float(quota.burst if quota.burst is not None else quota.limit)
        tokens, at = self._buckets.get(tenant, (capacity, now))
        # A clock put backwards (ManualClock.set) refills nothing, and takes nothing back.
        tokens = min(capacity, tokens + max(now - at, 0.0) * quota.rate)
        at = max(at, now)
        if tokens < 1.0 - 1e-9:  # (a refill summed in floats may fall short of 1 by a hair)
            self._buckets[tenant] = (tokens, at)
            return False
        self._buckets[tenant] = (max(tokens - 1.0, 0.0), at)
        return True
