"""Simulated jobs: their definitions and how their bodies look at a given moment.

Every job has a timeline of ``(at, raw_status)`` entries, ``at`` in seconds after
the job's creation.  At ``elapsed`` seconds the job's status is that of the last
entry with ``at <= elapsed``; before its first entry the job does not exist yet.

``begin_time`` is the moment of the first entry whose status is not a queued one
(``INIT``, ``WAITING_EXECUTE``, ``PENDING_PAYMENT`` for EVS; ``pending``,
``waiting`` for GES); ``end_time`` is the moment of the last entry, unless that
entry's status is an unfinished one (queued, ``RUNNING``, ``LISTENING``,
``running``): such a job never ends.  Any other status, unknown ones included,
counts as final.  ``fail_reason`` and ``error_code`` are sent once the job has ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from jobwatch._refs import validate_id
from jobwatch.sim._clock import finite
from jobwatch.sim._faults import FaultSlot

__all__ = [
    "EngineSpec",
    "GesSpec",
    "StoredJob",
    "SubJob",
    "V1Body",
    "evs_body",
    "parse_import_detail",
    "parse_timeline",
]

TimelineLike: TypeAlias = Iterable[tuple[float, str]]
Timeline: TypeAlias = Sequence[tuple[float, str]]
V1Body: TypeAlias = Literal["flat", "old", "wrapped"]
Body: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    queued: frozenset[str]
    unfinished: frozenset[str]  # queued and running


_EVS_QUEUED = frozenset({"INIT", "WAITING_EXECUTE", "PENDING_PAYMENT"})
_EVS = _Vocabulary(_EVS_QUEUED, _EVS_QUEUED | {"RUNNING", "LISTENING"})
_GES_QUEUED = frozenset({"pending", "waiting"})
_GES = _Vocabulary(_GES_QUEUED, _GES_QUEUED | {"running"})
# The older v1.0 body says "waiting" where newer GES says "pending".
OLD_V1_STATUS = {"pending": "waiting"}


def parse_timeline(raw: TimelineLike) -> tuple[tuple[float, str], ...]:
    """Validate a timeline: a non-empty list of ``(at, status)`` pairs in time order."""
    if isinstance(raw, str | bytes | Mapping):
        raise ValueError("timeline must be a list of (at, status) pairs")
    entries: list[tuple[float, str]] = []
    for item in raw:
        if isinstance(item, str | bytes) or not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(f"timeline entries must be (at, status) pairs, not {item!r}")
        at, status = finite("timeline entry time", item[0]), item[1]
        if not isinstance(status, str) or not status:
            raise ValueError(f"timeline statuses must be non-empty strings, not {status!r}")
        if entries and at < entries[-1][0]:
            raise ValueError(f"timeline must be in time order: {at} comes after {entries[-1][0]}")
        entries.append((at, status))
    if not entries:
        raise ValueError("timeline must not be empty")
    return tuple(entries)


def _status_at(timeline: Timeline, elapsed: float) -> str | None:
    status = None
    for at, entry_status in timeline:
        if at > elapsed:
            break
        status = entry_status
    return status


@dataclass(frozen=True, slots=True)
class _Phase:
    status: str
    begin: float | None  # seconds after creation, once begun
    end: float | None  # seconds after creation, once ended


def _phase(timeline: Timeline, elapsed: float, vocabulary: _Vocabulary) -> _Phase | None:
    status = _status_at(timeline, elapsed)
    if status is None:
        return None
    begin = next((at for at, s in timeline if s not in vocabulary.queued), None)
    last_at, last_status = timeline[-1]
    end = None if last_status in vocabulary.unfinished else last_at
    return _Phase(
        status=status,
        begin=begin if begin is not None and begin <= elapsed else None,
        end=end if end is not None and end <= elapsed else None,
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """Maps seconds after a job's creation to wall-clock time."""

    epoch: datetime  # wall time of sim time 0
    created_at: float  # sim time

    def evs(self, at: float | None) -> str:
        """``YYYY-MM-DDTHH:MM:SS.SSSZ``, or ``""`` when ``at`` is None."""
        if at is None:
            return ""
        wall = self._wall(at)
        return f"{wall:%Y-%m-%dT%H:%M:%S}.{wall.microsecond // 1000:03d}Z"

    def ges(self, at: float) -> str:
        """``yyyy-MM-dd'T'HH:mm:ss``."""
        return f"{self._wall(at):%Y-%m-%dT%H:%M:%S}"

    def _wall(self, at: float) -> datetime:
        return self.epoch + timedelta(seconds=self.created_at + at)


# --- EVS ----------------------------------------------------------------------------------------


def settle_sub_job(job: Any, kind: type) -> tuple[Any, ...]:
    """Check and freeze what every simulated sub-job has (ID, timeline, appearance,
    its own sub-jobs, all of ``kind``); its sub-jobs, as a tuple."""
    if job.job_id is not None:
        validate_id("job_id", job.job_id)
    object.__setattr__(job, "timeline", parse_timeline(job.timeline))
    object.__setattr__(job, "appear_at", finite("appear_at", job.appear_at))
    subs = tuple(job.sub_jobs)
    if not all(isinstance(sub, kind) for sub in subs):
        raise TypeError(f"sub_jobs must be {kind.__name__} instances")
    object.__setattr__(job, "sub_jobs", subs)
    return subs


