"""What real jobs do (issue 11): unpaid orders, jobs deleted after they end, successes
that need confirming, sub-jobs with missing fields and ECS's ``errorcode_message``.

Every test goes through real HTTP to the simulator, on asyncio and on trio.  On trio
the event loop runs on an autojumping ``MockClock``, so the documented durations (an
hour, a day, 14 days) are used as they are and cost no real time; on asyncio the same
tests run with every duration scaled down (``Scale``), the simulator's clock scaled
up to match, so both backends see the same story.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from loopclock import virtual_backend

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GaveUp,
    GesJob,
    GiveUpReason,
    JobFailed,
    JobRef,
    JobState,
    PollDetails,
    PollPolicy,
    RetryPolicy,
    Transition,
    Watcher,
    WatchGaveUp,
)
from jobwatch.sim import (
    ENDED_JOB_LIFETIME,
    UNPAID_JOB_LIFETIME,
    Fault,
    ManualClock,
    Simulator,
    SubJob,
)

pytestmark = pytest.mark.anyio

P = "proj"
HOUR = 3600.0
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)
PENDING, RUNNING, SUCCEEDED, FAILED = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.SUCCEEDED,
    JobState.FAILED,
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """asyncio, and trio on a fresh autojumping MockClock (virtual time) per test."""
    return virtual_backend(request.param)


class Scale:
    """Loop seconds per documented second: 1 on trio's virtual clock, less on asyncio
    (so that ``span`` documented seconds take about half a real second)."""

    def __init__(self, backend: str, span: float) -> None:
        self.virtual = backend == "trio"
        self.factor = 1.0 if self.virtual else 0.5 / span
        self._origin = anyio.current_time()

    def __call__(self, seconds: float) -> float:
        return seconds * self.factor

    def within(self, seconds: float) -> float:
        """A bound for a wait of ``seconds`` documented seconds (real slack on asyncio)."""
        return self(seconds) * 1.5 + (0 if self.virtual else 3)

    def now(self) -> float:
        """The simulator's clock: documented seconds since the scale was made."""
        return (anyio.current_time() - self._origin) / self.factor


def client_for(sim: Simulator[Any]) -> Client:
    return Client("http://sim.test", P, transport=sim.transport(), retry=QUICK_RETRY)


def steps(events: list[Event], ref: JobRef) -> list[tuple[Any, Any]]:
    """(previous, state) of each transition of ``ref``, or ('gave_up', reason)."""
    return [
        (e.previous, e.state) if isinstance(e, Transition) else ("gave_up", e.reason)
        for e in events
        if e.ref == ref
    ]


async def watch(
    sim: Simulator[Any],
    refs: list[JobRef],
    policy: PollPolicy,
    *,
    within: float,
    on_poll: Callable[[PollDetails], None] | None = None,
    token: Any = None,
) -> list[Event]:
    """Watch ``refs`` (or resume ``token``) until no job is left open."""
    events: list[Event] = []
    async with client_for(sim) as client, Watcher(client, policy=policy, on_poll=on_poll) as w:
        if token is not None:
            w.resume(token)
        w.watch_many(refs)
        with anyio.fail_after(within):
            events.extend([event async for event in w.events()])
    return events


async def take(watcher: Watcher, count: int) -> list[Event]:
    """The next ``count`` events of ``watcher``."""
    events: list[Event] = []
    with anyio.fail_after(5):
        async for event in watcher.events():
            events.append(event)
            if len(events) == count:
                break
    return events


# -- PENDING_PAYMENT: bounded by default, reported distinctly ------------------------------


def payment_policy(scale: Scale, **kw: Any) -> PollPolicy:
    """The default policy's pacing (1 s growing to 30 s), at ``scale``."""
    default = PollPolicy()
    kw.setdefault("pending_payment_timeout", scale(HOUR))
    return PollPolicy(
        wait_initial=scale(default.wait_initial),
        wait_max=scale(default.wait_max),
        not_found_grace=scale(default.not_found_grace),
        **kw,
    )


async def test_the_default_bounds_an_unpaid_order_to_an_hour() -> None:
    assert PollPolicy().pending_payment_timeout == HOUR
    assert PollPolicy().settle_successes == 1


