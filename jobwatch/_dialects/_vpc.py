"""VPC / EIP job API: ``GET /v1/{project_id}/jobs/{job_id}``.

EIP API reference, "Querying Job Status" (``ShowResourcesJobDetail``): ``job_id``,
``job_type`` (e.g. ``createBatchPublicip``), ``begin_time``, ``end_time``,
``status``, ``error_code``, ``fail_reason`` and ``entities`` (``SubJobsInfo``:
``sub_jobs``, "the type is the same as that of the main job").  The page names no
status words (its example says ``SUCCESS``); the family's four are read.  The
installed ``huaweicloudsdkvpc`` has no model for this API, and the page documents
no error body for a job that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service
from jobwatch._kinds import register

__all__ = ["KIND", "VpcJob"]


@dataclass(frozen=True, slots=True)
class VpcJob(FamilyJob):
    """A job of the VPC/EIP job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``vpc:<id>``."""

    SERVICE = "vpc"


KIND = register(FamilyKind(Service(VpcJob)))
