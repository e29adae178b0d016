"""Early polls (``_poller.EARLY``) under attack: every promise checked against a model.

The scheduler alone is checked against a model of what is queued (each target's
latest push: its due time and how early it may go), by random operations, pure
and in ``Scheduler.run`` on both backends.  ``next_delay`` is checked for slack
left over from a poll before.  The watcher, in virtual time (trio's
``MockClock``, the simulator's clock following the loop's), is checked poll by
poll through ``on_poll``: no poll before its due time less what its jitter
allows (never for a time brought forward, nor for a batch), with unwatches and
re-watches, failed polls, deadlines and a throttling gateway mixed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from loopclock import LoopClock, virtual, virtual_backend
from test_schedule import Target

from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GiveUpReason,
    JobRef,
    PollDetails,
    PollPolicy,
    RetryPolicy,
    Watcher,
    _poller,
)
from jobwatch._kinds import batch_group
from jobwatch._schedule import Scheduler
from jobwatch._tracking import Tracked, next_delay
from jobwatch.sim import Fault, Quota, Simulator

P = "proj-1"
URL = "http://sim.test"
#: Slop of a time comparison (due times are sums of floats).
EPS = 1e-6


@dataclass
class Model:
    """What should be queued: each target's latest push (due, earliest)."""

    queued: dict[Target, tuple[float, float]] = field(default_factory=dict)

    def push(self, target: Target, due: float, slack: float) -> None:
        self.queued[target] = (due, due - slack)

    def check(self, got: Target | None, now: float, early: float) -> None:
        """``got`` is what the scheduler handed out at ``now``: one of the targets due
        soonest, allowed to go now; None only when none of those may go yet."""
        live = {t: v for t, v in self.queued.items() if not t.ended}
        if not live:
            assert got is None
            return
        soonest = min(due for due, _ in live.values())
        first = [t for t, (due, _) in live.items() if due == soonest]

        def allowed(target: Target) -> bool:
            due, earliest = live[target]
            return due <= now or (due <= now + early and earliest <= now)

        if got is None:
            assert soonest > now, f"{first} due at {soonest} left behind at {now}"
            assert soonest > now + early or not all(allowed(t) for t in first)
            return
        assert got in first, f"{got} overtook {first} (due {soonest}) at {now}"
        assert allowed(got), f"{got} handed out at {now}, before {live[got]} allows"
        del self.queued[got]


# -- the scheduler against the model ---------------------------------------------------

