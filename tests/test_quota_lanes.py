"""Several clients' polls in one watcher (a ``ClientPool``): none holds back another.

A watcher across endpoints paces each client's polls by that client's budget.
When one endpoint's gateway names a window of one request a minute, that
client's next poll waits a minute.  The polls of the other clients, whose
budgets do not bind, must go at their own times meanwhile (they waited behind
it in the scheduler, 61 s), also when the throttled client's slots are all held
by requests waiting out a ``Retry-After`` pause; two budgets that bind, sharing a
few workers, each get their own rate (each got half) and spend no token late;
and a saturated watcher polls every endpoint, in proportion (a lane per budget,
tried in 479b68b and reverted in c6cfc32, starved all but one).

Virtual time (trio's ``MockClock``, the simulators' clocks following it), but for
the saturated watcher: real time on both backends (asyncio's order of running
tasks is what a fix must not starve).
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest
import trio
from loopclock import LoopClock, virtual

from jobwatch import ClientPool, EvsJob, JobRef, PollPolicy, RateLimit, Transition, Watcher
from jobwatch.sim import Fault, Quota, Simulator

P = "proj-1"
SLOW_URL = "https://evs.slow.test"
FREE_URLS = ("https://evs.free-a.test", "https://evs.free-b.test")
POLICY = PollPolicy(wait_initial=1.0, wait_max=1.0, wait_jitter=0.0)
UNTIL = 250.0  # seconds watched: the throttled endpoint's budget lets 4 polls out


async def watch_across(
    slow_jobs: int, free_jobs: int, concurrency: int | None = None
) -> dict[str, Any]:
    sims = {url: Simulator(clock=LoopClock()) for url in (SLOW_URL, *FREE_URLS)}
    sims[SLOW_URL].set_quota(Quota(1, "1 minute"))
    slow = [EvsJob(f"s{i}") for i in range(slow_jobs)]
    for job in slow:
        sims[SLOW_URL].add_evs_job(P, job.job_id, [(0, "RUNNING")])
    free: dict[JobRef, str] = {}
    for url in FREE_URLS:
        for i in range(free_jobs):
            job = EvsJob(f"{url[-8:-5]}{i}")
            # Running from 0, done at 5 s + 1 s per job: each seen within a poll.
            sims[url].add_evs_job(P, job.job_id, [(0, "RUNNING"), (5.0 + i, "SUCCESS")])
            free[job] = url
    seen: dict[JobRef, float] = {}
    async with (
        ClientPool(project_id=P, transport_for=lambda url: sims[url].transport()) as pool,
        Watcher(pool, policy=POLICY, concurrency=concurrency) as watcher,
    ):
        for job in slow:
            watcher.watch(job, endpoint=SLOW_URL)
        for ref, url in free.items():
            watcher.watch(ref, endpoint=url)
        with trio.move_on_after(UNTIL):
            async for event in watcher.events():
                if isinstance(event, Transition) and event.final:
                    seen[event.ref] = trio.current_time()
        slow_requests = sims[SLOW_URL].requests
    return {
        "free": free,
        "seen": seen,
        "slow_statuses": [r.status_code for r in slow_requests],
        "slow_times": [r.t for r in slow_requests],
    }


def check(result: dict[str, Any]) -> None:
    free, seen = result["free"], result["seen"]
    assert set(seen) == set(free), "some jobs of the free endpoints were never seen to end"
    for ref in free:
        ends = 5.0 + int(ref.job_id[3:])
        # Polled every second from 0: seen at the first poll at or after its end.
        assert ends <= seen[ref] <= ends + 1.0 + 0.1, (ref, seen[ref])
    statuses, times = result["slow_statuses"], result["slow_times"]
    assert statuses[0] == 200
    assert 429 in statuses
    # The first throttle taught the budget the window: none comes after it, and the
    # throttled endpoint's own polls still go, a minute apart (not starved).
    learned = times[statuses.index(429)]
    later = [(t, status) for t, status in zip(times, statuses, strict=True) if t > learned + 1]
    assert [status for _, status in later] == [200] * len(later), later
    assert len(later) >= 3, later
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(later)]
    assert all(gap >= 60.0 for gap in gaps), gaps


def test_a_throttled_endpoint_does_not_hold_back_the_others() -> None:
    check(virtual(watch_across, 3, 8))


def test_a_throttled_endpoint_with_one_job_does_not_hold_back_the_others() -> None:
    check(virtual(watch_across, 1, 4))


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_polls_queued_before_the_budget_learned_do_not_tie_up_the_workers(
    concurrency: int,
) -> None:
    """The throttled endpoint's first polls are handed out together, before its
    first throttle taught its budget the window: one worker's retry then waits a
    minute for its token, and the polls still queued must not wait in the other
    workers too (the free endpoints' polls would wait behind them)."""
    check(virtual(watch_across, 6, 4, concurrency))


async def two_throttled_lanes(concurrency: int, latency: float) -> dict[str, list[Any]]:
    """Two endpoints whose gateways hold one request per bucket (20/s), 30 jobs each,
    polled every 50 ms by ``concurrency`` workers, answers ``latency`` s slow; 10 s."""
    urls = ("https://evs.one.test", "https://evs.two.test")
    sims = {url: Simulator(clock=LoopClock()) for url in urls}
    for url, sim in sims.items():
        sim.set_quota(Quota(20, burst=1))
        if latency:
            sim.add_fault(Fault("latency", probability=1.0, latency=latency))
        for i in range(30):
            sim.add_evs_job(P, f"{url[12:15]}{i}", [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0)
    async with (
        ClientPool(project_id=P, transport_for=lambda url: sims[url].transport()) as pool,
        Watcher(pool, policy=policy, concurrency=concurrency) as watcher,
    ):
        for url in urls:
            for i in range(30):
                watcher.watch(EvsJob(f"{url[12:15]}{i}"), endpoint=url)
        await trio.sleep(10.0)
    return {url: sim.requests for url, sim in sims.items()}


@pytest.mark.parametrize(("concurrency", "latency"), [(1, 0.0), (1, 0.03), (2, 0.03), (3, 0.0)])
def test_two_binding_budgets_sharing_workers_spend_no_token_late(
    concurrency: int, latency: float
) -> None:
    """Two budgets that bind, competing for the same few idle workers: after the first
    2 s, when both budgets learned their rate, neither gateway throttles (no token
    is spent late), and both endpoints keep polling."""
    requests = virtual(two_throttled_lanes, concurrency, latency)
    for url, made in requests.items():
        late = [r.t for r in made if r.status_code == 429 and r.t > 2.0]
        assert late == [], (url, late)
        sent = [r for r in made if r.t > 2.0]
        assert len(sent) >= 8 * 5, (url, len(sent))


def test_two_binding_budgets_each_get_their_own_rate() -> None:
    """Each of the two gets at least 75 % of its own 20/s (each got about half when
    the scheduler waited for one budget's token, then for the other's)."""
    requests = virtual(two_throttled_lanes, 2, 0.0)
    for url, made in requests.items():
        sent = [r for r in made if r.t > 2.0]
        assert len(sent) >= 8 * 15, (url, len(sent))


async def behind_a_pause() -> dict[str, Any]:
    """The slow endpoint answers its first two requests 429 with ``Retry-After: 60``,
    naming a window of 100 a second: its budget binds but has tokens, while its
    client's two slots are held by the retries waiting out the pause."""
    sims = {url: Simulator(clock=LoopClock()) for url in (SLOW_URL, FREE_URLS[0])}
    pause = Fault(
        "throttle_429", count=2, retry_after=60, throttle_limit=100, throttle_period="1 second"
    )
    sims[SLOW_URL].add_fault(pause)
    for i in range(4):
        sims[SLOW_URL].add_evs_job(P, f"s{i}", [(0, "RUNNING")])
    free = [EvsJob(f"f{i}") for i in range(6)]
    for i, job in enumerate(free):
        sims[FREE_URLS[0]].add_evs_job(P, job.job_id, [(0, "RUNNING"), (5.0 + i, "SUCCESS")])
    seen: dict[JobRef, float] = {}
    async with (
        ClientPool(
            project_id=P, transport_for=lambda url: sims[url].transport(), max_in_flight=2
        ) as pool,
        Watcher(pool, policy=POLICY) as watcher,
    ):
        for i in range(4):
            watcher.watch(EvsJob(f"s{i}"), endpoint=SLOW_URL)
        for job in free:
            watcher.watch(job, endpoint=FREE_URLS[0])
        with trio.move_on_after(30):
            async for event in watcher.events():
                if isinstance(event, Transition) and event.final:
                    seen[event.ref] = trio.current_time()
        throttled = pool.client(SLOW_URL).statistics().throttles
    return {"free": free, "seen": seen, "throttled": throttled}


def test_a_client_whose_slots_wait_out_a_pause_does_not_hold_back_the_others() -> None:
    result = virtual(behind_a_pause)
    assert result["throttled"] >= 1  # the slow client's budget binds
    seen = result["seen"]
    for i, job in enumerate(result["free"]):
        assert 5.0 + i <= seen[job] <= 5.0 + i + 1.1, (job, seen.get(job))


URLS3 = ("https://evs.a.test", "https://evs.b.test", "https://evs.c.test")
JOBS3 = {URLS3[0]: 8, URLS3[1]: 3, URLS3[2]: 3}


@pytest.mark.anyio
async def test_a_saturated_watcher_polls_every_endpoint_in_proportion(anyio_backend: str) -> None:
    """No quota anywhere; one worker, answers 50 ms slow, every job due every 50 ms:
    far more polls are due than go out.  Each endpoint gets polls in proportion to
    its jobs (at least half its share): the earliest due first, whatever the client.
    (The reverted lanes gave {a: 40, b: 0, c: 0} here on asyncio.)"""
    sims = {url: Simulator() for url in URLS3}
    for url, sim in sims.items():
        sim.add_fault(Fault("latency", probability=1.0, latency=0.05))
        for i in range(JOBS3[url]):
            sim.add_evs_job(P, f"{url[12]}{i}", [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0)
    async with (
        ClientPool(project_id=P, transport_for=lambda url: sims[url].transport()) as pool,
        Watcher(pool, policy=policy, concurrency=1) as watcher,
    ):
        for url in URLS3:
            for i in range(JOBS3[url]):
                watcher.watch(EvsJob(f"{url[12]}{i}"), endpoint=url)
        await anyio.sleep(2.0)
    counts = {url: len(sim.requests) for url, sim in sims.items()}
    total = sum(counts.values())
    assert total >= 20, counts  # (about 40: one worker, 50 ms a request)
    for url, count in counts.items():
        share = total * JOBS3[url] / sum(JOBS3.values())
        assert count >= share / 2, counts


async def rate_limited_pool(busy_jobs: int) -> dict[str, Any]:
    """A pool whose ``RateLimit`` (10 requests/s per endpoint) binds on a busy endpoint
    (``busy_jobs`` jobs polled every second) and not on a quiet one (3 jobs, done at
    5, 6 and 7 s); 20 s."""
    busy_url, quiet_url = "https://evs.busy.test", "https://evs.quiet.test"
    sims = {url: Simulator(clock=LoopClock()) for url in (busy_url, quiet_url)}
    for i in range(busy_jobs):
        sims[busy_url].add_evs_job(P, f"busy{i}", [(0, "RUNNING")])
    for i in range(3):
        sims[quiet_url].add_evs_job(P, f"quiet{i}", [(0, "RUNNING"), (5.0 + i, "SUCCESS")])
    seen: dict[str, float] = {}
    async with (
        ClientPool(
            project_id=P,
            rate_limit=RateLimit(10, per=1.0),
            transport_for=lambda url: sims[url].transport(),
        ) as pool,
        Watcher(pool, policy=POLICY) as watcher,
    ):
        for i in range(busy_jobs):
            watcher.watch(EvsJob(f"busy{i}"), endpoint=busy_url)
        for i in range(3):
            watcher.watch(EvsJob(f"quiet{i}"), endpoint=quiet_url)
        with trio.move_on_after(20.0):
            async for event in watcher.events():
                if isinstance(event, Transition) and event.final:
                    seen[event.ref.job_id] = trio.current_time()
    return {"seen": seen, "busy": [r.t for r in sims[busy_url].requests]}


def test_a_rate_limit_binding_on_one_endpoint_does_not_hold_back_the_others() -> None:
    """The busy endpoint's polls wait for its ``RateLimit`` in the scheduler, aside,
    not in the workers: the quiet endpoint's jobs are seen within their 1 s
    interval (19-24 s late when the busy endpoint's polls filled the workers), and
    the busy endpoint's requests go evenly spaced at its limit (no burst of ten as
    the limit's window turns)."""
    result = virtual(rate_limited_pool, 300)
    assert sorted(result["seen"]) == ["quiet0", "quiet1", "quiet2"]
    for job, at in result["seen"].items():
        ends = 5.0 + int(job[5:])
        assert ends <= at <= ends + 1.0 + 0.1, (job, at)
    busy = result["busy"]
    assert len(busy) >= 190  # its own 10/s, over 20 s
    gaps = [b - a for a, b in itertools.pairwise(busy)]
    assert min(gaps) >= 0.1 - 1e-6, min(gaps)
