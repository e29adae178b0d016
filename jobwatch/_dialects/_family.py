"""What the EVS-style job family shares: the wire model, sub-jobs, states and the kind.

EVS, ECS, BMS, VPC/EIP, IMS, DEH, SDRS, EVS v2 and DCS answer one GET per job
with the same body: ``status`` (``INIT`` / ``RUNNING`` / ``SUCCESS`` / ``FAIL``,
plus a few words some services add), ``job_id``, ``job_type``, ``begin_time``,
``end_time``, ``error_code``, ``fail_reason`` and ``entities`` (the service's own
fields, kept as sent in ``snapshot.entities``).  Batch jobs list their sub-jobs
under ``entities`` (``sub_jobs``, IMS ``sub_jobs_result``), each shaped like its
parent, recursively.  Each service is one small module that describes itself
with a ``Service`` and registers ``FamilyKind(service)``.

Nesting deeper than ``MAX_SUB_JOB_DEPTH`` is refused with
``ResponseValidationError`` (real batch jobs nest one or two levels).  A sub-job
is kept with the fields it has: without a ``status`` its state is ``unknown``;
without a ``job_id`` (absent, null or ``""``) it is named by its place,
``<parent id>.sub_jobs.<n>`` (``n`` from 0), an ID no API answers on (a
parent ID too long for the suffix, or ending in ``.``, is replaced by its
SHA-256, as every dialect does: ``place_id``).  Fields that
are there but do not fit still make the body a misfit.  A sub-job is a reference
of its parent's service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from jobwatch._dialects._common import (
    OneIdJob,
    OneIdKind,
    WireModel,
    map_state,
    parse_time,
    place_id,
    require_object,
    text,
    validate,
)
from jobwatch._exceptions import ResponseValidationError
from jobwatch._kinds import segment
from jobwatch._snapshot import JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._dialects._family_wire import FamilyJobWire, FamilySubJobWire
    from jobwatch._refs import JobRef
else:
    FamilyJobWire = WireModel("jobwatch._dialects._family_wire", "FamilyJobWire")
    FamilySubJobWire = WireModel("jobwatch._dialects._family_wire", "FamilySubJobWire")

__all__ = [
    "BASE_STATES",
    "MAX_SUB_JOB_DEPTH",
    "FamilyJob",
    "FamilyKind",
    "Service",
    "parse_epoch_ms",
    "states",
]

MAX_SUB_JOB_DEPTH = 32

BASE_STATES: Mapping[str, JobState] = {
    "init": JobState.PENDING,
    "running": JobState.RUNNING,
    "success": JobState.SUCCEEDED,
    "fail": JobState.FAILED,
}
"""The four words every service of the family documents (lowercase keys)."""


def states(**extra: JobState) -> Mapping[str, JobState]:
    """``BASE_STATES`` plus a service's documented extra words (lowercase)."""
    return {**BASE_STATES, **{word.lower(): state for word, state in extra.items()}}


@dataclass(frozen=True, slots=True)
class FamilyJob(OneIdJob):
    """A job of one service of the EVS-style family (a subclass per service).

    A subclass sets ``SERVICE`` (its name, as printed and in the JSON form) and
    ``VERSION`` (``"v1"`` or ``"v2"``, the first segment of its status path).
    References of two services are never equal, even with the same ``job_id``.
    """

    VERSION: ClassVar[str] = "v1"

    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        # (A validated ID has nothing to encode: ``segment(self.job_id)`` is the ID.)
        return f"/{self.VERSION}/{segment(project_id)}/jobs/{self.job_id}"


J = TypeVar("J", bound=FamilyJob)


def parse_epoch_ms(value: object, field_name: str) -> datetime | None:
    """A time sent as milliseconds since the epoch (DCS: ``"1684191545379"``) as UTC.

    ``""``, 0 and None give None; anything but digits raises ``ResponseValidationError``.
    """
    if value is None or (value in ("", 0) and not isinstance(value, bool)):
        return None
    raw = str(value)
    if isinstance(value, bool) or not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        raise ResponseValidationError(
            f"{field_name} is not a time in milliseconds: {raw[:40]!r}", excerpt=raw[:80]
        )
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):  # beyond the year 9999
        raise ResponseValidationError(
            f"{field_name} is out of range: {raw!r}", excerpt=raw
        ) from None


