"""What the harness, the simulator server and the contenders share.

Nothing here imports jobwatch, httpx or the SDK: each process imports only what it
measures.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "PROJECT",
    "RESULT_PREFIX",
    "Scenario",
    "cpu_seconds",
    "current_rss_mb",
    "emit",
    "evs_time",
    "job_id",
    "peak_rss_mb",
    "start_timeline",
]

#: The project ID every simulated job lives in.
PROJECT = "bench-project"
#: The engine graph of the coalescing scenario.
GRAPH = "bench-graph"
#: A contender's result is the one stdout line starting with this.
RESULT_PREFIX = "BENCH-RESULT "

ScenarioKind = Literal["evs", "engine"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """The jobs a simulator server holds, the same for every contender of a run.

    ``n`` jobs, RUNNING from 0 (engine jobs: pending, then running), each ending
    with success at a uniform time in ``[a, b]`` seconds after the contender
    starts (``seed`` fixes the draw).  ``b`` None: the jobs never end.
    """

    kind: ScenarioKind
    n: int
    a: float
    b: float | None
    seed: int = 20240101

    def to_json(self) -> str:
        """The scenario as a JSON object (how it travels on command lines)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        """The scenario ``to_json`` wrote."""
        data = json.loads(text)
        return cls(
            kind=data["kind"],
            n=int(data["n"]),
            a=float(data["a"]),
            b=None if data["b"] is None else float(data["b"]),
            seed=int(data["seed"]),
        )


def job_id(index: int) -> str:
    """The ID of job number ``index`` of a scenario."""
    return f"job-{index:06d}"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """The largest resident set size this process has had, in MB (MiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return float(kib) / divisor


def current_rss_mb() -> float | None:
    """The resident set size now, in MB (MiB); None where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def evs_time(text: str | None) -> float | None:
    """An EVS time (``2024-01-01T00:00:01.234Z``) as POSIX seconds; None for ""/None."""
    if not text:
        return None
    return datetime.fromisoformat(text).timestamp()


def start_timeline(base_url: str) -> float:
    """Ask the simulator server to (re)build its jobs now; returns the wall time of t=0.

    Called by each contender once it is ready (imports done, client built), so
    that each sees the same timeline relative to its own start.
    """
    with urllib.request.urlopen(base_url + "/_bench/start", timeout=120) as response:  # noqa: S310
        data = json.loads(response.read())
    return float(data["epoch"])


def emit(result: dict[str, Any]) -> None:
    """Print a contender's result line (the harness reads it from stdout)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
