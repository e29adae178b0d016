"""A model-based test of the Watcher against its contract (the issue 10 redesign).

Hypothesis draws a whole *program*: a small world of simulated jobs (EVS jobs with
random timelines, some never ending, some unknown; EVS batch jobs with sub-jobs
nested up to three deep; GES engine jobs of one or two graphs, whose polls share
one list request), a watcher configuration (a ``PollPolicy`` with small intervals,
a not-found grace, sometimes a deadline; a buffer of 1 to 8 events so that
backpressure happens; sometimes a client ``RateLimit`` that binds), and a list
of operations: ``watch``/``watch_many``,
``unwatch`` (twice, of ended or unknown jobs, while a poll is held in flight by a
latency fault), time passing, a slow consumer reading ``k`` events or nothing for
a while, ``wait`` under ``move_on_after`` (and cancelled), faults for one job's
next requests (5xx, 429, resets, malformed JSON, latency, timeouts), and
*resume*: export the state, close the watcher, resume the token in a new client
and watcher on the same simulator (a new *generation*).

Why a program and not a ``RuleBasedStateMachine``: the watcher is a set of tasks
living inside one event loop, and what it does depends on those tasks running
between two operations.  Stateful rules are plain synchronous calls made by
hypothesis between steps, so each rule would need to re-enter a loop the watcher
cannot leave, or a thread bridging the two.  A program is data: one example is
one ``anyio.run`` of the whole program, and hypothesis still shrinks it (fewer
operations, fewer and simpler jobs, shorter sleeps, smaller buffers), so a
failure is reported as a short program.  On trio the loop runs on a
``MockClock`` with ``autojump_threshold=0``: time is virtual (a sleep costs
nothing, and nothing depends on the wall clock), so a program replays
identically and shrinks reliably.  On asyncio, time is real and intervals are a
few milliseconds: the same programs, a less deterministic schedule (a failure
there may be reported as flaky).  The simulator's clock is the loop's clock
(:class:`LoopClock`), so job timelines follow the (virtual) time.

A background consumer reads ``events()`` as the program hands it credits, and a
model of the contract checks every event delivered and, after every operation
and at the end, the watcher's counters.  At the end the consumer reads freely,
time passes, every watch still open is unwatched, and the stream must end within
a guard (a hang is a failure, not a stuck test).  Checked (``semantics.md``):

1. every watch of a top-level job gets exactly one final event, the last one of
   the job and of its sub-jobs at any depth; every sub-job that emitted anything
   gets exactly one final, before its parent's; nothing after a final;
2. per job, ``Transition.previous`` is the state last delivered (None first, or
   the state delivered before a resume);
3. a ``removed`` give-up only after ``unwatch``;
4. ``0 <= jobs_open <=`` the watches whose final was not delivered yet;
   ``events()`` ends only when nothing is open, and does end at the end;
5. ``wait()`` returns (or raises with) the final event of the job, once it is out;
7. give-ups with reason ``error`` only for jobs that had faults; no crash;
10/12. ``timeout`` only with a deadline; ``not_found``/``expired`` never for a job
   the simulator served all along (an engine job is not missing from a list
   request it was added during);
11. a resumed watcher never delivers again a transition delivered before;
13. ``statistics().requests`` of each generation equals the requests the
   simulator received from it;
- no task of the watcher is left once it has exited.

Each kind of violation is its own exception class, so hypothesis reports (and
shrinks) each one separately.  Examples: 35 on asyncio (real time, about 7 s),
300 on trio (virtual time, about 4 s); ``JOBWATCH_MODEL_EXAMPLES`` sets both, and
:func:`soak_model` is the long run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

import anyio
import anyio.lowlevel
import httpx
import trio.testing
from anyio.abc import TaskGroup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopclock import LoopClock

from jobwatch import (
    Client,
    Event,
    EvsJob,
    GaveUp,
    GesEngineJob,
    JobRef,
    JobSnapshot,
    JobState,
    PollPolicy,
    RateLimit,
    RetryPolicy,
    Transition,
    Watcher,
    WatchGaveUp,
)
from jobwatch._refs import ref_from_dict
from jobwatch.sim import ApiName, Fault, Simulator, SubJob

PROJECT = "model"
BACKENDS = ("asyncio", "trio")
# Examples per backend: trio runs on virtual time, so its examples cost only CPU.
_OVERRIDE = os.environ.get("JOBWATCH_MODEL_EXAMPLES")
EXAMPLES = {
    "asyncio": int(_OVERRIDE or 35),
    "trio": int(_OVERRIDE or 300),
}

# Seconds: virtual on trio, real on asyncio.
TIMES = (0.0, 0.01, 0.03, 0.06, 0.12)  # timeline steps, sub-job appearances
SLEEPS = (0.0, 0.002, 0.01, 0.03, 0.08)
READ_FOR = (0.003, 0.01, 0.03)
WAIT_TIMEOUTS = (0.01, 0.05, 0.5)
SETTLES = (0.1, 0.0, 0.3)  # time passing at the end, before everything is unwatched
CLIENT_TIMEOUT = 0.2
RETRY = RetryPolicy(
    attempts=2, timeout=1.0, wait_initial=0.002, wait_max=0.01, retry_after_max=0.03
)
RATE_WINDOW = 0.05  # seconds: a drawn rate's RateLimit window
IN_FLIGHT_BOUND = 0.1  # how long an unwatch-in-flight waits for the job's poll to start
DRAIN_GUARD = 2.0  # how long events() may take to end once everything was unwatched
WAIT_SETTLE = 0.01  # time given to wait() calls to return once their final is out

FaultName: TypeAlias = Literal[
    "http_500",
    "throttle_429",
    "throttle_window",
    "reset",
    "malformed_json",
    "latency",
    "timeout",
    "error_200",
    "unknown_status",
]
FAULT_NAMES: tuple[FaultName, ...] = (
    "http_500",
    "throttle_429",
    "throttle_window",
    "reset",
    "malformed_json",
    "latency",
    "timeout",
    "error_200",
    "unknown_status",
)


def make_fault(name: FaultName) -> Fault:
    """The simulator fault behind a name of the program's ``Inject`` operation."""
    if name == "throttle_429":
        return Fault("throttle_429", retry_after=0)
    if name == "throttle_window":  # APIGW.0308 without Retry-After: a window, clamped
        return Fault("throttle_429", throttle_period="1 second")
    if name == "latency":
        return Fault("latency", latency=0.05)  # longer than the shortest not-found grace
    if name == "timeout":  # longer than the client's timeout
        return Fault("latency", latency=CLIENT_TIMEOUT * 2)
    return Fault(name)


