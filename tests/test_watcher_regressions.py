"""Regression tests for the watcher defects of issue 10 (see the redesign's semantics).

Each test guards one defect (named in its comment) and asserts the behaviour the
redesigned watcher promises.  They run in process against the simulator, on asyncio
and on trio; on trio the event loop runs on ``trio.testing.MockClock`` with autojump,
and the simulator's clock follows the loop's, so timelines and deadlines cost no
real time there.  On asyncio the intervals are small instead.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from loopclock import LoopClock, virtual_backend

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GiveUpReason,
    JobFailed,
    JobRef,
    JobSnapshot,
    JobState,
    PollDetails,
    PollPolicy,
    RetryDetails,
    RetryPolicy,
    Transition,
    Watcher,
    WatchGaveUp,
)
from jobwatch.sim import Fault, ManualClock, Simulator, SubJob

pytestmark = pytest.mark.anyio

P = "proj"
FAST = PollPolicy(
    wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0, not_found_grace=5.0
)
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)
RUNNING, SUCCEEDED, FAILED = JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """asyncio, and trio on a fresh autojumping MockClock (virtual time) per test."""
    return virtual_backend(request.param)


Handler = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


class Intercept(httpx.AsyncBaseTransport):
    """Lets ``handler`` answer a request (or delay it); sends the rest to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, handler: Handler) -> None:
        self._inner = inner
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._handler(request)
        if response is not None:
            return response
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class SmallPages(Client):
    """A client whose engine job lists come in pages of two (so they take several requests)."""

    def list_engine_jobs(
        self, graph_name: str, *, page_size: int | None = 2, offset: int = 0
    ) -> AsyncGenerator[JobSnapshot, None]:
        return super().list_engine_jobs(graph_name, page_size=page_size, offset=offset)


def client_for(
    sim: Simulator[Any], transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Client("http://sim.test", P, transport=transport or sim.transport(), **kwargs)


def is_virtual(backend: str) -> bool:
    return backend == "trio"


async def collect(
    watcher: Watcher,
    within: float,
    *,
    limit: int | None = None,
    pause: float = 0.0,
    stop: Callable[[Event], bool] | None = None,
) -> tuple[list[Event], bool]:
    """Read events (until idle, or ``limit`` of them, or one that ``stop`` accepts).

    Returns the events and False when ``within`` seconds ran out first (the stream hung).
    """
    events: list[Event] = []
    with anyio.move_on_after(within) as scope:
        async for event in watcher.events(until_idle=limit is None and stop is None):
            events.append(event)
            if (limit is not None and len(events) >= limit) or (stop and stop(event)):
                break
            if pause:
                await anyio.sleep(pause)
    return events, not scope.cancelled_caught


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the condition
            await anyio.sleep(0.005)


def check_chains(events: list[Event], resumed: dict[JobRef, JobState] | None = None) -> None:
    """Contract 2: per ref, ``previous`` is the state of the last transition delivered
    (at first: None, or the state a resume token says was delivered)."""
    last: dict[JobRef, JobState] = dict(resumed or {})
    for event in events:
        if isinstance(event, Transition):
            assert event.previous == last.get(event.ref), (
                f"{event.ref}: {event.previous} -> {event.state} after {last.get(event.ref)}"
            )
            last[event.ref] = event.state


def check_lifecycles(events: list[Event], resumed: dict[JobRef, JobState] | None = None) -> None:
    """Contract 1 for one watch of each top-level job (and contract 2).

    Each job and sub-job that emitted has exactly one final event, the last of its
    events; a top-level job's final is also after every event of its sub-jobs.
    """
    parent_of: dict[JobRef, JobRef | None] = {}
    for event in events:
        parent_of.setdefault(event.ref, event.parent)

    def root(ref: JobRef) -> JobRef:
        while (parent := parent_of.get(ref)) is not None:
            ref = parent
        return ref

    finals = Counter(event.ref for event in events if event.final)
    for ref in parent_of:
        assert finals[ref] == 1, f"{ref} has {finals[ref]} final events: {events}"
    final_at = {event.ref: i for i, event in enumerate(events) if event.final}
    for i, event in enumerate(events):
        assert i <= final_at[event.ref], f"{event} comes after the final event of its job"
        top = root(event.ref)
        if top != event.ref:
            assert i < final_at[top], f"{event} comes after the final event of {top}"
    check_chains(events, resumed)


def finals_of(events: list[Event]) -> dict[JobRef, Event]:
    return {event.ref: event for event in events if event.final and event.parent is None}


# -- 1. unwatch twice -----------------------------------------------------------------------


async def test_unwatch_twice_gives_one_removed_and_the_stream_goes_on() -> None:
    # Defect 1: unwatch(ref) twice before the spawned finish ran emitted two
    # GaveUp(removed), jobs_open went to -1, events() ended early and a later
    # events() never returned.
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "long", [(0, "RUNNING")])
    sim.add_evs_job(P, "later", [(0, "RUNNING"), (0.05, "SUCCESS")])
    long, later = EvsJob("long"), EvsJob("later")
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        watcher.watch(long)
        watcher.unwatch(long)
        watcher.unwatch(long)  # a second unwatch is a no-op
        events, ended = await collect(watcher, 2)
        open_then = watcher.statistics().jobs_open
        watcher.unwatch(long)  # after the job's end: no-op too
        watcher.unwatch(EvsJob("never-watched"))  # unknown: no-op
        watcher.watch(later)
        more, more_ended = await collect(watcher, 2)
        open_at_end = watcher.statistics().jobs_open
    assert ended, f"events() hung after {events}"
    gave_up = [e for e in events if isinstance(e, GaveUp)]
    assert [(e.ref, e.reason) for e in gave_up] == [(long, GiveUpReason.REMOVED)]
    check_lifecycles(events)
    assert open_then == 0
    assert more_ended, f"the second events() hung after {more}"
    assert [e.ref for e in more if e.final] == [later]
    assert all(e.ref == later for e in more)
    assert open_at_end == 0


