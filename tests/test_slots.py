"""``Slots``, the client's bound on requests in flight: try to exceed it or leak a slot."""

from __future__ import annotations

import random

import anyio
import pytest

from jobwatch._slots import Slots

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("seed", range(10))
async def test_random_cancellation_never_exceeds_nor_leaks_a_slot(seed: int) -> None:
    rng = random.Random(seed)
    total = rng.randint(1, 4)
    slots = Slots(total)
    holding = 0
    most = 0
    entered = 0

    async def user(hold: float) -> None:
        nonlocal holding, most, entered
        async with slots:
            holding += 1
            entered += 1
            most = max(most, holding)
            try:
                await anyio.sleep(hold)
            finally:
                holding -= 1

    async with anyio.create_task_group() as tg:
        scopes = []
        for _ in range(40):
            scope = anyio.CancelScope()
            scopes.append(scope)

            async def run(scope: anyio.CancelScope = scope) -> None:
                with scope:
                    await user(rng.uniform(0, 0.01))

            tg.start_soon(run)
        for _ in range(15):  # cancel users at random: waiting, just handed a slot, holding
            await anyio.sleep(rng.uniform(0, 0.004))
            rng.choice(scopes).cancel()
    assert most <= total
    assert holding == 0
    assert entered > 0
    assert slots.free == total  # every slot came back, whoever was cancelled when


async def test_a_free_slot_is_taken_without_yielding_and_waiters_go_in_order() -> None:
    slots = Slots(1)
    order: list[int] = []
    ran = False
    release = anyio.Event()

    async def other() -> None:
        nonlocal ran
        ran = True

    async def first() -> None:
        async with slots:
            await release.wait()

    async def wait(n: int) -> None:
        async with slots:
            order.append(n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)  # runs at this task's next checkpoint, not before
        async with slots:
            assert not ran
        await anyio.wait_all_tasks_blocked()
        assert ran
        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        for n in range(5):
            tg.start_soon(wait, n)
            await anyio.wait_all_tasks_blocked()  # each queues before the next starts
        assert slots.free == 0
        assert order == []
        release.set()
    assert order == [0, 1, 2, 3, 4]
    assert slots.free == 1


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)