# -- the world: the jobs a program may watch ------------------------------------------------

Timeline: TypeAlias = tuple[tuple[float, str], ...]


def _times(timeline: Timeline) -> str:
    return "[" + ", ".join(f"({at:g}, {status!r})" for at, status in timeline) + "]"


@dataclass(frozen=True, repr=False)
class SubSpec:
    """A sub-job of an EVS batch job (times after the top-level job's creation)."""

    job_id: str
    timeline: Timeline
    appear_at: float
    subs: tuple[SubSpec, ...] = ()

    def sim(self) -> SubJob:
        subs = [sub.sim() for sub in self.subs]
        return SubJob(self.job_id, self.timeline, appear_at=self.appear_at, sub_jobs=subs)

    def __repr__(self) -> str:
        subs = f", subs={list(self.subs)!r}" if self.subs else ""
        return f"Sub({self.job_id!r}, {_times(self.timeline)}, appear_at={self.appear_at:g}{subs})"


@dataclass(frozen=True, repr=False)
class JobSpec:
    """A top-level job of the world; ``timeline`` None: the simulator does not know it."""

    api: Literal["evs", "engine"]
    job_id: str
    timeline: Timeline | None
    graph: str = ""
    visible_after: float = 0.0
    expires_after: float | None = None
    subs: tuple[SubSpec, ...] = ()

    @property
    def ref(self) -> JobRef:
        if self.api == "evs":
            return EvsJob(self.job_id)
        return GesEngineJob(self.graph, self.job_id)

    @property
    def key(self) -> str:
        """What the fault board knows the job's requests by (an engine job: its graph)."""
        return self.job_id if self.api == "evs" else self.graph

    @property
    def always_visible(self) -> bool:
        """The simulator answers for the job from the start of the program on, forever."""
        return self.timeline is not None and not self.visible_after and self.expires_after is None

    def add_to(self, sim: Simulator[Any]) -> None:
        if self.api == "engine":
            sim.add_graph(PROJECT, self.graph)
        if self.timeline is None:
            return
        visible_after, expires_after = self.visible_after, self.expires_after
        if self.api == "evs":
            sim.add_evs_job(
                PROJECT,
                self.job_id,
                self.timeline,
                job_type="batchCreateVolume" if self.subs else "createVolume",
                sub_jobs=[sub.sim() for sub in self.subs],
                visible_after=visible_after,
                expires_after=expires_after,
            )
        else:
            sim.add_engine_job(
                PROJECT,
                self.graph,
                self.job_id,
                self.timeline,
                visible_after=visible_after,
                expires_after=expires_after,
            )

    def __repr__(self) -> str:
        where = f"{self.graph}/" if self.api == "engine" else ""
        timeline = "unknown" if self.timeline is None else _times(self.timeline)
        extra = ""
        if self.visible_after:
            extra += f", visible_after={self.visible_after:g}"
        if self.expires_after is not None:
            extra += f", expires_after={self.expires_after:g}"
        if self.subs:
            extra += f", subs={list(self.subs)!r}"
        return f"{self.api}({where}{self.job_id!r}, {timeline}{extra})"


def walk_subs(parent: JobRef, subs: Sequence[SubSpec]) -> Iterator[tuple[JobRef, JobRef]]:
    """Every sub-job at any depth with its parent's reference."""
    for sub in subs:
        ref = EvsJob(sub.job_id)
        yield ref, parent
        yield from walk_subs(ref, sub.subs)


