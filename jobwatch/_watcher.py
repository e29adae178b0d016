"""The watcher: a thin facade over the scheduler, the job table, the outcomes and the stream.

Data flows one way: the scheduler hands due jobs (or batches) to workers; a
worker polls (``_poll``), the rules of ``_tracking.observe`` turn the answer
into events and a next delay, and the events go to the stream; the job table
ends a job (``JobTable.finish``), recording its outcome apart from the stream.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from jobwatch._client import Client
from jobwatch._events import Event, GaveUp, PollHook, Transition
from jobwatch._exceptions import JobFailed, WatchGaveUp
from jobwatch._jobtable import JobTable
from jobwatch._outcomes import Gather, Outcomes
from jobwatch._policies import PollPolicy
from jobwatch._poller import Poller, PollTracer, Target
from jobwatch._refs import JobRef
from jobwatch._resume import dump_state, load_state
from jobwatch._snapshot import JobSnapshot, JobState
from jobwatch._stream import EventStream
from jobwatch._tracking import SubJob, Tracked, unwatched
from jobwatch._unwrap import exit_task_group

__all__ = ["Watcher", "WatcherStatistics"]

logger = logging.getLogger("jobwatch")


@dataclass(frozen=True, slots=True)
class WatcherStatistics:
    """A watcher's counters.

    ``requests``, ``retries`` and ``errors`` count the HTTP requests, retries and
    failed calls of this watcher's polls, whichever client each job uses;
    ``requests_saved`` counts the polls that rode on another job's request
    (engine jobs of one graph share one list request).  ``throttles`` counts the
    throttling answers to those requests; ``rate`` and ``paused`` are those of
    the watcher's own client's budget (see ``ClientStatistics``).
    """

    jobs_watched: int
    jobs_open: int
    polls: int
    requests: int
    retries: int
    errors: int
    events: int
    requests_saved: int
    throttles: int = 0
    rate: float | None = None
    paused: float = 0.0


class Watcher:
    """Watches many jobs at once and emits their state changes.

    One scheduler task keeps a heap of next-poll times and hands due jobs to a
    few worker tasks, so that in-flight requests stay within ``concurrency``
    (default: the client's ``max_in_flight``) whatever the number of jobs.  Jobs
    that one request answers (engine jobs of one graph) are polled together.

    Use it as an async context manager, once; leaving the block cancels the
    polling.  The block's own exception leaves it as itself (not an
    ``ExceptionGroup``), and so does an exception raised by your ``on_poll``
    hook; what one poll raises never leaves it (see ``PollFailed``)::

        async with Watcher(client) as watcher:
            watcher.watch(EvsJob("ff8080..."))
            async for event in watcher.events():
                print(event.ref, event.state if isinstance(event, Transition) else event.reason)

    Every watch of a job ends with exactly one final outcome (a terminal
    ``Transition`` or a ``GaveUp``), the last event of the job and its sub-jobs.

    Events go through a buffer of ``buffer`` events: a consumer that falls
    behind slows polling down, and nothing is dropped.  ``events``: None (the
    default) keeps the stream unless its buffer fills while you wait for an
    outcome and have never called ``events()``: it is then turned off, so that
    ``wait`` alone never blocks on it.  True keeps it always (read it!); False
    has none.

    ``keep_outcomes``: True keeps every top-level job's final outcome, so that
    ``wait`` answers after the job ended; an int keeps that many, the newest;
    False keeps none (a ``wait`` already waiting still gets its outcome).
    ``forget`` drops one.
    """

    def __init__(
        self,
        client: Client,
        *,
        policy: PollPolicy | None = None,
        buffer: int = 1024,
        events: bool | None = None,
        concurrency: int | None = None,
        on_poll: PollHook | None = None,
        seed: int | None = None,
        keep_outcomes: bool | int = True,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.policy = policy or PollPolicy()
        self._concurrency = concurrency or client.max_in_flight
        self._rng = random.Random(seed)
        self._outcomes = Outcomes(keep_outcomes)
        self._stream: EventStream[Tracked] = EventStream(
            buffer,
            enabled=events is not False,
            auto=events is None,
            ack=self._acknowledge,
            waited_on=lambda: self._outcomes.awaited,
        )
        self._table = JobTable(self._stream, self._outcomes, self._restarted)
        self._poller = Poller(self._table, self._stream, self.policy, on_poll, self._rng)
        self._phase = "new"
        self._tg: TaskGroup | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._phase != "new":
            raise RuntimeError(
                "this watcher is running"
                if self._phase == "running"
                else "a watcher cannot be entered again once it was exited: make a new one"
            )
        self._phase = "running"
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        send, receive = anyio.create_memory_object_stream[Target](0)
        tg.start_soon(self._poller.schedule_loop, send, name="jobwatch scheduler")
        for n in range(self._concurrency):
            tg.start_soon(self._poller.work_loop, receive.clone(), name=f"jobwatch worker {n}")
        receive.close()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._phase != "running" or self._tg is None:
            raise RuntimeError("this watcher is not running")
        self._phase = "closed"
        self._stream.close()
        self._outcomes.close()
        tg, self._tg = self._tg, None
        tg.cancel_scope.cancel()
        return await exit_task_group(tg, exc_type, exc, tb)

    def _running(self) -> TaskGroup:
        if self._tg is None:
            raise RuntimeError(
                "use the watcher inside 'async with' first"
                if self._phase == "new"
                else "this watcher was closed"
            )
        return self._tg

    # -- adding and removing jobs ---------------------------------------------------

    def watch(self, ref: JobRef, *, client: Client | None = None) -> None:
        """Start watching ``ref`` (no-op while it is watched). Does not block.

        A job whose watch ended is watched again, with an outcome of its own.
        """
        self._start(ref, client or self.client, anyio.current_time())

    def watch_many(self, refs: Iterable[JobRef], *, client: Client | None = None) -> None:
        """Start watching every reference in ``refs``. Does not block.

        For very many jobs at once (say 100,000), ``awatch_many`` lets other tasks
        run while they are registered.
        """
        client = client or self.client
        now = anyio.current_time()
        for ref in refs:
            self._start(ref, client, now)

    async def awatch_many(
        self, refs: Iterable[JobRef], *, client: Client | None = None, chunk: int = 1000
    ) -> None:
        """Like ``watch_many``, letting other tasks run after every ``chunk`` jobs."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        batch: list[JobRef] = []
        for ref in refs:
            batch.append(ref)
            if len(batch) >= chunk:
                self.watch_many(batch, client=client)
                batch.clear()
                await anyio.lowlevel.checkpoint()
        self.watch_many(batch, client=client)

    def unwatch(self, ref: JobRef) -> None:
        """Stop watching ``ref``: it ends with a ``GaveUp`` of reason ``removed``.

        No-op when ``ref`` is not watched (never, or no more).  A job being polled
        ends after that poll's events; a poll still waiting to send its request
        (for the request budget, a ``RateLimit``, a server's pause or a retry's
        backoff) is abandoned at once when it serves no other job still watched,
        and the job ends without it.
        """
        self._running()
        job = self._table.open.get(ref)
        if job is not None and job.removed:  # being removed: perhaps watched again since
            job = self._table.restarting(ref)
        if job is None or job.removed:
            return
        job.removed = True
        if job.in_flight:
            self._poller.unwatched(job)
        else:
            self._table.finish(job, unwatched(job))

    def _start(
        self,
        ref: JobRef,
        client: Client,
        now: float,
        state: JobState | None = None,
        seen: bool = False,
        subs: dict[JobRef, tuple[JobRef, JobState, bool]] | None = None,
    ) -> None:
        self._running()
        job = self._table.start(ref, client, now, self.policy.timeout, state, seen, subs)
        if job is not None:
            self._poller.schedule(job, now + self.policy.first_poll_delay)

    def _restarted(self, job: Tracked) -> None:
        """A watch asked for while the previous one was being removed opens now."""
        self._poller.schedule(job, anyio.current_time() + self.policy.first_poll_delay)

    # -- consuming ------------------------------------------------------------------------

    def events(self, *, until_idle: bool = True) -> AsyncIterator[Event]:
        """The events, in order per job, as an async iterator.

        With ``until_idle`` (the default) the iteration ends once no watched job is
        left open and every event was read; add more jobs and call ``events()``
        again to go on.  Otherwise it runs until the watcher closes.
        """
        self._stream.subscribe()
        return _EventIterator(self, until_idle)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _idle(self) -> bool:
        return self._table.open_count == 0

    def _acknowledge(self, event: Event, root: Tracked) -> None:
        """The consumer took ``event`` (or the stream is off): what resume tokens record."""
        if event.parent is None and event.ref == root.ref:
            if isinstance(event, Transition):
                root.delivered = event.state
        else:
            sub: SubJob | None = (root.subs or {}).get(event.ref)
            if sub is not None:
                if isinstance(event, Transition):
                    sub.delivered = event.state
                sub.final_delivered = sub.final_delivered or event.final
        if event.final and event.parent is None:
            self._table.delivered(root)

    async def wait(self, ref: JobRef, *, raise_on_failure: bool = False) -> JobSnapshot:
        """Wait for ``ref``'s final state and return its last snapshot.

        The job is watched if it is not already.  Raises ``WatchGaveUp`` when the
        watcher gave up on it, and with ``raise_on_failure`` ``JobFailed`` when it
        (or any of its sub-jobs) failed.  Bound the wait with ``anyio.fail_after``.
        """
        gather = self._gather([ref])
        try:
            outcome = await gather.next()
        finally:
            gather.close()
        if isinstance(outcome, GaveUp):
            raise WatchGaveUp(outcome)
        snapshot = outcome.snapshot
        if raise_on_failure and (snapshot.state is JobState.FAILED or snapshot.failed_sub_jobs):
            raise JobFailed(snapshot)
        return snapshot

    async def wait_all(self, refs: Iterable[JobRef]) -> list[Event]:
        """Wait for every job of ``refs``; their final events (transition or give-up), in order."""
        refs = list(refs)
        gather = self._gather(refs)
        found: dict[JobRef, Event] = {}
        try:
            while gather.left:
                outcome = await gather.next()
                found[outcome.ref] = outcome
        finally:
            gather.close()
        return [found[ref] for ref in refs]

    def as_completed(self, refs: Iterable[JobRef]) -> Gather:
        """The final events of ``refs`` as each job ends (watching those not yet watched).

        An async iterator; to leave it before the end, close it (``async with
        contextlib.aclosing(watcher.as_completed(refs)) as outcomes: ...``), or
        it listens until those jobs end.  ``RuntimeError`` when the watcher
        closes first (so do ``wait`` and ``wait_all``).
        """
        return self._gather(refs)

    def _gather(self, refs: Iterable[JobRef]) -> Gather:
        def start(ref: JobRef) -> None:
            if ref not in self._table.open:
                self.watch(ref)

        gather = Gather(self._outcomes, refs, start)
        self._stream.nudge()  # a writer held by a buffer nobody reads may now go on
        return gather

    def forget(self, ref: JobRef) -> None:
        """Drop the recorded final outcome of ``ref`` (to bound memory in long runs)."""
        self._outcomes.forget(ref)

    # -- statistics and resume ----------------------------------------------------------

    def _instrument(self, tracer: PollTracer | None, tap: Callable[[Event], None] | None) -> None:
        """Trace every logical poll with ``tracer`` and tell ``tap`` every event
        (``jobwatch.otel``; None and None: as made)."""
        self._poller.tracer = tracer
        self._stream.tap = tap

    def statistics(self) -> WatcherStatistics:
        """The watcher's counters (see ``WatcherStatistics``)."""
        poller = self._poller
        ledger = poller.ledger
        budget = self.client.budget
        return WatcherStatistics(
            jobs_watched=self._table.started,
            jobs_open=self._table.open_count,
            polls=poller.polls,
            requests=ledger.requests,
            retries=ledger.retries,
            errors=ledger.errors,
            events=self._stream.emitted,
            requests_saved=poller.saved,
            throttles=ledger.throttles,
            rate=None if budget is None else budget.rate,
            paused=0.0 if budget is None else budget.paused,
        )

    def export_state(self) -> dict[str, Any]:
        """A JSON-serialisable token of the watched jobs and their last *delivered* states.

        A watcher in another process given it through ``resume`` goes on watching
        those jobs without emitting again the transitions already delivered.
        Jobs that ended but whose final event was not read yet are in it too.
        """
        return dump_state(self._table.exported())

    def resume(self, token: object, *, client: Client | None = None) -> int:
        """Watch the jobs of a token from ``export_state``; returns how many were added.

        ``ValueError`` when the token is not one (and nothing is added).  Deadlines
        start again from now.
        """
        jobs = load_state(token)
        now = anyio.current_time()
        for entry in jobs:
            self._start(entry.ref, client or self.client, now, entry.state, entry.seen, entry.subs)
        return len(jobs)


class _EventIterator:
    """``Watcher.events()``: a class, not an async generator, so breaking out is clean."""

    def __init__(self, watcher: Watcher, until_idle: bool) -> None:
        self._watcher = watcher
        self._until_idle = until_idle

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        watcher = self._watcher
        item = await watcher._stream.receive(watcher._idle if self._until_idle else None)
        if item is None:
            raise StopAsyncIteration
        return item[0]
