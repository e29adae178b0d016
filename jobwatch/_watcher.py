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

from jobwatch._apis import api_of
from jobwatch._client import Client
from jobwatch._clock import loop_clock
from jobwatch._events import Event, GaveUp, PollHook, Transition
from jobwatch._exceptions import JobFailed, WatchGaveUp
from jobwatch._jobtable import JobTable
from jobwatch._outcomes import Gather, Outcomes
from jobwatch._policies import PollPolicy
from jobwatch._poller import Poller, PollTracer
from jobwatch._pool import ClientPool
from jobwatch._refs import JobRef
from jobwatch._resume import ResumedJob, dump_state, load_state
from jobwatch._snapshot import JobSnapshot, JobState
from jobwatch._stream import EventStream
from jobwatch._tracking import SubJob, Tracked, unwatched
from jobwatch._unwrap import exit_task_group

__all__ = ["Watcher", "WatcherStatistics"]

logger = logging.getLogger("jobwatch")

#: With a pool, the workers per ``max_in_flight`` slot of one client.
POOL_WORKERS_PER_CLIENT_SLOT = 4


@dataclass(frozen=True, slots=True)
class WatcherStatistics:
    """A watcher's counters.

    ``requests``, ``retries`` and ``errors`` count the HTTP requests, retries and
    failed calls of this watcher's polls, summed over every client its jobs use
    (a client shared with other code counts only this watcher's requests here;
    its own ``statistics()`` counts them all); ``clients`` is how many clients
    its jobs were given so far; ``requests_saved`` counts the polls that rode on
    another job's request (engine jobs of one graph, on one client, share one
    list request).
    ``throttles`` counts the throttling answers to those requests; ``rate`` and
    ``paused`` are those of the watcher's own client's budget (None and 0 for a
    watcher made with a pool: see each client's ``statistics()``).
    """

    jobs_watched: int
    jobs_open: int
    polls: int
    requests: int
    retries: int
    errors: int
    events: int
    requests_saved: int
    clients: int = 0
    throttles: int = 0
    rate: float | None = None
    paused: float = 0.0