@dataclass(frozen=True)
class Config:
    """How the program's watchers are made."""

    buffer: int
    concurrency: int | None
    initial: float
    grace: float
    deadline: float | None
    max_errors: int
    seed: int
    #: A client ``RateLimit`` of this many requests/s (None: none): polls then wait
    #: for its tokens aside in the scheduler, and deadlines and unwatches meet them
    #: there.
    rate: float | None = None

    def rate_limit(self) -> RateLimit | None:
        if self.rate is None:
            return None
        return RateLimit(max(1, round(self.rate * RATE_WINDOW)), per=RATE_WINDOW)

    def policy(self) -> PollPolicy:
        return PollPolicy(
            wait_initial=self.initial,
            wait_exp_base=2.0,
            wait_max=self.initial * 4,
            wait_jitter=0.1,
            not_found_grace=self.grace,
            timeout=self.deadline,
            max_consecutive_errors=self.max_errors,
        )


# -- operations --------------------------------------------------------------------------------


class OpBase:
    """An operation of a program; shown compactly in hypothesis's reports."""

    def __repr__(self) -> str:
        parts: list[str] = []
        for index, spec in enumerate(dataclasses.fields(self)):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if index and value == spec.default:
                continue
            text = f"{value:g}" if isinstance(value, float) else repr(value)
            if isinstance(value, tuple):
                text = repr(list(value))
            parts.append(text if index == 0 else f"{spec.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class Watch(OpBase):
    job: int


@dataclass(frozen=True, repr=False)
class WatchMany(OpBase):
    jobs: tuple[int, ...]


@dataclass(frozen=True, repr=False)
class Unwatch(OpBase):
    job: int
    twice: bool = False


@dataclass(frozen=True, repr=False)
class UnwatchInFlight(OpBase):
    """Hold the job's next poll with a latency fault; unwatch once it is in flight."""

    job: int
    latency: float


@dataclass(frozen=True, repr=False)
class Sleep(OpBase):
    seconds: float


@dataclass(frozen=True, repr=False)
class Read(OpBase):
    """Let the consumer read ``events`` more events."""

    events: int


@dataclass(frozen=True, repr=False)
class ReadFor(OpBase):
    """Let the consumer read freely for ``seconds``."""

    seconds: float


@dataclass(frozen=True, repr=False)
class Wait(OpBase):
    """``wait(ref)`` in a background task, under ``move_on_after(timeout)``."""

    job: int
    timeout: float


@dataclass(frozen=True, repr=False)
class CancelWait(OpBase):
    """Cancel the oldest ``wait`` still waiting."""


@dataclass(frozen=True, repr=False)
class Resume(OpBase):
    """Stop reading, export the state, close the watcher; resume in a new client and watcher."""


@dataclass(frozen=True, repr=False)
class Inject(OpBase):
    """Make the next ``count`` requests for the job fail with the fault ``kind``."""

    job: int
    kind: FaultName
    count: int = 1


Op: TypeAlias = (
    Watch
    | WatchMany
    | Unwatch
    | UnwatchInFlight
    | Sleep
    | Read
    | ReadFor
    | Wait
    | CancelWait
    | Resume
    | Inject
)


@dataclass(frozen=True)
class Program:
    world: tuple[JobSpec, ...]
    config: Config
    ops: tuple[Op, ...]
    settle: float

    def budget(self) -> float:
        """Seconds the whole program may take before it counts as hung."""
        spent = 0.0
        for op in self.ops:
            if isinstance(op, Sleep | ReadFor):
                spent += op.seconds
            elif isinstance(op, UnwatchInFlight):
                spent += IN_FLIGHT_BOUND
        return spent + self.settle + DRAIN_GUARD + WAIT_SETTLE + 5.0


# -- strategies ------------------------------------------------------------------------------


@st.composite
def timelines(draw: st.DrawFn, engine: bool, start: float = 0.0) -> Timeline:
    """A job's statuses: queued or running, maybe running, maybe an end (or none)."""
    queued, running = ("pending", "running") if engine else ("INIT", "RUNNING")
    ends = ("complete", "failed") if engine else ("SUCCESS", "FAIL")
    entries = [(start, draw(st.sampled_from((queued, running))))]
    t = start
    if entries[0][1] == queued and draw(st.booleans()):
        t += draw(st.sampled_from(TIMES))
        entries.append((t, running))
    end = draw(st.sampled_from((*ends, None)))
    if end is not None:
        t += draw(st.sampled_from(TIMES))
        entries.append((t, end))
    return tuple(entries)


@st.composite
def sub_specs(draw: st.DrawFn, prefix: str, depth: int) -> tuple[SubSpec, ...]:
    count = draw(st.integers(1 if depth == 1 else 0, 3 if depth == 1 else 2))
    subs = []
    for k in range(count):
        job_id = f"{prefix}-{k}"
        appear_at = draw(st.sampled_from(TIMES))
        timeline = draw(timelines(False, draw(st.sampled_from(TIMES))))
        nested = depth < 3 and draw(st.booleans())
        children = draw(sub_specs(job_id, depth + 1)) if nested else ()
        subs.append(SubSpec(job_id, timeline, appear_at, children))
    return tuple(subs)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[JobSpec, ...]:
    specs = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(("evs", "batch", "engine", "batch", "engine", "unknown")))
        engine = kind == "engine" or (kind == "unknown" and draw(st.booleans()))
        api: Literal["evs", "engine"] = "engine" if engine else "evs"
        graph = draw(st.sampled_from(("g1", "g2"))) if engine else ""
        if kind == "unknown":
            specs.append(JobSpec(api, f"x{i}", None, graph))
            continue
        timeline = draw(timelines(engine))
        visible_after = draw(st.sampled_from((0.0, 0.0, 0.0, 0.02, 0.3)))
        expires_after = draw(st.sampled_from((None, None, None, 0.05)))
        subs = draw(sub_specs(f"b{i}", 1)) if kind == "batch" else ()
        job_id = f"{kind[0]}{i}"
        specs.append(JobSpec(api, job_id, timeline, graph, visible_after, expires_after, subs))
    return tuple(specs)


