"""The poller's cheap clock, wake-ups and ``Signal``: the same behaviour as what they replace.

``loop_clock()`` must read the very clock ``anyio.current_time()`` reads, on
both backends, virtual time included (a trio ``MockClock``, an asyncio loop whose
``time`` a test replaced); a ``Signal`` must stay level-free when it makes its
event only for a waiter: a fire nobody waits for wakes nobody later.  A
wake-up (``jobwatch._wakeup``, a bare loop future on asyncio) must behave as
``anyio.Event`` does for its one waiter, cancellation included, and one waiter's
cancellation must not reach another waiter of the same ``Signal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest
import trio
from loopclock import LoopClock
from trio.testing import MockClock

from jobwatch import Client, EvsJob, PollPolicy, Watcher
from jobwatch._clock import loop_clock
from jobwatch._stream import Signal
from jobwatch._wakeup import wakeup
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


@asynccontextmanager
async def one_waiter(wait: Callable[[], Awaitable[None]]) -> AsyncIterator[list[bool]]:
    """A task awaiting ``wait()`` and blocked in it; the list it appends True to once
    woken.  The block must wake it (the task group waits for it)."""
    woke: list[bool] = []

    async def waiter() -> None:
        await wait()
        woke.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        yield woke


async def test_a_fire_with_nobody_waiting_wakes_nobody_later() -> None:
    signal = Signal()
    signal.fire()
    async with one_waiter(signal.wait) as woke:
        assert not woke, "a fire before the wait woke it"
        signal.fire()
        await anyio.wait_all_tasks_blocked()
        assert woke


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


async def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    """One waiter cancelled by its own scope: the others neither wake nor fail, and
    the next fire wakes them (a future shared by the waiters would have been
    cancelled for all of them, and the cancellation would have surfaced in tasks
    nobody cancelled)."""
    signal = Signal()
    woke: list[int] = []
    scopes = [anyio.CancelScope() for _ in range(3)]

    async def waiter(i: int) -> None:
        with scopes[i]:
            await signal.wait()
            woke.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(waiter, i)
        await anyio.wait_all_tasks_blocked()
        scopes[1].cancel()
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        assert not scopes[0].cancel_called
        assert not scopes[2].cancel_called
        signal.fire()
        await anyio.wait_all_tasks_blocked()
    assert sorted(woke) == [0, 2]
    assert scopes[1].cancelled_caught


async def test_a_wakeup_set_before_its_wait_returns_at_once() -> None:
    woken = wakeup()
    assert not woken.is_set()
    woken.set()
    woken.set()  # a second set does nothing
    assert woken.is_set()
    with anyio.fail_after(1):
        await woken.wait()


async def test_a_wakeup_set_while_waited_on_wakes_its_waiter() -> None:
    woken = wakeup()
    async with one_waiter(woken.wait) as woke:
        assert not woke
        woken.set()
    assert woke == [True]


async def test_a_wakeup_whose_waiter_was_cancelled_can_still_be_set() -> None:
    """Cancelled while waiting: not set; set afterwards (the setter did not know):
    set, without an error; the cancellation stays in the waiter's scope."""
    woken = wakeup()
    with anyio.move_on_after(0.01) as scope:
        await woken.wait()
    assert scope.cancelled_caught
    assert not woken.is_set()
    woken.set()
    assert woken.is_set()


async def test_a_wakeup_set_as_its_waiter_is_cancelled_says_it_was_set() -> None:
    """The poller's idle workers and the slots count on it: a wake-up set in the
    same turn as its waiter's cancellation is set, so the waiter passes it on."""
    woken = wakeup()
    seen: list[bool] = []

    async def waiter(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await woken.wait()
            finally:
                seen.append(woken.is_set())

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, scope)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        woken.set()
    assert seen == [True]


def test_on_asyncio_a_wakeup_is_a_loop_future_and_on_trio_an_anyio_event() -> None:
    async def kind() -> str:
        return type(wakeup()).__name__

    assert asyncio.run(kind()) == "_LoopWakeup"
    assert trio.run(kind) == "Event"