ops = st.lists(
    st.one_of(
        # push (again) target i at due with slack (only when not in flight or ended)
        st.tuples(st.just("push"), st.integers(0, 3), st.floats(0, 5), st.floats(0, 0.3)),
        # the time moves on by dt, and targets are taken
        st.tuples(st.just("pop"), st.floats(0, 0.4)),
        # a target in flight is done with (may be pushed again)
        st.tuples(st.just("done"), st.integers(0, 3)),
        # a target ends (unwatched)
        st.tuples(st.just("end"), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(ops=ops, early=st.sampled_from([0.0, 0.05, 0.2]))
def test_the_scheduler_hands_out_what_the_model_says(ops: list[Any], early: float) -> None:
    """Superseding pushes with another slack (more or less), ends, and targets done
    and pushed again, interleaved with hand-outs at a moving time: each hand-out is
    a target due soonest and allowed by its latest push, and nothing allowed is
    held back.  ``peek_due`` agrees with ``pop_due``."""
    scheduler: Scheduler[Target] = Scheduler()
    model = Model()
    targets = [Target(str(i)) for i in range(4)]
    now = 0.0
    for op in ops:
        if op[0] == "push":
            target = targets[op[1]]
            if not (target.in_flight or target.ended):
                scheduler.push(target, now + op[2], op[3])
                model.push(target, now + op[2], op[3])
        elif op[0] == "pop":
            now += op[1]
            while True:
                peeked = scheduler.peek_due(now, early)
                got = scheduler.pop_due(now, early)
                assert got is peeked
                model.check(got, now, early)
                if got is None:
                    break
        elif op[0] == "done":
            targets[op[1]].in_flight = False
        else:
            target = targets[op[1]]
            if not target.in_flight:
                target.ended = True
                model.queued.pop(target, None)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return virtual_backend(request.param)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(4))
async def test_the_running_scheduler_hands_out_what_the_model_says(seed: int) -> None:
    """``Scheduler.run`` with a linger and an early horizon, a pacing ``admit`` and a
    dispatch that pushes each target again as the poller does (a random delay, with
    or without slack), while another task supersedes and ends queued targets: every
    hand-out is checked against the model, and paced (none before a token)."""
    rng = random.Random(seed)
    early, linger, gap = 0.05, 0.005, 0.004  # gap: the pacer's seconds per token
    scheduler: Scheduler[Target] = Scheduler()
    model = Model()
    targets = [Target(str(i)) for i in range(12)]
    start = anyio.current_time()
    tokens = {"credit": 0, "next": start}
    handed: list[float] = []

    def push(target: Target, due: float) -> None:
        slack = rng.choice([0.0, 0.0, rng.uniform(0, 0.08), rng.uniform(0, 1)])
        scheduler.push(target, due, slack)
        model.push(target, due, slack)

    async def token_at(at: float) -> None:
        await anyio.sleep_until(at)
        tokens["credit"] += 1

    def admit(target: Target) -> Any:
        now = anyio.current_time()
        at = max(tokens["next"], now)
        tokens["next"] = at + gap
        if at <= now:
            tokens["credit"] += 1
            return None
        return token_at(at)

    async def dispatch(target: Target) -> None:
        now = anyio.current_time()
        assert tokens["credit"] >= 1, "handed out before the pacer allowed"
        tokens["credit"] -= 1
        model.check(target, now, early)
        handed.append(now)
        assert len(handed) < 5000, "a hand-out loop that lets no time pass"
        target.in_flight = False
        if rng.random() < 0.98:
            push(target, now + rng.choice([0.0, rng.uniform(0, 0.1), rng.uniform(0, 0.3)]))
        else:
            target.ended = True

    async def meddle() -> None:
        while True:
            await anyio.sleep(rng.uniform(0, 0.03))
            target = rng.choice(targets)
            if target.in_flight or target.ended:
                continue
            if rng.random() < 0.03:
                target.ended = True
                model.queued.pop(target, None)
            else:
                push(target, anyio.current_time() + rng.uniform(0, 0.2))

    for target in targets:
        push(target, start + rng.uniform(0, 0.2))
    with anyio.move_on_after(0.6):
        async with anyio.create_task_group() as tg:
            tg.start_soon(meddle)
            await scheduler.run(dispatch, admit, linger=linger, early=early)
    assert len(handed) > 40


# -- next_delay: the slack of a delay brought forward ----------------------------------


@settings(max_examples=300, deadline=None)
@given(
    jitter=st.sampled_from([0.0, 0.1, 0.5]),
    calls=st.lists(
        st.tuples(
            st.floats(0, 20),  # now, after the start
            st.integers(0, 8),  # step
            st.booleans(),  # seen
            st.one_of(st.none(), st.floats(0, 20)),  # payment_since
        ),
        min_size=1,
        max_size=8,
    ),
    deadline=st.one_of(st.none(), st.floats(0.1, 25)),
    seed=st.integers(0, 2**16),
)
def test_next_delay_keeps_no_slack_from_a_poll_before(
    jitter: float,
    calls: list[tuple[float, int, bool, float | None]],
    deadline: float | None,
    seed: int,
) -> None:
    """One job, polled again and again: a delay brought forward (deadline, not-found
    grace, pending-payment timeout) has no slack whatever the poll before had; a
    backoff delay's slack takes it to the jitter band's floor, not below."""
    policy = PollPolicy(
        wait_initial=0.5,
        wait_exp_base=2.0,
        wait_max=8.0,
        wait_jitter=jitter,
        not_found_grace=6.0,
        pending_payment_timeout=10.0,
    )
    rng = random.Random(seed)
    job = Tracked(EvsJob("j"), None, 0.0, deadline, None, False)  # type: ignore[arg-type]
    for now, step, seen, payment_since in sorted(calls, key=lambda call: call[0]):
        job.step, job.seen = step, seen
        job.payment_since = None if payment_since is None else min(payment_since, now)
        twin = random.Random()
        twin.setstate(rng.getstate())
        backoff, slack = policy.interval_and_slack(step, twin)  # what next_delay draws
        delay = next_delay(job, now, policy, rng)
        floor = policy._table[min(step, len(policy._table) - 1)] * (1 - jitter)
        assert -EPS <= job.slack <= delay + EPS
        assert delay - job.slack >= min(delay, floor) - EPS  # never below the band
        if delay != backoff:  # brought forward: kept exactly
            assert job.slack == 0.0, (now, delay, backoff, job.slack)
        else:
            assert job.slack == slack
        if not jitter:
            assert job.slack == 0.0


# -- the watcher, poll by poll -----------------------------------------------------------


@dataclass
class Log:
    """What a watch did: when each ref was watched, each poll (time, count in the
    watch, next delay), the request times and the final events."""

    watched: dict[JobRef, list[float]] = field(default_factory=dict)
    polls: list[tuple[float, JobRef, int, float | None]] = field(default_factory=list)
    finals: dict[JobRef, list[tuple[float, Any]]] = field(default_factory=dict)
    requests: list[tuple[float, str | None, int | None]] = field(default_factory=list)

    def hook(self, details: PollDetails) -> None:
        # Fail, rather than hang, when polls go at once again and again (virtual time
        # stands still while the scheduler keeps handing out).
        assert len(self.polls) < 200_000, "polls that let no time pass"
        self.polls.append((trio.current_time(), details.ref, details.attempt, details.next_delay))

    def per_ref(self) -> Iterator[tuple[JobRef, list[tuple[float, int, float | None]]]]:
        refs: dict[JobRef, list[tuple[float, int, float | None]]] = {}
        for t, ref, n, delay in self.polls:
            refs.setdefault(ref, []).append((t, n, delay))
        yield from refs.items()


def floor_and_fixed(policy: PollPolicy) -> float:
    """The jitter band's floor of a constant backoff (the tests' policies)."""
    assert policy.wait_exp_base == 1.0
    return policy.wait_initial * (1 - policy.wait_jitter)


def check_single_polls(log: Log, policy: PollPolicy, fixed: dict[JobRef, list[float]]) -> int:
    """Each poll of a job not in a batch came no sooner than its due time less what the
    jitter allows (at most ``EARLY``), and none for a time brought forward (``fixed``:
    its deadlines and grace ends); a watch's first poll is on time.  Polls checked."""
    floor = floor_and_fixed(policy)
    checked = 0
    for ref, polls in log.per_ref():
        if batch_group(ref) is not None:
            continue  # polled with its batch (check_batch_polls)
        watches = log.watched[ref]
        previous: tuple[float, float | None] | None = None
        for t, n, delay in polls:
            if n == 1:  # the first poll of a watch: first_poll_delay after it, exactly
                since = max(w for w in watches if w <= t + EPS)
                assert t >= since + policy.first_poll_delay - EPS, (ref, t, since)
            elif previous is not None and previous[1] is not None:
                at, wait = previous[0], previous[1]
                due = at + wait
                fixed_here = any(abs(due - f) < EPS for f in fixed.get(ref, ()))
                allowed = 0.0 if fixed_here else min(_poller.EARLY, max(wait - floor, 0.0))
                assert t >= due - allowed - EPS, (ref, at, wait, t, fixed_here)
                assert wait >= floor - EPS or fixed_here, (ref, at, wait)
                checked += 1
            previous = (t, delay)
    return checked


Script = list[tuple[float, str, JobRef]]


async def watch_through(
    build: Callable[[], tuple[Simulator[Any], Script]],
    policy: PollPolicy,
    seed: int,
    retry: RetryPolicy | None = None,
    until: float = 30.0,
) -> Log:
    """Run the script ``build`` makes (``(at, "watch" | "unwatch", ref)``) against its
    simulator (made in the loop, for its clock) with a watcher logging into a ``Log``;
    until every job ended (or ``until``)."""
    log = Log()
    start = trio.current_time()
    sim, script = build()
    async with (
        Client(URL, P, transport=sim.transport(), retry=retry) as client,
        Watcher(client, policy=policy, seed=seed, on_poll=log.hook) as watcher,
    ):

        async def play() -> None:
            for at, what, ref in sorted(script, key=lambda step: step[0]):
                await trio.sleep_until(start + at)
                if what == "watch":
                    log.watched.setdefault(ref, []).append(trio.current_time())
                    watcher.watch(ref)
                else:
                    watcher.unwatch(ref)

        async def consume() -> None:
            async for event in watcher.events(until_idle=False):
                if event.final and event.parent is None:
                    log.finals.setdefault(event.ref, []).append((trio.current_time(), event))

        with trio.move_on_after(until):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await play()
                await watcher.wait_all(list(log.watched))
                await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
    log.requests = [(r.t + start, r.job, r.status_code) for r in sim.requests]
    return log


@pytest.mark.parametrize("seed", range(3))
def test_requeued_failing_and_timed_out_jobs_never_go_before_their_slack(seed: int) -> None:
    """Jobs with a deadline (staggered), failing polls (HTTP 500, the next poll after
    the backoff), jobs unwatched and watched again while queued: every poll within
    what its jitter allows, a re-watch's first poll on time, and every timeout at
    its deadline."""
    policy = PollPolicy(
        wait_initial=0.3,
        wait_exp_base=1.0,
        wait_max=0.3,
        wait_jitter=0.15,
        first_poll_delay=0.2,
        timeout=3.0,
        max_consecutive_errors=50,
    )

    def build() -> tuple[Simulator[Any], Script]:
        rng = random.Random(seed)
        sim = Simulator(clock=LoopClock(), seed=seed)
        sim.add_fault(Fault("http_500", probability=0.2))
        script: Script = []
        for i in range(80):
            ref = EvsJob(f"j{i}")
            sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])  # never ends: all time out
            at = rng.uniform(0, 1.0)
            script.append((at, "watch", ref))
            if i % 4 == 0:  # unwatched while queued, and watched again
                gone = at + rng.uniform(0.25, 1.5)
                script += [(gone, "unwatch", ref), (gone + rng.uniform(0, 0.2), "watch", ref)]
        return sim, script

    log = virtual(watch_through, build, policy, seed, RetryPolicy(attempts=1))
    deadlines = {ref: [w + 3.0 for w in times] for ref, times in log.watched.items()}
    assert check_single_polls(log, policy, deadlines) > 500
    assert len(log.finals) == 80
    for ref, finals in log.finals.items():
        t, event = finals[-1]
        assert isinstance(event, GaveUp)
        assert event.reason is GiveUpReason.TIMED_OUT
        deadline = deadlines[ref][-1]
        assert deadline - EPS <= t <= deadline + _poller.LINGER + EPS, (ref, t, deadline)