# -- 2. unwatch while a poll's events are held back -------------------------------------


async def test_unwatch_under_backpressure_keeps_the_final_event_last() -> None:
    # Defect 2: unwatch finished the job in another task while a worker was still
    # sending that job's events under backpressure (buffer=1): the batch's final
    # GaveUp came before a sub-job's transition, and sub-jobs' finals got out of order.
    sim = Simulator(clock=ManualClock())
    subs = [
        SubJob("done-a", [(0, "SUCCESS")]),
        SubJob("done-b", [(0, "SUCCESS")]),
        SubJob("open-c", [(0, "RUNNING")]),
        SubJob("open-d", [(0, "RUNNING")]),
    ]
    sim.add_evs_job(P, "batch", [(0, "RUNNING")], job_type="batchCreateVolume", sub_jobs=subs)
    batch = EvsJob("batch")
    async with client_for(sim) as client, Watcher(client, policy=FAST, buffer=1) as watcher:
        watcher.watch(batch)
        await until(lambda: len(sim.requests) >= 1)
        await anyio.sleep(0.05)  # the first poll's 5 events: one in the buffer, 4 held back
        watcher.unwatch(batch)
        events, ended = await collect(watcher, 5, pause=0.01)  # a slow reader
    assert ended, f"events() hung after {events}"
    check_lifecycles(events)
    last = events[-1]
    assert isinstance(last, GaveUp)
    assert (last.ref, last.reason) == (batch, GiveUpReason.REMOVED)


# -- 3. exceptions of the block leave it unwrapped ----------------------------------------


async def test_job_failed_is_caught_as_itself_inside_and_outside_the_block() -> None:
    # Defect 3: JobFailed from wait(raise_on_failure=True) came out of
    # `async with Watcher(...)` as an ExceptionGroup, so `except JobFailed` missed it.
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "bad", [(0, "RUNNING"), (0.03, "FAIL")], fail_reason="disk full")
    bad = EvsJob("bad")
    async with client_for(sim) as client:
        with anyio.fail_after(5):
            caught = False
            async with Watcher(client, policy=FAST) as watcher:
                try:
                    await watcher.wait(bad, raise_on_failure=True)
                except JobFailed:
                    caught = True
            assert caught
            with pytest.raises(JobFailed, match="disk full"):
                async with Watcher(client, policy=FAST) as watcher:
                    await watcher.wait(bad, raise_on_failure=True)


