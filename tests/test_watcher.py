"""The watcher against the simulator: transitions, sub-jobs, backoff, coalescing, give-ups."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from lockstep import lockstep, until

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GesJob,
    GiveUpReason,
    JobFailed,
    JobState,
    PollDetails,
    PollPolicy,
    RetryPolicy,
    TokenAuth,
    Transition,
    Watcher,
    WatchGaveUp,
)
from jobwatch.sim import Fault, ManualClock, SimAuth, Simulator, SubJob, serve

pytestmark = pytest.mark.anyio

P = "proj"
FAST = PollPolicy(
    wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0, not_found_grace=2.0
)
QUICK_RETRY = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002)
PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.UNKNOWN,
)


def client_for(sim: Simulator[Any], **kwargs: Any) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Client("http://sim.test", P, transport=sim.transport(), **kwargs)


def steps(events: list[Event], ref: Any) -> list[tuple[Any, Any]]:
    """(previous, state) of each transition of ``ref``, or ('gave_up', reason)."""
    out: list[tuple[Any, Any]] = []
    for e in events:
        if e.ref != ref:
            continue
        out.append((e.previous, e.state) if isinstance(e, Transition) else ("gave_up", e.reason))
    return out


async def run(sim: Simulator[Any], refs: list[Any], **kwargs: Any) -> tuple[list[Event], Any]:
    kwargs.setdefault("policy", FAST)
    async with client_for(sim) as client, Watcher(client, **kwargs) as watcher:
        watcher.watch_many(refs)
        with anyio.fail_after(20):
            events = [e async for e in watcher.events()]
        return events, watcher.statistics()


async def test_transitions_for_every_api() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "evs-1", [(0, "INIT"), (1, "RUNNING"), (2, "SUCCESS")])
    sim.add_ges_job(
        P, "g1", "ges-old", [(0, "pending"), (1, "running"), (2, "success")], v1_body="old"
    )
    sim.add_ges_job(
        P,
        "g1",
        "ges-flat",
        [(0, "pending"), (1, "running"), (2, "failed")],
        fail_reason="bad schema",
    )
    sim.add_ges_job(P, "g1", "ges-wrap", [(0, "running"), (2, "success")], v1_body="wrapped")
    sim.add_engine_job(P, "movie", "eng-1", [(0, "pending"), (1, "running"), (2, "complete")])
    refs = [
        EvsJob("evs-1"),
        GesJob("g1", "ges-old", "v1.0"),
        GesJob("g1", "ges-flat", "v2"),
        GesJob("g1", "ges-wrap", "v1.0"),
        GesEngineJob("movie", "eng-1"),
    ]
    events = await lockstep(sim, client_for(sim), refs, [1, 2], FAST)
    full = [(None, PENDING), (PENDING, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, refs[0]) == full
    assert steps(events, refs[1]) == full
    assert steps(events, refs[2]) == [(None, PENDING), (PENDING, RUNNING), (RUNNING, FAILED)]
    assert steps(events, refs[3]) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, refs[4]) == full
    failed = [e for e in events if e.ref == refs[2]][-1]
    assert isinstance(failed, Transition)
    assert failed.snapshot.fail_reason == "bad schema"
    assert all(e.parent is None for e in events)
    assert len(events) == 14


async def test_states_between_polls_are_not_invented() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "quick", [(0, "INIT"), (1, "RUNNING"), (2, "SUCCESS")])
    # the clock jumps over RUNNING
    events = await lockstep(sim, client_for(sim), [EvsJob("quick")], [2], FAST)
    assert steps(events, EvsJob("quick")) == [(None, PENDING), (PENDING, SUCCEEDED)]


async def test_sub_job_trees_late_nested_and_failing() -> None:
    sim = Simulator(clock=ManualClock())
    leaf_ok = SubJob("leaf-ok", [(0, "RUNNING"), (2, "SUCCESS")], appear_at=1)
    leaf_bad = SubJob(
        "leaf-bad", [(0, "RUNNING"), (3, "FAIL")], appear_at=2, fail_reason="no capacity"
    )
    middle = SubJob("middle", [(0, "RUNNING"), (3, "SUCCESS")], sub_jobs=[leaf_ok, leaf_bad])
    sim.add_evs_job(
        P,
        "batch",
        [(0, "INIT"), (1, "RUNNING"), (4, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[middle, SubJob("late", [(0, "INIT"), (3, "SUCCESS")], appear_at=2)],
    )
    top = EvsJob("batch")
    events = await lockstep(sim, client_for(sim), [top], [1, 2, 3, 4], FAST)
    assert steps(events, top) == [(None, PENDING), (PENDING, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, EvsJob("middle")) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, EvsJob("leaf-ok")) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, EvsJob("leaf-bad")) == [(None, RUNNING), (RUNNING, FAILED)]
    assert steps(events, EvsJob("late")) == [(None, PENDING), (PENDING, SUCCEEDED)]
    by_ref = {e.ref: e.parent for e in events}
    assert by_ref[EvsJob("middle")] == top
    assert by_ref[EvsJob("leaf-ok")] == EvsJob("middle")
    assert by_ref[EvsJob("leaf-bad")] == EvsJob("middle")
    assert by_ref[EvsJob("late")] == top
    final = [e for e in events if e.ref == top][-1]
    assert isinstance(final, Transition)
    assert final.state is SUCCEEDED
    assert [s.ref for s in final.failed_sub_jobs] == [EvsJob("leaf-bad")]
    # every job and sub-job has exactly one final outcome
    finals = Counter(e.ref for e in events if e.final)
    assert set(finals.values()) == {1}
    assert len(finals) == 5
    # a sub-job's first event comes after its parent's first event
    first_index: dict[Any, int] = {}
    for i, e in enumerate(events):
        first_index.setdefault(e.ref, i)
    assert first_index[EvsJob("leaf-ok")] > first_index[EvsJob("middle")] > first_index[top]


async def test_backoff_polls_far_less_than_fixed_interval() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "long", [(0, "RUNNING"), (1.0, "SUCCESS")])
    delays: list[PollDetails] = []
    policy = PollPolicy(wait_initial=0.01, wait_exp_base=2, wait_max=0.16, wait_jitter=0.0)
    events, stats = await run(sim, [EvsJob("long")], policy=policy, on_poll=delays.append)
    naive = 1.0 / 0.01  # fixed polling at the initial interval
    assert steps(events, EvsJob("long")) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert stats.polls <= 14  # 0.01+0.02+0.04+0.08 then 0.16 each: about 10
    assert stats.polls < naive / 5
    planned = [d.next_delay for d in delays]
    assert planned[:5] == [0.01, 0.02, 0.04, 0.08, 0.16]
    assert planned[-1] is None


async def test_interval_resets_when_the_state_changes() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "INIT"), (0.3, "RUNNING"), (0.6, "SUCCESS")])
    seen: list[PollDetails] = []
    policy = PollPolicy(wait_initial=0.01, wait_exp_base=2, wait_max=0.08, wait_jitter=0.0)
    await run(sim, [EvsJob("j")], policy=policy, on_poll=seen.append)
    states = [d.snapshot.state if d.snapshot else None for d in seen]
    after_change = [
        seen[i].next_delay
        for i in range(1, len(seen))
        if states[i] != states[i - 1] and seen[i].next_delay is not None
    ]
    assert after_change == [0.01]  # INIT -> RUNNING resets the interval
    assert max(d.next_delay or 0 for d in seen) == 0.08


async def test_engine_jobs_of_a_graph_share_one_request_per_tick() -> None:
    sim = Simulator()
    count = 60
    for i in range(count):
        sim.add_engine_job(P, "big", f"e{i}", [(0, "running"), (0.2 + i * 0.002, "complete")])
    refs = [GesEngineJob("big", f"e{i}") for i in range(count)]
    events, stats = await run(sim, refs)
    assert all(steps(events, r) == [(None, RUNNING), (RUNNING, SUCCEEDED)] for r in refs)
    lists = [r for r in sim.requests if r.api == "ges-engine"]
    assert stats.requests == len(lists)
    assert len(lists) <= 20  # ~one per tick, not one per job per tick
    assert stats.polls >= count * 2
    assert stats.requests_saved >= stats.polls - len(lists) - count


async def test_not_found_grace_then_not_found() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "slow-to-show", [(0, "INIT"), (0.3, "SUCCESS")], visible_after=0.1)
    policy = PollPolicy(wait_initial=0.02, wait_max=0.05, wait_jitter=0.0, not_found_grace=0.25)
    started = anyio.current_time()
    events, _ = await run(sim, [EvsJob("slow-to-show"), EvsJob("never")], policy=policy)
    assert steps(events, EvsJob("slow-to-show")) == [(None, PENDING), (PENDING, SUCCEEDED)]
    assert steps(events, EvsJob("never")) == [("gave_up", GiveUpReason.NOT_FOUND)]
    gave_up = next(e for e in events if isinstance(e, GaveUp))
    assert gave_up.error is not None
    assert anyio.current_time() - started >= 0.25
    assert len(sim.requests_for("never")) >= 3


async def test_seen_then_vanished_is_expired() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "gone", [(0, "RUNNING"), (0.1, "SUCCESS")], expires_after=0.0)
    policy = PollPolicy(wait_initial=0.03, wait_max=0.03, wait_jitter=0.0, not_found_grace=5)
    events, _ = await run(sim, [EvsJob("gone")], policy=policy)
    assert steps(events, EvsJob("gone")) == [(None, RUNNING), ("gave_up", GiveUpReason.EXPIRED)]
    last = events[-1]
    assert isinstance(last, GaveUp)
    assert last.last is not None
    assert last.last.state is RUNNING


async def test_deadline_and_unknown_status() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "odd", [(0, "ROLLING_BACK")])
    policy = PollPolicy(wait_initial=0.02, wait_max=0.05, wait_jitter=0.0, timeout=0.3)
    started = anyio.current_time()
    events, _ = await run(sim, [EvsJob("odd")], policy=policy)
    elapsed = anyio.current_time() - started
    assert steps(events, EvsJob("odd")) == [(None, UNKNOWN), ("gave_up", GiveUpReason.TIMED_OUT)]
    assert 0.29 <= elapsed < 2.0


async def test_auth_errors_end_the_watch_at_once() -> None:
    sim = Simulator(auth=SimAuth(tokens=frozenset({"right-token"})))
    sim.add_evs_job(P, "a", [(0, "RUNNING")])
    sim.add_evs_job(P, "b", [(0, "RUNNING")])
    async with (
        client_for(sim, auth=TokenAuth("wrong-token")) as client,
        Watcher(client, policy=FAST) as watcher,
    ):
        watcher.watch_many([EvsJob("a"), EvsJob("b")])
        events = [e async for e in watcher.events()]
    assert sorted(e.ref.job_id for e in events) == ["a", "b"]
    assert all(isinstance(e, GaveUp) and e.reason is GiveUpReason.AUTH for e in events)
    assert 1 <= len(sim.requests) <= 2  # only what was in flight at the first 401
    assert "wrong-token" not in str([str(e.message) for e in events if isinstance(e, GaveUp)])


async def test_a_bad_request_ends_the_watch_at_once() -> None:
    sim = Simulator()  # no graph "nowhere": the engine answers 400 GES.8000
    events, _ = await run(sim, [GesEngineJob("nowhere", "e1")])
    assert steps(events, GesEngineJob("nowhere", "e1")) == [("gave_up", GiveUpReason.ERROR)]
    assert isinstance(events[0], GaveUp)
    assert "GES.8000" in events[0].message
    assert len(sim.requests) == 1


async def test_transient_faults_do_not_end_or_duplicate_anything() -> None:
    sim = Simulator(seed=7)
    for kind in ("http_500", "http_503_html", "malformed_json", "error_200", "reset"):
        sim.add_fault(Fault(kind, probability=0.1))
    for i in range(20):
        sim.add_evs_job(P, f"j{i}", [(0, "INIT"), (0.05, "RUNNING"), (0.15 + i * 0.005, "SUCCESS")])
    refs = [EvsJob(f"j{i}") for i in range(20)]
    policy = PollPolicy(
        wait_initial=0.01, wait_max=0.03, wait_jitter=0.1, max_consecutive_errors=50
    )
    events, stats = await run(sim, refs, policy=policy)
    for ref in refs:
        seq = steps(events, ref)
        assert seq[-1] == (seq[-1][0], SUCCEEDED)
        assert len(seq) == len(set(seq))  # no duplicates
        states = [s for _, s in seq]
        assert states == sorted(states, key=[PENDING, RUNNING, SUCCEEDED].index)
    assert stats.retries + stats.errors > 0
    assert any(r.fault for r in sim.requests)


async def test_wait_helpers() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "ok", [(0, "RUNNING"), (0.15, "SUCCESS")])
    sim.add_evs_job(P, "bad", [(0, "RUNNING"), (0.05, "FAIL")], fail_reason="disk full")
    sim.add_evs_job(P, "mid", [(0, "RUNNING"), (0.1, "SUCCESS")])
    async with client_for(sim) as client, Watcher(client, policy=FAST, events=False) as watcher:
        with anyio.fail_after(10):
            order = [
                e.ref.job_id
                async for e in watcher.as_completed([EvsJob("ok"), EvsJob("bad"), EvsJob("mid")])
            ]
            assert order == ["bad", "mid", "ok"]
            snap = await watcher.wait(EvsJob("ok"))
            assert snap.state is SUCCEEDED
            with pytest.raises(JobFailed, match="disk full"):
                await watcher.wait(EvsJob("bad"), raise_on_failure=True)
            assert (await watcher.wait(EvsJob("bad"))).state is FAILED
            outcomes = await watcher.wait_all([EvsJob("mid"), EvsJob("missing")])
        assert isinstance(outcomes[0], Transition)
        assert isinstance(outcomes[1], GaveUp)
        with pytest.raises(WatchGaveUp, match="not_found"):
            await watcher.wait(EvsJob("missing"))
        with pytest.raises(RuntimeError, match="events=False"):
            watcher.events()


async def test_outcomes_are_kept_only_when_asked() -> None:
    sim = Simulator()
    for i in range(20):
        sim.add_evs_job(P, f"k{i}", [(0, "RUNNING"), (0.05, "SUCCESS")])
    async with client_for(sim) as client:
        async with Watcher(client, policy=FAST, keep_outcomes=False) as watcher:
            watcher.watch_many(EvsJob(f"k{i}") for i in range(1, 20))
            with anyio.fail_after(10):
                waited = await watcher.wait(EvsJob("k0"))  # waiting: this one is kept
                events = [e async for e in watcher.events()]
            assert waited.state is SUCCEEDED
            assert len([e for e in events if e.final]) == 20
            assert len(watcher._outcomes) == 0  # handed to the waiter, kept by nobody
            assert watcher._table.open == {}
            assert watcher._table.undelivered == {}
        async with Watcher(client, policy=FAST) as watcher:
            watcher.watch_many(EvsJob(f"k{i}") for i in range(5))
            with anyio.fail_after(10):
                events = [e async for e in watcher.events()]
            assert len(watcher._outcomes) == 5
            watcher.forget(EvsJob("k1"))
            assert EvsJob("k1") not in watcher._outcomes


async def test_awatch_many_registers_in_chunks_and_lets_others_run() -> None:
    sim = Simulator()
    for i in range(30):
        sim.add_evs_job(P, f"a{i}", [(0, "RUNNING"), (0.05, "SUCCESS")])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with (
        client_for(sim) as client,
        Watcher(client, policy=FAST) as watcher,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        before = ticks
        await watcher.awatch_many((EvsJob(f"a{i}") for i in range(30)), chunk=7)
        assert ticks - before >= 2  # 30 jobs in chunks of 7: the ticker ran in between
        assert watcher.statistics().jobs_watched == 30
        with anyio.fail_after(10):
            events = [e async for e in watcher.events()]
        tg.cancel_scope.cancel()
    assert len([e for e in events if e.final]) == 30
    with pytest.raises(ValueError, match="chunk"):
        await watcher.awatch_many([], chunk=0)


async def test_unwatch_ends_with_removed() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        watcher.watch(EvsJob("forever"))
        with anyio.fail_after(5):
            events = watcher.events()
            first = await events.__anext__()
            assert isinstance(first, Transition)
            watcher.unwatch(EvsJob("forever"))
            rest = [e async for e in events]
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in rest] == [
        ("GaveUp", GiveUpReason.REMOVED)
    ]


async def test_resume_does_not_repeat_delivered_transitions() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "r", [(0, "INIT"), (0.2, "RUNNING"), (0.4, "SUCCESS")])
    sub = SubJob("r-sub", [(0, "RUNNING"), (0.3, "SUCCESS")])
    sim.add_evs_job(P, "b", [(0, "RUNNING"), (0.5, "SUCCESS")], sub_jobs=[sub])
    first: list[Event] = []
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        watcher.watch_many([EvsJob("r"), EvsJob("b")])
        with anyio.fail_after(5):
            async for event in watcher.events():
                first.append(event)
                if len(first) == 3:
                    break
        token = json.loads(json.dumps(watcher.export_state()))
    assert {e.ref for e in first} >= {EvsJob("r"), EvsJob("b")}
    second: list[Event] = []
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        assert watcher.resume(token) == 2
        with anyio.fail_after(5):
            second = [e async for e in watcher.events()]
    delivered = {(e.ref, e.state) for e in first if isinstance(e, Transition)}
    again = {(e.ref, e.state) for e in second if isinstance(e, Transition)}
    assert not delivered & again
    for ref in (EvsJob("r"), EvsJob("b"), EvsJob("r-sub")):
        all_steps = steps(first, ref) + steps(second, ref)
        assert all_steps[-1][1] is SUCCEEDED
        assert len(all_steps) == len(set(all_steps))
    with pytest.raises(ValueError, match="resume token"):
        Watcher(client_for(sim)).resume({"version": 99})


async def test_slow_consumer_holds_polling_back_and_loses_nothing() -> None:
    sim = Simulator()
    for i in range(10):
        sim.add_evs_job(P, f"s{i}", [(0, "INIT"), (0.6, "RUNNING"), (0.7, "SUCCESS")])
    refs = [EvsJob(f"s{i}") for i in range(10)]
    async with (
        client_for(sim) as client,
        Watcher(client, policy=FAST, buffer=1, concurrency=4) as watcher,
    ):
        watcher.watch_many(refs)
        await anyio.sleep(0.4)  # nobody reads: the buffer and then the workers fill up
        stalled = watcher.statistics().polls
        events: list[Event] = []
        with anyio.fail_after(20):
            async for event in watcher.events():
                events.append(event)
                await anyio.sleep(0.005)
        stats = watcher.statistics()
    # one event in the buffer, one poll held by each worker; free-running would be ~100
    assert stalled <= 1 + 4 + 1
    for ref in refs:
        seq = steps(events, ref)
        assert seq[0] == (None, PENDING)
        assert seq[-1][1] is SUCCEEDED
        assert len(seq) == len(set(seq))
    assert stats.events == len(events)


async def test_leaving_the_block_cancels_polls_in_flight() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "slow", [(0, "RUNNING")], faults=[Fault("latency", latency=30)])
    started = anyio.current_time()
    async with client_for(sim, timeout=60) as client, Watcher(client, policy=FAST) as watcher:
        watcher.watch(EvsJob("slow"))
        await anyio.sleep(0.1)
        assert watcher.statistics().requests == 1  # in flight, held by the latency
        assert watcher.statistics().polls == 0
    assert anyio.current_time() - started < 5


async def test_cancelling_mid_poll_leaves_no_connection_open() -> None:
    sim = Simulator()
    with serve(sim) as base_url:
        for i in range(6):
            faults = [Fault("latency", latency=30)] if i % 2 else []
            sim.add_evs_job(P, f"c{i}", [(0, "RUNNING")], faults=faults)
        async with Client(base_url, P, timeout=60) as client:
            async with Watcher(client, policy=FAST) as watcher:
                watcher.watch_many(EvsJob(f"c{i}") for i in range(6))
                with anyio.fail_after(5):
                    await until(lambda: sim.open_connections >= 3)
                    # three polls hang on the latency fault; the others poll on
                    await until(lambda: watcher.statistics().polls >= 6)
            # leaving the watcher cancelled the hung polls; the client is still open
            assert sim.open_connections <= client.max_in_flight
        with anyio.fail_after(5):
            await until(lambda: sim.open_connections == 0)


async def test_errors_in_the_watcher_propagate_out_of_the_block() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "x", [(0, "RUNNING")])

    def broken_hook(details: PollDetails) -> None:
        raise RuntimeError("hook failed")

    async def body() -> None:
        async with (
            client_for(sim) as client,
            Watcher(client, policy=FAST, on_poll=broken_hook) as w,
        ):
            w.watch(EvsJob("x"))
            with anyio.fail_after(5):
                await anyio.sleep_forever()

    with pytest.raises(RuntimeError, match="hook failed"):  # as itself, not in a group
        await body()


async def test_watch_outside_the_block_is_an_error() -> None:
    sim = Simulator()
    watcher = Watcher(client_for(sim))
    with pytest.raises(RuntimeError, match="async with"):
        watcher.watch(EvsJob("x"))


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="initial"):
        PollPolicy(wait_initial=0)
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(wait_jitter=1.5)
    with pytest.raises(ValueError, match="timeout"):
        PollPolicy(timeout=0)
    assert PollPolicy(wait_initial=1, wait_exp_base=2, wait_max=5, wait_jitter=0).interval(10) == 5


async def test_over_a_real_socket() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "net", [(0, "INIT"), (1, "RUNNING"), (2, "SUCCESS")])
    sim.add_engine_job(P, "g", "e", [(0, "running"), (2, "complete")])
    refs = [EvsJob("net"), GesEngineJob("g", "e")]
    with serve(sim) as base_url:
        client = Client(base_url, P, retry=QUICK_RETRY)
        events = await lockstep(sim, client, refs, [1, 2], FAST)
    assert steps(events, refs[0]) == [(None, PENDING), (PENDING, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, refs[1]) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