async def test_an_unpaid_order_gives_up_pending_payment_at_its_timeout(
    anyio_backend_name: str,
) -> None:
    scale = Scale(anyio_backend_name, HOUR)
    sim = Simulator(clock=scale)
    # ECS page ecs_02_0901: a cancelled order stays PENDING_PAYMENT, deleted at 14 days.
    sim.add_evs_job(P, "order", [(0, "PENDING_PAYMENT")], expires_after=UNPAID_JOB_LIFETIME)
    ref = EvsJob("order")
    started = anyio.current_time()
    events = await watch(sim, [ref], payment_policy(scale), within=scale.within(HOUR))
    ended = anyio.current_time() - started
    assert steps(events, ref) == [(None, PENDING), ("gave_up", GiveUpReason.PENDING_PAYMENT)]
    first, last = events
    assert isinstance(first, Transition)
    assert first.snapshot.awaiting_payment
    assert first.snapshot.raw_status == "PENDING_PAYMENT"
    assert isinstance(last, GaveUp)
    assert last.last is not None
    assert last.last.awaiting_payment
    assert "PENDING_PAYMENT" in last.message
    assert last.error is None
    # at the timeout (a scheduled poll), not at the next backoff poll after it
    assert scale(HOUR) <= ended < scale(HOUR) + (scale(5.0) if scale.virtual else 0.25)


async def test_wait_raises_watch_gave_up_with_the_reason(anyio_backend_name: str) -> None:
    scale = Scale(anyio_backend_name, HOUR)
    sim = Simulator(clock=scale)
    sim.add_evs_job(P, "order", [(0, "PENDING_PAYMENT")])
    async with (
        client_for(sim) as client,
        Watcher(client, policy=payment_policy(scale)) as watcher,
    ):
        with anyio.fail_after(scale.within(HOUR)), pytest.raises(WatchGaveUp) as info:
            await watcher.wait(EvsJob("order"))
    assert info.value.outcome.reason is GiveUpReason.PENDING_PAYMENT


async def test_paying_in_time_and_paying_again_restart_the_count(anyio_backend_name: str) -> None:
    # 50 min unpaid, paid, running; then a second order (a resize) unpaid for 50 min
    # more: 100 min in PENDING_PAYMENT in all, but never an hour in a row.
    scale = Scale(anyio_backend_name, 3 * HOUR)
    sim = Simulator(clock=scale)
    minute = 60.0
    timeline = [
        (0, "PENDING_PAYMENT"),
        (50 * minute, "RUNNING"),
        (60 * minute, "PENDING_PAYMENT"),
        (110 * minute, "RUNNING"),
        (120 * minute, "SUCCESS"),
    ]
    sim.add_evs_job(P, "resized", timeline)
    ref = EvsJob("resized")
    events = await watch(sim, [ref], payment_policy(scale), within=scale.within(2 * HOUR))
    assert steps(events, ref) == [
        (None, PENDING),
        (PENDING, RUNNING),
        (RUNNING, PENDING),
        (PENDING, RUNNING),
        (RUNNING, SUCCEEDED),
    ]
    assert [e.snapshot.awaiting_payment for e in events if isinstance(e, Transition)] == [
        True,
        False,
        True,
        False,
        False,
    ]


async def test_failed_polls_across_the_payment_timeout_do_not_hammer(
    anyio_backend_name: str,
) -> None:
    # The API fails from 50 to 80 minutes: the timeout passes in between.  The watch
    # keeps its backoff (no poll at once after each failure) and gives up
    # pending_payment at the first answer after the failures.
    scale = Scale(anyio_backend_name, 2 * HOUR)
    sim = Simulator(clock=scale)
    window = (50 * 60.0, 80 * 60.0)
    faults = [Fault("http_500", window=window)]
    sim.add_evs_job(P, "order", [(0, "PENDING_PAYMENT")], faults=faults)
    policy = payment_policy(scale, max_consecutive_errors=10_000)
    events = await watch(sim, [EvsJob("order")], policy, within=scale.within(2 * HOUR))
    assert steps(events, EvsJob("order")) == [
        (None, PENDING),
        ("gave_up", GiveUpReason.PENDING_PAYMENT),
    ]
    failed = [r for r in sim.requests_for("order") if r.status_code == 500]
    # one request (and one retry) per backoff poll: about 30 min / 30 s of them
    assert 10 <= len(failed) <= 2 * 2 * (window[1] - window[0]) / 30


