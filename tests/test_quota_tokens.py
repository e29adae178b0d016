"""The budget's tokens that the scheduler takes ahead of a poll: never spent late.

Once a throttle made the budget bind, the watcher's scheduler waits for a token
before it hands a poll out (so that polls wait in its queue, earliest due first),
and the worker's request then goes without waiting again.  What the tests try to
break: a token taken for a poll that is never sent (its job unwatched after the
hand-off) or sent long after (its worker busy) must not let a later request go
without a token of its own.  Against a gateway whose bucket holds a single
request (``burst=1``), two requests closer than the rate allows are a throttle:
so after the budget learned the rate, no throttle may come.

Runs in virtual time (trio's ``MockClock``, the simulator's clock following it).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from loopclock import LoopClock, virtual

from jobwatch import Client, EvsJob, JobRef, PollDetails, PollPolicy, Watcher
from jobwatch.sim import Fault, Quota, Simulator

P = "proj-1"
URL = "http://sim.test"
RATE = 20  # the tenant's quota, requests/s, in a bucket that holds one request
SLOW = 6.0  # until then every answer takes half a second: the workers are all busy
JOBS = 60


async def watch_and_unwatch(seed: int, slow: bool) -> tuple[list[Any], dict[str, int]]:
    """Watch ``JOBS`` jobs that never end under the quota; every 0.1 s unwatch the
    jobs asked longest ago (the next due: queued, or handed to a worker), until
    half are gone; then watch until 12 s.  Returns the requests and some counts."""
    sim = Simulator(clock=LoopClock())
    sim.set_quota(Quota(RATE, burst=1))
    if slow:
        sim.add_fault(Fault("latency", probability=1.0, latency=0.5, window=(0.0, SLOW)))
    refs: list[JobRef] = [EvsJob(f"j{i}") for i in range(JOBS)]
    for ref in refs:
        sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])
    rng = random.Random(seed)
    asked: dict[JobRef, float] = {ref: -1.0 for ref in refs}
    unwatched = 0

    def seen(details: PollDetails) -> None:
        if details.ref in asked:
            asked[details.ref] = trio.current_time()

    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0)
    async with (
        Client(URL, P, transport=sim.transport(), max_in_flight=2) as client,
        Watcher(client, policy=policy, on_poll=seen) as watcher,
    ):
        watcher.watch_many(refs)
        await trio.sleep(1.0)  # the first throttles: the budget learns the rate
        while len(asked) > JOBS // 2:
            await trio.sleep(0.1)
            oldest = sorted(asked, key=asked.__getitem__)[: rng.randint(1, 4)]
            for ref in oldest:
                del asked[ref]
                watcher.unwatch(ref)
                unwatched += 1
        await trio.sleep(12.0 - trio.current_time())
        throttles = watcher.statistics().throttles
    return list(sim.requests), {"unwatched": unwatched, "throttles": throttles}


@pytest.mark.parametrize("slow", [False, True], ids=["prompt-server", "busy-workers"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tokens_taken_ahead_are_never_spent_late(seed: int, slow: bool) -> None:
    requests, counts = virtual(watch_and_unwatch, seed, slow)
    assert counts["unwatched"] == JOBS // 2
    learned = min(r.t for r in requests if r.status_code == 429)  # the quota was met
    after = [r for r in requests if r.t > learned + 1.0]
    assert len(after) > 0.8 * RATE * (12.0 - learned - 1.0) * (0.2 if slow else 1.0)
    throttled = [round(r.t, 3) for r in after if r.status_code == 429]
    assert throttled == [], f"throttled after the rate was learned at {learned:.2f} s"
