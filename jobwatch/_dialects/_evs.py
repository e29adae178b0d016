"""EVS job API (and ECS and others with the same shape): ``GET /v1/{project_id}/jobs/{job_id}``.

Batch jobs list their sub-jobs under ``entities.sub_jobs``, each shaped like
its parent, recursively.  Nesting deeper than ``MAX_SUB_JOB_DEPTH`` is refused
with ``ResponseValidationError`` (real batch jobs nest one or two levels).

A sub-job is kept with the fields it has: without a ``status`` its state is
``unknown``; without a ``job_id`` (absent, null or ``""``) it is named by its place,
``EvsJob("<parent id>.sub_jobs.<n>")`` (``n`` from 0), an ID no API answers on.
Fields that are there but do not fit still make the body a misfit.  ECS gives a
failed sub-job's reason in ``entities.errorcode_message`` (ECS API page
ecs_02_0901, "sub_jobs.entities"): it becomes ``fail_reason`` when the sub-job has
no ``fail_reason`` of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from jobwatch._dialects._common import (
    WIRE_CONFIG,
    map_state,
    parse_time,
    require_object,
    text,
    validate,
)
from jobwatch._exceptions import ResponseValidationError
from jobwatch._kinds import MAX_ID_LENGTH, DirectKind, register, segment, validate_id
from jobwatch._snapshot import JobSnapshot, JobState

API = "evs"
MAX_SUB_JOB_DEPTH = 32


@dataclass(frozen=True, slots=True)
class EvsJob:
    """A job of the EVS job API (``/v1/{project_id}/jobs/{job_id}``).

    ECS and other services answer on the same path with the same body, so
    this reference serves them too: point the client at their endpoint.
    """

    job_id: str

    def __post_init__(self) -> None:
        validate_id("job_id", self.job_id)

    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        return f"/v1/{segment(project_id)}/jobs/{segment(self.job_id)}"

    def __str__(self) -> str:
        return f"evs:{self.job_id}"


STATES: Mapping[str, JobState] = {
    "init": JobState.PENDING,
    "waiting_execute": JobState.PENDING,
    "pending_payment": JobState.PENDING,
    "running": JobState.RUNNING,
    "listening": JobState.RUNNING,
    "success": JobState.SUCCEEDED,
    "fail": JobState.FAILED,
}


class EvsJobWire(pydantic.BaseModel):
    """The wire form of an EVS job (and of each of its sub-jobs)."""

    model_config = WIRE_CONFIG

    status: str
    job_id: str | None = None
    job_type: str | None = None
    begin_time: str | None = None
    end_time: str | None = None
    error_code: str | None = None
    fail_reason: str | None = None
    entities: dict[str, Any] | None = None


class EvsSubJobWire(EvsJobWire):
    """The wire form of a sub-job: as its parent's, but a status may be missing."""

    status: str | None = None  # type: ignore[assignment]  # optional here only


def parse(ref: EvsJob, data: object) -> JobSnapshot:
    """Read an EVS job body into a snapshot, sub-jobs included."""
    return _parse(ref, require_object(data, "the EVS job body"), depth=0)


def _parse(ref: EvsJob, data: Mapping[str, Any], depth: int) -> JobSnapshot:
    model = EvsSubJobWire if depth else EvsJobWire
    wire: EvsJobWire = validate(model, data, "the EVS job body" if not depth else "a sub-job")
    entities = wire.entities
    sub_jobs: tuple[JobSnapshot, ...] = ()
    raw_subs = entities.get("sub_jobs") if entities else None
    if raw_subs:
        if depth >= MAX_SUB_JOB_DEPTH:
            raise ResponseValidationError(
                f"sub_jobs nested deeper than {MAX_SUB_JOB_DEPTH} levels under job {ref.job_id}"
            )
        if not isinstance(raw_subs, list):
            raise ResponseValidationError(f"entities.sub_jobs of job {ref.job_id} must be an array")
        sub_jobs = tuple(_parse_sub_job(item, ref, n, depth + 1) for n, item in enumerate(raw_subs))
    return JobSnapshot(
        ref=ref,
        state=map_state(API, wire.status, STATES),
        raw_status=wire.status,
        job_type=text(wire.job_type),
        begin_time=parse_time(wire.begin_time, "begin_time"),
        end_time=parse_time(wire.end_time, "end_time"),
        fail_reason=text(wire.fail_reason) or text((entities or {}).get("errorcode_message")),
        error_code=text(wire.error_code),
        entities=entities,
        sub_jobs=sub_jobs,
        raw=data,
    )


def _parse_sub_job(item: object, parent: EvsJob, n: int, depth: int) -> JobSnapshot:
    body = require_object(item, f"a sub-job of {parent.job_id}")
    job_id = body.get("job_id")
    if job_id is None or job_id == "":
        return _parse(_placeholder(parent, n), body, depth)
    try:
        ref = EvsJob(job_id)  # validated by EvsJob itself
    except ValueError as exc:
        raise ResponseValidationError(
            f"a sub-job of {parent.job_id} has a bad job_id: {exc}"
        ) from None
    return _parse(ref, body, depth)


def _placeholder(parent: EvsJob, n: int) -> EvsJob:
    """The reference of sub-job ``n`` of ``parent`` listed without an ID: its place."""
    suffix = f".sub_jobs.{n}"
    head = parent.job_id
    if len(head) + len(suffix) > MAX_ID_LENGTH:  # (a parent ID near the limit)
        head = hashlib.sha256(head.encode()).hexdigest()
    return EvsJob(head + suffix)


class EvsKind(DirectKind[EvsJob]):
    """The EVS job API: one GET per job."""

    name = API
    ref_type = EvsJob

    def to_dict(self, ref: EvsJob) -> dict[str, str]:
        return {"api": API, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> EvsJob:
        return EvsJob(data.get("job_id"))  # type: ignore[arg-type]  # validated on init

    def parse(self, ref: EvsJob, data: object) -> JobSnapshot:
        return parse(ref, data)


KIND = register(EvsKind())
