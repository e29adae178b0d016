"""What the watcher keeps per watched job, as the garbage collector sees it.

A full collection of CPython's garbage collector scans every tracked object of
the process, so that with 100,000 watched jobs each tracked object kept per job
costs the event loop about 35 ms per full collection.  These tests pin down that
the watcher keeps one (its ``Tracked`` record) and nothing that is replaced at
each poll, and that the last snapshot it keeps for ``GaveUp.last`` comes back
whole.
"""

from __future__ import annotations

import gc
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GesJob,
    JobSnapshot,
    JobState,
    PollPolicy,
    Transition,
    Watcher,
)
from jobwatch._tracking import Tracked
from jobwatch.sim import ManualClock, Simulator, SubJob

pytestmark = pytest.mark.anyio

P = "proj"
#: Every job is polled once, then not again for the duration of a test.
ONCE = PollPolicy(wait_initial=600.0, wait_max=600.0, wait_jitter=0.0)


def client_for(sim: Simulator[Any]) -> Client:
    return Client("http://sim.test", P, transport=sim.transport())


def tracked_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


async def watch_until_seen(watcher: Watcher, refs: list[EvsJob]) -> list[Transition]:
    """Watch ``refs`` and return their first-sight transitions (each job polled once)."""
    await watcher.awatch_many(refs)
    seen: list[Transition] = []
    with anyio.fail_after(30):
        async for event in watcher.events(until_idle=False):
            assert isinstance(event, Transition)
            seen.append(event)
            if len(seen) == len(refs):
                break
    return seen


async def test_tracked_objects_per_watched_job() -> None:
    n = 2000
    sim = Simulator(clock=ManualClock())
    for i in range(n):
        sim.add_evs_job(P, f"job-{i}", [(0, "RUNNING")], entities={"volume_id": f"v-{i}"})
    refs = [EvsJob(f"job-{i}") for i in range(n)]
    async with client_for(sim) as client, Watcher(client, policy=ONCE) as watcher:
        await watch_until_seen(watcher, refs[:10])  # the client's connection, the loop's state
        sim.clear_requests()
        before = tracked_objects()
        seen = await watch_until_seen(watcher, refs[10:])
        del seen
        sim.clear_requests()
        after = tracked_objects()
        assert watcher.statistics().polls == n
    # One Tracked per job, and a little slack for whatever the loop and the client
    # hold at the moment; the snapshot, its dicts and the heap entry are not kept.
    assert (after - before) / (n - 10) < 1.5, after - before


async def test_heap_entries_hold_no_job_objects() -> None:
    sim = Simulator(clock=ManualClock())
    for i in range(50):
        sim.add_evs_job(P, f"job-{i}", [(0, "RUNNING")])
    refs = [EvsJob(f"job-{i}") for i in range(50)]
    async with client_for(sim) as client, Watcher(client, policy=ONCE) as watcher:
        await watch_until_seen(watcher, refs)
        heap = watcher._poller.scheduler._heap
        assert len(heap) == 50
        gc.collect()
        for entry in heap:
            assert [type(value) for value in entry] == [float, int]
            assert not gc.is_tracked(entry)
        for job in watcher._table.open.values():
            assert isinstance(job.packed, bytes)
            assert not any(isinstance(referrer, tuple) for referrer in gc.get_referrers(job))


async def test_gave_up_last_is_the_last_snapshot_seen() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        P,
        "batch",
        [(0, "RUNNING")],
        entities={"volume_id": "v-1", "extra": [1, 2.5, None, {"k": "v"}]},
        sub_jobs=[SubJob("sub-1", [(0, "RUNNING")])],
    )
    sim.add_ges_job(P, "g1", "imp", [(0, "running")], related_graph="g1")
    refs: list[Any] = [EvsJob("batch"), GesJob("g1", "imp")]
    async with client_for(sim) as client, Watcher(client, policy=ONCE) as watcher:
        await watcher.awatch_many(refs)
        firsts: dict[Any, JobSnapshot] = {}
        gave_up: list[GaveUp] = []
        with anyio.fail_after(10):
            async for event in watcher.events():
                if isinstance(event, Transition) and event.parent is None:
                    firsts[event.ref] = event.snapshot
                    watcher.unwatch(event.ref)
                elif isinstance(event, GaveUp) and event.parent is None:
                    gave_up.append(event)
    assert {event.ref for event in gave_up} == set(firsts) == set(refs)
    for event in gave_up:
        assert event.last is not None
        assert event.last == firsts[event.ref]
        assert event.last.raw == firsts[event.ref].raw
        assert event.last.ref is event.ref


@pytest.mark.parametrize(
    "snapshot",
    [
        JobSnapshot(
            EvsJob("j"),
            JobState.SUCCEEDED,
            "SUCCESS",
            begin_time=datetime(2024, 1, 1, tzinfo=UTC),
            end_time=datetime(2024, 1, 1, 0, 10, 0, 123456, tzinfo=UTC),
            entities={"volume_id": "v"},
            sub_jobs=(JobSnapshot(EvsJob("sub"), JobState.FAILED, "FAIL", fail_reason="x"),),
            raw={"status": "SUCCESS", "entities": {"volume_id": "v"}, "n": [1, 2.5, None]},
        ),
        JobSnapshot(
            EvsJob("j"),
            JobState.RUNNING,
            "running",
            begin_time=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            end_time=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8))),
            progress=0.5,
        ),
        JobSnapshot(EvsJob("j"), JobState.UNKNOWN, None, begin_time=datetime(2024, 1, 1)),
        # an engine job seen in its graph's list: an equal reference, another object
        JobSnapshot(GesEngineJob("g", "j"), JobState.PENDING, "waiting", request={"a": 1}),
    ],
)
def test_last_snapshot_round_trip(snapshot: JobSnapshot) -> None:
    ref = snapshot.ref if isinstance(snapshot.ref, EvsJob) else GesEngineJob("g", "j")
    job = Tracked(ref, Client("http://sim.test", P), 0.0, None)
    assert job.last is None
    job.last = snapshot
    assert isinstance(job.packed, bytes)
    assert not gc.is_tracked(job.packed)
    copy = job.last
    assert copy == snapshot
    assert copy.raw == snapshot.raw
    assert copy.ref is ref
    for copied, original in [
        (copy.begin_time, snapshot.begin_time),
        (copy.end_time, snapshot.end_time),
    ]:
        assert copied == original
        assert (copied and copied.tzinfo) == (original and original.tzinfo)
    job.last = None
    assert job.packed is None


def test_last_snapshot_that_cannot_be_pickled_is_kept_as_is() -> None:
    snapshot = JobSnapshot(EvsJob("j"), JobState.RUNNING, "RUNNING", raw={"f": lambda: 1})
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(snapshot.raw)
    job = Tracked(snapshot.ref, Client("http://sim.test", P), 0.0, None)
    job.last = snapshot
    assert job.last is snapshot
