"""Faults: the ways a simulated request can go wrong, and which requests each one hits."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from jobwatch.sim._clock import finite

__all__ = [
    "API_NAMES",
    "FAULT_KINDS",
    "ApiName",
    "Fault",
    "FaultKind",
    "FaultSlot",
    "SimulatedReset",
]

ApiName: TypeAlias = Literal[
    "evs",
    "ges-v1.0",
    "ges-v2",
    "ges-engine",
    # the EVS-style job family (jobwatch.sim._family)
    "ecs",
    "bms",
    "vpc",
    "ims",
    "ims-cloudimages",
    "deh",
    "sdrs",
    "evs-v2",
    "dcs",
    "cce",
    "rds",
]
API_NAMES: frozenset[str] = frozenset(get_args(ApiName))

FaultKind: TypeAlias = Literal[
    "http_500",
    "http_503_html",
    "throttle_429",
    "error_200",
    "malformed_json",
    "unknown_status",
    "latency",
    "reset",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


class SimulatedReset(ConnectionResetError):
    """The ``reset`` fault: the app aborts the connection by raising this.

    The app first sends the response head, then raises.  In process,
    ``httpx.ASGITransport`` re-raises it; ``Simulator.transport()`` turns it into
    ``httpx.ReadError``.  Over a socket (``serve()``) uvicorn closes the connection
    after the head, so an httpx client sees ``httpx.RemoteProtocolError``.
    """


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault to inject, and which requests it hits.

    ``kind`` is one of:

    * ``http_500``: HTTP 500 with the API's own error body (code ``error_code``,
      default ``SIM.0500``);
    * ``http_503_html``: HTTP 503 with a ``text/html`` page, as a proxy sends it;
    * ``throttle_429``: HTTP 429 with the API gateway's body
      (``APIGW.0308``, ``throttle_limit`` requests per ``throttle_period``) and
      ``Retry-After: retry_after`` when ``retry_after`` is set;
    * ``error_200``: HTTP 200 whose body is ``{"error": {"code", "message"}}``
      (``error_code`` default ``SIM.0200``);
    * ``malformed_json``: HTTP 200 with the normal body cut in half;
    * ``unknown_status``: the normal body with the job's status replaced by ``status``;
    * ``latency``: wait ``latency`` seconds (``anyio.sleep``), then answer normally;
    * ``reset``: abort the connection (see :class:`SimulatedReset`).

    Which requests: those of ``api`` (any when None), inside ``window`` = ``(t0, t1)``
    of sim time (``t0 <= t < t1``; any time when None), then only the first ``count``
    of those (all when None), then each with ``probability`` drawn from the
    simulator's seeded random generator (always when None).  A fault given to an
    ``add_*_job(faults=...)`` call hits only requests for that job (for an engine
    job: the job lists of its graph).  The first fault that fires answers the request:
    job faults are tried before global ones, each list in the order given; faults
    after it are not consulted (their ``count`` is not used up).
    """

    kind: FaultKind
    probability: float | None = None
    count: int | None = None
    window: tuple[float, float] | None = None
    api: ApiName | None = None
    retry_after: int | None = None
    throttle_limit: int = 200
    throttle_period: str = "5 minute"
    error_code: str | None = None
    error_message: str | None = None
    status: str = "UNRECOGNISED"
    latency: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {sorted(FAULT_KINDS)}, not {self.kind!r}")
        if self.api is not None and self.api not in API_NAMES:
            raise ValueError(f"api must be None or one of {sorted(API_NAMES)}, not {self.api!r}")
        if self.probability is not None and not 0.0 <= finite("probability", self.probability) <= 1:
            raise ValueError(f"probability must be between 0 and 1, not {self.probability!r}")
        for name in ("count", "retry_after", "throttle_limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be an integer, not {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, not {value!r}")
        if self.window is not None:
            t0, t1 = (finite("window", t) for t in self.window)
            if t1 < t0:
                raise ValueError(f"window must be (t0, t1) with t0 <= t1, not {self.window!r}")
            object.__setattr__(self, "window", (t0, t1))
        if finite("latency", self.latency) < 0:
            raise ValueError(f"latency must not be negative, not {self.latency!r}")
        if not isinstance(self.status, str):
            raise ValueError(f"status must be a string, not {self.status!r}")


class FaultSlot:
    """A fault as added to a simulator, with how many requests it has considered."""

    __slots__ = ("considered", "fault")

    def __init__(self, fault: Fault) -> None:
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, not {type(fault).__name__}")
        self.fault = fault
        self.considered = 0

    def fires(self, api: ApiName, now: float, rng: random.Random) -> bool:
        """Decide whether this fault hits a request of ``api`` at sim time ``now``."""
        fault = self.fault
        if fault.api is not None and fault.api != api:
            return False
        if fault.window is not None and not fault.window[0] <= now < fault.window[1]:
            return False
        if fault.count is not None:
            if self.considered >= fault.count:
                return False
            self.considered += 1
        return fault.probability is None or rng.random() < fault.probability