async def test_init_is_not_payment_and_no_timeout_waits_for_the_deletion(
    anyio_backend_name: str,
) -> None:
    # INIT for two hours is not an unpaid order; with pending_payment_timeout=None an
    # unpaid job is watched until ECS deletes it, 14 days on: then it is `expired`.
    days = 15 * 86_400.0
    scale = Scale(anyio_backend_name, days)
    sim = Simulator(clock=scale)
    sim.add_evs_job(P, "queued", [(0, "INIT"), (2 * HOUR, "SUCCESS")])
    sim.add_evs_job(P, "unpaid", [(0, "PENDING_PAYMENT")], expires_after=UNPAID_JOB_LIFETIME)
    policy = PollPolicy(
        wait_initial=scale(1.0),
        wait_max=scale(HOUR),  # (fewer polls over two weeks)
        not_found_grace=scale(15.0),
        pending_payment_timeout=None,
    )
    started = anyio.current_time()
    queued, unpaid = EvsJob("queued"), EvsJob("unpaid")
    events = await watch(sim, [queued, unpaid], policy, within=scale.within(days))
    assert steps(events, queued) == [(None, PENDING), (PENDING, SUCCEEDED)]
    assert steps(events, unpaid) == [(None, PENDING), ("gave_up", GiveUpReason.EXPIRED)]
    assert anyio.current_time() - started >= scale(UNPAID_JOB_LIFETIME)


def test_policy_refuses_bad_values() -> None:
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="pending_payment_timeout"):
            PollPolicy(pending_payment_timeout=bad)
    for count in (0, -1):
        with pytest.raises(ValueError, match="settle_successes"):
            PollPolicy(settle_successes=count)


# -- jobs deleted about a day after they end: `expired`, at once on resume ------------------


async def test_resuming_an_old_token_of_a_deleted_job_says_expired_at_once(
    anyio_backend_name: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "old", [(0, "RUNNING"), (60, "SUCCESS")], expires_after=ENDED_JOB_LIFETIME)
    sim.add_evs_job(P, "live", [(0, "RUNNING")])
    old, live = EvsJob("old"), EvsJob("live")
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, not_found_grace=HOUR)
    async with client_for(sim) as client, Watcher(client, policy=policy) as first:
        first.watch_many([old, live])
        seen = await take(first, 2)
        token = first.export_state()
    firsts = {(e.ref, e.state) for e in seen if isinstance(e, Transition)}
    assert firsts == {
        (old, RUNNING),
        (live, RUNNING),
    }

    sim.clock.set(60 + ENDED_JOB_LIFETIME)  # the next day: ECS deleted the ended job
    async with client_for(sim) as client, Watcher(client, policy=policy) as second:
        started = anyio.current_time()
        before = len(sim.requests_for("old"))
        second.resume(token)
        with anyio.fail_after(5):
            outcome = await second.wait_all([old])
        elapsed = anyio.current_time() - started
        second.unwatch(live)
    (gave_up,) = outcome
    assert isinstance(gave_up, GaveUp)
    assert gave_up.reason is GiveUpReason.EXPIRED
    assert "deleted" in gave_up.message
    assert gave_up.error is not None
    assert elapsed < 1.0  # at the first poll, not after the hour of not_found_grace
    assert len(sim.requests_for("old")) == before + 1


async def test_a_deleted_job_not_seen_before_waits_out_the_grace(anyio_backend_name: str) -> None:
    # Contrast: a token (or watch) of a job never seen gets the not-found grace.
    sim = Simulator(clock=ManualClock())
    token = {
        "version": 1,
        "jobs": [{"ref": {"api": "evs", "job_id": "never"}, "state": None, "seen": False}],
    }
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, not_found_grace=0.1)
    events = await watch(sim, [], policy, within=5, token=token)
    assert steps(events, EvsJob("never")) == [("gave_up", GiveUpReason.NOT_FOUND)]