async def test_fail_after_inside_the_block_raises_timeout_error_unwrapped() -> None:
    # Defect 3: TimeoutError of an anyio.fail_after around a wait inside the block
    # left the block as an ExceptionGroup, so `except TimeoutError` missed it.
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    forever = EvsJob("forever")

    async def wait_too_long(client: Client) -> None:
        async with Watcher(client, policy=FAST) as watcher:
            with anyio.fail_after(0.05):
                await watcher.wait(forever)

    async with client_for(sim) as client:
        with anyio.fail_after(5):
            timed_out = False
            async with Watcher(client, policy=FAST) as watcher:
                try:
                    with anyio.fail_after(0.05):
                        await watcher.wait(forever)
                except TimeoutError:
                    timed_out = True
            assert timed_out
            with pytest.raises(TimeoutError):
                await wait_too_long(client)


# -- 4. one job's hostile answer does not kill the watcher --------------------------------


async def _watch_with_one_hostile_job(
    respond: Callable[[httpx.Request], httpx.Response], **client_kwargs: Any
) -> dict[JobRef, Event]:
    """Watch ``fine``, ``sad`` and ``bad``; requests for ``bad`` are answered by ``respond``."""
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "fine", [(0, "RUNNING"), (0.05, "SUCCESS")])
    sim.add_evs_job(P, "sad", [(0, "RUNNING"), (0.05, "FAIL")])

    async def hostile(request: httpx.Request) -> httpx.Response | None:
        return respond(request) if request.url.path.endswith("/jobs/bad") else None

    transport = Intercept(sim.transport(), hostile)
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, max_consecutive_errors=2)
    refs = [EvsJob("fine"), EvsJob("sad"), EvsJob("bad")]
    async with (
        client_for(sim, transport, **client_kwargs) as client,
        Watcher(client, policy=policy) as watcher,
    ):
        watcher.watch_many(refs)
        events, ended = await collect(watcher, 5)
    assert ended, f"events() hung after {events}"
    check_lifecycles(events)
    return finals_of(events)


def _assert_only_bad_gave_up(finals: dict[JobRef, Event]) -> None:
    fine, sad, bad = finals[EvsJob("fine")], finals[EvsJob("sad")], finals[EvsJob("bad")]
    assert isinstance(fine, Transition)
    assert fine.state is SUCCEEDED
    assert isinstance(sad, Transition)
    assert sad.state is FAILED
    assert isinstance(bad, GaveUp)
    assert bad.reason is GiveUpReason.ERROR


