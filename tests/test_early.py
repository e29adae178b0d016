"""Polls taken early to share a wake-up (``_poller.EARLY``): try to break the promises.

A poll whose interval came from the backoff may be made up to ``EARLY`` seconds
before it is due, along with one that is due, as far as its jitter allows.  What
must hold: every interval stays within the jitter band ``PollPolicy`` documents;
a poll at the end of a not-found grace or at a deadline is never early; and the
point of it, fewer wake-ups, is real.  Virtual time (trio's ``MockClock``, the
simulator's clock following the loop's), several seeds.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
import trio
from loopclock import LoopClock, virtual

from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GiveUpReason,
    JobState,
    PollPolicy,
    Transition,
    Watcher,
    _poller,
)
from jobwatch.sim import RecordedRequest, Simulator

P = "proj-1"
URL = "http://sim.test"
#: Slop of a virtual-time comparison (the due times are sums of floats).
EPS = 1e-6


async def watch(
    n: int, policy: PollPolicy, seed: int, ends: bool = True
) -> tuple[list[RecordedRequest], list[Any]]:
    """``n`` EVS jobs (ending in [3, 12] s, or never added when not ``ends``), watched
    to their ends; the simulator's requests and the final events."""
    sim = Simulator(clock=LoopClock())
    rng = random.Random(seed)
    if ends:
        for i in range(n):
            sim.add_evs_job(P, f"j{i}", [(0, "RUNNING"), (rng.uniform(3, 12), "SUCCESS")])
    refs = [EvsJob(f"j{i}") for i in range(n)]
    async with (
        Client(URL, P, transport=sim.transport()) as client,
        Watcher(client, policy=policy, seed=seed) as watcher,
    ):
        watcher.watch_many(refs)
        finals = await watcher.wait_all(refs)
    return sim.requests, finals


def intervals(requests: list[RecordedRequest]) -> list[float]:
    times: dict[str | None, list[float]] = {}
    for request in requests:
        times.setdefault(request.job, []).append(request.t)
    return [b - a for seen in times.values() for a, b in itertools.pairwise(seen)]


@pytest.mark.parametrize("seed", range(3))
def test_early_polls_keep_every_interval_within_the_jitter_band(seed: int) -> None:
    policy = PollPolicy(wait_initial=1.0, wait_exp_base=1.0, wait_max=1.0, wait_jitter=0.1)
    requests, finals = virtual(watch, 300, policy, seed)
    assert all(isinstance(e, Transition) and e.state is JobState.SUCCEEDED for e in finals)
    gaps = intervals(requests)
    assert len(gaps) > 1000
    assert min(gaps) >= 0.9 - EPS  # never shorter than the band allows
    assert max(gaps) <= 1.1 + _poller.LINGER + EPS  # nor later than a wake-up's linger


def wake_ups(requests: list[RecordedRequest]) -> int:
    return len({round(r.t, 9) for r in requests})


def test_early_polls_share_wake_ups(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = PollPolicy(wait_initial=1.0, wait_exp_base=1.0, wait_max=1.0, wait_jitter=0.1)
    shared, _ = virtual(watch, 300, policy, 7)
    monkeypatch.setattr(_poller, "EARLY", 0.0)
    alone, _ = virtual(watch, 300, policy, 7)
    # About the same polls: an early poll's next interval counts from it, so at a
    # 1 s interval polls up to 50 ms early add at most 5 % (2 % here) ...
    assert len(alone) <= len(shared) <= len(alone) * 1.04
    # ... in far fewer wake-ups: 300 jobs a second, 50 ms of slack at most.
    assert wake_ups(shared) <= wake_ups(alone) * 0.6


def test_without_jitter_no_poll_is_early() -> None:
    policy = PollPolicy(wait_initial=0.5, wait_exp_base=1.0, wait_max=0.5, wait_jitter=0.0)
    requests, _ = virtual(watch, 50, policy, 1)
    assert min(intervals(requests)) >= 0.5 - EPS


@pytest.mark.parametrize("seed", range(3))
def test_the_end_of_a_not_found_grace_is_never_polled_early(seed: int) -> None:
    # Polls every ~0.3 s with a 2.9 s grace: the last backoff poll before the grace
    # ends falls within EARLY of it for many jobs, and may go early itself; the poll
    # at the grace's end must not, or the job would be polled once more past it.
    policy = PollPolicy(
        wait_initial=0.3, wait_exp_base=1.0, wait_max=0.3, wait_jitter=0.1, not_found_grace=2.9
    )
    requests, finals = virtual(watch, 200, policy, seed, False)
    assert all(isinstance(e, GaveUp) and e.reason is GiveUpReason.NOT_FOUND for e in finals)
    last: dict[str | None, float] = {}
    for request in requests:
        last[request.job] = request.t
    assert len(last) == 200
    assert min(last.values()) >= 2.9 - EPS
    assert max(last.values()) <= 2.9 + _poller.LINGER + EPS


def test_a_job_times_out_at_its_deadline_not_before() -> None:
    policy = PollPolicy(
        wait_initial=0.7, wait_exp_base=1.0, wait_max=0.7, wait_jitter=0.1, timeout=4.0
    )

    async def main() -> list[tuple[Any, float]]:
        start = trio.current_time()
        sim = Simulator(clock=LoopClock())
        refs = [EvsJob(f"j{i}") for i in range(100)]
        for ref in refs:
            sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])  # never ends
        finals = []
        async with (
            Client(URL, P, transport=sim.transport()) as client,
            Watcher(client, policy=policy) as watcher,
        ):
            watcher.watch_many(refs)
            async for event in watcher.events():
                if event.final:
                    finals.append((event, trio.current_time() - start))
        return finals

    finals = virtual(main)
    assert len(finals) == 100
    assert all(isinstance(e, GaveUp) and e.reason is GiveUpReason.TIMED_OUT for e, _ in finals)
    # The wake-up brought forward to the deadline is at it, not early with another.
    assert min(at for _, at in finals) >= 4.0 - EPS
    assert max(at for _, at in finals) <= 4.0 + _poller.LINGER + EPS