@pytest.mark.parametrize("seed", range(3))
def test_an_early_poll_does_not_end_a_not_found_grace(seed: int) -> None:
    """Jobs that appear just before their not-found grace ends, among polls every
    ~0.3 s that may go early close to it: the poll at the grace's end finds them (an
    early one before it must not count as the end)."""
    policy = PollPolicy(
        wait_initial=0.3, wait_exp_base=1.0, wait_max=0.3, wait_jitter=0.1, not_found_grace=2.9
    )

    def build() -> tuple[Simulator[Any], Script]:
        sim = Simulator(clock=LoopClock(), seed=seed)
        script: Script = []
        for i in range(150):
            ref = EvsJob(f"j{i}")
            timeline = [(0.0, "RUNNING"), (3.5, "SUCCESS")]
            sim.add_evs_job(P, ref.job_id, timeline, visible_after=2.89)
            script.append((0.0, "watch", ref))
        return sim, script

    log = virtual(watch_through, build, policy, seed)
    grace_ends = {ref: [w + 2.9 for w in times] for ref, times in log.watched.items()}
    assert check_single_polls(log, policy, grace_ends) > 1000
    assert len(log.finals) == 150
    assert not [f for f in log.finals.values() if isinstance(f[-1][1], GaveUp)]


def check_batch_polls(log: Log, graph: str, first_poll_delay: float) -> int:
    """Each poll of ``graph``'s engine jobs (one request answers every member: they
    share its time) came no sooner than the earliest due time of the jobs it
    answered (a batch never goes early): from each job's poll before in the same
    watch (its next delay), or its watch (``first_poll_delay``).  Polls checked."""
    previous: dict[JobRef, tuple[float, float | None]] = {}
    groups: dict[float, list[tuple[JobRef, int, float | None]]] = {}
    for t, ref, n, delay in log.polls:
        if isinstance(ref, GesEngineJob) and ref.graph_name == graph:
            groups.setdefault(t, []).append((ref, n, delay))
    for r, answered in sorted(groups.items()):
        dues = []
        for ref, n, _ in answered:
            if n == 1:
                dues.append(max(w for w in log.watched[ref] if w <= r + EPS) + first_poll_delay)
            else:
                at, wait = previous[ref]
                assert wait is not None
                dues.append(at + wait)
        assert r >= min(dues) - EPS, (r, dues, answered)
        for ref, _, delay in answered:
            previous[ref] = (r, delay)
    return len(groups)