class Watcher:
    """Watches many jobs at once and emits their state changes.

    One scheduler task keeps a heap of next-poll times and hands due jobs to a
    few worker tasks, so that in-flight requests stay within ``concurrency``
    whatever the number of jobs (a client whose request budget has no token yet
    waits aside: it does not hold back the others).  Jobs that one request answers (engine jobs of
    one graph, on the same client) are polled together.

    ``Watcher(client)`` polls every job with ``client`` unless ``watch`` is given
    another (``client=``).  ``Watcher(pool)``, with a ``ClientPool``, watches jobs
    on many endpoints and projects: ``watch(ref, endpoint=..., project_id=...)``
    polls ``ref`` with the pool's client for them, each client keeping its own
    rate limit; there is no default client then, so ``watch(ref)`` alone (and
    ``wait`` of a job not watched yet) is an error.  ``concurrency`` defaults to
    the client's ``max_in_flight``, or with a pool to four times the
    ``max_in_flight`` of its clients (four endpoints at full speed; a slow
    endpoint's requests wait on its own client, but they hold workers).  The
    watcher never closes its client or pool: close them after it.

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
        client: Client | ClientPool,
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
        #: The default client (None for a watcher made with a pool).
        self.client: Client | None = None
        #: The pool (None for a watcher made with a client).
        self.pool: ClientPool | None = None
        if isinstance(client, ClientPool):
            self.pool = client
            default = POOL_WORKERS_PER_CLIENT_SLOT * client.max_in_flight
        else:
            self.client = client
            default = client.max_in_flight
        self.policy = policy or PollPolicy()
        self._concurrency = concurrency or default
        #: Every client a job was given (by id: ``Client`` may define equality).
        self._used: dict[int, Client] = {}
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
        self._poller.clock = loop_clock()
        tg.start_soon(self._poller.schedule_loop, self._concurrency, name="jobwatch scheduler")
        for n in range(self._concurrency):
            tg.start_soon(self._poller.work_loop, name=f"jobwatch worker {n}")
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

    def watch(
        self,
        ref: JobRef,
        *,
        client: Client | None = None,
        endpoint: str | None = None,
        region: str | None = None,
        project_id: str | None = None,
    ) -> None:
        """Start watching ``ref`` (no-op while it is watched). Does not block.

        The job is polled with ``client``; or, on a watcher made with a
        ``ClientPool``, with the pool's client of ``endpoint`` (or of the job's
        service in ``region``: ``pool.client_for(jobwatch.api_of(ref), region=...)``)
        and ``project_id`` (default: the pool's project; ``EndpointNotInPool`` when
        the pool may not reach it, ``UnknownRegion`` or ``UnknownService`` when the
        region table has no endpoint); or with the watcher's client.  A reference
        names one job, watched on one endpoint and project at a time: ``ValueError``
        when it is open on another one (watch it there once it ended).  A job whose watch ended is
        watched again, with an outcome of its own.
        """
        self._running()
        if region is not None:
            chosen = self._regional(ref, region, client, endpoint, project_id)
        else:
            chosen = self._client_for(client, endpoint, project_id)
        if self._elsewhere_possible(chosen):
            self._check_elsewhere(ref, chosen.endpoint, chosen.project_id)
        self._start(ref, chosen, anyio.current_time())

    def watch_in(self, refs: Iterable[JobRef], region: str, project_id: str | None = None) -> None:
        """Watch ``refs``, of any services, each on its service's endpoint in ``region``
        (a watcher made with a ``ClientPool``; see ``watch``).  Does not block.

        Every reference is placed and checked before any is added.
        """
        self._running()
        placed = [(ref, self._regional(ref, region, None, None, project_id)) for ref in refs]
        for ref, chosen in placed:
            if self._elsewhere_possible(chosen):
                self._check_elsewhere(ref, chosen.endpoint, chosen.project_id)
        now = anyio.current_time()
        for ref, chosen in placed:
            self._start(ref, chosen, now)

    def _regional(
        self,
        ref: JobRef,
        region: str,
        client: Client | None,
        endpoint: str | None,
        project_id: str | None,
    ) -> Client:
        """The pool's client of ``ref``'s service in ``region``."""
        if client is not None or endpoint is not None:
            raise ValueError("pass region, endpoint or client: one of them")
        if self.pool is None:
            raise ValueError("region= needs a watcher made with a ClientPool")
        return self.pool.client_for(api_of(ref), region=region, project_id=project_id)

    def watch_many(
        self,
        refs: Iterable[JobRef],
        *,
        client: Client | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
    ) -> None:
        """Start watching every reference in ``refs`` (all with one client: see ``watch``).
        Does not block.

        For very many jobs at once (say 100,000), ``awatch_many`` lets other tasks
        run while they are registered.
        """
        self._running()
        chosen = self._client_for(client, endpoint, project_id)
        if self._elsewhere_possible(chosen):
            refs = list(refs)
            for ref in refs:  # all checked before any is added
                self._check_elsewhere(ref, chosen.endpoint, chosen.project_id)
        now = anyio.current_time()
        for ref in refs:
            self._start(ref, chosen, now)

    async def awatch_many(
        self,
        refs: Iterable[JobRef],
        *,
        client: Client | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
        chunk: int = 1000,
    ) -> None:
        """Like ``watch_many``, letting other tasks run after every ``chunk`` jobs."""
        if chunk < 1:
            raise ValueError("chunk must be at least 1")
        chosen = self._client_for(client, endpoint, project_id)
        batch: list[JobRef] = []
        for ref in refs:
            batch.append(ref)
            if len(batch) >= chunk:
                self.watch_many(batch, client=chosen)
                batch.clear()
                await anyio.lowlevel.checkpoint()
        self.watch_many(batch, client=chosen)

    def _elsewhere_possible(self, client: Client) -> bool:
        """False when every job so far has ``client``'s endpoint and project (as with
        one client): no reference can then be open elsewhere, and none is checked."""
        where = (client.endpoint, client.project_id)
        return any((c.endpoint, c.project_id) != where for c in self._used.values())

    def _check_elsewhere(self, ref: JobRef, endpoint: str, project_id: str) -> None:
        """``ValueError`` when ``ref`` is open on another endpoint or project."""
        job = self._table.restarting(ref) or self._table.open.get(ref)
        if job is None or job.removed:
            return
        there = job.client
        if (there.endpoint, there.project_id) != (endpoint, project_id):
            raise ValueError(
                f"{ref} is watched on {there.endpoint} (project {there.project_id}) already, "
                f"not on {endpoint} (project {project_id}): a reference is watched on one "
                "endpoint at a time"
            )

    def _client_for(
        self, client: Client | None, endpoint: str | None, project_id: str | None
    ) -> Client:
        """The client ``watch`` was asked to use (see there)."""
        if client is not None:
            if endpoint is not None or project_id is not None:
                raise ValueError("pass client, or endpoint and project_id, not both")
            return client
        if endpoint is not None:
            if self.pool is None:
                raise ValueError(
                    "endpoint= needs a watcher made with a ClientPool (or pass client=)"
                )
            return self.pool.client(endpoint, project_id)
        if project_id is not None:
            raise ValueError("project_id= needs endpoint= too")
        if self.client is None:
            raise ValueError(
                "this watcher has a pool and no default client: "
                "pass endpoint= (and project_id=), or client="
            )
        return self.client

    def unwatch(self, ref: JobRef) -> None:
        """Stop watching ``ref``: it ends with a ``GaveUp`` of reason ``removed``.

        No-op when ``ref`` is not watched (never, or no more).  A job being polled
        ends after that poll's events; a poll still waiting to send its request
        (for the request budget, a ``RateLimit``, a server's pause or a retry's
        backoff) is abandoned at once when it serves no other job still watched,
        and the job ends without it.  A job watched again while its removal waits
        for such a poll, then unwatched again, is simply dropped: it never opened,
        and the first watch's ``GaveUp`` is its last event and its outcome.
        """
        self._running()
        job = self._table.open.get(ref)
        if job is not None and job.removed:  # being removed: perhaps watched again since
            self._table.unwatch_restart(ref)
            return
        if job is None:
            return
        job.removed = True
        if job.in_flight:
            self._poller.unwatched(job)
        else:
            self._table.finish(job, unwatched(job))
            self._poller.left(job)

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
            self._used.setdefault(id(job.client), job.client)
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
        budget = None if self.client is None else self.client.budget
        return WatcherStatistics(
            jobs_watched=self._table.started,
            jobs_open=self._table.open_count,
            polls=poller.polls,
            requests=ledger.requests,
            retries=ledger.retries,
            errors=ledger.errors,
            events=self._stream.emitted,
            requests_saved=poller.saved,
            clients=len(self._used),
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

        A token records each job's endpoint and project.  With ``client`` (or on a
        watcher made with a client) every job must be on that client's endpoint
        and project; on a watcher made with a pool, each job gets the pool's
        client of its endpoint and project.  Jobs of a version 1 token name no
        endpoint: they go to ``client``, or to the watcher's client.

        ``ValueError`` when the token is not one, when a job is on another
        endpoint or project than ``client``, or when the pool may not reach a
        job's endpoint (``EndpointNotInPool``): the error names the job and the
        endpoint, and nothing is added; so when a token names one job on two
        endpoints or projects.  Jobs watched already are not added again (nor
        counted).  Deadlines start again from now.
        """
        jobs = load_state(token)
        self._running()
        chosen = [self._resumed_client(entry, client) for entry in jobs]
        places: dict[JobRef, tuple[str, str]] = {}
        for entry, (endpoint, project_id, _) in zip(jobs, chosen, strict=True):
            self._check_elsewhere(entry.ref, endpoint, project_id)
            first = places.setdefault(entry.ref, (endpoint, project_id))
            if first != (endpoint, project_id):
                raise ValueError(
                    f"resume token: job {entry.ref} is named on {first[0]} (project "
                    f"{first[1]}) and on {endpoint} (project {project_id}): a job is "
                    "watched on one endpoint"
                )
        now = anyio.current_time()
        started = self._table.started
        for entry, (_, _, make) in zip(jobs, chosen, strict=True):
            self._start(entry.ref, make(), now, entry.state, entry.seen, entry.subs)
        return self._table.started - started

    def _resumed_client(
        self, entry: ResumedJob, client: Client | None
    ) -> tuple[str, str, Callable[[], Client]]:
        """The endpoint, project and client (as a call: nothing is made before every
        job was checked) of a job of a token; ``ValueError`` when there is none."""
        given = client or self.client
        if entry.endpoint is None or entry.project_id is None:
            if given is None:
                raise ValueError(
                    f"resume token: job {entry.ref} names no endpoint (a version 1 token): "
                    "pass client="
                )
            default = given
            return default.endpoint, default.project_id, lambda: default
        endpoint, project_id = entry.endpoint, entry.project_id
        if given is None or (client is None and self.pool is not None):
            pool = self.pool
            assert pool is not None  # a watcher has a client or a pool
            try:
                pool.check(endpoint, project_id)
            except ValueError as exc:
                raise type(exc)(f"resume token: job {entry.ref}: {exc}") from None
            return endpoint, project_id, lambda: pool.client(endpoint, project_id)
        if (endpoint, project_id) != (given.endpoint, given.project_id):
            raise ValueError(
                f"resume token: job {entry.ref} is on {endpoint} (project {project_id}), "
                f"not on this client's {given.endpoint} (project {given.project_id})"
            )
        same = given
        return endpoint, project_id, lambda: same


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
