"""Poll orders at exactly R requests/s, in a model: why 0.85x N/(2R) is out of reach.

Issue 14 asks for a mean detection lag of at most 0.85x the uniform ideal N/(2R)
under a binding quota.  When the quota binds, a poller chooses only the order of
its polls: R per second, each to one open job.  This model (no HTTP, no clock:
slot k is at time k/R) runs the quota scenario's jobs (N ending at uniform times
in [5, 45] s, the same seeded draw) under several orders, some of them told what
no poller knows, and prints each one's mean lag against N/(2R):

- ``round robin``: the open job asked longest ago (what jobwatch's scheduler does
  when the budget binds: earliest due first);
- ``round robin from 5 s``: the same, first poll at 5 s, when the first job ends
  (told the distribution's start);
- ``likeliest ended``: the open job likeliest to have ended since it was last
  asked, under the true distribution (told it);
- ``window K``: round robin over K jobs at a time, a new one let in as one ends
  (focus on a few, as a per-job-task poller under a limiter does).

None beats round robin by more than a few hundredths: jobs that started together
and end by one distribution are alike but for when each was last asked, and
round robin already asks the one asked longest ago.  Only knowing each job's own
end (or its progress) could do better.
"""

from __future__ import annotations

import random
import statistics
from collections import deque
from collections.abc import Callable

SPAN = (5.0, 45.0)


def _ends(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(*SPAN) for _ in range(n)]


def by_index(n: int, rate: float, seed: int, index: Callable[[float, float], float]) -> float:
    """Each slot to the open job of greatest ``index(now, last asked)``; mean lag / ideal."""
    ends = _ends(n, seed)
    last = [-1.0] * n  # never asked: before any poll
    waiting = set(range(n))
    lags = []
    slot = 0
    while waiting:
        now = slot / rate
        job = max(waiting, key=lambda j: (index(now, last[j]), -j))
        if ends[job] <= now:
            lags.append(now - ends[job])
            waiting.discard(job)
        else:
            last[job] = now
        slot += 1
    return statistics.fmean(lags) / (n / (2 * rate))


def windowed(n: int, rate: float, seed: int, size: int, start: float = 0.0) -> float:
    """Round robin over ``size`` jobs at a time from ``start``; mean lag / ideal."""
    ends = _ends(n, seed)
    outside, ring = deque(range(n)), deque[int]()
    lags = []
    slot = 0
    while outside or ring:
        while len(ring) < size and outside:
            ring.append(outside.popleft())
        now = start + slot / rate
        job = ring.popleft()
        if ends[job] <= now:
            lags.append(now - ends[job])
        else:
            ring.append(job)
        slot += 1
    return statistics.fmean(lags) / (n / (2 * rate))


def _ended_share(now: float, last: float) -> float:
    """P(ended in (last, now] | running at last) for ends uniform over SPAN."""
    a, b = SPAN
    since = min(max(last, a), b)
    return (min(max(now, a), b) - since) / max(b - since, 1e-9)


def run(n: int = 1500, rate: float = 40.0, seeds: range = range(1, 6)) -> dict[str, float]:
    """Each order's mean lag over N/(2R), averaged over ``seeds`` (draws of the ends)."""
    orders: dict[str, Callable[[int], float]] = {
        "round robin": lambda seed: windowed(n, rate, seed, n),
        "round robin from 5 s": lambda seed: windowed(n, rate, seed, n, start=SPAN[0]),
        "likeliest ended": lambda seed: by_index(n, rate, seed, _ended_share),
        "window N/2": lambda seed: windowed(n, rate, seed, n // 2),
        "window N/5": lambda seed: windowed(n, rate, seed, n // 5),
    }
    return {name: statistics.fmean(map(order, seeds)) for name, order in orders.items()}


def table(found: dict[str, float]) -> list[str]:
    return [f"  {name:30} {ratio:.3f}x N/(2R)" for name, ratio in found.items()]


if __name__ == "__main__":
    print("poll orders at exactly R (model; benchmarks/orders.py), N=1500, R=40/s, 5 draws")
    print("\n".join(table(run())))