async def test_a_broken_content_encoding_ends_only_that_job() -> None:
    # Defect 4a: an HTTP 200 with `content-encoding: gzip` and a body that is not gzip
    # raised httpx.DecodingError (not mapped to a JobwatchError) out of the watcher.
    def broken_gzip(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        body = b'{"job_id": "bad", "status": "SUCCESS"}'
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    _assert_only_bad_gave_up(await _watch_with_one_hostile_job(broken_gzip))


async def test_a_nan_retry_after_ms_ends_only_that_job() -> None:
    # Defect 4b: `retry-after-ms: nan` on a 429 reached anyio.sleep(nan) (ValueError
    # on trio, out of the watcher; on asyncio the client "waited" NaN seconds).
    def nan_throttle(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "retry-after-ms": "nan"}
        return httpx.Response(
            429, headers=headers, json={"error_code": "SIM.0429", "error_msg": "slow down"}
        )

    retries: list[RetryDetails] = []
    finals = await _watch_with_one_hostile_job(nan_throttle, on_retry=retries.append)
    _assert_only_bad_gave_up(finals)
    assert retries, "the 429 was not retried"
    assert all(math.isfinite(r.wait_for) and r.wait_for >= 0 for r in retries), retries


# -- 5. engine jobs added while their graph's list request is in flight -------------------


async def test_engine_jobs_added_during_a_paged_list_are_not_missing() -> None:
    # Defect 5: an engine job added (watch, or resume with seen=True) while its graph's
    # paged list request was in flight was reported missing from that list: not found,
    # or for the resumed running job `expired` at once.
    sim = Simulator(clock=LoopClock())
    added, resumed = GesEngineJob("g", "added"), GesEngineJob("g", "resumed")
    first, second = GesEngineJob("g", "first"), GesEngineJob("g", "second")
    # Creation order = list order: in pages of two (SmallPages, where the watcher pages
    # through Client.list_engine_jobs) page 1 is [added, resumed], page 2 [first, second].
    for ref in (added, resumed, first, second):
        sim.add_engine_job(P, "g", ref.job_id, [(0, "running"), (0.25, "complete")])

    # A token saying `resumed` was delivered running (and seen).
    async with client_for(sim) as plain, Watcher(plain, policy=FAST) as before:
        before.watch(resumed)
        events, _ = await collect(before, 5, limit=1)
        token = before.export_state()
    assert [(e.ref, e.state) for e in events if isinstance(e, Transition)] == [(resumed, RUNNING)]

    past_their_page = anyio.Event()

    async def slow_lists(request: httpx.Request) -> httpx.Response | None:
        """Every list request takes 0.05 s; note one that will not list added/resumed again."""
        if request.url.path.endswith("/jobs/status"):
            offset = int(request.url.params.get("offset", "0"))
            limit = int(request.url.params.get("limit", "100000"))
            if offset >= 2 or limit >= 4:  # a later page, or the only page of the list
                past_their_page.set()
            await anyio.sleep(0.05)
        return None

    polls: list[PollDetails] = []
    transport = Intercept(sim.transport(), slow_lists)
    async with (
        SmallPages("http://sim.test", P, transport=transport, retry=QUICK_RETRY) as client,
        Watcher(client, policy=FAST, on_poll=polls.append) as watcher,
    ):
        watcher.watch_many([first, second])
        with anyio.fail_after(5):
            await past_their_page.wait()  # a list request is in flight past their entries
        watcher.watch(added)
        assert watcher.resume(token) == 1
        events, ended = await collect(watcher, 5)
    assert ended, f"events() hung after {events}"
    missing = [(d.ref.job_id, str(d.error)) for d in polls if d.error is not None]
    assert missing == [], f"reported missing from the list: {missing}"
    gave_up = [e for e in events if isinstance(e, GaveUp)]
    assert gave_up == [], f"gave up on {[(e.ref.job_id, e.reason.value) for e in gave_up]}"
    check_lifecycles(events, resumed={resumed: RUNNING})
    finals = finals_of(events)
    for ref in (added, resumed, first, second):
        final = finals[ref]
        assert isinstance(final, Transition)
        assert final.state is SUCCEEDED


# -- 6. a watcher is entered once ----------------------------------------------------------


async def test_an_exited_watcher_cannot_be_entered_again() -> None:
    # Defect 6: re-entering a watcher that was exited worked, with the stale state of
    # its first run (events() then hung).
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "quick", [(0, "SUCCESS")])
    async with client_for(sim) as client:
        watcher = Watcher(client, policy=FAST)
        async with watcher:
            watcher.watch(EvsJob("quick"))
            _, ended = await collect(watcher, 2)
        assert ended
        with pytest.raises(RuntimeError):
            watcher.watch(EvsJob("quick"))  # outside the block
        with anyio.fail_after(2), pytest.raises(RuntimeError):
            async with watcher:
                pass


# -- 7. outcomes do not depend on someone reading the stream ------------------------------


async def test_wait_without_kept_outcomes_on_an_ended_unread_job_returns() -> None:
    # Defect 7a: with keep_outcomes=False, wait() on a job whose final event was
    # emitted but not read yet hung (the job counted as watched, its outcome dropped).
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "quick", [(0, "SUCCESS")])
    quick = EvsJob("quick")
    async with (
        client_for(sim) as client,
        Watcher(client, policy=FAST, keep_outcomes=False) as watcher,
    ):
        watcher.watch(quick)
        await until(lambda: watcher.statistics().jobs_open == 0)  # ended, final unread
        snapshot: JobSnapshot | None = None
        with anyio.move_on_after(2):
            snapshot = await watcher.wait(quick)
    assert snapshot is not None, "wait() hung"
    assert snapshot.state is SUCCEEDED


async def test_watch_after_the_end_but_before_the_final_is_read_starts_a_new_watch() -> None:
    # Defect 7b: watch(ref) between the job's end and the reading of its final event
    # was silently ignored (it must start a new watch, with a final of its own).
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "quick", [(0, "SUCCESS")])
    quick = EvsJob("quick")
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        watcher.watch(quick)
        await until(lambda: watcher.statistics().jobs_open == 0)  # ended, final unread
        watcher.watch(quick)
        open_now = watcher.statistics().jobs_open
        events, ended = await collect(watcher, 2)
        stats = watcher.statistics()
    assert open_now == 1, "the second watch was ignored"
    assert ended, f"events() hung after {events}"
    finals = [e for e in events if e.final]
    assert [e.ref for e in finals] == [quick, quick]
    assert all(isinstance(e, Transition) and e.state is SUCCEEDED for e in finals)
    assert stats.jobs_watched == 2
    assert stats.jobs_open == 0


