"""The one-call wait, ``wait_for`` and ``wait_for_sync``: what they return, raise and leave.

The async tests run against the simulator in process, on asyncio and on trio; on
trio the loop runs on an autojumping ``MockClock`` and the simulator's clock
follows the loop's, so deadlines are checked in virtual time, exactly.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import threading
from typing import Any

import anyio
import httpx
import pytest
from loopclock import LoopClock, virtual_backend

import jobwatch
from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GiveUpReason,
    JobFailed,
    JobRef,
    JobSnapshot,
    JobState,
    PollPolicy,
    RetryPolicy,
    WatchGaveUp,
    wait_for,
    wait_for_sync,
)
from jobwatch.sim import Simulator, SubJob, serve

P = "proj"
FAST = PollPolicy(
    wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0, not_found_grace=0.2
)
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """asyncio, and trio on a fresh autojumping MockClock (virtual time) per test."""
    return virtual_backend(request.param)


class Hang(httpx.AsyncBaseTransport):
    """A transport whose requests never get an answer."""

    def __init__(self) -> None:
        self.started = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.started += 1
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


def client_for(sim: Simulator[Any] | None = None, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    if "transport" not in kwargs:
        assert sim is not None
        kwargs["transport"] = sim.transport()
    return Client("http://sim.test", P, **kwargs)


def jobwatch_tasks() -> list[str]:
    names = [t.name or "" for t in anyio.get_running_tasks()]
    return [name for name in names if name.startswith("jobwatch")]


def populated() -> Simulator[Any]:
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "ok", [(0, "INIT"), (0.05, "RUNNING"), (0.1, "SUCCESS")])
    sim.add_evs_job(P, "slow", [(0, "RUNNING"), (0.5, "SUCCESS")])
    sim.add_evs_job(P, "bad", [(0, "RUNNING"), (0.05, "FAIL")], fail_reason="no capacity")
    sim.add_evs_job(
        P,
        "batch",
        [(0, "RUNNING"), (0.1, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[SubJob("vol-a", [(0, "RUNNING"), (0.05, "FAIL")])],
    )
    sim.add_evs_job(P, "slower", [(0, "RUNNING"), (3.0, "SUCCESS")])
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    sim.add_engine_job(P, "g", "e1", [(0, "running"), (0.1, "complete")])
    return sim


# -- async: one job -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_job_returns_its_final_snapshot_and_leaves_nothing_running() -> None:
    sim = populated()
    async with client_for(sim) as client:
        snapshot: JobSnapshot = await wait_for(EvsJob("ok"), client=client, policy=FAST)
        assert jobwatch_tasks() == []
        # the client stays open for more
        engine = await wait_for(GesEngineJob("g", "e1"), client=client, policy=FAST)
    assert snapshot.ref == EvsJob("ok")
    assert snapshot.state is JobState.SUCCEEDED
    assert engine.state is JobState.SUCCEEDED


@pytest.mark.anyio
async def test_a_failed_job_raises_job_failed_or_is_returned_when_asked() -> None:
    sim = populated()
    async with client_for(sim) as client:
        with pytest.raises(JobFailed, match="no capacity") as caught:
            await wait_for(EvsJob("bad"), client=client, policy=FAST)
        returned = await wait_for(EvsJob("bad"), client=client, policy=FAST, raise_on_failure=False)
    assert caught.value.snapshot.state is JobState.FAILED
    assert isinstance(returned, JobSnapshot)
    assert returned.state is JobState.FAILED


@pytest.mark.anyio
async def test_a_failed_sub_job_of_a_successful_batch_raises_job_failed() -> None:
    sim = populated()
    async with client_for(sim) as client:
        with pytest.raises(JobFailed, match="1 failed sub-jobs") as caught:
            await wait_for(EvsJob("batch"), client=client, policy=FAST)
    snapshot = caught.value.snapshot
    assert snapshot.state is JobState.SUCCEEDED
    assert [sub.ref for sub in snapshot.failed_sub_jobs] == [EvsJob("vol-a")]


@pytest.mark.anyio
async def test_a_give_up_raises_watch_gave_up_or_is_returned_when_asked() -> None:
    sim = populated()
    async with client_for(sim) as client:
        with pytest.raises(WatchGaveUp) as caught:
            await wait_for(EvsJob("missing"), client=client, policy=FAST)
        returned = await wait_for(
            EvsJob("missing"), client=client, policy=FAST, raise_on_failure=False
        )
    assert caught.value.outcome.reason is GiveUpReason.NOT_FOUND
    assert isinstance(returned, GaveUp)
    assert returned.reason is GiveUpReason.NOT_FOUND


@pytest.mark.anyio
async def test_the_policy_timeout_is_a_give_up_not_a_timeout_error() -> None:
    sim = populated()
    policy = PollPolicy(wait_initial=0.01, wait_max=0.04, timeout=0.3)
    async with client_for(sim) as client:
        with pytest.raises(WatchGaveUp) as caught:
            await wait_for(EvsJob("forever"), client=client, policy=policy, timeout=60)
    assert caught.value.outcome.reason is GiveUpReason.TIMED_OUT


# -- async: the deadline --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_deadline_holds_and_names_the_jobs_still_open(anyio_backend: Any) -> None:
    sim = populated()
    virtual = anyio_backend != "asyncio"
    limit = 30.0 if virtual else 0.3
    refs = [EvsJob("ok"), EvsJob("forever"), EvsJob("forever")]
    refs += [EvsJob(f"never-{i}") for i in range(6)]  # 7 open, "forever" named once
    for i in range(6):
        sim.add_evs_job(P, f"never-{i}", [(0, "RUNNING")])
    async with client_for(sim) as client:
        start = anyio.current_time()
        with pytest.raises(TimeoutError, match=r"7 job\(s\) did not end within") as caught:
            await wait_for(refs, client=client, policy=FAST, timeout=limit)
        took = anyio.current_time() - start
        assert jobwatch_tasks() == []
    message = str(caught.value)
    assert message.count("evs:forever") == 1
    assert "and 2 more" in message
    assert "evs:ok" not in message
    if virtual:
        assert took == pytest.approx(limit, abs=1e-6)
    else:
        assert limit <= took < limit + 1.0  # real time, on a busy machine


@pytest.mark.anyio
async def test_the_deadline_holds_while_a_request_hangs(anyio_backend: Any) -> None:
    hang = Hang()
    limit = 10.0 if anyio_backend != "asyncio" else 0.2
    async with client_for(transport=hang, timeout=3600) as client:
        start = anyio.current_time()
        with pytest.raises(TimeoutError, match=r"1 job\(s\) did not end within"):
            await wait_for(EvsJob("j"), client=client, policy=FAST, timeout=limit)
        took = anyio.current_time() - start
        assert jobwatch_tasks() == []
    assert hang.started == 1
    if anyio_backend != "asyncio":
        assert took == pytest.approx(limit, abs=1e-6)
    else:
        assert limit <= took < limit + 1.0  # real time, on a busy machine


@pytest.mark.anyio
async def test_a_result_inside_the_deadline_is_returned() -> None:
    sim = populated()
    async with client_for(sim) as client:
        snapshot = await wait_for(EvsJob("slow"), client=client, policy=FAST, timeout=5)
    assert snapshot.state is JobState.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
async def test_a_deadline_that_is_not_positive_is_refused(bad: float) -> None:
    async with client_for(populated()) as client:
        with pytest.raises(ValueError, match="timeout must be None or positive"):
            await wait_for(EvsJob("ok"), client=client, timeout=bad)


# -- async: cancellation --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("after", [0.0, 0.015, 0.05, 0.2])
async def test_cancelling_the_caller_leaves_no_tasks(after: float) -> None:
    sim = populated()
    refs: list[JobRef] = [EvsJob("forever"), EvsJob("slow"), EvsJob("ok"), GesEngineJob("g", "e1")]
    async with client_for(sim) as client:
        with anyio.move_on_after(after) as scope:
            await wait_for(refs, client=client, policy=FAST)
        assert scope.cancelled_caught
        assert jobwatch_tasks() == []
        # the client still works afterwards
        assert (await client.fetch(EvsJob("ok"))).ref == EvsJob("ok")
    gc.collect()  # a leaked stream or generator would warn now, and warnings are errors


@pytest.mark.anyio
async def test_cancelling_the_caller_during_a_hung_request_leaves_no_tasks() -> None:
    hang = Hang()
    async with client_for(transport=hang, timeout=3600) as client:

        async def waiter() -> None:
            await wait_for(EvsJob("j"), client=client, policy=FAST)

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            with anyio.fail_after(5):
                while not hang.started:  # noqa: ASYNC110 - nothing signals a request
                    await anyio.sleep(0.001)
            tg.cancel_scope.cancel()
        assert jobwatch_tasks() == []


# -- async: many jobs -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_many_jobs_come_back_in_the_order_given() -> None:
    sim = populated()
    refs: list[JobRef] = [EvsJob("slow"), GesEngineJob("g", "e1"), EvsJob("ok")]
    async with client_for(sim) as client:
        snapshots: list[JobSnapshot] = await wait_for(refs, client=client, policy=FAST)
    assert [s.ref for s in snapshots] == refs
    assert all(s.state is JobState.SUCCEEDED for s in snapshots)


@pytest.mark.anyio
async def test_a_generator_of_refs_is_read_once() -> None:
    sim = populated()
    async with client_for(sim) as client:
        snapshots = await wait_for(
            (EvsJob(name) for name in ("ok", "slow")), client=client, policy=FAST
        )
    assert [s.ref.job_id for s in snapshots] == ["ok", "slow"]


@pytest.mark.anyio
async def test_one_failing_job_among_many_raises_at_once(anyio_backend: Any) -> None:
    sim = populated()
    refs = [EvsJob("forever"), EvsJob("slower"), EvsJob("bad"), EvsJob("ok")]
    async with client_for(sim) as client:
        start = anyio.current_time()
        with pytest.raises(JobFailed) as caught:
            await wait_for(refs, client=client, policy=FAST, timeout=60)
        took = anyio.current_time() - start
        assert jobwatch_tasks() == []
    assert caught.value.snapshot.ref == EvsJob("bad")
    assert took < 2.0  # before "slower" ends (3 s), long before the deadline


@pytest.mark.anyio
async def test_without_raising_many_jobs_give_every_outcome_in_order() -> None:
    sim = populated()
    refs = [EvsJob("ok"), EvsJob("missing"), EvsJob("bad"), EvsJob("batch")]
    async with client_for(sim) as client:
        results = await wait_for(refs, client=client, policy=FAST, raise_on_failure=False)
    ok, missing, bad, batch = results
    assert isinstance(ok, JobSnapshot)
    assert ok.state is JobState.SUCCEEDED
    assert isinstance(missing, GaveUp)
    assert missing.reason is GiveUpReason.NOT_FOUND
    assert isinstance(bad, JobSnapshot)
    assert bad.state is JobState.FAILED
    assert isinstance(batch, JobSnapshot)
    assert batch.failed_sub_jobs


@pytest.mark.anyio
async def test_duplicate_refs_are_watched_once_and_answered_in_each_place() -> None:
    sim = populated()
    async with client_for(sim) as client:
        results = await wait_for(
            [EvsJob("ok"), EvsJob("slow"), EvsJob("ok")], client=client, policy=FAST
        )
    assert [s.ref.job_id for s in results] == ["ok", "slow", "ok"]
    assert results[0] is results[2]
    # one watch of "ok": its polls stopped when it ended, long before "slow" did
    ended = max(r.t for r in sim.requests_for("ok"))
    assert ended < 0.3


@pytest.mark.anyio
async def test_an_empty_list_returns_at_once_without_a_request() -> None:
    sim = populated()
    async with client_for(sim) as client:
        assert await wait_for([], client=client) == []
        assert await wait_for(iter(()), client=client, timeout=1) == []
    assert sim.requests == []


@pytest.mark.anyio
async def test_bad_arguments_are_refused_before_any_request() -> None:
    sim = populated()
    async with client_for(sim) as client:
        with pytest.raises(TypeError, match="not str"):
            await wait_for("ok", client=client)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not a job reference: 'ok'"):
            await wait_for([EvsJob("ok"), "ok"], client=client)  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="client was closed"):
        await wait_for(EvsJob("ok"), client=client)
    assert sim.requests == []


# -- sync -----------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Simulator[Any]:
    sim = Simulator()
    sim.add_evs_job(P, "ok", [(0, "INIT"), (0.05, "RUNNING"), (0.1, "SUCCESS")])
    sim.add_evs_job(P, "bad", [(0, "RUNNING"), (0.05, "FAIL")])
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    return sim


def no_threads_left_but(before: set[threading.Thread]) -> bool:
    return {t for t in threading.enumerate() if t.is_alive()} <= before


def test_sync_returns_and_raises_as_the_async_one(sim: Simulator[Any]) -> None:
    before = set(threading.enumerate())
    client = client_for(sim)
    snapshot: JobSnapshot = wait_for_sync(EvsJob("ok"), client=client, policy=FAST)
    assert snapshot.state is JobState.SUCCEEDED
    with pytest.raises(JobFailed):
        wait_for_sync([EvsJob("ok"), EvsJob("bad")], client=client, policy=FAST)
    results = wait_for_sync(
        [EvsJob("bad"), EvsJob("missing")], client=client, policy=FAST, raise_on_failure=False
    )
    assert [type(r) for r in results] == [JobSnapshot, GaveUp]
    assert wait_for_sync([], client=client) == []
    assert no_threads_left_but(before)
    gc.collect()


def test_sync_deadline(sim: Simulator[Any]) -> None:
    client = client_for(sim)
    with pytest.raises(TimeoutError, match=r"evs:forever"):
        wait_for_sync(EvsJob("forever"), client=client, policy=FAST, timeout=0.2)


def test_sync_reuses_one_client_over_real_sockets(sim: Simulator[Any]) -> None:
    # Each call runs its own event loop: the connections of one are closed before
    # the next opens its own (on the client's default stack, aiohttp or httpx).
    with serve(sim) as url:
        client = Client(url, P, retry=QUICK_RETRY)
        first = wait_for_sync(EvsJob("ok"), client=client, policy=FAST)
        second = wait_for_sync(EvsJob("ok"), client=client, policy=FAST)
        assert first.state is second.state is JobState.SUCCEEDED
        assert client._lazy_exchange is None
    gc.collect()  # an unclosed session or socket would warn now, and warnings are errors


CTRL_C = """
import sys
import httpx
import jobwatch
from jobwatch.sim import Simulator

