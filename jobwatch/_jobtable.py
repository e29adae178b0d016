"""The job table: the only place where the watch of a job starts, and the only place where it ends.

``finish`` is idempotent and synchronous: it marks the job ended, takes it out
of the open jobs and of its batch, records its outcome and queues its final
events (its open sub-jobs' give-ups first, its own final event last) in one
step, so that "exactly one final outcome, and it comes last" holds whoever
ends the job (a poll, a give-up, ``unwatch``).  A job being polled is never
ended by anyone but the worker polling it, after that poll's events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jobwatch._client import Client
from jobwatch._events import Event
from jobwatch._kinds import batch_group
from jobwatch._outcomes import Outcomes
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobState
from jobwatch._stream import EventStream
from jobwatch._tracking import Batch, SubJob, Tracked

__all__ = ["JobTable"]


class JobTable:
    """Open jobs, jobs ended but whose final event is not yet delivered, and batches."""

    def __init__(self, stream: EventStream[Tracked], outcomes: Outcomes) -> None:
        self.stream = stream
        self.outcomes = outcomes
        self.open: dict[JobRef, Tracked] = {}
        #: Ended jobs whose final event the consumer has not taken yet: a resume
        #: token carries them, so that their final event is not lost.
        self.undelivered: dict[JobRef, Tracked] = {}
        self.started = 0
        self._batches: dict[tuple[int, object], Batch] = {}

    def start(
        self,
        ref: JobRef,
        client: Client,
        now: float,
        deadline: float | None,
        state: JobState | None = None,
        seen: bool = False,
        subs: Mapping[JobRef, tuple[JobRef, JobState, bool]] | None = None,
    ) -> Tracked | None:
        """Open a watch of ``ref``; None when it is open already."""
        if ref in self.open:
            return None
        job = Tracked(ref, client, now, now + deadline if deadline else None, state, seen)
        if subs:
            job.subs = {r: SubJob(parent, s, final) for r, (parent, s, final) in subs.items()}
        self.open[ref] = job
        self.started += 1
        self.outcomes.forget(ref)  # a new watch: its own outcome will come
        key = batch_group(ref)
        if key is not None:
            slot = (id(client), key)
            batch = self._batches.get(slot)
            if batch is None or batch.ended:
                batch = self._batches[slot] = Batch(client, key)
            batch.members[ref] = job
            job.batch = batch
        return job

    def finish(self, job: Tracked, events: Sequence[Event]) -> bool:
        """End the watch of ``job`` with ``events``, the last its final event.

        False (and nothing done) when it had ended already.
        """
        if job.ended:
            return False
        final = events[-1]
        if not final.final or final.ref != job.ref or final.parent is not None:
            raise AssertionError(f"the events that end {job.ref} must end with its final event")
        job.ended = True
        job.in_flight = False
        if self.open.get(job.ref) is job:
            del self.open[job.ref]
        batch = job.batch
        if batch is not None:
            batch.members.pop(job.ref, None)
            if not batch.members:
                batch.ended = True
                slot = (id(batch.client), batch.key)
                if self._batches.get(slot) is batch:
                    del self._batches[slot]
        self.outcomes.record(final)
        if self.stream.enabled:
            self.undelivered[job.ref] = job
        for event in events:
            self.stream.put(event, job)
        self.stream.notify()
        return True

    def delivered(self, job: Tracked) -> None:
        """The consumer took ``job``'s final event."""
        if self.undelivered.get(job.ref) is job:
            del self.undelivered[job.ref]

    def exported(self) -> list[Tracked]:
        """The jobs a resume token carries: open ones, and ended ones not yet delivered."""
        jobs = {ref: job for ref, job in self.undelivered.items() if ref not in self.open}
        jobs.update(self.open)
        return list(jobs.values())
