"""EVS job API: ``GET /v1/{project_id}/jobs/{job_id}``.

EVS API reference, "Querying Job Status" (``ShowJob`` of ``huaweicloudsdkevs``
v2): ``status`` (``INIT`` / ``RUNNING`` / ``SUCCESS`` / ``FAIL``), ``job_id``,
``job_type``, ``begin_time`` / ``end_time`` (``YYYY-MM-DDTHH:MM:SS.SSSZ``, ``""``
while running), ``error_code``, ``fail_reason``, ``entities`` (``volume_id``,
``volume_type``, ``size``, ``name``; batch jobs ``sub_jobs``).  A job EVS cannot
find is HTTP 400 ``Common.0011`` "query job fail." (same page).

Besides the four documented words this kind has always read ``WAITING_EXECUTE``
and ``PENDING_PAYMENT`` as pending and ``LISTENING`` as running, and ECS's
``entities.errorcode_message`` (ECS API page ecs_02_0901, "sub_jobs.entities")
as the ``fail_reason`` of a sub-job without one: kept for compatibility.
Everything else is the family's (``jobwatch._dialects._family``).
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import MAX_SUB_JOB_DEPTH, FamilyJob, FamilyKind, Service, states
from jobwatch._kinds import register
from jobwatch._snapshot import JobState

__all__ = ["API", "KIND", "MAX_SUB_JOB_DEPTH", "STATES", "EvsJob", "EvsKind"]

API = "evs"


@dataclass(frozen=True, slots=True)
class EvsJob(FamilyJob):
    """A job of the EVS job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``evs:<id>``.

    Other services answer on the same path with the same body; each has its own
    reference (``EcsJob``, ``BmsJob``, ...), so that its sub-jobs and its printed
    and JSON forms name it.
    """

    SERVICE = API


STATES = states(
    WAITING_EXECUTE=JobState.PENDING,
    PENDING_PAYMENT=JobState.PENDING,
    LISTENING=JobState.RUNNING,
)

SERVICE: Service[EvsJob] = Service(EvsJob, STATES, reason_key="errorcode_message")


class EvsKind(FamilyKind[EvsJob]):
    """The EVS job API: one GET per job."""

    def __init__(self) -> None:
        super().__init__(SERVICE)


KIND = register(EvsKind())
