"""The poller's cheap clock and the lazy ``Signal``: the same behaviour as what they replace.

``loop_clock()`` must read the very clock ``anyio.current_time()`` reads, on
both backends, virtual time included (a trio ``MockClock``, an asyncio loop whose
``time`` a test replaced); a ``Signal`` must stay level-free when it makes its
event only for a waiter: a fire nobody waits for wakes nobody later.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest
import trio
from loopclock import LoopClock
from trio.testing import MockClock

from jobwatch import Client, EvsJob, PollPolicy, Watcher
from jobwatch._clock import loop_clock
from jobwatch._stream import Signal
from jobwatch.sim import Simulator

pytestmark = pytest.mark.anyio


async def test_the_loop_clock_reads_anyios_clock(anyio_backend: str) -> None:
    clock = loop_clock()
    before = anyio.current_time()
    read = clock()
    after = anyio.current_time()
    assert before <= read <= after
    await anyio.sleep(0.01)
    assert clock() >= read + 0.01 - 1e-6


def test_the_loop_clock_follows_trios_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        clock = loop_clock()
        start = clock()
        await trio.sleep(3600)
        return start, clock()

    start, end = trio.run(main, clock=MockClock(autojump_threshold=0))
    assert end - start == pytest.approx(3600)


def test_the_loop_clock_reads_a_replaced_asyncio_time() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        clock = loop_clock()
        loop.time = lambda: 1234.5  # type: ignore[method-assign]
        return clock()

    assert asyncio.run(main()) == 1234.5


def test_a_watch_in_virtual_time_polls_at_the_virtual_due_times() -> None:
    """Every due time the poller sets comes from the clock it reads: on trio's
    MockClock a job polled every 10 s and ending at 500 s is seen by 510 s."""

    async def main() -> tuple[str, float, int]:
        sim = Simulator(clock=LoopClock())
        sim.add_evs_job("proj-1", "j1", [(0, "RUNNING"), (500, "SUCCESS")])
        policy = PollPolicy(wait_initial=10.0, wait_max=10.0, wait_jitter=0.0)
        async with (
            Client("http://sim.test", "proj-1", transport=sim.transport()) as client,
            Watcher(client, policy=policy) as watcher,
        ):
            start = anyio.current_time()
            with anyio.fail_after(10_000):
                outcome = await watcher.wait(EvsJob("j1"))
            return outcome.state.value, anyio.current_time() - start, len(sim.requests)

    state, took, requests = trio.run(main, clock=MockClock(autojump_threshold=0))
    assert state == "succeeded"
    assert 500 <= took <= 510 + 1e-6
    assert abs(requests - took / 10) <= 2


async def test_a_fire_with_nobody_waiting_wakes_nobody_later() -> None:
    signal = Signal()
    signal.fire()
    woke = False

    async def waiter() -> None:
        nonlocal woke
        await signal.wait()
        woke = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert not woke, "a fire before the wait woke it"
        signal.fire()
        await anyio.wait_all_tasks_blocked()
        assert woke
        tg.cancel_scope.cancel()


async def test_a_fire_wakes_every_waiter_and_only_once() -> None:
    signal = Signal()
    wakes = [0, 0, 0]

    async def waiter(i: int) -> None:
        while True:
            await signal.wait()
            wakes[i] += 1

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(waiter, i)
        await anyio.wait_all_tasks_blocked()
        signal.fire()
        await anyio.wait_all_tasks_blocked()
        assert wakes == [1, 1, 1]
        signal.fire()
        signal.fire()  # the second before anyone waits again: no extra wake-up
        await anyio.wait_all_tasks_blocked()
        assert wakes == [2, 2, 2]
        tg.cancel_scope.cancel()
