"""Per-caller request accounting: ``counting(ledger)`` counts a caller's requests on any client."""

from __future__ import annotations

import anyio
import pytest

from jobwatch import (
    Client,
    ClientStatistics,
    EvsJob,
    GesEngineJob,
    JobNotFound,
    JobRef,
    JobSnapshot,
    RetryPolicy,
    ServerError,
)
from jobwatch._client import RequestLedger, counting
from jobwatch.sim import Fault, MonotonicClock, Simulator

pytestmark = pytest.mark.anyio

P = "proj-1"
#: Three attempts, no waits between them.
QUICK = RetryPolicy(attempts=3, wait_initial=0.0)


def simulator() -> Simulator[MonotonicClock]:
    sim = Simulator()
    for job in ("a1", "a3", "outside"):
        sim.add_evs_job(P, job, [(0, "RUNNING")])
    sim.add_evs_job(P, "a2", [(0, "RUNNING")], faults=[Fault("http_500", count=1)])
    for job in ("e1", "e2"):
        sim.add_engine_job(P, "g", job, [(0, "running")])
    sim.add_engine_job(P, "g", "e3", [(0, "running")], faults=[Fault("http_500", count=2)])
    # Answered late, so that the other caller's requests run in between.
    sim.add_evs_job(
        P,
        "b1",
        [(0, "RUNNING")],
        faults=[Fault("http_500", count=1), Fault("latency", latency=0.05)],
    )
    sim.add_evs_job(P, "b2", [(0, "RUNNING")], faults=[Fault("http_500")])
    return sim


def totals(*stats: ClientStatistics | RequestLedger) -> tuple[int, int, int]:
    return (
        sum(s.requests for s in stats),
        sum(s.retries for s in stats),
        sum(s.errors for s in stats),
    )


async def test_two_callers_on_two_clients_count_their_own_requests_and_retries() -> None:
    sim = simulator()
    first, second = RequestLedger(), RequestLedger()
    async with (
        Client("http://a.test", P, transport=sim.transport(), retry=QUICK) as a,
        Client("http://b.test", P, transport=sim.transport(), retry=QUICK) as b,
    ):
        await a.fetch(EvsJob("outside"))  # under no ledger: counted by the client only

        async def caller_one() -> None:
            with counting(first):
                refs: list[JobRef] = [EvsJob("a1"), EvsJob("a2"), EvsJob("a3")]
                refs += [GesEngineJob("g", "e1"), GesEngineJob("g", "e3")]
                results = await a.fetch_many(refs)  # child tasks count in `first` too
                assert all(isinstance(r, JobSnapshot) for r in results)
                with pytest.raises(JobNotFound):
                    await b.fetch(EvsJob("nope"))  # a 404: not retried, one error

        async def caller_two() -> None:
            with counting(second):
                await b.fetch(EvsJob("b1"))  # 500, then a slow 200
                with pytest.raises(ServerError):
                    await a.fetch(EvsJob("b2"))  # 500 three times

        async with anyio.create_task_group() as tg:
            tg.start_soon(caller_one)
            tg.start_soon(caller_two)

        # a1, a2 twice, a3, the list of g three times; then the 404.
        assert first == RequestLedger(requests=8, retries=3, errors=1)
        # b1 twice; b2 three times, failed for good.
        assert second == RequestLedger(requests=5, retries=3, errors=1)
        outside = ClientStatistics(requests=1, retries=0, errors=0)
        assert totals(a.statistics(), b.statistics()) == totals(first, second, outside)
        assert len(sim.requests) == 14


async def test_nested_blocks_count_in_every_enclosing_ledger_once() -> None:
    sim = simulator()
    outer, inner = RequestLedger(), RequestLedger()
    async with Client("http://a.test", P, transport=sim.transport(), retry=QUICK) as a:
        with counting(outer) as held:
            assert held is outer
            await a.fetch(EvsJob("a1"))
            with counting(inner), counting(outer):  # outer again: still counted once
                await a.fetch(EvsJob("a2"))  # a 500, then a 200
            await a.fetch(EvsJob("a3"))
        await a.fetch(EvsJob("outside"))
    assert outer == RequestLedger(requests=4, retries=1)
    assert inner == RequestLedger(requests=2, retries=1)
    assert a.statistics().requests == 5


async def test_a_task_started_outside_the_block_does_not_count() -> None:
    sim = simulator()
    ledger = RequestLedger()
    started = anyio.Event()
    async with (
        Client("http://a.test", P, transport=sim.transport(), retry=QUICK) as a,
        anyio.create_task_group() as tg,
    ):

        async def elsewhere() -> None:
            await started.wait()
            await a.fetch(EvsJob("outside"))

        tg.start_soon(elsewhere)
        with counting(ledger):
            started.set()
            await a.fetch(EvsJob("b1"))
    assert ledger == RequestLedger(requests=2, retries=1)
    assert a.statistics().requests == 3
