"""The batched hand-off of due jobs to the workers (``_poller``): try to break it.

The scheduler queues every due target at once (up to twice the workers) and wakes
idle workers for them; these tests fill that queue (many jobs due together, few
workers, slow answers, a consumer that dawdles behind a small buffer), then
unwatch jobs that sit in it, or cancel everything at a random point, and check
the guarantees: exactly one final event per job, each job's events in order,
nothing lost under backpressure, the queue within its bound, nothing left behind.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable

import anyio
import pytest

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GaveUp,
    GiveUpReason,
    JobState,
    PollPolicy,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch.sim import Fault, Simulator, serve
from jobwatch.sim._clock import FirstReadClock

pytestmark = pytest.mark.anyio

P = "proj-1"
POLICY = PollPolicy(wait_initial=0.005, wait_max=0.02, wait_jitter=0.0)
RETRY = RetryPolicy(attempts=3, wait_initial=0.005, wait_max=0.02, retry_after_max=0.05)
ORDER = [JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED]


def many_jobs(rng: random.Random, n: int) -> Simulator[FirstReadClock]:
    """``n`` EVS jobs whose timelines start at the first request (not at server start)."""
    clock = FirstReadClock()
    sim = Simulator(clock=clock, seed=rng.randrange(1 << 30))
    for i in range(n):
        end = rng.uniform(0.1, 1.0)
        sim.add_evs_job(P, f"j{i}", [(0, "INIT"), (end / 2, "RUNNING"), (end, "SUCCESS")])
    sim.add_fault(Fault("latency", probability=0.3, latency=0.01))
    sim.add_fault(Fault("http_500", probability=0.03))
    clock.arm()
    return sim


def jobwatch_tasks() -> list[str]:
    names = [t.name or "" for t in anyio.get_running_tasks()]
    return [name for name in names if name.startswith("jobwatch")]


def check_order(events: list[Event]) -> None:
    """One job's events: states only move forward, the final event last and alone."""
    finals = [e for e in events if e.final]
    assert len(finals) == 1, events
    assert events[-1] is finals[0], events
    states = [e.state for e in events if isinstance(e, Transition)]
    ranks = [ORDER.index(s) for s in states]
    assert ranks == sorted(set(ranks)), states


@pytest.mark.parametrize("seed", range(3))
async def test_unwatching_queued_jobs_under_backpressure_ends_each_once(
    seed: int, on_stack: Callable[..., Client]
) -> None:
    rng = random.Random(seed)
    n = 60
    sim = many_jobs(rng, n)
    refs = [EvsJob(f"j{i}") for i in range(n)]
    concurrency = rng.choice([1, 2, 3])
    unwatched: set[EvsJob] = set()
    seen: dict[EvsJob, list[Event]] = {ref: [] for ref in refs}
    most_ready = 0
    with serve(sim) as url:
        async with (
            on_stack(url, retry=RETRY) as client,
            Watcher(
                client, policy=POLICY, buffer=rng.choice([1, 3, 64]), concurrency=concurrency
            ) as watcher,
        ):
            watcher.watch_many(refs)
            with anyio.fail_after(60):
                async for event in watcher.events():
                    assert event.parent is None
                    assert isinstance(event.ref, EvsJob)
                    seen[event.ref].append(event)
                    most_ready = max(most_ready, len(watcher._poller._ready))
                    if rng.random() < 0.15:  # unwatch jobs, queued or not
                        for ref in rng.sample(refs, 3):
                            unwatched.add(ref)
                            watcher.unwatch(ref)
                    if rng.random() < 0.1:
                        await anyio.sleep(rng.uniform(0, 0.02))  # the consumer dawdles
            stats = watcher.statistics()
        assert jobwatch_tasks() == []
    assert most_ready <= 2 * concurrency
    for ref, events in seen.items():
        check_order(events)
        final = events[-1]
        if ref not in unwatched:  # nothing lost: every job watched to its end
            assert isinstance(final, Transition), final
            assert final.state is JobState.SUCCEEDED
        elif isinstance(final, GaveUp):
            assert final.reason is GiveUpReason.REMOVED, final
    assert stats.polls >= n - len(unwatched)
    assert stats.events > n  # transitions on the way, not only the first answer
    gc.collect()


@pytest.mark.parametrize("seed", range(4))
async def test_cancelling_while_a_batch_is_queued_or_in_a_worker(seed: int) -> None:
    rng = random.Random(1000 + seed)
    n = 60
    sim = many_jobs(rng, n)
    refs = [EvsJob(f"j{i}") for i in range(n)]
    seen: dict[EvsJob, list[Event]] = {ref: [] for ref in refs}
    queued_at_cancel = -1
    with serve(sim) as url:
        with anyio.move_on_after(rng.uniform(0.0, 0.5)) as scope:
            async with (
                Client(url, P, retry=RETRY) as client,
                Watcher(client, policy=POLICY, buffer=rng.choice([1, 8]), concurrency=2) as watcher,
            ):
                watcher.watch_many(refs)
                try:
                    async for event in watcher.events():
                        assert isinstance(event.ref, EvsJob)
                        seen[event.ref].append(event)
                        if rng.random() < 0.2:
                            await anyio.sleep(rng.uniform(0, 0.03))
                finally:
                    queued_at_cancel = len(watcher._poller._ready)
        assert jobwatch_tasks() == []
        with anyio.fail_after(5):
            while sim.open_connections:  # noqa: ASYNC110 - the server's state
                await anyio.sleep(0.01)
    assert 0 <= queued_at_cancel <= 4
    for events in seen.values():
        if not events:
            continue
        assert sum(e.final for e in events) <= 1, events  # at most one final, then nothing
        if events[-1].final or not scope.cancel_called:
            check_order(events)
    gc.collect()


async def test_jobs_due_together_are_all_polled_in_due_order() -> None:
    # One worker, many jobs due at the same instant: the scheduler queues them in
    # one go (as many as fit), the worker polls them earliest-due first, and none
    # is skipped or polled twice before every other has had its turn.
    sim = Simulator()
    n = 40
    for i in range(n):
        sim.add_evs_job(P, f"d{i}", [(0, "RUNNING")])
    polled: list[str] = []
    with serve(sim) as url:
        async with (
            Client(url, P) as client,
            Watcher(
                client,
                policy=PollPolicy(wait_initial=30, wait_jitter=0.0),
                concurrency=1,
                events=False,
                on_poll=lambda d: polled.append(d.ref.job_id),
            ) as watcher,
        ):
            watcher.watch_many(EvsJob(f"d{i}") for i in range(n))
            with anyio.fail_after(30):
                while len(polled) < n:  # noqa: ASYNC110 - counting the hook's calls
                    await anyio.sleep(0.01)
            assert len(watcher._poller._ready) == 0
    assert polled == [f"d{i}" for i in range(n)]