# -- settle_successes: SUCCESS confirmed by answers in a row --------------------------------


def stepping(sim: Simulator[ManualClock]) -> Callable[[PollDetails], None]:
    """An on_poll hook moving the simulator one second on after each poll: poll n
    sees the job's timeline at second n - 1, whatever the backend's speed."""

    def hook(_: PollDetails) -> None:
        sim.clock.advance(1)

    return hook


FAST = PollPolicy(wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)


@pytest.mark.parametrize(
    ("count", "final_poll"),
    [(1, 2), (2, 3), (3, 4)],
)
async def test_success_counts_after_settle_successes_answers(
    anyio_backend_name: str, count: int, final_poll: int
) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "attach", [(0, "RUNNING"), (1, "SUCCESS")], job_type="attachVolume")
    polls: list[PollDetails] = []
    hook = stepping(sim)

    def on_poll(details: PollDetails) -> None:
        polls.append(details)
        hook(details)

    ref = EvsJob("attach")
    policy = PollPolicy(wait_initial=0.001, wait_max=0.002, settle_successes=count)
    events = await watch(sim, [ref], policy, within=5, on_poll=on_poll)
    assert steps(events, ref) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert len(polls) == final_poll
    assert [p.next_delay is None for p in polls] == [False] * (final_poll - 1) + [True]
    final = events[-1]
    assert isinstance(final, Transition)
    assert final.snapshot == polls[-1].snapshot


