"""The triggers' hub (``jobwatch.airflow._hub``): shared clients, reference counts, cancellation.

The hub imports no Airflow, so it is tested here, on asyncio (the triggerer's
loop), against the simulator in process; the trigger and sensor around it are
tested in ``tests_airflow`` (``make test-airflow``, in Airflow's own virtualenv).
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from jobwatch import AKSKAuth, Client, EvsJob, GaveUp, PollPolicy, TokenAuth, Transition
from jobwatch.airflow import _hub
from jobwatch.airflow._hub import Target, hub_statistics, wait_for_job
from jobwatch.sim import ManualClock, SimAuth, Simulator
from jobwatch.testing import FAST_POLL, FAST_RETRY, wait_for_requests, wait_until

P = "proj-1"
AK, SK = "AK-hub-test", "SK-hub-test-secret"
TARGET = Target("http://jobwatch-sim.invalid", P, ak=AK, sk=SK)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim() -> Simulator[ManualClock]:
    return Simulator(clock=ManualClock(), auth=SimAuth(credentials={AK: SK}, tokens={"tok-1"}))


@pytest.fixture
def made(sim: Simulator[ManualClock], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Client]]:
    """Every client the hubs make, bound to ``sim`` in process."""
    clients: list[Client] = []

    def factory(target: Target, auth: AKSKAuth | TokenAuth, options: dict[str, Any]) -> Client:
        client = Client(
            target.endpoint,
            target.project_id,
            auth=auth,
            transport=sim.transport(),
            retry=FAST_RETRY,
            **options,
        )
        clients.append(client)
        return client

    monkeypatch.setattr(_hub, "CLIENT_FACTORY", factory)
    yield clients
    assert _hub._HUBS == {}, "a hub outlived its triggers"


def closed(client: Client) -> bool:
    return bool(client._closed)


async def test_many_triggers_share_one_client_and_the_last_closes_it(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    for i in range(50):
        end = "SUCCESS" if i % 7 else "FAIL"
        sim.add_evs_job(P, f"job-{i}", [(0, "RUNNING"), (1 + i % 5, end)])
    results: dict[int, Any] = {}

    async def one(i: int) -> None:
        results[i] = await wait_for_job(TARGET, EvsJob(f"job-{i}"), FAST_POLL, None)

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
        await wait_for_requests(sim, count=50)
        assert len(made) == 1
        assert [s.triggers for s in hub_statistics()] == [50]
        sim.clock.advance(10)
    assert len(made) == 1
    assert closed(made[0])
    for i, (final, last) in results.items():
        assert isinstance(final, Transition)
        assert final.state.value == ("succeeded" if i % 7 else "failed")
        assert last is not None
        assert last.terminal


async def test_policies_get_their_own_watchers_on_one_client(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "a", [(0, "RUNNING"), (1, "SUCCESS")])
    sim.add_evs_job(P, "b", [(0, "RUNNING"), (1, "SUCCESS")])
    slow = PollPolicy(wait_initial=0.02, wait_max=0.1, wait_jitter=0.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_job, TARGET, EvsJob("a"), FAST_POLL, None)
        tg.start_soon(wait_for_job, TARGET, EvsJob("b"), slow, None)
        await wait_for_requests(sim, count=2)
        assert [(s.watchers, s.jobs) for s in hub_statistics()] == [(2, 2)]
        sim.clock.advance(2)
    assert len(made) == 1
    assert closed(made[0])


async def test_two_triggers_of_one_job_watch_it_once(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "shared", [(0, "RUNNING"), (1, "SUCCESS")])
    got: list[Any] = []

    async def one() -> None:
        got.append(await wait_for_job(TARGET, EvsJob("shared"), FAST_POLL, None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
        await wait_for_requests(sim, count=3)
        assert [s.jobs for s in hub_statistics()] == [1]
        (watcher,) = _hub._HUBS[(asyncio.get_running_loop(), TARGET)].watchers.values()
        assert watcher.statistics().jobs_watched == 1  # one watch for both
        sim.clock.advance(2)
    assert len(got) == 2
    assert all(isinstance(final, Transition) for final, _ in got)
    assert hub_statistics() == []


async def test_a_cancelled_trigger_unwatches_its_job_and_the_others_carry_on(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "left", [(0, "RUNNING")])
    sim.add_evs_job(P, "stays", [(0, "RUNNING"), (5, "SUCCESS")])
    got: list[Any] = []

    async def stays() -> None:
        got.append(await wait_for_job(TARGET, EvsJob("stays"), FAST_POLL, None))

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stays)
            left = asyncio.get_running_loop().create_task(
                wait_for_job(TARGET, EvsJob("left"), FAST_POLL, None)
            )
            await wait_for_requests(sim, job="left", count=2)
            left.cancel()
            with pytest.raises(asyncio.CancelledError):
                await left
            assert [s.jobs for s in hub_statistics()] == [1]
            before = len(sim.requests_for("left"))
            await wait_for_requests(sim, job="stays", since=sim.clock.now(), count=3)
            assert len(sim.requests_for("left")) <= before + 1  # at most the poll in flight
            sim.clock.advance(10)
        gc.collect()
    assert len(got) == 1
    assert isinstance(got[0][0], Transition)
    assert closed(made[0])


async def test_cancelling_the_last_trigger_closes_the_client(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "never", [(0, "RUNNING")])
    task = asyncio.get_running_loop().create_task(
        wait_for_job(TARGET, EvsJob("never"), FAST_POLL, None)
    )
    await wait_for_requests(sim, job="never")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed(made[0])
    assert hub_statistics() == []


async def test_a_deadline_returns_no_outcome_and_the_last_snapshot(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "slow", [(0, "RUNNING")])
    final, last = await wait_for_job(TARGET, EvsJob("slow"), FAST_POLL, 0.2)
    assert final is None
    assert last is not None
    assert last.state.value == "running"
    assert closed(made[0])


async def test_give_ups_come_as_outcomes(sim: Simulator[ManualClock], made: list[Client]) -> None:
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0.05)
    final, last = await wait_for_job(TARGET, EvsJob("missing"), policy, None)
    assert isinstance(final, GaveUp)
    assert final.reason.value == "not_found"
    assert last is None


async def test_each_credential_set_gets_its_own_client(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "j", [(0, "RUNNING"), (1, "SUCCESS")])
    other = Target(TARGET.endpoint, P, token="tok-1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_job, TARGET, EvsJob("j"), FAST_POLL, None)
        tg.start_soon(wait_for_job, other, EvsJob("j"), FAST_POLL, None)
        await wait_until(lambda: len(hub_statistics()) == 2)
        sim.clock.advance(2)
    assert len(made) == 2
    assert all(map(closed, made))


async def test_a_hub_that_cannot_start_fails_its_triggers_and_is_replaced(
    sim: Simulator[ManualClock], made: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _hub.CLIENT_FACTORY

    def broken(*args: Any) -> Client:
        raise ValueError("no client today")

    monkeypatch.setattr(_hub, "CLIENT_FACTORY", broken)
    with pytest.raises(ValueError, match="no client today"):
        await wait_for_job(TARGET, EvsJob("j"), FAST_POLL, None)
    assert _hub._HUBS == {}
    monkeypatch.setattr(_hub, "CLIENT_FACTORY", good)
    sim.add_evs_job(P, "j", [(0, "SUCCESS")])
    final, _ = await wait_for_job(TARGET, EvsJob("j"), FAST_POLL, None)
    assert isinstance(final, Transition)
    assert final.state.value == "succeeded"


def test_a_target_never_shows_its_secrets() -> None:
    shown = repr(TARGET) + str(TARGET)
    assert SK not in shown
    assert AK in shown
    token = Target("https://x.example", P, token="very-secret-token")
    assert "very-secret-token" not in repr(token) + str(token)
    with pytest.raises(ValueError, match="AK and an SK, or a token"):
        Target("https://x.example", P, ak=AK)
    with pytest.raises(ValueError, match="not both"):
        Target("https://x.example", P, ak=AK, sk=SK, token="t")


async def test_engine_jobs_of_one_graph_are_coalesced_across_triggers(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    """Twenty deferred tasks waiting for jobs of one graph: one list request answers them all."""
    from jobwatch import GesEngineJob

    for i in range(20):
        sim.add_engine_job(P, "graph-1", f"e-{i}", [(0, "running"), (1, "complete")])
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(
                    wait_for_job, TARGET, GesEngineJob("graph-1", f"e-{i}"), FAST_POLL, None
                )
            await wait_for_requests(sim, count=3)
            sim.clock.advance(2)
    lists = [r for r in sim.requests if r.path.endswith("/graphs/graph-1/jobs/status")]
    assert len(lists) == len(sim.requests)  # never a request per job
    assert len(lists) <= 10  # a few ticks for 20 jobs, each tick one request
