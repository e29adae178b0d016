"""The scheduler alone, in virtual time: order, superseding, skipping, wake-ups."""

from __future__ import annotations

import math

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

from jobwatch._schedule import Scheduler


class Target:
    """A schedulable target, as the poller's are (``Tracked``, ``Batch``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.due = math.inf
        self.earliest = math.inf
        self.ended = False
        self.in_flight = False

    def __repr__(self) -> str:
        return f"Target({self.name})"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    return ("trio", {"clock": MockClock(autojump_threshold=0)})


async def collect(
    scheduler: Scheduler[Target], until: float, early: float = 0.0
) -> list[tuple[str, float]]:
    handed: list[tuple[str, float]] = []

    async def dispatch(target: Target) -> None:
        handed.append((target.name, anyio.current_time()))
        target.in_flight = False

    with anyio.move_on_after(until):
        await scheduler.run(dispatch, early=early)
    return handed


@pytest.mark.anyio
async def test_targets_come_out_at_their_due_times_earliest_first() -> None:
    scheduler: Scheduler[Target] = Scheduler()
    start = anyio.current_time()
    for name, due in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        scheduler.push(Target(name), start + due)
    handed = await collect(scheduler, 10)
    assert [(name, round(at - start, 6)) for name, at in handed] == [
        ("a", 1.0),
        ("b", 2.0),
        ("c", 3.0),
    ]


@pytest.mark.anyio
async def test_a_later_push_supersedes_and_ended_or_in_flight_targets_are_skipped() -> None:
    scheduler: Scheduler[Target] = Scheduler()
    start = anyio.current_time()
    moved, ended, busy = Target("moved"), Target("ended"), Target("busy")
    scheduler.push(moved, start + 1)
    scheduler.push(moved, start + 5)  # supersedes the entry at 1
    scheduler.push(ended, start + 2)
    ended.ended = True
    scheduler.push(busy, start + 3)
    busy.in_flight = True
    handed = await collect(scheduler, 10)
    assert [(name, round(at - start, 6)) for name, at in handed] == [("moved", 5.0)]
    assert len(scheduler) == 0


@pytest.mark.anyio
async def test_a_push_earlier_than_the_next_wake_up_wakes_the_scheduler() -> None:
    scheduler: Scheduler[Target] = Scheduler()
    start = anyio.current_time()
    scheduler.push(Target("late"), start + 100)
    handed: list[tuple[str, float]] = []

    async def dispatch(target: Target) -> None:
        handed.append((target.name, anyio.current_time() - start))

    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, dispatch)
        await anyio.sleep(1)
        scheduler.push(Target("early"), anyio.current_time() + 1)  # due at 2, not after 100
        await anyio.sleep(5)
        tg.cancel_scope.cancel()
    assert [(name, round(at, 6)) for name, at in handed] == [("early", 2.0)]


def test_pop_due_marks_in_flight_and_next_due_is_the_earliest() -> None:
    scheduler: Scheduler[Target] = Scheduler()
    a, b = Target("a"), Target("b")
    scheduler.push(b, 2.0)
    scheduler.push(a, 1.0)
    assert scheduler.next_due() == 1.0
    assert scheduler.pop_due(0.5) is None
    assert scheduler.pop_due(1.5) is a
    assert a.in_flight
    assert scheduler.next_due() == 2.0
    assert scheduler.pop_due(9) is b
    assert scheduler.next_due() == math.inf


@pytest.mark.anyio
async def test_targets_with_slack_go_early_with_a_wake_up_but_never_past_one_due_sooner() -> None:
    scheduler: Scheduler[Target] = Scheduler()
    start = anyio.current_time()
    for name, due, slack in (
        ("a", 1.0, 0.0),  # wakes the scheduler at 1
        ("b", 1.03, 0.05),  # goes with it: within the horizon, and its slack allows
        ("c", 1.04, 0.01),  # within the horizon, but may not go before 1.03: on time
        ("d", 1.045, 1.0),  # may go at any time, but not before c, due sooner
        ("e", 1.2, 1.0),  # past the horizon of every wake-up: on time
    ):
        scheduler.push(Target(name), start + due, slack)
    handed = await collect(scheduler, 10, early=0.05)
    assert [(name, round(at - start, 6)) for name, at in handed] == [
        ("a", 1.0),
        ("b", 1.0),
        ("c", 1.04),
        ("d", 1.04),
        ("e", 1.2),
    ]


@given(
    pushes=st.lists(
        st.tuples(st.floats(0, 10), st.floats(0, 1), st.integers(0, 2)), min_size=1, max_size=40
    ),
    times=st.lists(st.floats(0, 12), min_size=1, max_size=20),
    early=st.sampled_from([0.0, 0.05, 0.5]),
)
def test_every_target_goes_within_its_slack_and_the_horizon_earliest_due_first(
    pushes: list[tuple[float, float, int]], times: list[float], early: float
) -> None:
    """Random pushes (a target pushed again supersedes itself), popped at random times:
    nothing is handed out before its slack allows or past the horizon, nothing due is
    left behind, and targets come out earliest due first."""
    scheduler: Scheduler[Target] = Scheduler()
    targets = [Target(str(i)) for i in range(3)]
    for due, slack, which in pushes:
        scheduler.push(targets[which], due, slack)
    last_due = -math.inf
    for now in sorted(times):
        while (target := scheduler.pop_due(now, early)) is not None:
            assert target.due <= now or (target.due <= now + early and target.earliest <= now)
            assert target.due >= last_due
            last_due = target.due
        assert all(t.in_flight or t.due > now for t in targets)


@pytest.mark.anyio
async def test_a_held_group_waits_aside_and_the_others_go_at_their_times() -> None:
    """Targets of group "x" are held until 5 s: the others come out at their due
    times meanwhile, and x's come back at 5 s, earliest due first, then at theirs."""
    scheduler: Scheduler[Target] = Scheduler()
    for name, due in (("x1", 1.0), ("y1", 1.5), ("x2", 2.0), ("y2", 3.0), ("x3", 6.0)):
        scheduler.push(Target(name), due)

    def hold(target: Target) -> tuple[str, float] | None:
        held = target.name.startswith("x") and anyio.current_time() < 5.0
        return ("x", 5.0) if held else None

    handed: list[tuple[str, float]] = []

    async def dispatch(target: Target) -> None:
        handed.append((target.name, round(anyio.current_time(), 6)))

    with anyio.move_on_after(10):
        await scheduler.run(dispatch, hold=hold)
    assert handed == [("y1", 1.5), ("y2", 3.0), ("x1", 5.0), ("x2", 5.0), ("x3", 6.0)]
    assert len(scheduler) == 0


