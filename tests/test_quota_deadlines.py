"""Deadlines hold while polls wait for the request budget in the scheduler.

A poll set aside until its client's next token (a ``RateLimit`` paces from the
first request; a learned quota from the first throttle) is not in a worker, so
no ``Poll`` deadline cuts its wait: the scheduler itself must let a job whose
``timeout`` comes before that token out at its deadline, to end it with its
``GaveUp(timeout)`` then and without a request (they came one per token, 10 s
apart, before).  Virtual time: trio's ``MockClock``, the simulator following it.
"""

from __future__ import annotations

import anyio
import pytest
from loopclock import LoopClock, virtual

from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    JobRef,
    PollPolicy,
    RateLimit,
    Watcher,
)
from jobwatch.sim import Quota, Simulator

P = "proj-1"
URL = "http://sim.test"
TIMEOUT = 3.0
POLICY = PollPolicy(wait_initial=1.0, wait_max=1.0, wait_jitter=0.0, timeout=TIMEOUT)


async def watch_past_the_deadline(
    pacing: str, engine: bool, concurrency: int
) -> tuple[dict[JobRef, tuple[str, float]], list[float]]:
    """Six jobs that never end, one request per 10 s allowed (by a ``RateLimit``, or
    by a quota whose window the gateway names): each job's final event and when."""
    sim = Simulator(clock=LoopClock())
    refs: list[JobRef] = []
    for i in range(6):
        if engine:  # two graphs of three: batches of one list request each
            graph = f"g{i % 2}"
            sim.add_engine_job(P, graph, f"j{i}", [(0, "RUNNING")])
            refs.append(GesEngineJob(graph, f"j{i}"))
        else:
            sim.add_evs_job(P, f"j{i}", [(0, "RUNNING")])
            refs.append(EvsJob(f"j{i}"))
    limit = None
    if pacing == "rate_limit":
        limit = RateLimit(1, per=10.0)
    else:
        sim.set_quota(Quota(1, "10 second"))
    finals: dict[JobRef, tuple[str, float]] = {}
    async with (
        Client(URL, P, transport=sim.transport(), rate_limit=limit) as client,
        Watcher(client, policy=POLICY, concurrency=concurrency) as watcher,
    ):
        watcher.watch_many(refs)
        with anyio.fail_after(60):
            async for event in watcher.events():
                if event.final:
                    assert event.ref not in finals, f"a second final event of {event.ref}"
                    reason = event.reason.value if isinstance(event, GaveUp) else "state"
                    finals[event.ref] = (reason, anyio.current_time())
    return finals, [r.t for r in sim.requests]


@pytest.mark.parametrize("pacing", ["rate_limit", "quota"])
@pytest.mark.parametrize("engine", [False, True], ids=["evs", "engine-batches"])
@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_job_waiting_for_a_token_times_out_at_its_deadline(
    pacing: str, engine: bool, concurrency: int
) -> None:
    finals, sent = virtual(watch_past_the_deadline, pacing, engine, concurrency)
    assert len(finals) == 6
    for ref, (reason, at) in finals.items():
        assert reason == "timeout", (ref, reason)
        assert at == pytest.approx(TIMEOUT, abs=1e-6), (ref, at)  # not at a later token
    assert all(t < TIMEOUT for t in sent), sent  # no token spent on a job timing out


async def deadline_behind_the_head() -> dict[str, tuple[str, float]]:
    """B watched at 0 (the first token; due again at 5, deadline 12), A1 at 0.5 and
    A2 at 4 (due at 5.5 and 4: A2 ahead of B among the client's polls set aside,
    deadlines 12.5 and 16); one request per 10 s, polls every 5 s."""
    sim = Simulator(clock=LoopClock())
    for name in ("B", "A1", "A2"):
        sim.add_evs_job(P, name, [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=5.0, wait_max=5.0, wait_jitter=0.0, timeout=12.0)
    finals: dict[str, tuple[str, float]] = {}
    async with (
        Client(URL, P, transport=sim.transport(), rate_limit=RateLimit(1, per=10.0)) as client,
        Watcher(client, policy=policy) as watcher,
        anyio.create_task_group() as tg,
    ):

        async def feed() -> None:
            await anyio.sleep(0.5)
            watcher.watch(EvsJob("A1"))
            await anyio.sleep(3.5)
            watcher.watch(EvsJob("A2"))

        watcher.watch(EvsJob("B"))
        tg.start_soon(feed)
        with anyio.fail_after(60):
            async for event in watcher.events():
                if isinstance(event, GaveUp):
                    finals[event.ref.job_id] = (event.reason.value, anyio.current_time())
                    if len(finals) == 3:
                        break
    return finals


def test_a_deadline_behind_the_head_of_its_clients_polls_aside_is_kept() -> None:
    """Set aside with its client's polls behind one due sooner (whose token comes at
    10 s, then 20 s), B still times out at 12 s (it came out at 16 s, with A2)."""
    finals = virtual(deadline_behind_the_head)
    assert finals["B"] == ("timeout", pytest.approx(12.0, abs=1e-6))
    reason, at = finals["A1"]  # (in the main heap: its wake-up lingers 5 ms, LINGER)
    assert reason == "timeout"
    assert 12.5 <= at <= 12.5 + 0.01
    assert finals["A2"] == ("timeout", pytest.approx(16.0, abs=1e-6))


async def timeouts_behind_a_slow_reader() -> tuple[int, int, int, int]:
    """200 jobs that never end, ``timeout=3``, a buffer of 2 events, 2 workers and no
    budget: the reader reads for 2 s, then nothing until 10 s, then everything."""
    sim = Simulator(clock=LoopClock())
    refs = [EvsJob(f"j{i}") for i in range(200)]
    for ref in refs:
        sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=1.0, wait_max=1.0, wait_jitter=0.0, timeout=TIMEOUT)
    async with (
        Client(URL, P, transport=sim.transport()) as client,
        Watcher(client, policy=policy, buffer=2, concurrency=2) as watcher,
    ):
        watcher.watch_many(refs)
        events = watcher.events()
        with anyio.move_on_after(2.0):
            async for _ in events:
                pass
        await anyio.sleep(8.0)
        buffered, still_open = len(watcher._stream), watcher.statistics().jobs_open
        finals = 0
        async for event in events:
            finals += event.final
    return buffered, watcher._stream.capacity, still_open, finals


def test_timeouts_wait_for_room_in_the_stream_as_every_final_event_does() -> None:
    """Jobs timing out while the reader reads nothing stay open, behind the full
    buffer (a timeout ended by the scheduler itself once went past it: all 200 in
    the buffer of 2); every one times out once read on."""
    buffered, capacity, still_open, finals = virtual(timeouts_behind_a_slow_reader)
    assert buffered <= capacity + 2  # one job's events past the bound per worker at most
    assert still_open >= 190
    assert finals == 200
