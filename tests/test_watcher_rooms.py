"""The watcher's rooms on their own: the job table, the outcomes, the stream."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from jobwatch import Client, EvsJob, GaveUp, GiveUpReason, JobState, Transition
from jobwatch._events import Event
from jobwatch._jobtable import JobTable
from jobwatch._outcomes import Gather, Outcomes
from jobwatch._stream import EventStream
from jobwatch._tracking import Tracked, give_up

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def removed(ref: EvsJob) -> GaveUp:
    return GaveUp(ref, None, GiveUpReason.REMOVED, "unwatched", NOW)


def make_table(
    *, enabled: bool = True, capacity: int = 10
) -> tuple[JobTable, list[Event], Outcomes]:
    acked: list[Event] = []
    outcomes = Outcomes(True)
    stream: EventStream[Tracked] = EventStream(
        capacity,
        enabled=enabled,
        auto=False,
        ack=lambda event, root: acked.append(event),
        waited_on=lambda: outcomes.awaited,
    )
    return JobTable(stream, outcomes, lambda job: None), acked, outcomes


def test_a_job_ends_once_whoever_asks() -> None:
    table, _, outcomes = make_table()
    job = table.start(EvsJob("a"), Client("http://x.test", "p"), 0.0, None)
    assert job is not None
    assert table.start(EvsJob("a"), Client("http://x.test", "p"), 0.0, None) is None
    assert table.finish(job, give_up(job, GiveUpReason.REMOVED, "unwatched"))
    assert not table.finish(job, give_up(job, GiveUpReason.REMOVED, "unwatched"))
    assert table.open == {}
    assert len(table.stream) == 1
    assert outcomes.get(EvsJob("a")) is not None
    assert table.started == 1


def test_the_events_that_end_a_job_must_end_with_its_final_event() -> None:
    table, _, _ = make_table()
    job = table.start(EvsJob("a"), Client("http://x.test", "p"), 0.0, None)
    assert job is not None
    with pytest.raises(AssertionError):
        table.finish(job, [removed(EvsJob("other"))])
    assert not job.ended
    assert EvsJob("a") in table.open


def test_an_undelivered_final_stays_exported_until_the_consumer_takes_it() -> None:
    table, _, _ = make_table()
    job = table.start(EvsJob("a"), Client("http://x.test", "p"), 0.0, None)
    assert job is not None
    final = GaveUp(EvsJob("a"), None, GiveUpReason.TIMED_OUT, "late", NOW)
    table.finish(job, [final])
    assert [j.ref for j in table.exported()] == [EvsJob("a")]
    table.delivered(job)
    assert table.exported() == []
    removed_job = table.start(EvsJob("b"), Client("http://x.test", "p"), 0.0, None)
    assert removed_job is not None
    table.finish(removed_job, [removed(EvsJob("b"))])
    assert table.exported() == []  # unwatched: not resumed, read or not


def test_with_the_stream_off_events_are_acknowledged_at_once() -> None:
    table, acked, _ = make_table(enabled=False)
    job = table.start(EvsJob("a"), Client("http://x.test", "p"), 0.0, None)
    assert job is not None
    table.finish(job, [removed(EvsJob("a"))])
    assert [e.ref for e in acked] == [EvsJob("a")]
    assert len(table.stream) == 0


class Collect(list[Event]):
    aborted = False

    def deliver(self, final: Event) -> None:
        self.append(final)

    def abort(self) -> None:
        self.aborted = True


def test_outcomes_keep_the_newest_n_and_listeners_get_theirs() -> None:
    outcomes = Outcomes(2)
    got = Collect()
    outcomes.listen(EvsJob("a"), got)
    for name in "abc":
        outcomes.record(removed(EvsJob(name)))
    assert [e.ref for e in got] == [EvsJob("a")]
    assert EvsJob("a") not in outcomes
    assert EvsJob("b") in outcomes
    assert EvsJob("c") in outcomes
    assert not outcomes.awaited
    with pytest.raises(ValueError, match="keep_outcomes"):
        Outcomes(-1)


def test_outcomes_kept_by_nobody_still_reach_the_listeners() -> None:
    outcomes = Outcomes(False)
    got, left = Collect(), Collect()
    outcomes.listen(EvsJob("a"), got)
    outcomes.listen(EvsJob("b"), left)
    outcomes.record(removed(EvsJob("a")))
    assert len(got) == 1
    assert len(outcomes) == 0
    outcomes.close()  # the watcher closed: who still waits is told
    assert left.aborted
    assert not got.aborted
    assert not outcomes.awaited


@pytest.mark.anyio
async def test_a_cancelled_gather_stops_listening() -> None:
    outcomes = Outcomes(False)
    started: list[EvsJob] = []
    gather = Gather(outcomes, [EvsJob("a"), EvsJob("a"), EvsJob("b")], started.append)  # type: ignore[arg-type]
    assert started == [EvsJob("a"), EvsJob("b")]
    with anyio.move_on_after(0.01):
        await gather.next()
    gather.close()
    assert not outcomes.awaited


@pytest.mark.anyio
async def test_an_auto_stream_turns_off_only_when_full_unread_and_awaited() -> None:
    awaited = False
    acked: list[Event] = []
    stream: EventStream[None] = EventStream(
        1, enabled=True, auto=True, ack=lambda e, r: acked.append(e), waited_on=lambda: awaited
    )
    first = Transition(EvsJob("a"), None, None, JobState.RUNNING, None, NOW)  # type: ignore[arg-type]
    await stream.send(first, None)
    with anyio.move_on_after(0.05) as scope:  # full, nobody awaits: backpressure
        await stream.send(first, None)
    assert scope.cancelled_caught
    assert stream.enabled
    awaited = True
    stream.nudge()
    await stream.send(first, None)  # full, unread, awaited: off, and nothing blocks
    assert not stream.enabled
    assert len(acked) == 2
    with pytest.raises(RuntimeError, match="event stream is off"):
        stream.subscribe()


async def _exit_with(body_error: BaseException | None, task_errors: list[Exception]) -> None:
    from jobwatch._unwrap import exit_task_group

    tg = anyio.create_task_group()
    await tg.__aenter__()

    async def fail(error: Exception) -> None:
        with anyio.CancelScope(shield=True):  # fails even as the body's error cancels it
            await anyio.sleep(0.01)
        raise error

    for error in task_errors:
        tg.start_soon(fail, error)
    try:
        if body_error is not None:
            raise body_error
        await anyio.sleep(1)  # cancelled when a task fails
    except BaseException as raised:  # what __aexit__ gets from the body
        if not await exit_task_group(tg, type(raised), raised, raised.__traceback__):
            raise
        return
    await exit_task_group(tg, None, None, None)


@pytest.mark.anyio
async def test_the_body_error_leaves_as_itself() -> None:
    with pytest.raises(KeyError):
        await _exit_with(KeyError("mine"), [])


@pytest.mark.anyio
async def test_a_lone_task_error_leaves_as_itself_and_several_as_a_group() -> None:
    with pytest.raises(ValueError, match="one"):
        await _exit_with(None, [ValueError("one")])
    with pytest.raises(BaseExceptionGroup) as info:
        await _exit_with(KeyError("mine"), [ValueError("one")])
    assert info.group_contains(KeyError)
    assert info.group_contains(ValueError)