async def test_wait_all_alone_with_the_default_stream_does_not_deadlock() -> None:
    # Defect 7c: with the default events setting, only wait_all() and more than 1024
    # events (the default buffer), nobody read the stream and the watcher deadlocked.
    sim = Simulator(clock=LoopClock())
    refs = [EvsJob(f"q{i}") for i in range(1100)]
    for ref in refs:
        sim.add_evs_job(P, ref.job_id, [(0, "SUCCESS")])
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        outcomes: list[Event] = []
        with anyio.move_on_after(5):  # it takes about 0.25 s
            outcomes = await watcher.wait_all(refs)
        still_open = watcher.statistics().jobs_open
    assert outcomes, f"wait_all hung: {still_open} jobs still open"
    assert len(outcomes) == len(refs)
    assert all(isinstance(e, Transition) and e.state is SUCCEEDED for e in outcomes)


# -- 8. resume twice -------------------------------------------------------------------------


async def test_resuming_twice_never_repeats_a_delivered_transition() -> None:
    # Defect 8: a leaf's transition delivered in a resumed watcher was not recorded
    # when its parent (a middle sub-job) emitted nothing in that watcher, so a second
    # resume emitted it again.
    sim = Simulator(clock=ManualClock())
    leaves = [
        SubJob("leaf-1", [(0, "RUNNING"), (2, "SUCCESS")]),
        SubJob("leaf-2", [(0, "RUNNING"), (4, "SUCCESS")]),
    ]
    middle = SubJob("middle", [(0, "RUNNING"), (10, "SUCCESS")], sub_jobs=leaves)
    sim.add_evs_job(
        P,
        "batch",
        [(0, "RUNNING"), (10, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[middle],
    )
    batch, leaf_1 = EvsJob("batch"), EvsJob("leaf-1")
    delivered: list[Event] = []
    async with client_for(sim) as client:
        async with Watcher(client, policy=FAST) as first:
            first.watch(batch)
            events, _ = await collect(first, 5, limit=4)  # batch, middle, both leaves running
            delivered += events
            token = first.export_state()
        assert len(events) == 4
        sim.clock.set(2)  # leaf-1 succeeds; middle has nothing new
        async with Watcher(client, policy=FAST) as second:
            second.resume(token)
            events, _ = await collect(second, 5, stop=lambda e: e.ref == leaf_1)
            delivered += events
            token = second.export_state()
        assert [(e.ref, e.state) for e in events if isinstance(e, Transition)] == [
            (leaf_1, SUCCEEDED)
        ]
        assert len(events) == 1
        sim.clock.set(10)  # everything ends
        async with Watcher(client, policy=FAST) as third:
            third.resume(token)
            events, ended = await collect(third, 5)
            delivered += events
        assert ended, f"events() hung after {events}"
    pairs = [(e.ref, e.previous, e.state) for e in delivered if isinstance(e, Transition)]
    repeated = [pair for pair, n in Counter(pairs).items() if n > 1]
    assert repeated == [], f"re-emitted after resume: {repeated}"
    check_chains(delivered)
    final = finals_of(delivered)[batch]
    assert isinstance(final, Transition)
    assert final.state is SUCCEEDED


async def test_a_delivered_sub_job_give_up_is_not_repeated_after_resume() -> None:
    # Found by the model-based test after the redesign: the token recorded only a
    # sub-job's transitions, so the give-up of a sub-job left open by its batch's end,
    # delivered before the export, came again from the resumed watcher.
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        P,
        "b0",
        [(0, "RUNNING"), (0, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[SubJob("b0-0", [(0, "SUCCESS")]), SubJob("b0-1", [(0, "RUNNING")])],
    )
    batch, open_sub = EvsJob("b0"), EvsJob("b0-1")
    async with client_for(sim) as client:
        async with Watcher(client, policy=FAST, buffer=1) as first:
            first.watch(batch)
            events, _ = await collect(first, 5, stop=lambda e: e.ref == open_sub and e.final)
            token = first.export_state()
        assert [e.ref for e in events if isinstance(e, GaveUp)] == [open_sub]
        assert [job["ref"]["job_id"] for job in token["jobs"]] == ["b0"]  # its final unread
        async with Watcher(client, policy=FAST) as second:
            second.resume(token)
            again, ended = await collect(second, 5)
        assert ended
        assert [e.ref for e in again] == [batch]  # only the batch's own final event
        assert isinstance(again[0], Transition)
        assert again[0].state is SUCCEEDED


# -- 9. deadlines and grace arrive on time --------------------------------------------------


async def test_deadline_gives_up_on_time_while_a_poll_hangs(anyio_backend_name: str) -> None:
    # Defect 9a: with PollPolicy(timeout=D) and a poll that hangs (server latency
    # longer than D), the `timeout` give-up came after the poll and its retries, not at D.
    virtual = is_virtual(anyio_backend_name)
    deadline, slack = (2.0, 0.05) if virtual else (0.1, 0.1)
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "stuck", [(0, "RUNNING")], faults=[Fault("latency", latency=deadline * 50)])
    policy = PollPolicy(
        wait_initial=deadline / 10, wait_max=deadline / 10, wait_jitter=0.0, timeout=deadline
    )
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        started = anyio.current_time()
        watcher.watch(EvsJob("stuck"))
        events, ended = await collect(watcher, deadline * 5)
        elapsed = anyio.current_time() - started
    assert ended, f"no give-up within {deadline * 5:g}s (deadline {deadline:g}s): {events}"
    last = events[-1]
    assert isinstance(last, GaveUp)
    assert last.reason is GiveUpReason.TIMED_OUT
    assert deadline - 0.01 <= elapsed <= deadline + slack, elapsed


async def test_not_found_grace_gives_up_at_the_grace(anyio_backend_name: str) -> None:
    # Defect 9b: a never-seen job gave up `not_found` at the first backoff poll after
    # the grace (30 s with initial=1, multiplier=2, grace=15), not at the grace.
    if is_virtual(anyio_backend_name):
        policy = PollPolicy(
            wait_initial=1, wait_exp_base=2, wait_max=30, wait_jitter=0.0, not_found_grace=15
        )
        low, high = 15.0, 15.5
    else:
        policy = PollPolicy(
            wait_initial=0.01, wait_exp_base=2, wait_max=0.3, wait_jitter=0.0, not_found_grace=0.15
        )
        low, high = 0.15, 0.25
    sim = Simulator(clock=LoopClock())
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        started = anyio.current_time()
        gave_up: WatchGaveUp | None = None
        with anyio.move_on_after(high * 4):
            try:
                await watcher.wait(EvsJob("unknown"))
            except WatchGaveUp as exc:
                gave_up = exc
        elapsed = anyio.current_time() - started
    assert gave_up is not None, f"no give-up within {high * 4:g}s"
    assert gave_up.outcome.reason is GiveUpReason.NOT_FOUND
    assert low * 0.99 <= elapsed < high, elapsed


# -- 10. statistics count every client -------------------------------------------------------


async def test_statistics_count_the_requests_of_every_client() -> None:
    # Defect 10: WatcherStatistics.requests/retries/errors counted only the default
    # client; jobs watched with watch(ref, client=other) were left out.
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(
        P, "elsewhere", [(0, "RUNNING"), (0.05, "SUCCESS")], faults=[Fault("http_500", count=1)]
    )
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0)
    async with (
        client_for(sim) as default,
        client_for(sim) as other,
        Watcher(default, policy=policy) as watcher,
    ):
        watcher.watch(EvsJob("elsewhere"), client=other)
        watcher.watch(EvsJob("missing"), client=other)  # a 404: an error of the client
        events, ended = await collect(watcher, 5)
        stats, used = watcher.statistics(), other.statistics()
        unused = default.statistics()
    assert ended, f"events() hung after {events}"
    assert unused.requests == 0
    assert used.requests == len(sim.requests) > 0
    assert used.retries >= 1
    assert used.errors >= 1
    assert (stats.requests, stats.retries, stats.errors) == (
        used.requests,
        used.retries,
        used.errors,
    )


# -- found by the adversarial review of the redesign ------------------------------------------


async def test_the_body_own_exception_group_leaves_whole() -> None:
    # The body's own ExceptionGroup (its task group's child failed) came out wrapped
    # in a new group with its errors twice.
    sim = Simulator(clock=LoopClock())
    mine = ExceptionGroup("mine", [KeyError("k")])
    with pytest.raises(ExceptionGroup) as info:
        async with client_for(sim) as client, Watcher(client, policy=FAST):
            raise mine
    assert info.value.exceptions == mine.exceptions
    assert str(info.value).startswith("mine")


async def test_an_exception_whose_str_fails_stays_in_the_poll_guard() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise ValueError("no text for you")

    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "good", [(0, "RUNNING"), (0.02, "SUCCESS")])

    async def handler(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/bad"):
            raise Hostile
        return None

    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, max_consecutive_errors=2)
    async with (
        client_for(sim, Intercept(sim.transport(), handler)) as client,
        Watcher(client, policy=policy) as watcher,
    ):
        with anyio.fail_after(5):
            finals = await watcher.wait_all([EvsJob("good"), EvsJob("bad")])
    good, bad = finals
    assert isinstance(good, Transition)
    assert good.state is SUCCEEDED
    assert isinstance(bad, GaveUp)
    assert bad.reason is GiveUpReason.ERROR
    assert "Hostile" in bad.message


