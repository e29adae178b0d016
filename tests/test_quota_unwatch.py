"""``unwatch`` and closing the watcher while a poll waits to send its request.

Under a quota whose window the gateway names (``limit:1,time:1 minute``) the
budget's next token is a minute away: a poll whose request was throttled, or
held by a ``RateLimit``, waits in its worker.  What the tests try to break: the
job's ``GaveUp(removed)`` waiting for that token (the regression the model test
found, ``events()`` not ending within 2 s of unwatching everything), a request
still sent for an abandoned poll, a batch's poll abandoned while it still serves
a watched job, a second final event, and the watcher's exit held by the wait.
The waits are real (a minute), the bounds a second: no sleep decides a result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import trio
from loopclock import LoopClock
from trio.testing import MockClock

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GesEngineJob,
    JobRef,
    JobState,
    PollPolicy,
    RateLimit,
    RetryDetails,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch._client import fast_available
from jobwatch.sim import Quota, Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj-1"
#: After one request the gateway throttles, naming a window: the next token is 61 s away.
MINUTE = Quota(1, "1 minute")
#: A call may wait that long for its retry (the default 60 s would give up at once).
PATIENT = RetryPolicy(timeout=600.0)
POLICY = PollPolicy(wait_initial=0.01, wait_max=0.01, wait_jitter=0.0)
PROMPT = 1.0  # seconds an unwatched job may take to end, against a wait of a minute


@asynccontextmanager
async def client_on(
    stack: str, sim: Simulator[Any], backend: str, **kwargs: Any
) -> AsyncIterator[Client]:
    if stack == "in-process":
        async with Client("http://sim.test", P, transport=sim.transport(), **kwargs) as client:
            yield client
        return
    if stack == "aiohttp" and (backend != "asyncio" or not fast_available()):
        pytest.skip("aiohttp runs on asyncio only (and needs the fast extra)")
    with serve(sim) as url:
        async with Client(url, P, fast=stack == "aiohttp", **kwargs) as client:
            assert client.transport_name == stack
            yield client


def retried() -> tuple[anyio.Event, Callable[[RetryDetails], None]]:
    """An event set at the first retry, and the hook that sets it."""
    happened = anyio.Event()
    return happened, lambda details: happened.set()


async def read_all(watcher: Watcher, into: list[Event]) -> None:
    async for event in watcher.events():
        into.append(event)


def shape(events: list[Event]) -> list[tuple[JobRef, str]]:
    return [
        (e.ref, e.state.name if isinstance(e, Transition) else f"GaveUp:{e.reason.value}")
        for e in events
    ]


async def until_waiting(client: Client) -> None:
    """Until the client's budget binds and a request waits in it for its next token."""
    budget = client.budget
    assert budget is not None
    with anyio.fail_after(5):
        # (Its lock is held by the request sleeping for the token: the wait is under way.)
        while budget.expected_wait() < 30 or not budget._lock.locked():  # noqa: ASYNC110
            await anyio.sleep(0.005)


