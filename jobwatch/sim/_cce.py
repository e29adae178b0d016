"""Simulated CCE jobs: ``GET /api/v3/projects/{project_id}/jobs/{job_id}``.

The body is the one CCE API reference, "Querying a Job" (cce_02_0247) shows:
``kind`` ``Job``, ``apiVersion`` ``v3``, ``metadata`` (``uid``, ``creationTimestamp``,
``updateTimestamp`` in the sample's Go form ``2020-02-02 08:12:40.672772389 +0000
UTC``), ``spec`` (``type``, ``clusterUID``, ``resourceID``, ``resourceName``,
``extendParam``, ``subJobs``: jobs of the same shape) and ``status`` (``phase``:
``Initializing``, ``Running``, ``Failed``, ``Success``; ``reason``).  An unknown
job is HTTP 404 ``{"errorCode": "CCE.01404001", "errorMessage": "Resource not
found."}`` (CCE API reference, "Error Codes", cce_02_0250).

Not settled by any page, so chosen here: ``creationTimestamp`` is the moment of the
job's first timeline entry and ``updateTimestamp`` that of its current one;
``reason`` is ``""`` until the job ends, then the ``reason`` given; a listed
sub-job also answers on its own ID (CCE documents its ``uid`` as a job ID, not
whether it can be asked for alone).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from jobwatch.sim._http import Response, api_error, json_response
from jobwatch.sim._jobs import (
    Frame,
    StoredJob,
    Timeline,
    _phase,
    _status_at,
    _Vocabulary,
    settle_sub_job,
)

if TYPE_CHECKING:
    from jobwatch.sim._app import SimState

__all__ = ["CCE_NOT_FOUND", "CceSubJob", "CceTree", "answer_cce", "cce_body"]

CCE_NOT_FOUND = "CCE.01404001"
_QUEUED = frozenset({"Initializing"})
_VOCABULARY = _Vocabulary(_QUEUED, _QUEUED | {"Running"})

CceTree = tuple[StoredJob["CceSubJob"], tuple["CceSubJob", ...]]


@dataclass(frozen=True, slots=True)
class CceSubJob:
    """A CCE job, or a sub-job listed in its parent's ``spec.subJobs``.

    ``timeline`` and ``appear_at`` are in seconds after the *top-level* job's
    creation; a sub-job is listed once ``appear_at`` has passed and its timeline
    has begun, with its own phase (it can be ``Failed`` while its parent says
    ``Success``).  ``sub_jobs`` nest the same way.  A sub-job whose ``job_id`` is
    None is listed without ``metadata.uid`` and answers on no path.  ``spec`` keys
    given as None are left out of the body.
    """

    job_id: str | None
    timeline: Timeline
    appear_at: float = 0.0
    job_type: str = "CreateCluster"
    cluster_uid: str | None = None
    resource_id: str | None = None
    resource_name: str | None = None
    extend_param: Mapping[str, str] | None = None
    reason: str | None = None
    sub_jobs: Sequence[CceSubJob] = ()

    def __post_init__(self) -> None:
        settle_sub_job(self, CceSubJob)
        if self.extend_param is not None:
            if not isinstance(self.extend_param, Mapping):
                raise TypeError("extend_param must be a mapping")
            object.__setattr__(self, "extend_param", dict(self.extend_param))

    def walk(self) -> Iterator[tuple[CceSubJob, ...]]:
        """The path (from this job) to this job and to every sub-job, depth first."""
        yield (self,)
        for sub in self.sub_jobs:
            for path in sub.walk():
                yield (self, *path)


def _go_time(frame: Frame, at: float) -> str:
    """Go's ``time.String()`` of a UTC moment, as the page's sample writes it."""
    wall = frame.epoch + timedelta(seconds=frame.created_at + at)
    return f"{wall:%Y-%m-%d %H:%M:%S}.{wall.microsecond:06d}000 +0000 UTC"


def cce_body(
    job: CceSubJob, elapsed: float, frame: Frame, status: str | None = None
) -> dict[str, Any] | None:
    """The body of ``job`` (sub-jobs included), or None before its timeline begins.

    ``status`` replaces the job's own phase (not its sub-jobs').
    """
    phase = _phase(job.timeline, elapsed, _VOCABULARY)
    if phase is None:
        return None
    updated = max(at for at, _ in job.timeline if at <= elapsed)
    metadata: dict[str, Any] = {} if job.job_id is None else {"uid": job.job_id}
    metadata["creationTimestamp"] = _go_time(frame, job.timeline[0][0])
    metadata["updateTimestamp"] = _go_time(frame, updated)
    spec: dict[str, Any] = {"type": job.job_type}
    for key, value in (
        ("clusterUID", job.cluster_uid),
        ("resourceID", job.resource_id),
        ("resourceName", job.resource_name),
        ("extendParam", job.extend_param),
    ):
        if value is not None:
            spec[key] = value
    if job.sub_jobs:
        spec["subJobs"] = [
            body
            for sub in job.sub_jobs
            if sub.appear_at <= elapsed and (body := cce_body(sub, elapsed, frame)) is not None
        ]
    ended = phase.end is not None
    return {
        "kind": "Job",
        "apiVersion": "v3",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": phase.status if status is None else status,
            "reason": (job.reason or "") if ended else "",
        },
    }


def _listed(path: Sequence[CceSubJob], elapsed: float) -> bool:
    return all(
        sub.appear_at <= elapsed and _status_at(sub.timeline, elapsed) is not None
        for sub in path[1:]
    )


def answer_cce(state: SimState, project_id: str, job_id: str, status: str | None) -> Response:
    """The answer for ``job_id`` (call with the state's lock held)."""
    found = state.cce.get((project_id, job_id))
    body = None
    if found is not None:
        top, path = found
        now = state.clock.now()
        elapsed = top.elapsed(now)
        if top.visible(now) and _listed(path, elapsed):
            body = cce_body(path[-1], elapsed, top.frame(state.epoch), status)
    if body is None:
        return api_error("cce", 404, CCE_NOT_FOUND, "Resource not found.")
    return replace(json_response(200, body), served=tuple(_served(body)))


def _served(body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(uid, phase)`` of a body and of its sub-jobs at any depth."""
    stack = [body]
    while stack:
        job = stack.pop()
        yield str(job["metadata"].get("uid")), str(job["status"]["phase"])
        stack.extend(reversed(job["spec"].get("subJobs") or []))