async def test_watch_again_right_after_unwatching_a_job_in_flight_is_a_new_watch() -> None:
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "j", [(0, "RUNNING"), (0.2, "SUCCESS")])
    held = anyio.Event()
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response | None:
        if not held.is_set():
            held.set()
            await release.wait()
        return None

    ref = EvsJob("j")
    async with (
        client_for(sim, Intercept(sim.transport(), handler)) as client,
        Watcher(client, policy=FAST) as watcher,
    ):
        watcher.watch(ref)
        with anyio.fail_after(5):
            await held.wait()
            watcher.unwatch(ref)  # its first poll is in flight
            watcher.watch(ref)  # a new watch, once the old one ended
            assert watcher.statistics().jobs_open == 2  # the old watch and the new one
            release.set()
            events, ended = await collect(watcher, 5)
    assert ended
    assert [(type(e).__name__, getattr(e, "state", None)) for e in events] == [
        ("Transition", RUNNING),
        ("GaveUp", None),
        ("Transition", RUNNING),
        ("Transition", SUCCEEDED),
    ]
    assert watcher.statistics().jobs_watched == 2


async def test_a_wait_outside_the_block_is_told_when_the_watcher_closes() -> None:
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "long", [(0, "RUNNING")])
    errors: list[BaseException] = []

    async def waiter(watcher: Watcher) -> None:
        try:
            await watcher.wait(EvsJob("long"))
        except RuntimeError as exc:
            errors.append(exc)

    with anyio.fail_after(5):  # a waiter never told would hold the task group forever
        async with (
            anyio.create_task_group() as tg,
            client_for(sim) as client,
            Watcher(client, policy=FAST) as watcher,
        ):
            tg.start_soon(waiter, watcher)
            await anyio.sleep(0.05)
    assert len(errors) == 1
    assert "closed before" in str(errors[0])