def operations(jobs: int) -> st.SearchStrategy[Op]:
    job = st.integers(0, jobs - 1)
    return st.one_of(
        st.builds(Sleep, st.sampled_from(SLEEPS)),
        st.builds(Read, st.integers(1, 8)),
        st.builds(Watch, job),
        st.builds(Sleep, st.sampled_from(SLEEPS)),
        st.builds(ReadFor, st.sampled_from(READ_FOR)),
        st.builds(Read, st.integers(1, 8)),
        st.builds(WatchMany, st.lists(job, min_size=1, max_size=4).map(tuple)),
        st.builds(Unwatch, job, st.booleans()),
        st.builds(Wait, job, st.sampled_from(WAIT_TIMEOUTS)),
        st.builds(Inject, job, st.sampled_from(FAULT_NAMES), st.integers(1, 3)),
        st.builds(UnwatchInFlight, job, st.sampled_from((0.02, 0.1))),
        st.just(CancelWait()),
        st.just(Resume()),
    )


@st.composite
def programs(draw: st.DrawFn) -> Program:
    world = draw(worlds())
    config = Config(
        buffer=draw(st.integers(1, 8)),
        concurrency=draw(st.sampled_from((None, 1, 2, 4))),
        initial=draw(st.sampled_from((0.005, 0.01))),
        grace=draw(st.sampled_from((0.02, 0.06, 0.2))),
        deadline=draw(st.sampled_from((None, 0.05, 0.15, 0.5))),
        max_errors=draw(st.sampled_from((5, 2, 1))),
        seed=draw(st.integers(0, 3)),
        rate=draw(st.sampled_from((None, None, 400.0, 100.0))),
    )
    first = WatchMany(tuple(draw(st.lists(st.integers(0, len(world) - 1), min_size=1))))
    ops = draw(st.lists(operations(len(world)), min_size=4, max_size=30))
    return Program(world, config, (first, *ops), draw(st.sampled_from(SETTLES)))


# -- violations: one class per kind, so that hypothesis keeps each one apart -----------------


class ContractViolation(AssertionError):
    """The watcher broke a point of its contract."""


class EventAfterFinal(ContractViolation):
    """Point 1: an event of a job or sub-job after its final event (or of no watch)."""


class SubJobWithoutFinal(ContractViolation):
    """Point 1: a parent's final event came before the final of a sub-job that emitted."""


class WrongParent(ContractViolation):
    """Events carry the parent of a sub-job (at any depth), None at the top."""


class WrongPrevious(ContractViolation):
    """Point 2: ``Transition.previous`` is not the state delivered before."""


class UnexpectedGiveUp(ContractViolation):
    """Points 3, 7, 10: a give-up reason nothing in the program called for."""


class NotFoundOfVisibleJob(ContractViolation):
    """Points 10, 12: not_found/expired for a job the simulator served all along."""


class JobsOpenWrong(ContractViolation):
    """Point 4: ``jobs_open`` negative, above the watches without a delivered final, or not 0."""


class LostOnResume(ContractViolation):
    """Point 11: a watch neither ended nor unwatched was left out of a resume token."""


class EventsEndedEarly(ContractViolation):
    """Point 4: ``events()`` ended while some watch had no final delivered."""


class EventsDidNotEnd(ContractViolation):
    """Points 1, 4: with everything unwatched and read, ``events()`` did not end in time."""


class WaitMismatch(ContractViolation):
    """Point 5: ``wait()`` did not return the job's final event."""


class WaitStuck(ContractViolation):
    """Point 5: ``wait()`` still waiting after the job's final event was delivered."""


class Reemitted(ContractViolation):
    """Point 11: a resumed watcher delivered again a transition delivered before."""


class RequestsMiscounted(ContractViolation):
    """Point 13: ``statistics().requests`` is not the requests the watcher's client sent."""


class TaskLeft(ContractViolation):
    """Tasks of the watcher still alive after it exited."""


class Hang(ContractViolation):
    """The program did not finish within its time budget."""


# -- the model ----------------------------------------------------------------------------------


def describe(event: Event, gen: int) -> str:
    where = f" (in {event.parent})" if event.parent is not None else ""
    if isinstance(event, Transition):
        previous = event.previous.value if event.previous is not None else None
        return f"g{gen} {event.ref}{where}: {previous} -> {event.state.value}"
    return f"g{gen} {event.ref}{where}: gave up {event.reason.value}"