@dataclass(frozen=True, slots=True)
class SubJob:
    """A sub-job of an EVS batch job, listed in its parent's ``entities.sub_jobs``.

    Its ``timeline`` and ``appear_at`` are in seconds after the *top-level* job's
    creation (one time frame for the whole tree).  It is listed once ``appear_at``
    has passed and its timeline has begun; it has its own status, so it can
    ``FAIL`` while its parent says ``SUCCESS``.  ``sub_jobs`` nest the same way.
    A listed sub-job also answers on its own at ``/v1/{project_id}/jobs/{job_id}``;
    one whose ``job_id`` is None is listed with ``"job_id": null`` and answers on
    no path.  ``errorcode_message`` is sent, once the sub-job has ended, in its
    ``entities``, where ECS puts a sub-job's failure reason (ECS API page
    ecs_02_0901, "sub_jobs.entities").
    """

    job_id: str | None
    timeline: Timeline
    appear_at: float = 0.0
    job_type: str = "createVolume"
    entities: Mapping[str, Any] | None = None
    sub_jobs: Sequence[SubJob] = ()
    fail_reason: str | None = None
    error_code: str | None = None
    errorcode_message: str | None = None

    def __post_init__(self) -> None:
        subs = settle_sub_job(self, SubJob)
        if self.entities is not None:
            if not isinstance(self.entities, Mapping):
                raise TypeError(f"entities must be a mapping, not {type(self.entities).__name__}")
            if subs and "sub_jobs" in self.entities:
                raise ValueError("give sub-jobs either as sub_jobs or in entities, not both")
            object.__setattr__(self, "entities", dict(self.entities))

    def walk(self) -> Iterable[tuple[SubJob, ...]]:
        """The path (from this job) to this job and to every sub-job, depth first."""
        yield (self,)
        for sub in self.sub_jobs:
            for path in sub.walk():
                yield (self, *path)


def evs_body(job: SubJob, elapsed: float, frame: Frame, status: str | None = None) -> Body | None:
    """The EVS body of ``job`` (sub-jobs included), or None before its timeline begins.

    ``status`` replaces the job's own status (not its sub-jobs').
    """
    phase = _phase(job.timeline, elapsed, _EVS)
    if phase is None:
        return None
    ended = phase.end is not None
    entities = dict(job.entities or {})
    if ended and job.errorcode_message is not None:
        entities["errorcode_message"] = job.errorcode_message
    if job.sub_jobs:
        entities["sub_jobs"] = [
            body
            for sub in job.sub_jobs
            if sub.appear_at <= elapsed and (body := evs_body(sub, elapsed, frame)) is not None
        ]
    return {
        "status": phase.status if status is None else status,
        "entities": entities,
        "job_id": job.job_id,
        "job_type": job.job_type,
        "begin_time": frame.evs(phase.begin),
        "end_time": frame.evs(phase.end),
        "error_code": job.error_code if ended else None,
        "fail_reason": job.fail_reason if ended else None,
    }


def evs_path_listed(path: Sequence[SubJob], elapsed: float) -> bool:
    """True when every sub-job on ``path`` (below the top-level job) is listed."""
    return all(
        sub.appear_at <= elapsed and _status_at(sub.timeline, elapsed) is not None
        for sub in path[1:]
    )


# --- GES management plane -----------------------------------------------------------------------

_DETAIL_SECTIONS = ("vertexset_path", "edgeset_path", "schema_path")  # the seed sample's order
_FILE_COUNTS = ("total_lines", "failed_lines", "successful_lines")
_FILE_KEYS = frozenset({"path", "log", "cause", "status", *_FILE_COUNTS})


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def camelize(value: Any) -> Any:
    """Rename every object key from snake_case to camelCase, recursively."""
    if isinstance(value, Mapping):
        return {_camel(key): camelize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [camelize(item) for item in value]
    return value


def parse_import_detail(raw: Mapping[str, Any]) -> Body:
    """Validate a GES ``job_detail`` (snake_case or camelCase keys) into its v2 wire form.

    Each file needs ``path`` and ``status`` (any string; GES sends ``success``,
    ``failed`` or ``partFailed``); ``log`` and ``cause`` default to null and the
    line counts to -1 ("not returned by this version").  Missing sections are empty.
    """
    if not isinstance(raw, Mapping):
        raise TypeError(f"import_detail must be a mapping, not {type(raw).__name__}")
    sections: dict[str, list[Body]] = {}
    for key, files in raw.items():
        name = _snake(key)
        if name not in _DETAIL_SECTIONS:
            raise ValueError(f"unknown import_detail section {key!r}; use {_DETAIL_SECTIONS}")
        if isinstance(files, str | bytes | Mapping) or not isinstance(files, Sequence):
            raise ValueError(f"import_detail section {key!r} must be a list of files")
        sections[name] = [_parse_import_file(item) for item in files]
    return {name: sections.get(name, []) for name in _DETAIL_SECTIONS}


def _parse_import_file(raw: object) -> Body:
    if not isinstance(raw, Mapping):
        raise ValueError(f"an import_detail file must be an object, not {raw!r}")
    item = {_snake(key): value for key, value in raw.items()}
    unknown = set(item) - _FILE_KEYS
    if unknown:
        raise ValueError(f"unknown import_detail file fields {sorted(unknown)}")
    if not isinstance(item.get("path"), str) or not isinstance(item.get("status"), str):
        raise ValueError("an import_detail file needs string 'path' and 'status'")
    for count in _FILE_COUNTS:
        value = item.get(count, -1)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"import_detail {count} must be an integer, not {value!r}")
    return {
        "path": item["path"],
        "log": item.get("log"),
        "cause": item.get("cause"),
        "status": item["status"],
        **{count: item.get(count, -1) for count in _FILE_COUNTS},
    }