def test_a_batch_is_not_polled_for_a_member_that_left_it() -> None:
    """An engine job joins a graph's job list late (the list is polled for it at its
    watch), and is unwatched while the next poll, due for it, is queued: the list is
    then polled when the member still there is due, not when the one that left was."""
    policy = PollPolicy(wait_initial=0.5, wait_exp_base=2.0, wait_max=8.0, wait_jitter=0.1)
    old, new = GesEngineJob("g", "e-old"), GesEngineJob("g", "e-new")

    def build() -> tuple[Simulator[Any], Script]:
        sim = Simulator(clock=LoopClock())
        for ref in (old, new):
            sim.add_engine_job(P, "g", ref.job_id, [(0, "running"), (20, "complete")])
        return sim, [
            (0.0, "watch", old),
            (3.6, "watch", new),  # joins: the list is polled at once, for both
            (3.8, "unwatch", new),  # while the list is queued for its next poll, at ~4.1
        ]

    log = virtual(watch_through, build, policy, 0)
    assert check_batch_polls(log, "g", policy.first_poll_delay) >= 5


@pytest.mark.parametrize("seed", range(3))
def test_batches_never_go_early_among_early_single_polls(seed: int) -> None:
    """Engine jobs of two graphs (one request per graph's list), joining and leaving
    while EVS jobs polled around them wake the scheduler within ``EARLY`` of the
    lists' due times: no list request before the earliest due time it answers."""
    policy = PollPolicy(wait_initial=0.2, wait_exp_base=1.0, wait_max=0.2, wait_jitter=0.2)

    def build() -> tuple[Simulator[Any], Script]:
        rng = random.Random(seed)
        sim = Simulator(clock=LoopClock(), seed=seed)
        script: Script = []
        for i in range(60):
            ref: JobRef = EvsJob(f"j{i}")
            sim.add_evs_job(P, f"j{i}", [(0, "RUNNING"), (rng.uniform(2, 4), "SUCCESS")])
            script.append((rng.uniform(0, 0.5), "watch", ref))
        for graph in ("g1", "g2"):
            for i in range(6):
                ref = GesEngineJob(graph, f"{graph}-e{i}")
                timeline = [(0.0, "running"), (rng.uniform(2, 4), "complete")]
                sim.add_engine_job(P, graph, f"{graph}-e{i}", timeline)
                script.append((rng.uniform(0, 1.5), "watch", ref))
        return sim, script

    log = virtual(watch_through, build, policy, seed)
    assert check_single_polls(log, policy, {}) > 500
    assert sum(check_batch_polls(log, graph, 0.0) for graph in ("g1", "g2")) > 20


@pytest.mark.parametrize("seed", range(2))
def test_early_polls_keep_to_a_throttling_gateways_pace(seed: int) -> None:
    """A gateway quota well below what 100 jobs polled every ~0.5 s ask: once the
    budget learned it, no request is refused (none goes before the pacer allows,
    early or not), and no poll is early beyond its jitter."""
    policy = PollPolicy(wait_initial=0.5, wait_exp_base=1.0, wait_max=0.5, wait_jitter=0.1)

    def build() -> tuple[Simulator[Any], Script]:
        sim = Simulator(clock=LoopClock(), seed=seed)
        sim.set_quota(Quota(50, burst=1))
        script: Script = []
        for i in range(100):
            ref = EvsJob(f"j{i}")
            sim.add_evs_job(P, ref.job_id, [(0, "RUNNING"), (4 + i % 5, "SUCCESS")])
            script.append((0.0, "watch", ref))
        return sim, script

    log = virtual(watch_through, build, policy, seed)
    assert len(log.finals) == 100
    refused = [t for t, _, status in log.requests if status == 429]
    assert refused
    assert max(refused) < min(refused) + 0.5, refused  # learned at once
    assert check_single_polls(log, policy, {}) > 300
