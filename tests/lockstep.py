"""Watching jobs of a simulator on a ``ManualClock`` in lockstep with the watcher.

Shared by the tests that watch simulated jobs (test_watcher, test_cce_rds, test_family).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from jobwatch import Client, Event, PollPolicy, Watcher
from jobwatch.sim import ManualClock, Simulator


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (state kept by the simulator or the watcher) until it holds."""
    while not condition():  # noqa: ASYNC110 - nothing to wait on but the condition itself
        await anyio.sleep(0.005)


async def lockstep(
    sim: Simulator[ManualClock],
    client: Client,
    refs: list[Any],
    stages: list[float],
    policy: PollPolicy,
) -> list[Event]:
    """Watch ``refs`` (top-level jobs) on ``client``; each time every open one has
    reported the current sim time's state, move the clock to the next stage.  No state
    can be missed, however slow the machine: the simulator's time only moves once the
    watcher has seen it.  The events, in order; ``client`` is closed."""
    events: list[Event] = []

    async def consume(watcher: Watcher) -> None:
        async for event in watcher.events(until_idle=False):
            events.append(event)

    def settled() -> bool:
        polled_after = {e.ref for e in events if e.final}
        # the jobs each answer carried: one job's own, or a list's (issue 13)
        latest = {j: r.t for r in sim.requests if r.status_code == 200 for j, _ in r.served}
        now = sim.clock.now()
        keys = {r.job_id for r in refs if r not in polled_after}
        return all(latest.get(key, -1.0) >= now for key in keys)

    async with client, Watcher(client, policy=policy) as watcher, anyio.create_task_group() as tg:
        tg.start_soon(consume, watcher)
        watcher.watch_many(refs)
        with anyio.fail_after(20):
            for stage in stages:
                await until(settled)
                sim.clock.set(stage)
            await until(lambda: watcher.statistics().jobs_open == 0)
            await until(lambda: watcher.statistics().events == len(events))
        tg.cancel_scope.cancel()
    return events