@dataclass(eq=False)
class WatchRecord:
    """One watch of a top-level job (it goes on across resumes)."""

    number: int
    spec: JobSpec
    gen: int  # the generation it started in
    delivered: dict[JobRef, JobState | None] = field(default_factory=dict)
    finals: dict[JobRef, Event] = field(default_factory=dict)
    transitions: dict[tuple[JobRef, JobState | None, JobState], int] = field(default_factory=dict)
    emitted: set[JobRef] = field(default_factory=set)
    log: list[str] = field(default_factory=list)
    final: Event | None = None
    final_gen: int = -1
    unwatched: bool = False
    dropped: bool = False  # removed, its final unread, and so left out of the token

    @property
    def ref(self) -> JobRef:
        return self.spec.ref

    def history(self) -> str:
        return f"watch #{self.number} of {self.ref} (from g{self.gen}): " + (
            "; ".join(self.log) or "no events"
        )


class Model:
    """What the contract says the consumer should see."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.specs = {spec.ref: spec for spec in program.world}
        self.top_of: dict[JobRef, JobRef] = {}
        self.parent_of: dict[JobRef, JobRef | None] = {}
        for spec in program.world:
            self.top_of[spec.ref] = spec.ref
            self.parent_of[spec.ref] = None
            for sub, parent in walk_subs(spec.ref, spec.subs):
                self.top_of[sub] = spec.ref
                self.parent_of[sub] = parent
        self.current: dict[JobRef, WatchRecord] = {}
        self.watches: list[WatchRecord] = []
        self.known: set[JobRef] = set()  # the refs the current generation's watcher knows
        self.faulted: set[str] = set()  # fault board keys that had faults
        self.gen = 0
        self.delivered = 0
        self.violation: ContractViolation | None = None

    def fail(self, violation: ContractViolation) -> None:
        if self.violation is None:
            self.violation = violation

    def is_open(self, ref: JobRef) -> bool:
        watch = self.current.get(ref)
        return watch is not None and watch.final is None and not watch.dropped

    def open_watches(self) -> list[WatchRecord]:
        return [w for w in self.current.values() if w.final is None and not w.dropped]

    def start(self, ref: JobRef) -> WatchRecord:
        watch = WatchRecord(len(self.watches) + 1, self.specs[ref], self.gen)
        self.watches.append(watch)
        self.current[ref] = watch
        self.known.add(ref)
        return watch

    def new_generation(self, token: object) -> None:
        """A resume: a watch left out of the token must be one that was unwatched
        (a removed job is not resumed), else it was lost."""
        assert isinstance(token, dict)
        carried = {ref_from_dict(job["ref"]) for job in token["jobs"]}
        for watch in self.open_watches():
            if watch.ref in carried:
                continue
            if watch.unwatched:
                watch.dropped = True
            else:
                self.fail(LostOnResume(f"not in the token: {watch.history()}"))
        self.gen += 1
        self.known = {watch.ref for watch in self.open_watches()}

    def deliver(self, event: Event) -> None:
        """The consumer read ``event``: check it against the watch it belongs to."""
        self.delivered += 1
        gen, ref = self.gen, event.ref
        line = describe(event, gen)
        top = self.top_of.get(ref)
        if top is None:
            self.fail(EventAfterFinal(f"an event of a job nobody watched: {line}"))
            return
        if event.parent != self.parent_of[ref]:
            self.fail(WrongParent(f"{line}: the parent is {self.parent_of[ref]}"))
            return
        watch = self.current.get(top)
        if watch is None or watch.final is not None:
            state = "never watched" if watch is None else "watch ended"
            history = "" if watch is None else f"; {watch.history()}"
            self.fail(EventAfterFinal(f"{line}, but {top} is not watched ({state}){history}"))
            return
        watch.log.append(line)
        watch.emitted.add(ref)
        if ref in watch.finals:
            final = describe(watch.finals[ref], gen)
            self.fail(EventAfterFinal(f"{line} after its final {final}; {watch.history()}"))
            return
        if isinstance(event, Transition):
            key = (ref, event.previous, event.state)
            before = watch.transitions.get(key)
            if (
                before is not None
                and before < gen
                and JobState.UNKNOWN not in (event.previous, event.state)
            ):
                message = f"{line} was delivered in g{before} already; {watch.history()}"
                self.fail(Reemitted(message))
                return
            expected = watch.delivered.get(ref)
            if event.previous != expected:
                shown = expected.value if expected is not None else None
                message = f"{line}: the state delivered before was {shown}; {watch.history()}"
                self.fail(WrongPrevious(message))
                return
            watch.transitions.setdefault(key, gen)
            watch.delivered[ref] = event.state
        if event.final:
            watch.finals[ref] = event
        if isinstance(event, GaveUp) and ref == top:
            self._check_reason(watch, event, line)
        if ref == top and event.final:
            missing = sorted(
                str(sub) for sub in watch.emitted if sub != top and sub not in watch.finals
            )
            if missing:
                message = f"{line}, but sub-jobs {missing} have no final; {watch.history()}"
                self.fail(SubJobWithoutFinal(message))
            watch.final = event
            watch.final_gen = gen

    def _check_reason(self, watch: WatchRecord, event: GaveUp, line: str) -> None:
        reason = str(event.reason.value)
        spec = watch.spec
        why = ""
        if reason == "removed" and not watch.unwatched:
            why = "removed, but nobody unwatched it"
        elif reason == "timeout" and self.program.config.deadline is None:
            why = "timeout, but the policy has no deadline"
        elif reason == "auth":
            why = "auth, but the simulator checks no credentials"
        elif reason == "error" and spec.key not in self.faulted:
            why = "error, but no fault was injected for it"
        if why:
            self.fail(UnexpectedGiveUp(f"{line}: {why} ({event.message}); {watch.history()}"))
        elif reason in ("not_found", "expired") and spec.always_visible:
            message = f"{line} ({event.message}), but the simulator served {spec!r} all along"
            self.fail(NotFoundOfVisibleJob(f"{message}; {watch.history()}"))

    def stream_ended(self, jobs_open: int) -> None:
        still = self.open_watches()
        if still or jobs_open:
            watches = "; ".join(watch.history() for watch in still)
            message = f"events() ended with jobs_open={jobs_open} and open watches: {watches}"
            self.fail(EventsEndedEarly(message))


# -- test machinery -------------------------------------------------------------------------


class Signal:
    """Wakes every task waiting on it whenever ``notify`` is called."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Credit:
    """How many more events the consumer may read (or any number, when open)."""

    def __init__(self) -> None:
        self.available = 0
        self.unlimited = False
        self._signal = Signal()

    def give(self, events: int) -> None:
        self.available += events
        self._signal.notify()

    def open(self) -> None:
        self.unlimited = True
        self._signal.notify()

    def close(self) -> None:
        self.unlimited = False

    async def take(self) -> None:
        while not self.unlimited and not self.available:
            await self._signal.wait()
        if not self.unlimited:
            self.available -= 1

    def refund(self) -> None:
        if not self.unlimited:
            self.available += 1


