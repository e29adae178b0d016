"""Per-job watch state and the rules that turn one poll's answer into events.

Nothing here does I/O or sleeps: ``observe`` takes what a poll returned and
says which events to emit and when to poll next (None when the watch ended).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import pickle
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobwatch._abandon import Poll
from jobwatch._client import Client
from jobwatch._events import Event, GaveUp, GiveUpReason, Transition
from jobwatch._exceptions import JobwatchError
from jobwatch._meaning import Meaning, meaning_of
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._budget import AdaptiveRate

#: The fields of a ``JobSnapshot`` but ``ref`` and ``state`` (see ``_pack``), and
#: the places of its times among them.
_OTHER = tuple(f.name for f in dataclasses.fields(JobSnapshot) if f.name not in ("ref", "state"))
_other_fields = operator.attrgetter(*_OTHER)
_TIMES_AT = (_OTHER.index("begin_time"), _OTHER.index("end_time"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
#: Seconds by which a poll at the end of a grace or deadline may fall short of it
#: (the due time is computed in floating point): it still counts as at the end.
_SLACK = 1e-6


class SubJob:
    """What the watcher knows of one sub-job of a batch job."""

    __slots__ = ("delivered", "done", "final_delivered", "parent", "state")

    def __init__(
        self, parent: JobRef, state: JobState | None = None, final_delivered: bool = False
    ) -> None:
        self.parent = parent
        self.state = state
        self.delivered = state
        #: The consumer took its final event (a terminal transition or a give-up).
        self.final_delivered = final_delivered
        self.done = final_delivered or (state is not None and state.terminal)


class Tracked:
    """One watched top-level job: its last state, its schedule, its sub-jobs."""

    __slots__ = (
        "absent",
        "batch",
        "client",
        "deadline_at",
        "delivered",
        "due",
        "earliest",
        "ended",
        "errors",
        "in_flight",
        "logged",
        "packed",
        "payment_since",
        "poll",
        "polls",
        "prepaid",
        "ref",
        "removed",
        "seen",
        "slack",
        "started",
        "state",
        "step",
        "subs",
        "successes",
    )

    def __init__(
        self,
        ref: JobRef,
        client: Client,
        started: float,
        deadline_at: float | None,
        state: JobState | None = None,
        seen: bool = False,
    ) -> None:
        self.ref = ref
        self.client = client
        self.started = started
        self.deadline_at = deadline_at
        self.state = state
        self.delivered = state
        self.seen = seen
        self.step = 0
        self.polls = 0
        self.errors = 0
        self.due = 0.0
        self.earliest = 0.0  # from when the scheduler may hand it out (see Scheduler)
        self.slack = 0.0  # how much earlier than ``due`` the next poll may be made
        self.ended = False  # set by JobTable.finish only
        self.removed = False  # unwatch() asked; the worker polling it ends it
        self.in_flight = False
        self.poll: Poll[Tracked] | None = None  # the poll under way, which unwatch may abandon
        self.prepaid: AdaptiveRate | None = None  # a budget's token taken for its next poll
        self.logged = False  # an unexpected poll failure was logged in full
        self.absent = False  # an answer said "not found" (the job may still appear)
        self.payment_since: float | None = None  # answering PENDING_PAYMENT since
        self.successes = 0  # SUCCESS answers in a row held back (settle_successes)
        self.packed: bytes | JobSnapshot | None = None
        self.subs: dict[JobRef, SubJob] | None = None
        self.batch: Batch | None = None

    # The last snapshot is kept for ``GaveUp.last``, which few watches ever need, as
    # bytes: a bytes object is not tracked by the garbage collector, whereas a
    # snapshot and its dicts are several tracked objects per job, replaced on every
    # poll, that live long enough to reach the oldest generation.  With 100,000 jobs
    # that made CPython run a full collection (of every object in the process, 0.1
    # to 0.3 s of stalled event loop) every few seconds.

    @property
    def last(self) -> JobSnapshot | None:
        """The last snapshot seen (an equal copy of it, ``raw`` included)."""
        packed = self.packed
        if isinstance(packed, bytes):
            return _unpack(self.ref, packed)
        return packed

    @last.setter
    def last(self, snapshot: JobSnapshot | None) -> None:
        self.packed = None if snapshot is None else _pack(self.ref, snapshot)


def _pack(ref: JobRef, snapshot: JobSnapshot) -> bytes | JobSnapshot:
    """``snapshot`` as bytes (the snapshot itself if some value in it cannot be pickled)."""
    own_ref = None if snapshot.ref is ref or snapshot.ref == ref else snapshot.ref
    fields: list[Any] = list(_other_fields(snapshot))
    # A time in UTC goes as microseconds since the epoch and a bit of ``utc``: a
    # datetime takes four times as long to pickle as the rest of a snapshot.
    utc = 0
    for at in _TIMES_AT:
        value = fields[at]
        if value is not None and value.tzinfo is UTC:
            fields[at] = (value - _EPOCH) // _MICROSECOND
            utc |= 1 << at
    try:
        return pickle.dumps((own_ref, snapshot.state.value, utc, fields), pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - e.g. a raw mapping a custom client filled with anything
        return snapshot


def _unpack(ref: JobRef, packed: bytes) -> JobSnapshot:
    own_ref, state, utc, fields = pickle.loads(packed)  # noqa: S301 - bytes made by _pack
    for at in _TIMES_AT:
        if utc >> at & 1:
            fields[at] = _EPOCH + fields[at] * _MICROSECOND
    others = dict(zip(_OTHER, fields, strict=True))
    return JobSnapshot(ref=ref if own_ref is None else own_ref, state=JobState(state), **others)


class Batch:
    """Jobs of one client answered by one request (an API kind's batch key): engine
    jobs of one graph share the graph's job list.

    ``members`` are the open jobs of the batch; a poll answers those it had when
    it started (a job added meanwhile waits for the next one).  ``due`` is when
    the batch is queued for (``inf`` when it is not).
    """

    __slots__ = ("client", "due", "earliest", "ended", "in_flight", "key", "members", "prepaid")

    def __init__(self, client: Client, key: object) -> None:
        self.client = client
        self.key = key
        self.members: dict[JobRef, Tracked] = {}
        self.due = math.inf
        self.earliest = math.inf
        self.ended = False
        self.in_flight = False
        self.prepaid: AdaptiveRate | None = None  # a budget's token taken for its next poll


def _now() -> datetime:
    return datetime.now(UTC)


def _walk_subs(snapshot: JobSnapshot) -> Iterator[tuple[JobSnapshot, JobRef]]:
    """Every sub-job at any depth with its parent's reference, parents first.

    A job ID met again in the same body (listed twice, or the batch's own ID) is
    skipped with what hangs under it: the first listing is the job's.
    """
    met = {snapshot.ref}
    stack = [(sub, snapshot.ref) for sub in reversed(snapshot.sub_jobs)]
    while stack:
        sub, parent = stack.pop()
        if sub.ref in met:
            continue
        met.add(sub.ref)
        yield sub, parent
        stack.extend((child, sub.ref) for child in reversed(sub.sub_jobs))


def observe(
    job: Tracked,
    snapshot: JobSnapshot | None,
    error: JobwatchError | None,
    now: float,
    policy: PollPolicy,
    rng: random.Random,
) -> tuple[list[Event], float | None]:
    """Apply one poll's result to ``job``: the events to emit, and the next delay.

    The delay is None when the watch of the job ended (a final state or a give-up).
    """
    events: list[Event] = []
    meaning = None if error is None else meaning_of(error)  # shared with the client's retries
    if meaning is Meaning.NOT_FOUND:
        job.absent = True  # kept through later transient failures (see ``time_out``)
    if snapshot is not None:
        job.seen = True
        job.errors = 0
        job.last = snapshot
        if _unsettled(job, snapshot, policy):
            job.step = 0  # held back: ask again soon
            return _go_on(job, events, now, policy, rng)
        changed: Transition | None = None
        if snapshot.state != job.state:
            changed = Transition(job.ref, None, job.state, snapshot.state, snapshot, _now())
            job.state = snapshot.state
            job.step = 0
        else:
            job.step += 1
        if snapshot.state.terminal:
            # A batch job's final event comes last: once it is delivered, so is
            # everything about its sub-jobs (what resume tokens rely on).
            if snapshot.sub_jobs:
                _observe_subs(job, snapshot, events)
            _end_open_subs(job, events, GiveUpReason.ERROR, "the batch job ended first")
            if changed is not None:
                events.append(changed)
            return events, None
        if changed is not None:
            events.append(changed)
        if snapshot.sub_jobs:
            _observe_subs(job, snapshot, events)
        if _unpaid_too_long(job, snapshot, now, policy):
            message = (
                f"still PENDING_PAYMENT after {policy.pending_payment_timeout:g}s:"
                " its order is not paid"
            )
            return _give_up(job, events, GiveUpReason.PENDING_PAYMENT, message, None)
    elif error is not None and meaning is not None:
        if meaning is Meaning.NOT_FOUND:
            if job.seen:
                message = "the job vanished after it was seen (ended jobs are deleted)"
                return _give_up(job, events, GiveUpReason.EXPIRED, message, error)
            if now + _SLACK >= job.started + policy.not_found_grace:
                message = f"not found within {policy.not_found_grace:g}s"
                return _give_up(job, events, GiveUpReason.NOT_FOUND, message, error)
            job.step += 1
        elif meaning is Meaning.AUTH:
            return _give_up(job, events, GiveUpReason.AUTH, str(error), error)
        elif meaning.ends_watch:  # a 400 other than not-found, a wrong endpoint or API
            return _give_up(job, events, GiveUpReason.ERROR, str(error), error)
        else:
            job.errors += 1
            job.step += 1
            if job.errors >= policy.max_consecutive_errors:
                message = f"{job.errors} failed polls in a row; last: {error}"
                return _give_up(job, events, GiveUpReason.ERROR, message, error)
    return _go_on(job, events, now, policy, rng)


def _go_on(
    job: Tracked, events: list[Event], now: float, policy: PollPolicy, rng: random.Random
) -> tuple[list[Event], float | None]:
    """``events`` and the next delay of a job still open after a poll (unless at its deadline)."""
    if job.deadline_at is not None and now + _SLACK >= job.deadline_at:
        return [*events, *time_out(job, policy)], None
    return events, next_delay(job, now, policy, rng)


def _unsettled(job: Tracked, snapshot: JobSnapshot, policy: PollPolicy) -> bool:
    """Count ``snapshot`` towards ``settle_successes``: True when it is a success to hold back."""
    if snapshot.state is not JobState.SUCCEEDED:
        job.successes = 0
        return False
    job.successes += 1
    return job.successes < policy.settle_successes


def _unpaid_too_long(job: Tracked, snapshot: JobSnapshot, now: float, policy: PollPolicy) -> bool:
    """Note when ``job`` began answering PENDING_PAYMENT; True once it did for too long."""
    if not snapshot.awaiting_payment or policy.pending_payment_timeout is None:
        job.payment_since = None
        return False
    if job.payment_since is None:
        job.payment_since = now
    return now + _SLACK >= job.payment_since + policy.pending_payment_timeout


def time_out(job: Tracked, policy: PollPolicy) -> list[Event]:
    """The events that end ``job`` at its deadline: ``timeout``, or ``not_found`` for a
    job never seen that an answer said was not found (even if the last poll failed in
    another way: a 503 just before the deadline does not hide that)."""
    limit = policy.timeout or 0.0
    if job.absent and not job.seen:
        message = f"not found within {min(limit, policy.not_found_grace):g}s"
        return give_up(job, GiveUpReason.NOT_FOUND, message)
    return give_up(job, GiveUpReason.TIMED_OUT, f"not finished within {limit:g}s")


def unwatched(job: Tracked) -> list[Event]:
    """The events that end ``job`` when ``unwatch`` removed it."""
    return give_up(job, GiveUpReason.REMOVED, "unwatched")


def next_delay(job: Tracked, now: float, policy: PollPolicy, rng: random.Random) -> float:
    """The backoff delay of ``job``'s next poll, brought forward to its deadline, for
    a job never seen to the end of its not-found grace, and for an unpaid one to the
    end of its ``pending_payment_timeout``: all are kept on time, not at the next
    backoff poll.

    It sets ``job.slack``: how much earlier the poll may be made, the jitter's
    margin of a backoff delay (0 for one brought forward: those are kept exactly).
    """
    backoff, slack = policy.interval_and_slack(job.step, rng)
    delay = backoff
    if job.deadline_at is not None:
        delay = min(delay, job.deadline_at - now)
    if not job.seen:
        grace_left = job.started + policy.not_found_grace - now
        if grace_left > _SLACK:  # (within it, this very poll gave up)
            delay = min(delay, grace_left)
    if job.payment_since is not None and policy.pending_payment_timeout is not None:
        payment_left = job.payment_since + policy.pending_payment_timeout - now
        if payment_left > _SLACK:  # (past it, a failed poll: the next answer gives up)
            delay = min(delay, payment_left)
    job.slack = slack if delay == backoff else 0.0
    return max(delay, 0.0)


def _observe_subs(job: Tracked, snapshot: JobSnapshot, events: list[Event]) -> None:
    subs = job.subs
    if subs is None:
        subs = job.subs = {}
    for sub, parent in _walk_subs(snapshot):
        known = subs.get(sub.ref)
        if known is None:
            known = subs[sub.ref] = SubJob(parent)
        if known.done or sub.state == known.state:
            continue
        events.append(Transition(sub.ref, parent, known.state, sub.state, sub, _now()))
        known.state = sub.state
        known.done = sub.state.terminal


def _end_open_subs(job: Tracked, events: list[Event], reason: GiveUpReason, message: str) -> None:
    for ref, sub in (job.subs or {}).items():
        if not sub.done:
            sub.done = True
            events.append(GaveUp(ref, sub.parent, reason, message, _now()))


def give_up(
    job: Tracked, reason: GiveUpReason, message: str, error: JobwatchError | None = None
) -> list[Event]:
    """The events that end the watch of ``job`` (and of its open sub-jobs)."""
    events, _ = _give_up(job, [], reason, message, error)
    return events


def _give_up(
    job: Tracked,
    events: list[Event],
    reason: GiveUpReason,
    message: str,
    error: JobwatchError | None,
) -> tuple[list[Event], None]:
    _end_open_subs(job, events, reason, f"the batch job gave up: {message}")
    events.append(GaveUp(job.ref, None, reason, message, _now(), error, job.last))
    return events, None