sim = Simulator()
sim.add_evs_job("p", "j", [(0, "RUNNING")])
inner = sim.transport()


class Announce(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request):
        print("polled", flush=True)
        return await inner.handle_async_request(request)

    async def aclose(self):
        await inner.aclose()


client = jobwatch.Client("http://sim.test", "p", transport=Announce())
try:
    jobwatch.wait_for_sync(jobwatch.EvsJob("j"), client=client, policy=jobwatch.PollPolicy())
except KeyboardInterrupt:
    print("interrupted", client._lazy_exchange, flush=True)
    sys.exit(130)
"""


def test_sync_ctrl_c_interrupts_and_closes_the_connections() -> None:
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "always", "-c", CTRL_C],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "polled\n"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert out == "interrupted None\n"
    assert "Warning" not in err, err


def test_sync_refuses_a_client_already_used_in_an_event_loop(sim: Simulator[Any]) -> None:
    client = client_for(sim)

    async def use() -> None:
        await client.fetch(EvsJob("ok"))

    anyio.run(use)
    with pytest.raises(RuntimeError, match="already used in an event loop"):
        wait_for_sync(EvsJob("ok"), client=client)
    anyio.run(client.aclose)
    with pytest.raises(RuntimeError, match="client was closed"):
        wait_for_sync(EvsJob("ok"), client=client)


@pytest.mark.anyio
async def test_sync_inside_a_running_loop_says_what_to_do(
    anyio_backend: Any, sim: Simulator[Any]
) -> None:
    client = client_for(sim)
    backend = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]
    with pytest.raises(RuntimeError, match=rf"inside a running event loop \({backend}\)") as e:
        wait_for_sync(EvsJob("ok"), client=client)
    assert "await jobwatch.wait_for(...)" in str(e.value)
    assert "notebook" in str(e.value)
    assert sim.requests == []
    await client.aclose()


def test_sync_inside_a_loop_callback_as_in_a_notebook(sim: Simulator[Any]) -> None:
    # A notebook runs a cell's synchronous code from the kernel's loop, outside any task.
    client = client_for(sim)
    caught: list[BaseException] = []

    def cell() -> None:
        try:
            wait_for_sync(EvsJob("ok"), client=client)
        except RuntimeError as error:
            caught.append(error)

    async def kernel() -> None:
        asyncio.get_running_loop().call_soon(cell)
        await asyncio.sleep(0.01)

    asyncio.run(kernel())
    assert len(caught) == 1
    assert "await jobwatch.wait_for(...)" in str(caught[0])
    assert sim.requests == []


def test_both_are_exported_with_docstrings() -> None:
    for name in ("wait_for", "wait_for_sync"):
        assert name in jobwatch.__all__
        doc = getattr(jobwatch, name).__doc__
        assert doc
        assert "client" in doc
