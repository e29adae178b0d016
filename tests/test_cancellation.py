"""Cancelling the watcher, or its consumer, at random points leaves nothing behind."""

from __future__ import annotations

import gc
import random

import anyio
import pytest

from jobwatch import Client, EvsJob, GesEngineJob, PollPolicy, RetryPolicy, Watcher
from jobwatch.sim import Fault, MonotonicClock, Simulator, SubJob, serve

pytestmark = pytest.mark.anyio

P = "p"
POLICY = PollPolicy(wait_initial=0.01, wait_max=0.05)
RETRY = RetryPolicy(attempts=3, wait_initial=0.005, wait_max=0.02, retry_after_max=0.05)


def populated(seed: int) -> Simulator[MonotonicClock]:
    sim = Simulator(seed=seed)
    for i in range(12):
        subs = [SubJob(f"s{i}", [(0, "RUNNING"), (0.2, "SUCCESS")])] if i % 3 == 0 else []
        sim.add_evs_job(
            P, f"j{i}", [(0, "INIT"), (0.1, "RUNNING"), (0.3, "SUCCESS")], sub_jobs=subs
        )
        sim.add_engine_job(P, "g", f"e{i}", [(0, "running"), (0.25, "complete")])
    sim.add_fault(Fault("latency", probability=0.3, latency=0.2))
    sim.add_fault(Fault("reset", probability=0.05))
    sim.add_fault(Fault("http_500", probability=0.05))
    return sim


def jobwatch_tasks() -> list[str]:
    names = [t.name or "" for t in anyio.get_running_tasks()]
    return [name for name in names if name.startswith("jobwatch")]


async def until_no_connections(sim: Simulator[MonotonicClock]) -> None:
    with anyio.fail_after(5):
        while sim.open_connections:  # noqa: ASYNC110 - the server's state, nothing to wait on
            await anyio.sleep(0.01)


@pytest.mark.parametrize("seed", range(8))
async def test_cancelling_the_whole_watch_at_a_random_point(seed: int) -> None:
    rng = random.Random(seed)
    sim = populated(seed)
    refs = [EvsJob(f"j{i}") for i in range(12)] + [GesEngineJob("g", f"e{i}") for i in range(12)]
    with serve(sim) as url:
        seen = 0
        with anyio.move_on_after(rng.uniform(0.0, 0.4)) as scope:
            async with (
                Client(url, P, retry=RETRY) as client,
                Watcher(client, policy=POLICY, buffer=rng.choice([1, 4, 64])) as watcher,
            ):
                watcher.watch_many(refs)
                async for _ in watcher.events():
                    seen += 1
                    if rng.random() < 0.2:
                        await anyio.sleep(rng.uniform(0, 0.05))  # a consumer that dawdles
        assert jobwatch_tasks() == []
        await until_no_connections(sim)
        assert scope.cancel_called or seen > 0
    gc.collect()  # a leaked stream or generator would warn now, and warnings are errors


@pytest.mark.parametrize("seed", range(6))
async def test_cancelling_only_the_consumer_then_leaving(seed: int) -> None:
    rng = random.Random(100 + seed)
    sim = populated(seed)
    with serve(sim) as url:
        async with Client(url, P, retry=RETRY) as client:
            async with Watcher(client, policy=POLICY, buffer=2) as watcher:
                watcher.watch_many(EvsJob(f"j{i}") for i in range(12))
                with anyio.move_on_after(rng.uniform(0.0, 0.3)):
                    async for _ in watcher.events():
                        pass
                assert jobwatch_tasks()  # the watcher still runs without its consumer
                await anyio.sleep(rng.uniform(0, 0.05))
            assert jobwatch_tasks() == []
        await until_no_connections(sim)
    gc.collect()
