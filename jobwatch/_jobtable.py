"""The job table: the only place where the watch of a job starts, and the only place where it ends.

``finish`` is idempotent and synchronous: it marks the job ended, takes it out
of the open jobs and of its batch, records its outcome and queues its final
events (its open sub-jobs' give-ups first, its own final event last) in one
step, so that "exactly one final outcome, and it comes last" holds whoever
ends the job (a poll, a give-up, ``unwatch``).  A job being polled is never
ended by anyone but the worker polling it, after that poll's events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from jobwatch._client import Client
from jobwatch._events import Event, GaveUp, GiveUpReason
from jobwatch._kinds import batch_group
from jobwatch._outcomes import Outcomes
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobState
from jobwatch._stream import EventStream
from jobwatch._tracking import Batch, SubJob, Tracked

__all__ = ["JobTable"]


class JobTable:
    """Open jobs, jobs ended but whose final event is not yet delivered, and batches."""

    def __init__(
        self,
        stream: EventStream[Tracked],
        outcomes: Outcomes,
        on_restart: Callable[[Tracked], None],
    ) -> None:
        self.stream = stream
        self.outcomes = outcomes
        self._on_restart = on_restart
        self.open: dict[JobRef, Tracked] = {}
        #: Ended jobs whose final event the consumer has not taken yet: a resume
        #: token carries them, so that their final event is not lost.
        self.undelivered: dict[JobRef, Tracked] = {}
        self.started = 0
        self._batches: dict[tuple[int, object], Batch] = {}
        #: New watches of jobs whose removal waits for a poll in flight.
        self._restarts: dict[JobRef, Tracked] = {}

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
        """Open a watch of ``ref``: the job to schedule, or None.

        None when ``ref`` is open already, or when its watch is being removed while
        a poll of it is in flight: the new watch then opens (and ``on_restart`` is
        called with it) once the old one has ended, so that its events all come
        after the old watch's final event.
        """
        current = self.open.get(ref)
        if current is not None and (not current.removed or ref in self._restarts):
            return None
        job = Tracked(ref, client, now, now + deadline if deadline else None, state, seen)
        if subs:
            job.subs = {r: SubJob(parent, s, final) for r, (parent, s, final) in subs.items()}
        self.started += 1
        if current is not None:
            self._restarts[ref] = job
            return None
        self._open(job)
        return job

    def _open(self, job: Tracked) -> None:
        ref = job.ref
        self.open[ref] = job
        self.outcomes.forget(ref)  # a new watch: its own outcome will come
        key = batch_group(ref)
        if key is not None:
            slot = (id(job.client), key)
            batch = self._batches.get(slot)
            if batch is None or batch.ended:
                batch = self._batches[slot] = Batch(job.client, key)
            batch.members[ref] = job
            job.batch = batch

    def restarting(self, ref: JobRef) -> Tracked | None:
        """The new watch of ``ref`` waiting for its removed one to end, if any."""
        return self._restarts.get(ref)

    def unwatch_restart(self, ref: JobRef) -> None:
        """Drop the new watch of ``ref`` that waits for its removed one to end, if any.

        It never opened and emitted nothing: the old watch's final event (its
        ``GaveUp`` of reason ``removed``) is the last of ``ref``, and its outcome."""
        self._restarts.pop(ref, None)

    @property
    def open_count(self) -> int:
        """Watches whose final event was not emitted yet."""
        return len(self.open) + len(self._restarts)

    def finish(self, job: Tracked, events: Sequence[Event]) -> bool:
        """End the watch of ``job`` with ``events``, the last its final event.

        False (and nothing done) when it had ended already.
        """
        if job.ended:
            return False
        if not events:
            raise AssertionError(f"{job.ref} cannot end without a final event")
        final = events[-1]
        if not final.final or final.ref != job.ref or final.parent is not None:
            raise AssertionError(f"the events that end {job.ref} must end with its final event")
        job.ended = True
        job.in_flight = False
        ref = job.ref
        if self.open.get(ref) is job:
            del self.open[ref]
        batch = job.batch
        if batch is not None:
            if batch.members.get(ref) is job:
                del batch.members[ref]
            if not batch.members:
                batch.ended = True
                slot = (id(batch.client), batch.key)
                if self._batches.get(slot) is batch:
                    del self._batches[slot]
        restart = self._restarts.pop(ref, None)
        if restart is None:  # else its waiters wait for the new watch's outcome
            self.outcomes.record(final)
        removed = isinstance(final, GaveUp) and final.reason is GiveUpReason.REMOVED
        if self.stream.enabled and not removed:  # a removed job is not resumed
            self.undelivered[ref] = job
        for event in events:
            self.stream.put(event, job)
        if restart is not None:
            self._open(restart)
            self._on_restart(restart)
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