@dataclass(frozen=True, slots=True)
class GesSpec:
    """A GES management-plane job; it answers on both ``/v1.0`` and ``/v2``."""

    graph_id: str
    job_id: str
    timeline: Timeline
    job_type: str
    job_name: str
    related_graph: str
    import_detail: Body | None
    fail_reason: str | None
    v1_body: V1Body

    def body(
        self,
        version: Literal["v1.0", "v2"],
        elapsed: float,
        frame: Frame,
        status: str | None = None,
    ) -> Body | None:
        """The body on ``/v2`` (snake_case) or ``/v1.0`` (camelCase, in this job's generation)."""
        phase = _phase(self.timeline, elapsed, _GES)
        if phase is None:
            return None
        raw_status = phase.status if status is None else status
        if version == "v1.0" and self.v1_body == "old":
            message = self.fail_reason if phase.end is not None and self.fail_reason else ""
            status_text = OLD_V1_STATUS.get(raw_status, raw_status)
            return {"status": status_text, "errorMessage": message, "errorCode": ""}
        body: Body = {
            "job_id": self.job_id,
            "status": raw_status,
            "job_type": self.job_type,
            "job_name": self.job_name,
            "related_graph": self.related_graph,
        }
        if phase.begin is not None:
            body["begin_time"] = frame.ges(phase.begin)
        if phase.end is not None:
            body["end_time"] = frame.ges(phase.end)
        if self.job_name == "ImportGraph":
            body["job_detail"] = self.import_detail or parse_import_detail({})
        if phase.end is not None and self.fail_reason is not None:
            body["fail_reason"] = self.fail_reason
        body["job_progress"] = 0
        if version == "v2":
            return body
        if self.v1_body == "wrapped":
            return {"errorMessage": "", "errorCode": "", "Job": camelize(body)}
        return dict(camelize(body))


# --- GES engine ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """A job kept by a GES graph engine, listed in its graph's job list."""

    graph_name: str
    job_id: str
    timeline: Timeline
    request: Mapping[str, Any]

    def listed(self, elapsed: float) -> bool:
        """Whether this job has an entry in the list (its timeline has begun)."""
        return _status_at(self.timeline, elapsed) is not None

    def entry(self, elapsed: float, drift: bool, status: str | None = None) -> Body | None:
        """This job's entry in the list (2.2.13 shape, or the drifted one)."""
        current = _status_at(self.timeline, elapsed)
        if current is None:
            return None
        entry: Body = {"jobId": self.job_id, "status": current if status is None else status}
        if drift:
            entry["rawRequest"] = self.request
            entry["taskType"] = str(self.request.get("command", "unknown"))
        else:
            entry["request"] = self.request
        return entry


# --- stored jobs --------------------------------------------------------------------------------


class _HasTimeline(Protocol):
    @property
    def timeline(self) -> Timeline: ...


S = TypeVar("S", bound=_HasTimeline)


@dataclass(frozen=True, slots=True)
class StoredJob(Generic[S]):
    """A job as added to a simulator: its spec, when it exists, and its own faults."""

    spec: S
    created_at: float
    visible_after: float
    expires_after: float | None
    faults: tuple[FaultSlot, ...]
    seq: int

    def __post_init__(self) -> None:
        finite("created_at", self.created_at)
        if finite("visible_after", self.visible_after) < 0:
            raise ValueError(f"visible_after must not be negative, not {self.visible_after!r}")
        if self.expires_after is not None and finite("expires_after", self.expires_after) < 0:
            raise ValueError(f"expires_after must not be negative, not {self.expires_after!r}")

    def elapsed(self, now: float) -> float:
        """Seconds since creation at sim time ``now``."""
        return now - self.created_at

    def visible(self, now: float) -> bool:
        """Whether the job answers at sim time ``now`` (begun, past visible_after, unexpired)."""
        elapsed = self.elapsed(now)
        timeline = self.spec.timeline
        if elapsed < self.visible_after or elapsed < timeline[0][0]:
            return False
        return self.expires_after is None or elapsed < timeline[-1][0] + self.expires_after

    def frame(self, epoch: datetime) -> Frame:
        """This job's time frame."""
        return Frame(epoch, self.created_at)