class FaultBoard:
    """Faults armed for one job's next requests, and the requests in flight per job."""

    def __init__(self, sim: Simulator[Any]) -> None:
        self.sim = sim
        self.armed: defaultdict[str, list[Fault]] = defaultdict(list)
        self.in_flight: Counter[str] = Counter()
        self.started = Signal()


class Injector(httpx.AsyncBaseTransport):
    """The simulator's in-process transport, firing the faults armed for a request's job.

    A fault armed for a job is added to the simulator as a global fault of count 1
    just before the job's request is handed on: nothing runs in between in process,
    so that request (and only it) gets the fault.
    """

    def __init__(self, board: FaultBoard) -> None:
        self._board = board
        self._inner = board.sim.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        board = self._board
        parts = request.url.path.split("/")
        api: ApiName
        if parts[1] == "ges":  # /ges/v1.0/{project}/graphs/{graph}/jobs/status
            key, api = parts[5], "ges-engine"
        else:  # /v1/{project}/jobs/{job}
            key, api = parts[4], "evs"
        armed = board.armed.get(key)
        if armed:
            board.sim.add_fault(replace(armed.pop(0), api=api, count=1))
        board.in_flight[key] += 1
        board.started.notify()
        try:
            return await self._inner.handle_async_request(request)
        finally:
            board.in_flight[key] -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(eq=False)
class WaitRecord:
    ref: JobRef
    gen: int
    timeout: float
    status: Literal["waiting", "done", "timeout", "cancelled"] = "waiting"
    result: JobSnapshot | GaveUp | BaseException | None = None
    scope: anyio.CancelScope | None = None
    watch: WatchRecord | None = None  # set when wait() is called