async def test_a_success_in_between_other_answers_starts_the_count_again(
    anyio_backend_name: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    # seconds 1 and 3 say SUCCESS alone; 5 and 6 say it twice in a row
    timeline = [(0, "running"), (1, "success"), (2, "running"), (3, "success")]
    timeline += [(4, "running"), (5, "success")]
    sim.add_ges_job(P, "g", "graph", timeline, job_name="CreateGraph")
    ref = GesJob("g", "graph", "v2")
    polls: list[PollDetails] = []
    hook = stepping(sim)

    def on_poll(details: PollDetails) -> None:
        polls.append(details)
        hook(details)

    policy = PollPolicy(wait_initial=0.001, wait_max=0.002, settle_successes=2)
    events = await watch(sim, [ref], policy, within=5, on_poll=on_poll)
    # the lone successes were held back: no event, and no flapping running -> running
    assert steps(events, ref) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert [p.snapshot.raw_status for p in polls if p.snapshot] == [
        "running",
        "success",
        "running",
        "success",
        "running",
        "success",
        "success",
    ]


async def test_failure_is_never_held_back_and_held_sub_jobs_come_with_the_settled_answer(
    anyio_backend_name: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "broken", [(0, "RUNNING"), (1, "FAIL")])
    sub = SubJob("vol-a", [(0, "RUNNING"), (1, "FAIL")])
    sim.add_evs_job(P, "batch", [(0, "RUNNING"), (1, "SUCCESS")], sub_jobs=[sub])
    broken, batch, vol = EvsJob("broken"), EvsJob("batch"), EvsJob("vol-a")
    answers: list[tuple[JobRef, str | None]] = []

    def on_poll(details: PollDetails) -> None:
        snapshot = details.snapshot
        answers.append((details.ref, snapshot.raw_status if snapshot else None))
        if details.ref == batch:  # the batch's timeline moves one second per poll
            sim.clock.advance(1)

    policy = PollPolicy(wait_initial=0.001, wait_max=0.002, settle_successes=3)
    events = await watch(sim, [broken, batch], policy, within=5, on_poll=on_poll)
    assert steps(events, broken) == [(None, RUNNING), (RUNNING, FAILED)]
    assert steps(events, vol) == [(None, RUNNING), (RUNNING, FAILED)]
    assert steps(events, batch) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert [a for r, a in answers if r == broken][-1:] == ["FAIL"]  # at once
    assert [a for r, a in answers if r == batch] == ["RUNNING", "SUCCESS", "SUCCESS", "SUCCESS"]
    # the sub-job's failure, already in the first SUCCESS answer, comes with the third
    # answer, before its batch's final event, which lists it
    vol_failed = next(i for i, e in enumerate(events) if e.ref == vol and e.final)
    batch_final = next(i for i, e in enumerate(events) if e.ref == batch and e.final)
    assert vol_failed < batch_final
    final = events[batch_final]
    assert isinstance(final, Transition)
    assert [s.ref for s in final.failed_sub_jobs] == [vol]


async def test_a_deadline_while_settling_gives_up_with_the_success_seen(
    anyio_backend_name: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "slow", [(0, "SUCCESS")])
    policy = PollPolicy(wait_initial=0.05, wait_max=0.05, settle_successes=1000, timeout=0.2)
    events = await watch(sim, [EvsJob("slow")], policy, within=5)
    (gave_up,) = events
    assert isinstance(gave_up, GaveUp)
    assert gave_up.reason is GiveUpReason.TIMED_OUT
    assert gave_up.last is not None
    assert gave_up.last.raw_status == "SUCCESS"


# -- sub-jobs with missing fields and ECS's errorcode_message, through the watcher ---------


async def test_sub_jobs_without_ids_are_watched_by_their_place(anyio_backend_name: str) -> None:
    sim = Simulator(clock=ManualClock())
    subs = [
        SubJob(
            None,
            [(0, "RUNNING"), (2, "FAIL")],
            job_type="createSingleServer",
            entities={"server_id": "srv-1"},
            errorcode_message="Ecs.0013: insufficient quota",
        ),
        SubJob("srv-job-2", [(0, "RUNNING"), (1, "SUCCESS")]),
    ]
    sim.add_evs_job(P, "ecs", [(0, "RUNNING"), (3, "SUCCESS")], sub_jobs=subs)
    ref, anonymous = EvsJob("ecs"), EvsJob("ecs.sub_jobs.0")
    policy = PollPolicy(wait_initial=0.001, wait_max=0.002)
    events = await watch(sim, [ref], policy, within=5, on_poll=stepping(sim))
    assert steps(events, anonymous) == [(None, RUNNING), (RUNNING, FAILED)]
    assert steps(events, EvsJob("srv-job-2")) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    failed = next(e for e in events if e.ref == anonymous and e.final)
    assert isinstance(failed, Transition)
    assert failed.parent == ref
    assert failed.snapshot.fail_reason == "Ecs.0013: insufficient quota"
    assert failed.snapshot.raw["job_id"] is None
    final = events[-1]
    assert isinstance(final, Transition)
    assert final.ref == ref
    assert [s.fail_reason for s in final.failed_sub_jobs] == ["Ecs.0013: insufficient quota"]

    sim.clock.set(0)
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        sim.clock.set(5)
        with anyio.fail_after(5), pytest.raises(JobFailed) as info:
            await watcher.wait(ref, raise_on_failure=True)
    assert [s.ref for s in info.value.snapshot.failed_sub_jobs] == [anonymous]


async def test_a_token_with_place_named_sub_jobs_resumes_without_repeats(
    anyio_backend_name: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        P,
        "b",
        [(0, "RUNNING"), (2, "SUCCESS")],
        sub_jobs=[SubJob(None, [(0, "RUNNING"), (1, "SUCCESS")])],
    )
    ref, anonymous = EvsJob("b"), EvsJob("b.sub_jobs.0")
    policy = PollPolicy(wait_initial=0.001, wait_max=0.002)
    async with client_for(sim) as client, Watcher(client, policy=policy) as first:
        first.watch(ref)
        seen = await take(first, 2)
        token = first.export_state()
    firsts = {(e.ref, e.state) for e in seen if isinstance(e, Transition)}
    assert firsts == {
        (ref, RUNNING),
        (anonymous, RUNNING),
    }
    sim.clock.set(2)
    events = await watch(sim, [], policy, within=5, token=token)
    assert steps(events, anonymous) == [(RUNNING, SUCCEEDED)]
    assert steps(events, ref) == [(RUNNING, SUCCEEDED)]