def test_nothing_due_after_a_head_that_may_not_go_early_goes_before_it() -> None:
    """A held group's head that may go early does not pass a target due sooner that
    may not go yet; one due sooner still goes."""
    scheduler: Scheduler[Target] = Scheduler()
    a, x = Target("a"), Target("x")
    scheduler.push(a, 1.2)  # no slack: not before 1.2
    scheduler.push(x, 1.3, slack=0.5)  # could go from 0.8

    def hold(target: Target) -> tuple[str, float] | None:
        return ("x", 0.9) if target is x else None

    assert scheduler.pop_due(0.5, early=1.0, hold=hold) is None  # x is set aside
    assert scheduler.pop_due(1.0, early=1.0, hold=hold) is None  # x not before a
    assert scheduler.pop_due(1.2, early=1.0, hold=hold) is a
    assert scheduler.pop_due(1.2, early=1.0, hold=hold) is x


def test_a_target_aside_comes_out_at_its_expiry_whatever_its_groups_hold() -> None:
    """Set aside behind a head due sooner, in a group held until 10: a target that
    expires at 3 comes out at 3 (and the scheduler's wake-up says so), ahead of
    everything; the others wait for the hold; a superseded one does not expire."""
    expiries = {"late": 3.0, "moved": 2.0}
    scheduler: Scheduler[Target] = Scheduler(expiry=lambda t: expiries.get(t.name))
    head, late, moved, free = Target("head"), Target("late"), Target("moved"), Target("free")
    scheduler.push(head, 1.0)
    scheduler.push(late, 1.5)
    scheduler.push(moved, 1.6)

    def hold(target: Target) -> tuple[str, float] | None:
        return ("group", 10.0) if target is not free else None

    assert scheduler.pop_due(1.7, hold=hold) is None  # all three set aside
    scheduler.push(moved, 12.0)  # pushed again: its entry aside (and expiry) is stale
    assert scheduler.next_held(hold) == 3.0
    scheduler.push(free, 2.5)
    assert scheduler.pop_due(2.5, hold=hold) is free
    assert scheduler.pop_due(2.9, hold=hold) is None
    assert scheduler.pop_due(3.0, hold=hold) is late
    assert scheduler.next_held(hold) == 10.0
    assert scheduler.pop_due(9.0, hold=hold) is None
    assert scheduler.pop_due(10.0, hold=hold) is head
    assert scheduler.pop_due(10.0, hold=hold) is None  # moved is due at 12 (main heap)
    assert scheduler.next_due() == 12.0
