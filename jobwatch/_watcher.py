"""The watcher: one scheduler polling many jobs, events through an async iterator."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from jobwatch._client import Client
from jobwatch._events import Event, GaveUp, GiveUpReason, PollDetails, PollHook, Transition
from jobwatch._exceptions import JobFailed, JobwatchError, WatchGaveUp, missing_from_list
from jobwatch._policies import PollPolicy
from jobwatch._refs import GesEngineJob, JobRef
from jobwatch._resume import dump_state, load_state
from jobwatch._snapshot import JobSnapshot, JobState
from jobwatch._tracking import Graph, SubJob, Tracked, give_up, observe

__all__ = ["Watcher", "WatcherStatistics"]

logger = logging.getLogger("jobwatch")

Target = Tracked | Graph


@dataclass(frozen=True, slots=True)
class _Idle:
    """Sent through the event stream when no job is left open."""

    epoch: int


@dataclass(frozen=True, slots=True)
class WatcherStatistics:
    """A watcher's counters.

    ``requests``, ``retries`` and ``errors`` are those of its default client since
    the watcher started; ``requests_saved`` counts the polls of engine jobs that
    rode on another job's list request.
    """

    jobs_watched: int
    jobs_open: int
    polls: int
    requests: int
    retries: int
    errors: int
    events: int
    requests_saved: int


class Watcher:
    """Watches many jobs at once and emits their state changes.

    One scheduler task keeps a priority queue of next-poll times and hands due
    jobs to a few worker tasks, so that in-flight requests stay within
    ``concurrency`` (default: the client's ``max_in_flight``) whatever the number
    of jobs.  Engine jobs of one graph are refreshed by one list request.

    Use it as an async context manager; leaving the block cancels the polling,
    and an error in the watcher's tasks propagates out of the block::

        async with Watcher(client) as watcher:
            watcher.watch(EvsJob("ff8080..."))
            async for event in watcher.events():
                print(event.ref, event.state if isinstance(event, Transition) else event.reason)

    Events go through a buffer of ``buffer`` events: a consumer that falls behind
    slows polling down, and nothing is dropped.  If you only use ``wait``,
    ``wait_all`` or ``as_completed``, pass ``events=False`` so that unread events
    do not fill the buffer.

    The final outcome of every top-level job is kept, so that ``wait`` answers
    even after the job ended; in a long-running service pass
    ``keep_outcomes=False`` (outcomes are then kept only for jobs someone is
    waiting on when they end) or call ``forget``.
    """

    def __init__(
        self,
        client: Client,
        *,
        policy: PollPolicy | None = None,
        buffer: int = 1024,
        events: bool = True,
        concurrency: int | None = None,
        on_poll: PollHook | None = None,
        seed: int | None = None,
        keep_outcomes: bool = True,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.client = client
        self.policy = policy or PollPolicy()
        self._concurrency = concurrency or client.max_in_flight
        self._buffer = buffer
        self._events_enabled = events
        self._on_poll = on_poll
        self._rng = random.Random(seed)
        self._keep_outcomes = keep_outcomes
        self._jobs: dict[JobRef, Tracked] = {}
        self._graphs: dict[tuple[int, str], Graph] = {}
        # Heap entries are (due, key) with the target in _queued[key]: a tuple of a
        # float and an int is not tracked by the garbage collector, and this one is
        # made anew at each poll of each job (see Tracked.last).
        self._heap: list[tuple[float, int]] = []
        self._queued: dict[int, Target] = {}
        self._seq = itertools.count()
        self._wake = anyio.Event()
        self._wake_at = math.inf
        self._open = 0
        self._epoch = 0
        self._outcomes: dict[JobRef, Event] = {}
        self._waiters: dict[JobRef, anyio.Event] = {}
        self._listeners: dict[JobRef, list[_Completions]] = {}
        self._owners: dict[JobRef, Tracked] = {}
        self._polls = self._events = self._saved = 0
        self._client_base = client.statistics()
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._send: MemoryObjectSendStream[Event | _Idle] | None = None
        self._recv: MemoryObjectReceiveStream[Event | _Idle] | None = None

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this watcher is already running")
        stack = AsyncExitStack()
        self._send, self._recv = anyio.create_memory_object_stream[Event | _Idle](self._buffer)
        stack.enter_context(self._send)
        stack.enter_context(self._recv)
        dispatch_send, dispatch_recv = anyio.create_memory_object_stream[Target](0)
        stack.enter_context(dispatch_send)
        stack.enter_context(dispatch_recv)
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._tg.start_soon(self._schedule_loop, dispatch_send, name="jobwatch scheduler")
        for n in range(self._concurrency):
            self._tg.start_soon(self._work_loop, dispatch_recv, name=f"jobwatch worker {n}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._stack is None or self._tg is None:
            raise RuntimeError("this watcher is not running")
        self._tg.cancel_scope.cancel()
        try:
            return await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._stack = self._tg = None

    # -- adding and removing jobs ---------------------------------------------------

    def watch(self, ref: JobRef, *, client: Client | None = None) -> None:
        """Start watching ``ref`` (no-op if it is already watched). Does not block."""
        self._add(ref, client or self.client, None, False, {})

    def watch_many(self, refs: Iterable[JobRef], *, client: Client | None = None) -> None:
        """Start watching every reference in ``refs``. Does not block.

        For very many jobs at once (say 100,000), ``awatch_many`` lets other tasks
        run while they are registered.
        """
        client = client or self.client
        now = anyio.current_time()
        for ref in refs:
            self._add(ref, client, None, False, {}, now)

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
        """Stop watching ``ref``; it ends with a ``GaveUp`` event of reason ``removed``."""
        job = self._jobs.get(ref)
        if job is None or job.done:
            return
        job.removed = True
        self._tg_required().start_soon(
            self._finish, job, give_up(job, GiveUpReason.REMOVED, "unwatched")
        )

    def _add(
        self,
        ref: JobRef,
        client: Client,
        state: JobState | None,
        seen: bool,
        subs: dict[JobRef, tuple[JobRef, JobState]],
        now: float | None = None,
    ) -> None:
        self._tg_required()
        if ref in self._jobs:
            return
        if now is None:
            now = anyio.current_time()
        deadline = self.policy.deadline
        job = Tracked(ref, client, now, now + deadline if deadline else None, state, seen)
        if subs:
            job.subs = {r: SubJob(parent, s) for r, (parent, s) in subs.items()}
        self._jobs[ref] = job
        self._open += 1
        self._epoch += 1
        self._outcomes.pop(ref, None)
        if isinstance(ref, GesEngineJob):
            key = (id(client), ref.graph_name)
            graph = self._graphs.get(key)
            if graph is None or graph.done:
                graph = self._graphs[key] = Graph(client, ref.graph_name)
            graph.members[ref] = job
            job.graph = graph
        self._schedule(job, now + self.policy.first_poll_delay)

    def _tg_required(self) -> TaskGroup:
        if self._tg is None:
            raise RuntimeError("use the watcher inside 'async with' first")
        return self._tg

    # -- scheduling -------------------------------------------------------------------

    def _schedule(self, job: Tracked, due: float) -> None:
        job.due = due
        graph = job.graph
        if graph is None:
            self._push(job, due)
        elif not graph.in_flight and (not graph.queued or due < graph.due):
            self._push(graph, due)

    def _push(self, target: Target, due: float) -> None:
        target.due = due
        if isinstance(target, Graph):
            target.queued = True
        key = next(self._seq)
        self._queued[key] = target
        heapq.heappush(self._heap, (due, key))
        if due < self._wake_at:
            self._wake_at = due  # the scheduler recomputes it when it wakes
            self._wake.set()

    async def _schedule_loop(self, dispatch: MemoryObjectSendStream[Target]) -> None:
        heap, queued = self._heap, self._queued
        while True:
            now = anyio.current_time()
            while heap and heap[0][0] <= now:
                due, key = heapq.heappop(heap)
                target = queued.pop(key)
                if target.due != due or target.done or target.in_flight:
                    continue  # superseded entry
                target.in_flight = True
                if isinstance(target, Graph):
                    target.queued = False
                await dispatch.send(target)
                now = anyio.current_time()
            self._wake = anyio.Event()
            self._wake_at = heap[0][0] if heap else math.inf
            with anyio.move_on_after(self._wake_at - now):
                await self._wake.wait()

    async def _work_loop(self, dispatch: MemoryObjectReceiveStream[Target]) -> None:
        async for target in dispatch:
            if isinstance(target, Graph):
                await self._poll_graph(target)
            else:
                await self._poll_job(target)

    async def _poll_job(self, job: Tracked) -> None:
        snapshot: JobSnapshot | None = None
        error: JobwatchError | None = None
        try:
            snapshot = await job.client.fetch(job.ref)
        except JobwatchError as exc:
            error = exc
        await self._apply(job, snapshot, error)

    async def _poll_graph(self, graph: Graph) -> None:
        if not graph.members:  # every member ended (or was unwatched) since it was queued
            graph.done = True
            graph.in_flight = False
            return
        found: dict[JobRef, JobSnapshot] = {}
        error: JobwatchError | None = None
        requests_before = graph.client.statistics().requests
        try:
            async for snapshot in graph.client.list_engine_jobs(graph.name):
                if snapshot.ref in graph.members:
                    found[snapshot.ref] = snapshot
        except JobwatchError as exc:
            error = exc
        requests = graph.client.statistics().requests - requests_before
        members = list(graph.members.values())
        self._saved += max(len(members) - max(requests, 1), 0)
        for job in members:
            found_snapshot = found.get(job.ref)
            job_error = error
            if found_snapshot is None and error is None:
                job_error = missing_from_list(job.ref.job_id, graph.name)
            job.in_flight = True
            await self._apply(job, found_snapshot, job_error)
        graph.in_flight = False
        live = [job.due for job in graph.members.values()]
        if live:
            graph.due = min(live)
            self._push(graph, graph.due)
        else:
            graph.done = True

    async def _apply(
        self, job: Tracked, snapshot: JobSnapshot | None, error: JobwatchError | None
    ) -> None:
        """Turn one poll's result into events, then schedule the next poll or finish."""
        job.polls += 1
        self._polls += 1
        if job.removed or job.done:
            job.in_flight = False
            return
        now = anyio.current_time()
        events, delay = observe(job, snapshot, error, now, self.policy, self._rng)
        if self._on_poll is not None:
            self._on_poll(PollDetails(job.ref, job.polls, snapshot, error, delay))
        if delay is None:
            await self._finish(job, events)
            return
        for event in events:
            await self._emit(event)
        job.in_flight = False
        self._schedule(job, now + delay)

    async def _finish(self, job: Tracked, events: list[Event]) -> None:
        job.done = True
        job.in_flight = False
        if job.graph is not None:
            job.graph.members.pop(job.ref, None)
        for event in events:
            await self._emit(event)
        self._open -= 1
        if not self._events_enabled:
            self._jobs.pop(job.ref, None)
        elif self._open == 0 and self._send is not None:
            await self._send.send(_Idle(self._epoch))

    async def _emit(self, event: Event) -> None:
        self._events += 1
        if event.final and event.parent is None:
            waiter = self._waiters.pop(event.ref, None)
            if self._keep_outcomes or waiter is not None:
                self._outcomes[event.ref] = event
            if waiter is not None:
                waiter.set()
            for listener in self._listeners.pop(event.ref, ()):
                listener.deliver(event)
        if event.parent is not None and self._events_enabled:
            root = self._jobs.get(event.parent) or self._owners.get(event.parent)
            if root is not None:
                self._owners[event.ref] = root
        if self._events_enabled and self._send is not None:
            await self._send.send(event)
        elif event.parent is None:
            job = self._jobs.get(event.ref)
            if job is not None and isinstance(event, Transition):
                job.delivered = event.state

    # -- consuming ------------------------------------------------------------------------

    def events(self, *, until_idle: bool = True) -> AsyncIterator[Event]:
        """The events, in order per job, as an async iterator.

        With ``until_idle`` (the default) the iteration ends once no watched job is
        left open and every event was read; add more jobs and call ``events()``
        again to go on.  Otherwise it runs until the watcher closes.
        """
        if not self._events_enabled:
            raise RuntimeError("this watcher was made with events=False")
        return _EventIterator(self, until_idle)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def _delivered(self, event: Event) -> None:
        """Note that the consumer received ``event`` (what resume tokens record)."""
        if event.parent is None:
            job = self._jobs.get(event.ref)
            if job is None:
                return
            if isinstance(event, Transition):
                job.delivered = event.state
            if event.final and job.done:
                del self._jobs[event.ref]
                for sub_ref in job.subs or ():
                    self._owners.pop(sub_ref, None)
            return
        root = self._owners.get(event.ref)
        if root is not None and root.subs is not None and event.ref in root.subs:
            sub = root.subs[event.ref]
            if isinstance(event, Transition):
                sub.delivered = event.state

    async def wait(self, ref: JobRef, *, raise_on_failure: bool = False) -> JobSnapshot:
        """Wait for ``ref``'s final state and return its last snapshot.

        The job is watched if it is not already.  Raises ``WatchGaveUp`` when the
        watcher gave up on it, and with ``raise_on_failure`` ``JobFailed`` when it
        (or any of its sub-jobs) failed.  Bound the wait with ``anyio.fail_after``.
        """
        outcome = await self._outcome(ref)
        if isinstance(outcome, GaveUp):
            raise WatchGaveUp(outcome)
        snapshot = outcome.snapshot
        if raise_on_failure and (snapshot.state is JobState.FAILED or snapshot.failed_sub_jobs):
            raise JobFailed(snapshot)
        return snapshot

    async def wait_all(self, refs: Iterable[JobRef]) -> list[Event]:
        """Wait for every job of ``refs``; their final events (transition or give-up), in order."""
        refs = list(refs)
        for ref in refs:
            if ref not in self._jobs and ref not in self._outcomes:
                self.watch(ref)
        return [await self._outcome(ref) for ref in refs]

    def as_completed(self, refs: Iterable[JobRef]) -> AsyncIterator[Event]:
        """The final events of ``refs`` as each job ends (watching those not yet watched)."""
        return _Completions(self, refs)

    async def _outcome(self, ref: JobRef) -> Event:
        if ref not in self._jobs and ref not in self._outcomes:
            self.watch(ref)
        while (event := self._outcomes.get(ref)) is None:
            waiter = self._waiters.get(ref)
            if waiter is None:
                waiter = self._waiters[ref] = anyio.Event()
            await waiter.wait()
        return event

    def forget(self, ref: JobRef) -> None:
        """Drop the recorded final outcome of ``ref`` (to bound memory in long runs)."""
        self._outcomes.pop(ref, None)

    # -- statistics and resume ----------------------------------------------------------

    def statistics(self) -> WatcherStatistics:
        """The watcher's counters (see ``WatcherStatistics``)."""
        now, base = self.client.statistics(), self._client_base
        return WatcherStatistics(
            jobs_watched=self._epoch,
            jobs_open=self._open,
            polls=self._polls,
            requests=now.requests - base.requests,
            retries=now.retries - base.retries,
            errors=now.errors - base.errors,
            events=self._events,
            requests_saved=self._saved,
        )

    def export_state(self) -> dict[str, Any]:
        """A JSON-serialisable token of the watched jobs and their last *delivered* states.

        A watcher in another process given it through ``resume`` goes on watching
        those jobs without emitting again the transitions already delivered.
        """
        return dump_state(self._jobs.values())

    def resume(self, token: object, *, client: Client | None = None) -> int:
        """Watch the jobs of a token from ``export_state``; returns how many were added.

        ``ValueError`` when the token is not one.  Deadlines start again from now.
        """
        jobs = load_state(token)
        for entry in jobs:
            self._add(entry.ref, client or self.client, entry.state, entry.seen, entry.subs)
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
        recv = watcher._recv
        if recv is None:
            raise StopAsyncIteration
        while True:
            if (
                self._until_idle
                and watcher._open == 0
                and recv.statistics().current_buffer_used == 0
            ):
                raise StopAsyncIteration
            try:
                item = await recv.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise StopAsyncIteration from None
            if isinstance(item, _Idle):
                if self._until_idle and item.epoch == watcher._epoch and watcher._open == 0:
                    raise StopAsyncIteration
                continue
            watcher._delivered(item)
            return item


class _Completions:
    """``Watcher.as_completed()``: final events in the order the jobs end."""

    def __init__(self, watcher: Watcher, refs: Iterable[JobRef]) -> None:
        unique = list(dict.fromkeys(refs))
        self._left = len(unique)
        self._ready: list[Event] = []
        self._signal = anyio.Event()
        for ref in unique:
            done = watcher._outcomes.get(ref)
            if done is not None:
                self._ready.append(done)
                continue
            if ref not in watcher._jobs:
                watcher.watch(ref)
            watcher._listeners.setdefault(ref, []).append(self)

    def deliver(self, event: Event) -> None:
        self._ready.append(event)
        self._signal.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        if self._left == 0:
            raise StopAsyncIteration
        while not self._ready:
            self._signal = anyio.Event()
            await self._signal.wait()
        self._left -= 1
        return self._ready.pop(0)
