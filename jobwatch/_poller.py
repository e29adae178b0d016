"""The poller: the hand-off of due jobs and batches to the workers, and what a
worker does with one.

The hand-off is a queue of ready targets, filled by the scheduler's task in
batches: when it wakes it takes every target due (up to ``2 x workers``) at once,
and wakes idle workers once for them all; a worker takes the next ready target
after each poll without waiting for anyone.  The scheduler refills the queue when
it falls to half (one wake-up of the scheduler per ``workers`` polls, not one
rendezvous per poll).  A worker gives a target back to the scheduler, instead of
waiting for a token, when its client's budget binds and it was handed out before
(``_give_back``).  A ready target is in flight: the scheduler skips its
other heap entries.  An ``unwatch`` of a job in it (or waiting for room in it)
takes it out and ends it at once: only a job being polled is ended by its worker.

It polls (one request per target, inside the per-poll guard and the job's
deadline), turns the answer into events with ``_tracking.observe``, sends them,
and then either schedules the next poll or has the job table end the job.  A
job being polled is ended by its worker only, after that poll's events.

An instrumentation (``jobwatch.otel``) may set ``Poller.tracer``: each logical
poll (one request and its retries, for one job or a batch) is then a
``PollTrace``, active around the request and told the poll's events before
they are sent; it ends before the stream is waited on.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import anyio

from jobwatch._abandon import Poll
from jobwatch._budget import AdaptiveRate
from jobwatch._client import Client, FetchResult, RequestLedger, counting
from jobwatch._clock import Clock
from jobwatch._events import Event, PollDetails, PollHook
from jobwatch._exceptions import JobwatchError, PollFailed
from jobwatch._jobtable import JobTable
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef
from jobwatch._schedule import Scheduler
from jobwatch._snapshot import JobSnapshot
from jobwatch._stream import EventStream, Signal
from jobwatch._tracking import Batch, Tracked, observe, time_out, unwatched
from jobwatch._wakeup import Wakeup, wakeup

__all__ = ["PollTrace", "PollTracer", "Poller", "Target"]

logger = logging.getLogger("jobwatch")

Target = Tracked | Batch
#: Seconds the scheduler lets pass after a due time before it wakes: the targets
#: due meanwhile are handed out with it, in one wake-up (a poll is at most this
#: late; detection lags are seconds).
LINGER = 0.005
#: Seconds before its due time a poll may be made along with one due (a wake-up
#: shared), when its interval's jitter allows it (``Tracked.slack``): an interval
#: then stays within the jitter band ``PollPolicy`` promises.  At 1,000 jobs this
#: halves the scheduler's wake-ups; a poll at a deadline or the end of a grace is
#: never early.
EARLY = 0.05


class PollTrace(Protocol):
    """One logical poll as an instrumentation sees it: made by ``PollTracer.poll``."""

    def request(self) -> AbstractContextManager[object]:
        """The block the request runs in, retries included (in the worker's task)."""
        ...

    def observed(self, events: Sequence[Event], details: PollDetails | None) -> None:
        """The events one job of this poll produced (``details`` None when the poll was
        cut short: a timeout, or an unwatch while it waited to send)."""
        ...

    def end(self) -> None:
        """The poll is over (called once, before its events are sent)."""
        ...


class PollTracer(Protocol):
    """What ``Poller.tracer`` is: called at the start of every logical poll."""

    def poll(self, client: Client, refs: Sequence[JobRef]) -> PollTrace:
        """The trace of a poll of ``refs`` through ``client``, about to start."""
        ...


class _Untraced:
    """The trace of every poll when no tracer is set: does nothing."""

    __slots__ = ()

    def request(self) -> AbstractContextManager[object]:
        return nullcontext()

    def observed(self, events: Sequence[Event], details: PollDetails | None) -> None:
        pass

    def end(self) -> None:
        pass


_UNTRACED = _Untraced()


#: Seconds between looks for a free slot while the scheduler waits for one to hand a
#: poll out with its token (see ``Poller._prepay``).
_RECHECK = 0.05
#: Seconds to a budget's next token that count as none (a rounding short of it).
_TOKEN_SLACK = 1e-6


class Poller:
    """Polls due targets for the workers; counts polls, requests and requests saved."""

    def __init__(
        self,
        table: JobTable,
        stream: EventStream[Tracked],
        policy: PollPolicy,
        on_poll: PollHook | None,
        rng: random.Random,
    ) -> None:
        self.table = table
        self.stream = stream
        self.policy = policy
        self.on_poll = on_poll
        self.rng = rng
        self.scheduler: Scheduler[Target] = Scheduler(expiry=_deadline)
        self.ledger = RequestLedger()
        self.polls = 0
        self.saved = 0
        self.tracer: PollTracer | None = None
        #: ``anyio.current_time()``'s clock, read the cheap way (``loop_clock``, set
        #: by the watcher in its loop).
        self.clock: Clock = anyio.current_time
        self._ready: deque[Target] = deque()
        self._capacity = 2  # of the ready queue: 2 x workers (set by schedule_loop)
        self._sleepers: list[Wakeup] = []  # one per idle worker
        self._woken = 0  # idle workers woken that have not run yet
        self._room = Signal()  # the ready queue fell to half while the scheduler waited
        self._refill = False  # the scheduler waits for room
        self._free = Signal()  # a worker went idle while the scheduler waited for one
        self._want_worker = False  # the scheduler waits for an idle worker
        self._prepaid: AdaptiveRate | None = None  # the token taken for the next hand-off
        self._handing: Target | None = None  # the target waiting for room in the queue

    def _trace(self, client: Client, refs: Sequence[JobRef]) -> PollTrace:
        tracer = self.tracer
        return _UNTRACED if tracer is None else tracer.poll(client, refs)

    def schedule(self, job: Tracked, due: float, slack: float = 0.0) -> None:
        """Poll ``job`` at ``due``, or up to ``slack`` seconds before (see ``EARLY``)."""
        job.due = due
        batch = job.batch
        if batch is None:
            self.scheduler.push(job, due, slack)
        elif not batch.in_flight and due < batch.due:
            self.scheduler.push(batch, due)

    async def schedule_loop(self, workers: int) -> None:
        """The scheduler's task: queue due targets for ``workers`` workers, forever."""
        self._capacity = 2 * workers
        await self.scheduler.run(
            self._hand_off,
            self._admit,
            linger=LINGER,
            early=EARLY,
            clock=self.clock,
            hold=self._hold,
        )

    def _hold(self, target: Target) -> tuple[Hashable, float] | None:
        """Until when ``target``'s client may not send, once its budget binds: its next
        token's time, or while all its slots are taken, the next look (``_RECHECK``).

        The scheduler sets such a target aside with the others of its client, and
        the other clients' targets go on at their times: one client's budget holds
        back that client's polls only."""
        budget = target.client.budget
        if budget is None or not budget.limited or budget is self._prepaid:
            return None  # (prepaid: the token for the hand-off under way is taken)
        return self._held(target, budget)

    def _held(self, target: Target, budget: AdaptiveRate) -> tuple[Hashable, float] | None:
        """``_hold`` of ``target`` under ``budget``, which binds.  Not a target past its
        deadline: it ends at once, with no request.  (One set aside comes out at its
        deadline, whatever its client's hold: the scheduler's ``expiry``.)"""
        client = target.client
        wait = budget.expected_wait()
        now = self.clock()
        if wait > _TOKEN_SLACK:
            until = now + wait
        elif not client.free_slots:
            until = now + _RECHECK
        else:
            return None
        deadline = _deadline(target)
        return None if deadline is not None and deadline <= now else (client, until)

    def _give_back(self, target: Target) -> bool:
        """Put ``target``, just taken from the ready queue, back in the scheduler (to
        be held there) when its client's budget binds now and its poll was handed out
        without a token (before a throttle taught the budget): its wait for a token
        would tie this worker up, and the other clients' polls behind it."""
        budget = target.client.budget
        if (
            budget is None
            or target.prepaid is not None
            or not budget.limited
            or self._held(target, budget) is None
        ):
            return False
        target.in_flight = False
        if isinstance(target, Batch):
            self._requeue(target)
        else:
            self.schedule(target, target.due, target.slack)
        return True

    def _admit(self, target: Target) -> Awaitable[None] | None:
        """The wait for a token of the target's budget, once a throttle made it bind."""
        self._prepaid = None  # one taken for a target then not handed out is dropped
        budget = target.client.budget
        if budget is None or not budget.limited or (isinstance(target, Tracked) and target.removed):
            return None
        if _past(_deadline(target), self.clock):
            return None  # it ends without a request: no token
        return self._prepay(target.client, budget)

    async def _prepay(self, client: Client, budget: AdaptiveRate) -> None:
        """Wait for an idle worker, then take a token of ``budget`` for the next
        hand-off, if ``client`` can still send at once (the scheduler gives a target
        only when its client's budget has a token and a slot is free: ``_hold``).

        The poll handed out goes with the token (``prepaid``) to a worker that sends
        it at once: a token is never held while a poll waits for a worker or a slot,
        so requests stay as far apart as the rate says (and a token whose poll does
        not go at once, its job unwatched or its slot taken meanwhile, is dropped).
        When the token or the slot went meanwhile (to a request that is not the
        watcher's, or a retry), no token is taken: the scheduler holds the target."""
        while not (self._sleepers and len(self._ready) <= self._woken):
            self._want_worker = True
            try:
                # A worker going idle or done with a poll says so.
                with anyio.move_on_after(_RECHECK):
                    await self._free.wait()
            finally:
                self._want_worker = False
            if self.scheduler.next_held(self._hold) <= self.clock():
                return  # a target aside expired meanwhile: it ends first
        if not client.free_slots or budget.expected_wait() > _TOKEN_SLACK:
            return
        await budget.acquire()
        self._prepaid = budget

    async def _hand_off(self, target: Target) -> None:
        """Queue ``target`` and wake an idle worker for it; wait while the queue is full.

        It does not yield while there is room: the scheduler queues everything due
        in one go, and the woken workers run at its next checkpoint.  A job past its
        deadline is not queued while the stream has room: it ends here, at once (no
        worker needed); with the stream full, a worker ends it once there is room.
        """
        if (
            isinstance(target, Tracked)
            and _past(target.deadline_at, self.clock)
            and self.stream.has_room()
        ):
            self._prepaid = None
            self.table.finish(target, time_out(target, self.policy))
            return
        ready = self._ready
        if len(ready) >= self._capacity:
            self._refill = True
            self._handing = target
            try:
                while len(ready) >= self._capacity:
                    await self._room.wait()
            finally:
                self._refill = False
                self._handing = None
        prepaid = self._prepaid
        self._prepaid = None
        if target.ended:  # unwatched meanwhile (its token, if any, is dropped)
            return
        if prepaid is not None and target.client.budget is prepaid:
            target.prepaid = prepaid
        ready.append(target)
        sleepers = self._sleepers
        if sleepers and self._woken < len(ready):
            sleepers.pop().set()  # the most recently idle: its code and data are warm
            self._woken += 1

    def _taken(self) -> None:
        """A target left the ready queue: wake the scheduler if it waits for room and
        the queue fell to half."""
        if self._refill and len(self._ready) <= self._capacity // 2:
            self._room.fire()

    async def _idle(self) -> None:
        """Wait, as an idle worker, until the scheduler wakes this one for a ready target."""
        woken = wakeup()
        self._sleepers.append(woken)
        if self._want_worker:
            self._free.fire()
        try:
            await woken.wait()
        finally:
            if woken.is_set():
                self._woken -= 1
            else:  # cancelled while idle
                self._sleepers.remove(woken)

    async def work_loop(self) -> None:
        """A worker's task: poll ready targets, one after another, forever.

        Its requests count in ``ledger`` (one block for the task's life, not one per
        poll: the task makes no request but its polls')."""
        ready = self._ready
        with counting(self.ledger):
            while True:
                if not ready:
                    await self._idle()
                    continue
                target = ready.popleft()
                self._taken()
                if self._give_back(target):
                    continue
                if isinstance(target, Batch):
                    await self._poll_batch(target)
                else:
                    await self._poll_job(target)
                if self._want_worker:  # (its slot is free again)
                    self._free.fire()

    async def _poll_job(self, job: Tracked) -> None:
        prepaid, job.prepaid = job.prepaid, None
        if await self._ended_before_poll(job):
            return
        trace = self._trace(job.client, [job.ref])
        results = await self._poll(job.client, [job], job.deadline_at, trace, prepaid)
        if results is None:
            events = self._cut_short(job, trace)
            trace.end()
            await self._end(job, events)
        else:
            try:
                events, due = self._observe(job, results[0], trace)
            finally:  # (the on_poll hook may raise)
                trace.end()
            await self._deliver(job, events, due)

    async def _poll_batch(self, batch: Batch) -> None:
        batch.due = math.inf
        prepaid, batch.prepaid = batch.prepaid, None
        members = list(batch.members.values())  # fixed for this request
        for job in members:
            job.in_flight = True
        live = [job for job in members if not await self._ended_before_poll(job)]
        if live:
            deadlines = [job.deadline_at for job in live if job.deadline_at is not None]
            deadline = min(deadlines) if deadlines else None
            trace = self._trace(batch.client, [j.ref for j in live])
            this_poll = RequestLedger()  # the shared totals move with other workers' polls
            with counting(this_poll):
                results = await self._poll(batch.client, live, deadline, trace, prepaid)
            if results is not None:
                self.saved += max(len(live) - max(this_poll.requests, 1), 0)
                try:
                    observed = [
                        (job, *self._observe(job, result, trace))
                        for job, result in zip(live, results, strict=True)
                    ]
                finally:  # (the on_poll hook may raise)
                    trace.end()
                for job, events, due in observed:
                    await self._deliver(job, events, due)
            else:
                now = self.clock()
                ended: list[tuple[Tracked, list[Event]]] = []
                for job in live:
                    if job.removed or (job.deadline_at is not None and now >= job.deadline_at):
                        ended.append((job, self._cut_short(job, trace)))
                    else:  # cut short by another member's deadline: poll again at once
                        job.in_flight = False
                        job.due = now
                trace.end()
                for job, events in ended:
                    await self._end(job, events)
        batch.in_flight = False
        self._requeue(batch)

    def left(self, job: Tracked) -> None:
        """``job``, not in flight, left its batch: the batch, queued for the earliest
        due member, is due when the earliest of those left is (not at ``job``'s)."""
        if job.batch is not None:
            self._requeue(job.batch)

    def _requeue(self, batch: Batch) -> None:
        """Queue ``batch``, unless ended, empty or being polled, for its earliest due member."""
        if not batch.ended and not batch.in_flight and batch.members:
            self.scheduler.push(batch, min(job.due for job in batch.members.values()))

    async def _ended_before_poll(self, job: Tracked) -> bool:
        """End ``job`` instead of polling it when it was unwatched or is past its deadline."""
        if job.removed:
            await self._end(job, unwatched(job))
            return True
        if job.deadline_at is not None and self.clock() >= job.deadline_at:
            await self._time_out(job)
            return True
        return False

    async def _poll(
        self,
        client: Client,
        jobs: Sequence[Tracked],
        deadline: float | None,
        trace: PollTrace,
        prepaid: AdaptiveRate | None,
    ) -> list[FetchResult] | None:
        """One request's results for ``jobs`` (the per-poll guard); None when it was cut
        short: by the deadline, or abandoned waiting to send once every job was unwatched.
        ``prepaid``: the budget whose token the scheduler took for this poll.

        Whatever the request raises becomes an error of these jobs: a
        ``JobwatchError`` as it is, anything else as ``PollFailed``.
        """
        poll = Poll(jobs, deadline, prepaid)
        for job in jobs:
            job.poll = poll
        if all(job.removed for job in jobs):  # while a batch's members were checked
            poll.abandon()
        try:
            with trace.request(), poll:
                return await self._request(client, [job.ref for job in jobs])
        finally:
            for job in jobs:
                job.poll = None
        return None

    def unwatched(self, job: Tracked) -> None:
        """``job``, in flight, was unwatched: its poll ends in its next wait to send
        (or the one under way) once it serves no job still watched.  Not polled yet
        (in the ready queue, or being queued), it ends at once."""
        poll = job.poll
        if poll is not None:
            if all(served.removed for served in poll.serves):
                poll.abandon()
            return
        ready = self._ready
        if job is self._handing:
            self._handing = None  # (``_hand_off`` drops it: ended)
        elif job in ready:  # (2 x workers at most)
            ready.remove(job)
            self._taken()
        else:
            return  # a worker has it: it ends after that poll's events
        self.table.finish(job, unwatched(job))

    def _cut_short(self, job: Tracked, trace: PollTrace) -> list[Event]:
        """The events that end ``job`` when its poll was cut short (unwatched or timed out)."""
        events = unwatched(job) if job.removed else time_out(job, self.policy)
        trace.observed(events, None)
        return events

    async def _request(self, client: Client, refs: Sequence[JobRef]) -> list[FetchResult]:
        try:
            if len(refs) == 1:
                return [await client.fetch(refs[0])]
            return await client.fetch_many(refs)
        except JobwatchError as exc:
            return [exc] * len(refs)
        except Exception as exc:  # noqa: BLE001 - the per-poll guard: see PollFailed
            return [self._unexpected(refs, exc)] * len(refs)

    def _unexpected(self, refs: Sequence[JobRef], exc: Exception) -> PollFailed:
        error = PollFailed(f"polling failed unexpectedly: {_describe(exc)}")
        error.__cause__ = exc
        jobs = [self.table.open.get(ref) for ref in refs]
        if any(job is not None and not job.logged for job in jobs):
            logger.error("polling %s failed unexpectedly", ", ".join(map(str, refs)), exc_info=exc)
            for job in jobs:
                if job is not None:
                    job.logged = True
        else:
            logger.debug("polling %s failed unexpectedly again: %r", refs[0], exc)
        return error

    async def _time_out(self, job: Tracked) -> None:
        await self._end(job, time_out(job, self.policy))

    def _observe(
        self, job: Tracked, result: FetchResult, trace: PollTrace
    ) -> tuple[list[Event], float | None]:
        """Turn one poll's result into events and the next poll's time (None: the job ends)."""
        job.polls += 1
        self.polls += 1
        snapshot = result if isinstance(result, JobSnapshot) else None
        error = result if isinstance(result, JobwatchError) else None
        now = self.clock()
        events, delay = observe(job, snapshot, error, now, self.policy, self.rng)
        if self.on_poll is not None or trace is not _UNTRACED:  # someone reads the details
            budget = job.client.budget
            if budget is None:
                details = PollDetails(job.ref, job.polls, snapshot, error, delay)
            else:
                details = PollDetails(
                    job.ref,
                    job.polls,
                    snapshot,
                    error,
                    delay,
                    budget.rate,
                    budget.throttles,
                    budget.paused,
                )
            trace.observed(events, details)
            if self.on_poll is not None:
                self.on_poll(details)
        return events, None if delay is None else now + delay

    async def _deliver(self, job: Tracked, events: list[Event], due: float | None) -> None:
        """Send one poll's events, then schedule the next poll (at ``due``) or end the job."""
        if due is None:
            await self._end(job, events)
            return
        for event in events:
            await self.stream.send(event, job)
        if job.removed:
            await self._end(job, unwatched(job))
            return
        job.in_flight = False
        self.schedule(job, due, job.slack)

    async def _end(self, job: Tracked, events: list[Event]) -> None:
        """End ``job`` with ``events`` once the stream has room (a worker's path)."""
        await self.stream.reserve()
        self.table.finish(job, events)


def _past(deadline: float | None, clock: Clock) -> bool:
    """Whether ``deadline`` (None: none) has come."""
    return deadline is not None and deadline <= clock()


def _deadline(target: Target) -> float | None:
    """When ``target``'s poll is cut short at the latest: its job's deadline, or the
    earliest of its batch members' (None: none)."""
    if isinstance(target, Tracked):
        return target.deadline_at
    deadlines = [job.deadline_at for job in target.members.values() if job.deadline_at is not None]
    return min(deadlines) if deadlines else None


def _describe(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, even when its ``__str__`` itself fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile exception must not escape the guard
        text = "<str() failed>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