def _iso_time(value: object, field_name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ResponseValidationError(f"{field_name} must be a string, not {value!r}"[:120])
    return parse_time(value, field_name)


@dataclass(frozen=True, slots=True)
class Service(Generic[J]):
    """How one service of the family speaks.

    ``states`` maps its lowercase status words; ``sub_jobs_key`` is where its
    entities list sub-jobs; ``reason_key`` an entity that gives a failed job's
    reason when it has no ``fail_reason``; ``progress_key`` an entity holding
    its progress (a number, passed on as sent); ``time`` reads ``begin_time``/``end_time``.
    """

    ref_type: type[J]
    states: Mapping[str, JobState] = field(default_factory=lambda: BASE_STATES)
    sub_jobs_key: str = "sub_jobs"
    reason_key: str | None = None
    progress_key: str | None = None
    time: Callable[[object, str], datetime | None] = _iso_time

    @property
    def name(self) -> str:
        """The service's name (its references' ``SERVICE``)."""
        return self.ref_type.SERVICE


def parse(service: Service[J], ref: J, data: object) -> JobSnapshot:
    """Read a family job body into a snapshot, sub-jobs included."""
    if type(data) is not dict:  # (the check of every body, without its message's cost)
        data = require_object(data, f"the {service.name} job body")
    return _parse(service, ref, data, 0)


def _parse(service: Service[J], ref: J, data: Mapping[str, Any], depth: int) -> JobSnapshot:
    name = service.name
    what = f"the {name} job body" if not depth else "a sub-job"
    wire: FamilyJobWire = validate(FamilySubJobWire if depth else FamilyJobWire, data, what)
    entities = wire.entities or {}
    sub_jobs: tuple[JobSnapshot, ...] = ()
    raw_subs = entities.get(service.sub_jobs_key)
    if raw_subs is not None and raw_subs != []:
        if depth >= MAX_SUB_JOB_DEPTH:
            raise ResponseValidationError(
                f"sub_jobs nested deeper than {MAX_SUB_JOB_DEPTH} levels under job {ref.job_id}"
            )
        if not isinstance(raw_subs, list):
            raise ResponseValidationError(
                f"entities.{service.sub_jobs_key} of job {ref.job_id} must be an array"
            )
        sub_jobs = tuple(
            _parse_sub_job(service, item, ref, n, depth + 1) for n, item in enumerate(raw_subs)
        )
    reason = text(wire.fail_reason)
    if reason is None and service.reason_key is not None:
        reason = text(entities.get(service.reason_key))
    return JobSnapshot(
        ref=cast("JobRef", ref),  # each service's reference class is one of JobRef's
        state=map_state(name, wire.status, service.states),
        raw_status=wire.status,
        job_type=text(wire.job_type),
        begin_time=service.time(wire.begin_time, "begin_time"),
        end_time=service.time(wire.end_time, "end_time"),
        fail_reason=reason,
        error_code=text(wire.error_code),
        progress=_progress(service, ref, entities),
        entities=wire.entities,
        sub_jobs=sub_jobs,
        raw=data,
    )


def _progress(service: Service[J], ref: J, entities: Mapping[str, Any]) -> float | None:
    if service.progress_key is None:
        return None
    value = entities.get(service.progress_key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResponseValidationError(
            f"entities.{service.progress_key} of job {ref.job_id} must be a number,"
            f" not {str(value)[:40]!r}"
        )
    return float(value)


def _parse_sub_job(service: Service[J], item: object, parent: J, n: int, depth: int) -> JobSnapshot:
    body = require_object(item, f"a sub-job of {parent.job_id}")
    job_id = body.get("job_id")
    if job_id is None or job_id == "":
        return _parse(service, placeholder(service.ref_type, parent, n), body, depth)
    try:
        ref = service.ref_type(job_id)  # validated by the reference itself
    except ValueError as exc:
        raise ResponseValidationError(
            f"a sub-job of {parent.job_id} has a bad job_id: {exc}"
        ) from None
    return _parse(service, ref, body, depth)


def placeholder(ref_type: type[J], parent: FamilyJob, n: int) -> J:
    """The reference of sub-job ``n`` of ``parent`` listed without an ID: its place."""
    return ref_type(place_id(parent.job_id, "sub_jobs", n))


class FamilyKind(OneIdKind[J]):
    """The kind of one service of the family: one GET per job, JSON ``{"api", "job_id"}``."""

    def __init__(self, service: Service[J]) -> None:
        self.service = service
        self.name = service.name
        self.ref_type = service.ref_type

    def parse(self, ref: J, data: object) -> JobSnapshot:
        """The snapshot of ``ref`` in the body of its status path."""
        return parse(self.service, ref, data)
