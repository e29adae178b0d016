"""ECS job API: ``GET /v1/{project_id}/jobs/{job_id}``.

ECS API reference, "Querying Job Execution Status" (ecs_02_0901; ``ShowJob`` of
``huaweicloudsdkecs`` v2, ``ShowJobResponse``): ``status``, ``job_id``,
``job_type``, ``begin_time``, ``end_time``, ``error_code``, ``fail_reason``,
``message`` / ``code`` (on an error) and ``entities``: ``server_id`` (server
operations), ``nic_id`` (NIC operations), ``sub_jobs_total`` and ``sub_jobs``,
each sub-job with ``entities.server_id`` / ``nic_id`` / ``errorcode_message`` (the
reason a sub-job failed; it becomes ``fail_reason`` when the sub-job has none).

Status words: ``SUCCESS``, ``RUNNING``, ``FAIL``, ``INIT`` and
``PENDING_PAYMENT`` (a yearly/monthly order awaiting payment: pending).  The
page documents no error body for a job that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service, states
from jobwatch._kinds import register
from jobwatch._snapshot import JobState

__all__ = ["KIND", "EcsJob"]


@dataclass(frozen=True, slots=True)
class EcsJob(FamilyJob):
    """A job of the ECS job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``ecs:<id>``."""

    SERVICE = "ecs"


KIND = register(
    FamilyKind(
        Service(EcsJob, states(PENDING_PAYMENT=JobState.PENDING), reason_key="errorcode_message")
    )
)