@pytest.mark.parametrize("stack", ["in-process", "httpx", "aiohttp"])
async def test_unwatch_ends_a_job_whose_retry_waits_for_the_budget_at_once(
    stack: str, anyio_backend: str
) -> None:
    sim = Simulator()
    sim.set_quota(MINUTE)
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    ref = EvsJob("j")
    throttled, hook = retried()
    events: list[Event] = []
    async with (
        client_on(stack, sim, anyio_backend, retry=PATIENT, on_retry=hook) as client,
        Watcher(client, policy=POLICY) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch(ref)
        tg.start_soon(read_all, watcher, events)
        with anyio.fail_after(5):
            await throttled.wait()  # the second poll: 429, its retry waits a minute
        await until_waiting(client)
        assert [r.status_code for r in sim.requests] == [200, 429]
        started = anyio.current_time()
        watcher.unwatch(ref)
        with anyio.fail_after(PROMPT):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
        took = anyio.current_time() - started
        watcher.unwatch(ref)  # ended: a no-op
    assert shape(events) == [(ref, "RUNNING"), (ref, "GaveUp:removed")], events
    assert took < PROMPT
    assert [r.status_code for r in sim.requests] == [200, 429]  # the abandoned retry never went
    assert client.statistics().throttles == 1


class Hold(httpx.AsyncBaseTransport):
    """Holds each request ``holds`` picks (by the request and its number, from 1)
    until ``release`` is set, then sends it on to ``inner``; the rest go at once."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, holds: Callable[[httpx.Request, int], bool]
    ) -> None:
        self.inner = inner
        self.holds = holds
        self.held = anyio.Event()
        self.release = anyio.Event()
        self.seen = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen += 1
        if self.holds(request, self.seen):
            self.held.set()
            await self.release.wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def second(request: httpx.Request, number: int) -> bool:
    return number == 2


def for_job(job: str) -> Callable[[httpx.Request, int], bool]:
    return lambda request, number: request.url.path.endswith(f"/jobs/{job}")


async def test_unwatch_while_a_request_is_out_ends_the_job_at_its_retry(anyio_backend: str) -> None:
    # Unwatched while its request is being answered: the answer (a throttle) is
    # waited for, and the retry it calls for, a minute away, is not.
    sim = Simulator()
    sim.set_quota(MINUTE)
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    ref = EvsJob("j")
    transport = Hold(sim.transport(), second)
    events: list[Event] = []
    async with (
        Client("http://sim.test", P, transport=transport, retry=PATIENT) as client,
        Watcher(client, policy=POLICY) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch(ref)
        tg.start_soon(read_all, watcher, events)
        with anyio.fail_after(5):
            await transport.held.wait()
        watcher.unwatch(ref)
        await anyio.sleep(0.05)
        assert watcher.statistics().jobs_open == 1  # its request is out: it is answered
        transport.release.set()
        with anyio.fail_after(PROMPT):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
    assert shape(events) == [(ref, "RUNNING"), (ref, "GaveUp:removed")], events
    assert [r.status_code for r in sim.requests] == [200, 429]
    assert client.statistics().throttles == 1  # the answer was read, and taught the budget


async def test_unwatch_ends_a_request_held_by_a_rate_limit_at_once(
    anyio_backend: str,
) -> None:
    # The scheduler paces by the adaptive budget only: a user's RateLimit holds a
    # first request in its worker, which unwatch cuts short the same way.
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    ref = EvsJob("j")
    events: list[Event] = []
    limit = RateLimit(1, per=60.0)
    async with (
        client_on("in-process", sim, anyio_backend, rate_limit=limit) as client,
        Watcher(client, policy=POLICY) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch(ref)
        tg.start_soon(read_all, watcher, events)
        with anyio.fail_after(5):
            while not events:  # noqa: ASYNC110 - the reader's list
                await anyio.sleep(0.005)
        await anyio.sleep(0.1)  # the second poll (due after 0.01 s) waits for the limit
        assert watcher.statistics().jobs_open == 1
        watcher.unwatch(ref)
        with anyio.fail_after(PROMPT):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
    assert shape(events) == [(ref, "RUNNING"), (ref, "GaveUp:removed")], events
    assert len(sim.requests) == 1


async def test_a_batch_poll_waits_on_while_it_serves_a_watched_job(anyio_backend: str) -> None:
    sim = Simulator()
    sim.set_quota(MINUTE)
    for job in ("a", "b"):
        sim.add_engine_job(P, "g", job, [(0, "RUNNING")])
    a, b = GesEngineJob("g", "a"), GesEngineJob("g", "b")
    throttled, hook = retried()
    events: list[Event] = []
    async with (
        client_on("in-process", sim, anyio_backend, retry=PATIENT, on_retry=hook) as client,
        Watcher(client, policy=POLICY) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch_many([a, b])
        tg.start_soon(read_all, watcher, events)
        with anyio.fail_after(5):
            await throttled.wait()  # one list request for both, then a throttled one
        await until_waiting(client)
        watcher.unwatch(a)
        await anyio.sleep(0.2)
        assert watcher.statistics().jobs_open == 2  # a's poll still serves b: it waits
        watcher.unwatch(b)  # now it serves nobody: abandoned
        with anyio.fail_after(PROMPT):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
    assert sorted(shape(events)[2:], key=str) == [(a, "GaveUp:removed"), (b, "GaveUp:removed")]
    assert {s for _, s in shape(events)[:2]} == {JobState.RUNNING.name}
    assert [r.status_code for r in sim.requests] == [200, 429]


async def test_closing_the_watcher_ends_a_wait_for_the_budget(anyio_backend: str) -> None:
    sim = Simulator()
    sim.set_quota(MINUTE)
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    throttled, hook = retried()
    async with client_on("in-process", sim, anyio_backend, retry=PATIENT, on_retry=hook) as client:
        with anyio.fail_after(PROMPT + 5):
            async with Watcher(client, policy=POLICY) as watcher:
                watcher.watch(EvsJob("j"))
                await throttled.wait()
                await until_waiting(client)
                started = anyio.current_time()
        assert anyio.current_time() - started < PROMPT
        # The budget is left as the wait found it: the next token is still a minute away.
        assert client.budget is not None
        assert client.budget.expected_wait() > 30
    assert [r.status_code for r in sim.requests] == [200, 429]


def test_in_virtual_time_the_removed_outcome_comes_at_the_instant_of_unwatch() -> None:
    """trio's autojumping clock: a wait not cut short would jump its minute away."""

    async def main() -> tuple[list[Event], float, list[int | None]]:
        sim = Simulator(clock=LoopClock())
        sim.set_quota(MINUTE)
        sim.add_evs_job(P, "j", [(0, "RUNNING")])
        throttled, hook = retried()
        events: list[Event] = []
        async with (
            Client(
                "http://sim.test", P, transport=sim.transport(), retry=PATIENT, on_retry=hook
            ) as client,
            Watcher(client, policy=POLICY) as watcher,
            anyio.create_task_group() as tg,
        ):
            watcher.watch(EvsJob("j"))
            tg.start_soon(read_all, watcher, events)
            await throttled.wait()
            await until_waiting(client)
            started = anyio.current_time()
            watcher.unwatch(EvsJob("j"))
            with anyio.move_on_after(600):  # virtual: a wait that was not cut short ends
                while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                    await anyio.sleep(0.001)
            took = anyio.current_time() - started
        return events, took, [r.status_code for r in sim.requests]

    events, took, statuses = trio.run(main, clock=MockClock(autojump_threshold=0))
    assert shape(events) == [(EvsJob("j"), "RUNNING"), (EvsJob("j"), "GaveUp:removed")]
    assert took < 0.01  # virtual seconds; the token was 61 s away
    assert statuses == [200, 429]


async def test_unwatch_ends_a_poll_waiting_for_a_slot_at_once(anyio_backend: str) -> None:
    """A poll waiting for one of the client's ``max_in_flight`` slots waits to send
    as much as one waiting for a token: unwatch ends it at once, holding no slot and
    sending nothing.  Here the one slot is the user's own ``fetch``, held by the
    server for as long as the test likes (it waited for that fetch before)."""
    sim = Simulator()
    sim.add_evs_job(P, "mine", [(0, "RUNNING")])
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    ref = EvsJob("j")
    transport = Hold(sim.transport(), for_job("mine"))
    events: list[Event] = []
    fetched: list[JobState] = []

    async def fetch_mine(client: Client) -> None:
        fetched.append((await client.fetch(EvsJob("mine"))).state)

    async with (
        Client("http://sim.test", P, transport=transport, max_in_flight=1) as client,
        Watcher(client, policy=POLICY, concurrency=2) as watcher,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(fetch_mine, client)
        with anyio.fail_after(5):
            await transport.held.wait()
        assert client.free_slots == 0
        watcher.watch(ref)
        tg.start_soon(read_all, watcher, events)
        await anyio.wait_all_tasks_blocked()
        assert len(client._in_flight._waiters) == 1  # its poll waits for the slot
        started = anyio.current_time()
        watcher.unwatch(ref)
        with anyio.fail_after(PROMPT):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
        took = anyio.current_time() - started
        assert client.free_slots == 0  # still the user's fetch's
        transport.release.set()
        with anyio.fail_after(5):
            while not fetched:  # noqa: ASYNC110 - the fetch's list
                await anyio.sleep(0.005)
        assert client.free_slots == 1  # the abandoned poll took none
    assert shape(events) == [(ref, "GaveUp:removed")], events
    assert took < PROMPT
    assert fetched == [JobState.RUNNING]
    assert [r.job for r in sim.requests] == ["mine"]  # none for j


async def test_unwatch_ends_jobs_queued_for_a_busy_worker_at_once(anyio_backend: str) -> None:
    """Due jobs wait for a worker in the ready queue (two per worker), and one more
    in the scheduler's hand-off while the queue is full: none of them is being
    polled, so ``unwatch`` ends each at once, without waiting for the worker (here
    tied up for as long as the test likes by a request the server holds)."""
    sim = Simulator()
    names = ("a", "b", "c", "d")
    for name in names:
        sim.add_evs_job(P, name, [(0, "RUNNING")])
    a, *queued = refs = [EvsJob(name) for name in names]
    transport = Hold(sim.transport(), for_job("a"))
    events: list[Event] = []
    async with (
        Client("http://sim.test", P, transport=transport) as client,
        Watcher(client, policy=POLICY, concurrency=1) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch_many(refs)
        tg.start_soon(read_all, watcher, events)
        with anyio.fail_after(5):
            await transport.held.wait()  # the one worker polls a
        await anyio.wait_all_tasks_blocked()
        poller = watcher._poller
        assert list(poller._ready) == [watcher._table.open[r] for r in queued[:2]]
        assert watcher._table.open[queued[2]].in_flight  # handed out, waiting for room
        for ref in queued:
            watcher.unwatch(ref)
        assert watcher.statistics().jobs_open == 1  # at once: only a, being polled
        assert not poller._ready
        transport.release.set()
        with anyio.fail_after(5):
            while len(sim.requests) < 2:  # noqa: ASYNC110 - the simulator's log
                await anyio.sleep(0.005)
        watcher.unwatch(a)
        with anyio.fail_after(5):
            while watcher.statistics().jobs_open:  # noqa: ASYNC110 - the watcher's state
                await anyio.sleep(0.005)
    assert {r.job for r in sim.requests} == {"a"}  # the unwatched jobs were never polled
    for ref in queued:
        assert shape([e for e in events if e.ref == ref]) == [(ref, "GaveUp:removed")]
    assert shape([e for e in events if e.ref == a])[-1] == (a, "GaveUp:removed")
    assert sum(e.final for e in events) == len(refs)
