"""Simulated RDS jobs: ``GET /v3/{project_id}/jobs?id={job_id}``.

The body is the one RDS API reference, "Obtaining Information About a Task with
a Specified ID" (rds_08_0001) shows: ``{"job": {"id", "name", "status", "created",
"ended", "process", "instance", "entities", "fail_reason"}}``, ``status``
``Running``, ``Completed`` or ``Failed``, times as ``2018-08-06T10:41:14+0000``,
``entities`` ``{}`` for a task without any, ``ended`` left out while the job runs
and ``fail_reason`` sent with a failure (the page's samples).  A job the service
does not have is HTTP 400 ``{"error_code": "DBS.200543", "error_msg": "The job
does not exist."}`` (RDS API reference, "Error Codes"); a request without ``id``
is HTTP 400 ``DBS.200001`` "Parameter error." (the same table; which code the
service sends for a missing ``id`` no page says).

Chosen here, no page says: ``created`` is the moment of the job's first timeline
entry; ``process`` is the last of the ``process`` entries given (``(at, "60%")``)
while the job is ``Running``, ``""`` otherwise, as the page says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jobwatch.sim._http import Response, api_error, json_response
from jobwatch.sim._jobs import Frame, Timeline, _phase, _status_at, _Vocabulary

if TYPE_CHECKING:
    from jobwatch.sim._app import SimState

__all__ = ["RDS_BAD_PARAMETER", "RDS_NOT_FOUND", "RdsSpec", "answer_rds"]

RDS_NOT_FOUND = "DBS.200543"
RDS_BAD_PARAMETER = "DBS.200001"
# "Pending" is TaurusDB's word for the same API (ShowGaussMySqlJobInfo); RDS documents
# Running, Completed and Failed.
_QUEUED = frozenset({"Pending"})
_VOCABULARY = _Vocabulary(_QUEUED, _QUEUED | {"Running"})


@dataclass(frozen=True, slots=True)
class RdsSpec:
    """An RDS task-center job."""

    job_id: str
    timeline: Timeline
    name: str
    instance: Mapping[str, Any] | None
    entities: Mapping[str, Any] | None
    fail_reason: str | None
    process: Timeline | None

    def body(
        self, elapsed: float, frame: Frame, status: str | None = None
    ) -> dict[str, Any] | None:
        """The answer at ``elapsed``, or None before the timeline begins."""
        phase = _phase(self.timeline, elapsed, _VOCABULARY)
        if phase is None:
            return None
        raw_status = phase.status if status is None else status
        job: dict[str, Any] = {
            "id": self.job_id,
            "name": self.name,
            "status": raw_status,
            "created": _rds_time(frame, self.timeline[0][0]),
        }
        if phase.end is not None:
            job["ended"] = _rds_time(frame, phase.end)
        process = ""
        if phase.status == "Running" and self.process is not None:
            process = _status_at(self.process, elapsed) or ""
        job["process"] = process
        if self.instance is not None:
            job["instance"] = dict(self.instance)
        job["entities"] = dict(self.entities or {})
        if phase.end is not None and self.fail_reason is not None:
            job["fail_reason"] = self.fail_reason
        return {"job": job}


def _rds_time(frame: Frame, at: float) -> str:
    """``yyyy-mm-ddThh:mm:ss+0000``, as the page's samples write it."""
    wall = frame.epoch + timedelta(seconds=frame.created_at + at)
    return f"{wall:%Y-%m-%dT%H:%M:%S}+0000"


def answer_rds(state: SimState, project_id: str, job_id: str, status: str | None) -> Response:
    """The answer for ``job_id`` (``""``: no ``id`` in the query); call with the lock held."""
    if not job_id:
        return api_error("rds", 400, RDS_BAD_PARAMETER, "Parameter error.")
    job = state.rds.get((project_id, job_id))
    body = None
    now = state.clock.now()
    if job is not None and job.visible(now):
        body = job.spec.body(job.elapsed(now), job.frame(state.epoch), status)
    if body is None:
        return api_error("rds", 400, RDS_NOT_FOUND, "The job does not exist.")
    served = ((job_id, str(body["job"]["status"])),)
    return replace(json_response(200, body), served=served)