class Run:
    """One run of a program; ``main`` returns the first violation found, or None."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.model = Model(program)
        self.credit = Credit()
        self.more = anyio.Event()  # set when watches are added: the consumer reads again
        self.progress = Signal()  # an event delivered or the stream ended
        self.consumer_idle = False
        self.waits: list[WaitRecord] = []
        self.phase = "start"
        self.sim: Simulator[LoopClock] = Simulator(clock=LoopClock(), seed=program.config.seed)
        for spec in program.world:
            spec.add_to(self.sim)
        self.board = FaultBoard(self.sim)
        self.baseline = 0

    async def main(self) -> ContractViolation | None:
        self.baseline = len(anyio.get_running_tasks())
        budget = self.program.budget()
        with anyio.move_on_after(budget) as guard:
            token: object | None = None
            ops = list(self.program.ops)
            while True:
                token, ops = await self.generation(token, ops)
                if token is None:
                    break
        if guard.cancelled_caught:
            self.model.fail(Hang(f"not finished within {budget:g}s; stuck at {self.phase}"))
        return self.model.violation

    def watcher_for(self, client: Client) -> Watcher:
        config = self.program.config
        return Watcher(
            client,
            policy=config.policy(),
            buffer=config.buffer,
            events=True,
            concurrency=config.concurrency,
            seed=config.seed,
        )

    async def generation(
        self, token: object | None, ops: list[Op]
    ) -> tuple[object | None, list[Op]]:
        """Run ``ops`` in a new client and watcher (resuming ``token``) up to a ``Resume``.

        Returns the token to resume and the operations left, or None at the end.
        """
        model = self.model
        if token is not None:
            model.new_generation(token)
        gen = model.gen
        requests_before = len(self.sim.requests)
        resuming = False
        rest: list[Op] = []
        transport = Injector(self.board)
        client = Client(
            "http://sim.test",
            PROJECT,
            transport=transport,
            retry=RETRY,
            timeout=CLIENT_TIMEOUT,
            rate_limit=self.program.config.rate_limit(),
        )
        async with client:
            watcher = self.watcher_for(client)
            async with watcher:
                if token is not None:
                    watcher.resume(token)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.consume, watcher)
                    for index, op in enumerate(ops):
                        if isinstance(op, Resume):
                            resuming, rest = True, ops[index + 1 :]
                            break
                        self.phase = f"g{gen}: {op!r} (operation {index + 1} of this generation)"
                        await self.apply(op, watcher, tg)
                        self.check_open(watcher)
                        if model.violation is not None:
                            break
                    else:
                        await self.finish(watcher)
                    tg.cancel_scope.cancel()
                for record in self.waits:
                    if record.gen == gen and record.status == "waiting":
                        record.status = "cancelled"
                next_token: object | None = None
                if resuming and model.violation is None:
                    next_token = json.loads(json.dumps(watcher.export_state()))
                self.phase = f"g{gen}: closing the watcher"
            sent = len(self.sim.requests) - requests_before
            counted = watcher.statistics().requests
            if counted != sent and model.violation is None:
                message = f"g{gen}: statistics().requests is {counted}, the simulator got {sent}"
                model.fail(RequestsMiscounted(message))
        tasks = anyio.get_running_tasks()
        if len(tasks) != self.baseline:
            names = sorted(str(task.name) for task in tasks)
            model.fail(TaskLeft(f"g{gen}: tasks after the watcher exited: {names}"))
        return next_token, rest

    async def consume(self, watcher: Watcher) -> None:
        """Read ``events()`` as credits allow; start again when watches are added."""
        model = self.model
        while True:
            self.consumer_idle = False
            stream = watcher.events()
            while True:
                await self.credit.take()
                try:
                    event = await anext(stream)
                except StopAsyncIteration:
                    self.credit.refund()
                    break
                model.deliver(event)
                self.check_open(watcher)
                self.progress.notify()
            model.stream_ended(watcher.statistics().jobs_open)
            self.consumer_idle = True
            self.progress.notify()
            await self.more.wait()
            self.more = anyio.Event()

    def check_open(self, watcher: Watcher) -> None:
        jobs_open = watcher.statistics().jobs_open
        limit = len(self.model.open_watches())
        if not 0 <= jobs_open <= limit:
            message = f"jobs_open is {jobs_open}, with {limit} watches without a delivered final"
            self.model.fail(JobsOpenWrong(f"{message} (at {self.phase})"))

    def watch(self, watcher: Watcher, jobs: Sequence[int], many: bool) -> None:
        model = self.model
        refs: list[JobRef] = []
        started: set[JobRef] = set()
        for job in jobs:
            ref = self.program.world[job].ref
            if ref not in started:
                if model.is_open(ref):
                    continue  # only watch again once the final was delivered (a new watch)
                model.start(ref)
                started.add(ref)
            refs.append(ref)  # a repeat within one watch_many: a no-op
        if not refs:
            return
        if many:
            watcher.watch_many(refs)
        else:
            watcher.watch(refs[0])
        self.more.set()

    async def apply(self, op: Op, watcher: Watcher, tg: TaskGroup) -> None:
        model = self.model
        if isinstance(op, Sleep):
            await anyio.sleep(op.seconds)
        elif isinstance(op, Read):
            self.credit.give(op.events)
            await anyio.lowlevel.checkpoint()
        elif isinstance(op, ReadFor):
            self.credit.open()
            await anyio.sleep(op.seconds)
            self.credit.close()
        elif isinstance(op, Watch):
            self.watch(watcher, [op.job], many=False)
        elif isinstance(op, WatchMany):
            self.watch(watcher, op.jobs, many=True)
        elif isinstance(op, Unwatch):
            ref = self.program.world[op.job].ref
            if model.is_open(ref):
                model.current[ref].unwatched = True
            watcher.unwatch(ref)
            if op.twice:
                watcher.unwatch(ref)
        elif isinstance(op, UnwatchInFlight):
            spec = self.program.world[op.job]
            if model.is_open(spec.ref):
                model.current[spec.ref].unwatched = True
                model.faulted.add(spec.key)
                self.board.armed[spec.key].append(Fault("latency", latency=op.latency))
                with anyio.move_on_after(IN_FLIGHT_BOUND):
                    while not self.board.in_flight[spec.key]:
                        await self.board.started.wait()
            watcher.unwatch(spec.ref)
        elif isinstance(op, Wait):
            self.start_wait(watcher, tg, op)
        elif isinstance(op, CancelWait):
            for record in self.waits:
                if record.status == "waiting" and record.scope is not None:
                    record.scope.cancel()
                    break
        elif isinstance(op, Inject):
            spec = self.program.world[op.job]
            model.faulted.add(spec.key)
            self.board.armed[spec.key].extend(make_fault(op.kind) for _ in range(op.count))
        else:  # pragma: no cover - Resume is handled by generation()
            raise AssertionError(op)

    def start_wait(self, watcher: Watcher, tg: TaskGroup, op: Wait) -> None:
        record = WaitRecord(self.program.world[op.job].ref, self.model.gen, op.timeout)
        self.waits.append(record)
        tg.start_soon(self.wait, watcher, record)

    async def wait(self, watcher: Watcher, record: WaitRecord) -> None:
        model, ref = self.model, record.ref
        with anyio.CancelScope() as scope:
            record.scope = scope
            with anyio.move_on_after(record.timeout):
                # Which watch wait() is about is decided when it is called (it watches,
                # synchronously, a job this watcher does not know).
                watch = model.current.get(ref)
                if (
                    watch is None
                    or watch.dropped
                    or (watch.final is not None and ref not in model.known)
                ):
                    watch = model.start(ref)
                    self.more.set()
                record.watch = watch
                self.progress.notify()
                try:
                    record.result = await watcher.wait(ref)
                except WatchGaveUp as exc:
                    record.result = exc.outcome
                except Exception as exc:  # noqa: BLE001 - reported as a mismatch
                    record.result = exc
                record.status = "done"
                return
            record.status = "timeout"
        if scope.cancelled_caught:
            record.status = "cancelled"

    async def finish(self, watcher: Watcher) -> None:
        """Read freely, let time pass, unwatch what is left: everything must end."""
        model = self.model
        self.phase = "end: time passing"
        self.credit.open()
        await anyio.sleep(self.program.settle)
        if model.violation is not None:
            return
        self.phase = "end: waits starting"
        while any(record.status == "waiting" and record.watch is None for record in self.waits):
            await self.progress.wait()  # a wait() not called yet would start a watch later
        self.phase = "end: unwatching everything"
        for watch in model.open_watches():
            watch.unwatched = True
            watcher.unwatch(watch.ref)
        self.phase = "end: reading to the end"

        def ended() -> bool:
            return model.violation is not None or (self.consumer_idle and not model.open_watches())

        with anyio.move_on_after(DRAIN_GUARD):
            while not ended():
                await self.progress.wait()
        if model.violation is not None:
            return
        if not ended():
            jobs_open = watcher.statistics().jobs_open
            watches = "; ".join(watch.history() for watch in model.open_watches()) or "none"
            message = (
                f"events() did not end within {DRAIN_GUARD:g}s of unwatching everything: "
                f"jobs_open={jobs_open}, consumer idle: {self.consumer_idle}, "
                f"watches without a final: {watches}"
            )
            model.fail(EventsDidNotEnd(message))
            return
        jobs_open = watcher.statistics().jobs_open
        if jobs_open:
            model.fail(JobsOpenWrong(f"jobs_open is {jobs_open} after events() ended"))
            return
        self.phase = "end: waits returning"
        await anyio.sleep(WAIT_SETTLE)
        self.check_waits()

    def check_waits(self) -> None:
        model = self.model
        for record in self.waits:
            watch = record.watch
            if watch is None:
                continue
            final = watch.final
            if final is None or watch.final_gen != record.gen:
                continue  # its final came out in a later generation: nothing to compare
            expected = describe(final, watch.final_gen)
            if record.status == "waiting":
                message = f"wait({watch.ref}) still waiting after {expected}; {watch.history()}"
                model.fail(WaitStuck(message))
            elif record.status == "done" and not _same_outcome(record.result, final):
                message = f"wait({watch.ref}) gave {record.result!r}, the final was {expected}"
                model.fail(WaitMismatch(f"{message}; {watch.history()}"))


def _same_outcome(result: JobSnapshot | GaveUp | BaseException | None, final: Event) -> bool:
    if isinstance(final, Transition):
        return isinstance(result, JobSnapshot) and result == final.snapshot
    return isinstance(result, GaveUp) and (result.ref, result.reason, result.message) == (
        final.ref,
        final.reason,
        final.message,
    )


async def run_program(program: Program) -> ContractViolation | None:
    """Run ``program`` in the running event loop; the first violation found, or None."""
    return await Run(program).main()


def check_program(backend: str, program: Program) -> None:
    """Run ``program`` on ``backend`` (trio on a virtual clock); raise what it found."""
    options: dict[str, Any] = {}
    if backend == "trio":
        options["clock"] = trio.testing.MockClock(autojump_threshold=0)
    violation = anyio.run(run_program, program, backend=backend, backend_options=options)
    if violation is not None:
        raise violation


MODEL_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@settings(MODEL_SETTINGS, max_examples=EXAMPLES["asyncio"])
@given(program=programs())
def test_watcher_contract_asyncio(program: Program) -> None:
    check_program("asyncio", program)


@settings(MODEL_SETTINGS, max_examples=EXAMPLES["trio"])
@given(program=programs())
def test_watcher_contract_trio(program: Program) -> None:
    check_program("trio", program)


def _soak_backend(backend: str, examples: int) -> None:
    @settings(MODEL_SETTINGS, max_examples=examples)
    @given(program=programs())
    def run(program: Program) -> None:
        check_program(backend, program)

    run()


def soak_model(examples: int = 2000, backends: Sequence[str] = BACKENDS) -> None:
    """The long run, for ``tests/soak.py``: ``examples`` programs on each backend.

    Raises the first contract violation found (shrunk, with hypothesis's report).
    ``JOBWATCH_MODEL_EXAMPLES=2000 pytest tests/test_watcher_model.py`` does the
    same from pytest.
    """
    for backend in backends:
        _soak_backend(backend, examples)
