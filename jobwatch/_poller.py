"""The poller: what a worker does with a due job or batch.

It polls (one request per target, inside the per-poll guard and the job's
deadline), turns the answer into events with ``_tracking.observe``, sends them,
and then either schedules the next poll or has the job table end the job.  A
job being polled is ended by its worker only, after that poll's events.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from jobwatch._client import Client, FetchResult, RequestLedger, counting
from jobwatch._events import Event, PollDetails, PollHook
from jobwatch._exceptions import JobwatchError, PollFailed
from jobwatch._jobtable import JobTable
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef
from jobwatch._schedule import Scheduler
from jobwatch._snapshot import JobSnapshot
from jobwatch._stream import EventStream
from jobwatch._tracking import Batch, Tracked, observe, time_out, unwatched

__all__ = ["Poller", "Target"]

logger = logging.getLogger("jobwatch")

Target = Tracked | Batch


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
        self.scheduler: Scheduler[Target] = Scheduler()
        self.ledger = RequestLedger()
        self.polls = 0
        self.saved = 0

    def schedule(self, job: Tracked, due: float) -> None:
        job.due = due
        batch = job.batch
        if batch is None:
            self.scheduler.push(job, due)
        elif not batch.in_flight and due < batch.due:
            self.scheduler.push(batch, due)

    async def schedule_loop(self, dispatch: MemoryObjectSendStream[Target]) -> None:
        async with dispatch:
            await self.scheduler.run(dispatch.send)

    async def work_loop(self, dispatch: MemoryObjectReceiveStream[Target]) -> None:
        async with dispatch:
            async for target in dispatch:
                if isinstance(target, Batch):
                    await self._poll_batch(target)
                else:
                    await self._poll_job(target)

    async def _poll_job(self, job: Tracked) -> None:
        if await self._ended_before_poll(job):
            return
        results, timed_out = await self._poll(job.client, [job.ref], job.deadline_at)
        if timed_out:
            await self._time_out(job)
        else:
            await self._apply(job, results[0])

    async def _poll_batch(self, batch: Batch) -> None:
        batch.due = math.inf
        members = list(batch.members.values())  # fixed for this request
        for job in members:
            job.in_flight = True
        live = [job for job in members if not await self._ended_before_poll(job)]
        if live:
            deadlines = [job.deadline_at for job in live if job.deadline_at is not None]
            deadline = min(deadlines) if deadlines else None
            this_poll = RequestLedger()  # the shared totals move with other workers' polls
            with counting(this_poll):
                results, timed_out = await self._poll(batch.client, [j.ref for j in live], deadline)
            if not timed_out:
                self.saved += max(len(live) - max(this_poll.requests, 1), 0)
                for job, result in zip(live, results, strict=True):
                    await self._apply(job, result)
            else:
                now = anyio.current_time()
                for job in live:
                    if job.deadline_at is not None and now >= job.deadline_at:
                        await self._time_out(job)
                    else:  # cut short by another member's deadline: poll again at once
                        job.in_flight = False
                        job.due = now
        batch.in_flight = False
        if not batch.ended and batch.members:
            self._schedule_batch(batch)

    def _schedule_batch(self, batch: Batch) -> None:
        due = min(job.due for job in batch.members.values())
        self.scheduler.push(batch, due)

    async def _ended_before_poll(self, job: Tracked) -> bool:
        """End ``job`` instead of polling it when it was unwatched or is past its deadline."""
        if job.removed:
            await self._end(job, unwatched(job))
            return True
        if job.deadline_at is not None and anyio.current_time() >= job.deadline_at:
            await self._time_out(job)
            return True
        return False

    async def _poll(
        self, client: Client, refs: Sequence[JobRef], deadline: float | None
    ) -> tuple[list[FetchResult], bool]:
        """One request's results for ``refs`` (the per-poll guard), and whether the
        deadline cut it short.

        Whatever the request raises becomes an error of these jobs: a
        ``JobwatchError`` as it is, anything else as ``PollFailed``.
        """
        if deadline is None:
            return await self._request(client, refs), False
        with anyio.CancelScope(deadline=deadline) as scope:
            return await self._request(client, refs), False
        return [], scope.cancelled_caught

    async def _request(self, client: Client, refs: Sequence[JobRef]) -> list[FetchResult]:
        try:
            with counting(self.ledger):
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

    async def _apply(self, job: Tracked, result: FetchResult) -> None:
        """Turn one poll's result into events, then schedule the next poll or end the job."""
        job.polls += 1
        self.polls += 1
        snapshot = result if isinstance(result, JobSnapshot) else None
        error = result if isinstance(result, JobwatchError) else None
        now = anyio.current_time()
        events, delay = observe(job, snapshot, error, now, self.policy, self.rng)
        if self.on_poll is not None:
            self.on_poll(PollDetails(job.ref, job.polls, snapshot, error, delay))
        if delay is None:
            await self._end(job, events)
            return
        for event in events:
            await self.stream.send(event, job)
        if job.removed:
            await self._end(job, unwatched(job))
            return
        job.in_flight = False
        self.schedule(job, now + delay)

    async def _end(self, job: Tracked, events: list[Event]) -> None:
        """End ``job`` with ``events`` once the stream has room (a worker's path)."""
        await self.stream.reserve()
        self.table.finish(job, events)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, even when its ``__str__`` itself fails."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a hostile exception must not escape the guard
        text = "<str() failed>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