async def test_a_job_never_found_by_its_timeout_gives_up_not_found_on_every_path() -> None:
    # The README: jobs never found by their timeout give up `not_found`.  The give-up
    # at a deadline is one function (`_tracking.time_out`), whether the deadline is met
    # when a poll is due or right after a poll; polls here land on the deadline too.
    sim = Simulator(clock=LoopClock())
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0, timeout=0.2)
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        with anyio.fail_after(5):
            finals = await watcher.wait_all([EvsJob(f"never-{i}") for i in range(5)])
    assert {type(f).__name__ for f in finals} == {"GaveUp"}
    assert {f.reason for f in finals if isinstance(f, GaveUp)} == {GiveUpReason.NOT_FOUND}
    assert {f.message for f in finals if isinstance(f, GaveUp)} == {"not found within 0.2s"}


async def test_a_job_never_found_stays_not_found_when_its_last_poll_failed_otherwise() -> None:
    # Review of issue 11: a job answered "not found" and then, just before its
    # timeout, a 503: the give-up said `timeout`, hiding that the job never existed.
    sim = Simulator(clock=LoopClock())
    sim.add_fault(Fault("http_503_html", window=(0.12, 10.0)))
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0, timeout=0.3)
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        with anyio.fail_after(5):
            (final,) = await watcher.wait_all([EvsJob("never")])
    codes = [r.status_code for r in sim.requests]
    assert (codes[0], codes[-1]) == (400, 503)  # not found first, a failure last
    assert isinstance(final, GaveUp)
    assert final.reason is GiveUpReason.NOT_FOUND
