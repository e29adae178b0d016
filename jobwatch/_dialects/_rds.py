"""RDS job API: ``GET /v3/{project_id}/jobs?id={job_id}``.

What the pages say.  RDS API reference, "Obtaining Information About a Task
with a Specified ID" (rds_08_0001; Open Telekom Cloud's copy is rds_13_0003) and
the official SDK (``huaweicloudsdkrds`` v3: ``ListJobInfoRequest`` sends ``id`` in
the query, ``ListJobInfoResponse`` / ``GetJobInfoResponseBodyJob``): the job comes
wrapped, ``{"job": {"id", "name", "status", "created", "ended", "process",
"instance": {"id", "name"}, "entities": {...}, "fail_reason"}}``.

``status`` is ``Running``, ``Completed`` or ``Failed``; ``created`` and ``ended`` are
``yyyy-mm-ddThh:mm:ssZ`` "where Z is the time zone offset" (the samples:
``2018-08-06T10:41:14+0000``); ``process`` is the progress while running (``"60%"``
in the SDK, ``"60"`` in the page's table, ``"60% "`` in a sample), ``""`` otherwise;
``entities`` is ``{}`` for tasks without any; ``fail_reason`` comes with a failure.
The page also says a new job takes several seconds to become visible and that
only jobs of the last month are kept.  A job the service does not have is
HTTP 400 ``{"error_code": "DBS.200543", "error_msg": "The job does not exist."}``
(RDS API reference, "Error Codes", the v3 table; error bodies are
``{"error_code", "error_msg"}`` per "Abnormal Request Results").

What they leave open, and what jobwatch does:

- ``Pending`` is not on the RDS page; TaurusDB documents it for the same path and
  body ("Obtaining Information About a Task with a Specified ID",
  ShowGaussMySqlJobInfo), so it reads as ``pending``.  Other words are ``unknown``.
- A time without an offset is read as UTC.
- ``process`` is read as a percentage into ``progress`` (``"60%"``, ``"60"``,
  ``" 60 % "`` are 60.0); anything else, ``""`` included, gives None (kept in ``raw``).
- Whether the body can be ``{}`` or ``{"job": {}}`` no page says: a body without
  ``job.status`` does not fit (``ResponseValidationError``), as for the other APIs.
- ``job.id`` is not compared with the ID asked for (a sample on the page spells
  it with spaces).
- ``job_name`` is ``name`` (``CreateMysqlSingleHAInstance``, ...); ``entities`` is
  ``entities`` as sent (the instance is in ``raw``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobwatch._dialects._common import (
    OneIdJob,
    OneIdKind,
    WireModel,
    map_state,
    parse_time,
    require_object,
    text,
    validate,
)
from jobwatch._kinds import register
from jobwatch._snapshot import JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._dialects._rds_wire import RdsBodyWire, RdsJobWire
else:
    RdsBodyWire = WireModel("jobwatch._dialects._rds_wire", "RdsBodyWire")
    RdsJobWire = WireModel("jobwatch._dialects._rds_wire", "RdsJobWire")

__all__ = ["API", "STATES", "RdsJob", "parse"]

API = "rds"


@dataclass(frozen=True, slots=True)
class RdsJob(OneIdJob):
    """A job of the RDS task center (``/v3/{project_id}/jobs?id={job_id}``).

    Other database services with the same task API (TaurusDB, GaussDB) answer
    the same way: point the client at their endpoint.
    """

    SERVICE = "rds"
    PATH = "/v3/{project}/jobs"  # the job itself is named in the query

    def params(self) -> dict[str, str]:
        """The query of the status request: ``{"id": job_id}``."""
        return {"id": self.job_id}


STATES: Mapping[str, JobState] = {
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "completed": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}


_PERCENT = re.compile(r"\s*([0-9]{1,3}(?:\.[0-9]+)?)\s*%?\s*")


def progress(process: str | None) -> float | None:
    """``process`` (``"60%"``) as a percentage; None when it holds no number."""
    if not process:
        return None
    match = _PERCENT.fullmatch(process)
    return float(match.group(1)) if match else None


def parse(ref: RdsJob, data: object) -> JobSnapshot:
    """Read an RDS answer (``{"job": {...}}``) into a snapshot."""
    body: RdsBodyWire = validate(
        RdsBodyWire, require_object(data, "the RDS job body"), "the RDS job body"
    )
    job = body.job
    wire: RdsJobWire = validate(RdsJobWire, job, "the RDS job")
    return JobSnapshot(
        ref=ref,
        state=map_state(API, wire.status, STATES),
        raw_status=wire.status,
        job_name=text(wire.name),
        begin_time=parse_time(wire.created, "job.created"),
        end_time=parse_time(wire.ended, "job.ended"),
        fail_reason=text(wire.fail_reason),
        progress=progress(wire.process),
        entities=wire.entities,
        raw=job,
    )


class RdsKind(OneIdKind[RdsJob]):
    """The RDS job API: one GET per job, the job named in the query."""

    name = API
    ref_type = RdsJob

    def params(self, ref: RdsJob) -> dict[str, str]:
        return ref.params()

    def parse(self, ref: RdsJob, data: object) -> JobSnapshot:
        return parse(ref, data)


KIND = register(RdsKind())
