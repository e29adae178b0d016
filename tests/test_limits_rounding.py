"""A ``RateLimit``'s wait wakes at the time the window frees, not a rounding short of
it (the ``Retry-After`` gate waits the same way, ``sleep_until``).

A wait of ``deadline - now`` seconds ends at ``now + (deadline - now)``, which in
floating point can be ``now`` itself: a loop that then finds the window still full
slept for nothing, and at once again, forever, in virtual time (trio's
``MockClock`` only moves when every task waits).  A real-time guard (an alarm)
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from loopclock import LoopClock
from trio.testing import MockClock

from jobwatch import Client, EvsJob, JobRef, PollPolicy, RateLimit, Watcher
from jobwatch.sim import Quota, Simulator

P = "proj-1"
URL = "http://sim.test"


@contextmanager
def real_time_limit(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still spinning after {seconds} s of real time")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


async def watch_rate_limited() -> list[float]:
    """40 jobs for 12 s through ``RateLimit(10, 1.0)`` under a 20/s quota: a watch in
    which the limiter's wait once woke a rounding short of the window's end (at
    8.096 s) and then spun there."""
    sim = Simulator(clock=LoopClock())
    sim.set_quota(Quota(20, burst=1))
    refs: list[JobRef] = [EvsJob(f"j{i}") for i in range(40)]
    for ref in refs:
        sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0)
    async with (
        Client(
            URL, P, transport=sim.transport(), max_in_flight=10, rate_limit=RateLimit(10, 1.0)
        ) as client,
        Watcher(client, policy=policy) as watcher,
    ):
        watcher.watch_many(refs)
        await trio.sleep(12.0)
    return [r.t for r in sim.requests]


def test_a_rate_limited_watch_in_virtual_time_goes_on() -> None:
    with real_time_limit(20):
        sent = trio.run(watch_rate_limited, clock=MockClock(autojump_threshold=0))
    assert max(sent) > 11.0  # it got to the end
    for second in range(12):  # and the limit held
        assert sum(second <= t < second + 1 for t in sent) <= 10
