"""CCE job API: ``GET /api/v3/projects/{project_id}/jobs/{job_id}``.

What the pages say.  CCE API reference, "Querying a Job" (cce_02_0247; Open
Telekom Cloud's copy of the page is "Reading Job Progress") and the official
SDK's models (``huaweicloudsdkcce`` v3: ``ShowJobResponse``, ``Job``,
``JobMetadata``, ``JobSpec``, ``JobStatus``): cluster and node jobs answer

``{"kind": "Job", "apiVersion": "v3", "metadata": {"uid", "creationTimestamp",
"updateTimestamp"}, "spec": {"type", "clusterUID", "resourceID", "resourceName",
"extendParam", "subJobs": [...]}, "status": {"phase", "reason"}}``.

``status.phase`` is ``Initializing``, ``Running``, ``Failed`` or ``Success`` (the
page's ``JobPhase`` list, the SDK's ``JobStatus.phase``); ``status.reason`` is "why
the job is in the current state".  ``spec.subJobs`` is an "Array of Job objects"
(the SDK's ``JobSpec.sub_jobs`` is ``list[Job]``): each sub-job has the same shape,
so they nest, and "the job is complete only after all sub-jobs are complete".
An unknown job is HTTP 404 ``{"errorCode": "CCE.01404001", "errorMessage":
"Resource not found."}`` (CCE API reference, "Error Codes", cce_02_0250: the
error body shape and the 404 code of every CCE API; the job page lists only 200).

What they leave open, and what jobwatch does:

- Phases other than the four are ``unknown`` (never terminal, logged once).
- The times are strings of no stated format; the page's sample writes Go's
  ``time.String()`` form, ``2020-02-02 08:12:40.672772389 +0000 UTC``.  That form
  (nanoseconds cut to microseconds) and ISO 8601 are read, as UTC.
- No end time is documented: ``end_time`` is ``metadata.updateTimestamp`` once the
  job is in a final phase (the moment of its last change), None before.
- ``begin_time`` is ``metadata.creationTimestamp`` (no start time is documented).
- ``fail_reason`` is ``status.reason`` of a ``Failed`` job; the reason of a job in
  another phase is not a failure's (it stays in ``raw``).
- ``job_type`` is ``spec.type`` (``CreateCluster``, ``InstallMaster``, ...);
  ``entities`` holds the rest of ``spec`` but ``subJobs``.
- A sub-job without ``status.phase`` is ``unknown``; the top-level job must have
  one.  A sub-job without ``metadata.uid`` is named by its place,
  ``CceJob("<parent id>.subJobs.<n>")``.  Nesting deeper than
  ``MAX_SUB_JOB_DEPTH`` is refused (``ResponseValidationError``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from jobwatch._exceptions import ResponseValidationError, excerpt
from jobwatch._kinds import register
from jobwatch._snapshot import JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._dialects._cce_wire import CceJobWire, CceMetadataWire
else:
    CceJobWire = WireModel("jobwatch._dialects._cce_wire", "CceJobWire")
    CceMetadataWire = WireModel("jobwatch._dialects._cce_wire", "CceMetadataWire")

__all__ = ["API", "MAX_SUB_JOB_DEPTH", "STATES", "CceJob", "parse", "parse_cce_time"]

API = "cce"
MAX_SUB_JOB_DEPTH = 32


@dataclass(frozen=True, slots=True)
class CceJob(OneIdJob):
    """A CCE cluster or node job (``/api/v3/projects/{project_id}/jobs/{job_id}``).

    The job ID is the ``jobid`` a CCE cluster or node request answers with; the
    job's sub-jobs come back in its snapshot as ``CceJob`` references too.
    """

    SERVICE = "cce"
    PATH = "/api/v3/projects/{project}/jobs/{job}"


STATES: Mapping[str, JobState] = {
    "initializing": JobState.PENDING,
    "running": JobState.RUNNING,
    "success": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}


_GO_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?"  # date, time, fraction
    r" ([+-]\d{2}):?(\d{2})(?: [A-Za-z]{1,6})?"  # offset, zone name
)


def parse_cce_time(value: str | None, field: str) -> datetime | None:
    """A CCE time as UTC: Go's ``2020-02-02 08:12:40.672772389 +0000 UTC`` or ISO 8601.

    ``""`` and None give None; anything else raises ``ResponseValidationError``.
    """
    if value is None or value == "":
        return None
    match = _GO_TIME.fullmatch(value)
    if match is None:
        return parse_time(value, field)
    day, clock, fraction, hours, minutes = match.groups()
    micros = f".{(fraction + '00000')[:6]}" if fraction else ""
    return parse_time(f"{day}T{clock}{micros}{hours}:{minutes}", field)


def parse(ref: CceJob, data: object) -> JobSnapshot:
    """Read a CCE job body into a snapshot, sub-jobs included."""
    return _parse(ref, require_object(data, "the CCE job body"), depth=0)


def _parse(ref: CceJob, data: Mapping[str, Any], depth: int) -> JobSnapshot:
    what = "a sub-job" if depth else "the CCE job body"
    wire: CceJobWire = validate(CceJobWire, data, what)
    phase = wire.status.phase if wire.status is not None else None
    if phase is None and not depth:
        raise ResponseValidationError(
            f"{what} does not fit the API: status.phase: Field required",
            excerpt=excerpt(repr(dict(data))),
        )
    spec = wire.spec
    sub_jobs: tuple[JobSnapshot, ...] = ()
    if spec is not None and spec.sub_jobs:
        if depth >= MAX_SUB_JOB_DEPTH:
            raise ResponseValidationError(
                f"subJobs nested deeper than {MAX_SUB_JOB_DEPTH} levels under job {ref.job_id}"
            )
        sub_jobs = tuple(
            _parse_sub_job(item, ref, n, depth + 1) for n, item in enumerate(spec.sub_jobs)
        )
    state = map_state(API, phase, STATES)
    metadata = wire.metadata or CceMetadataWire()
    reason = wire.status.reason if wire.status is not None else None
    return JobSnapshot(
        ref=ref,
        state=state,
        raw_status=phase,
        job_type=text(spec.type) if spec is not None else None,
        begin_time=parse_cce_time(metadata.creation_timestamp, "metadata.creationTimestamp"),
        end_time=parse_cce_time(metadata.update_timestamp, "metadata.updateTimestamp")
        if state.terminal
        else None,
        fail_reason=text(reason) if state is JobState.FAILED else None,
        entities=_entities(data.get("spec")),
        sub_jobs=sub_jobs,
        raw=data,
    )


def _entities(spec: object) -> dict[str, Any] | None:
    """``spec`` without its sub-jobs; None when nothing is left."""
    if not isinstance(spec, Mapping):
        return None
    return {key: value for key, value in spec.items() if key != "subJobs"} or None


def _parse_sub_job(item: object, parent: CceJob, n: int, depth: int) -> JobSnapshot:
    body = require_object(item, f"a sub-job of {parent.job_id}")
    metadata = body.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    if uid is None or uid == "":
        return _parse(CceJob(place_id(parent.job_id, "subJobs", n)), body, depth)
    try:
        ref = CceJob(uid)  # validated by CceJob itself
    except ValueError as exc:
        raise ResponseValidationError(
            f"a sub-job of {parent.job_id} has a bad metadata.uid: {exc}"
        ) from None
    return _parse(ref, body, depth)


class CceKind(OneIdKind[CceJob]):
    """The CCE job API: one GET per job."""

    name = API
    ref_type = CceJob

    def parse(self, ref: CceJob, data: object) -> JobSnapshot:
        return parse(ref, data)


KIND = register(CceKind())
