"""SDRS job API: ``GET /v1/{project_id}/jobs/{job_id}``.

SDRS API reference, "Querying the Job Status" (sdrs_05_0101; ``ShowJobStatus`` of
``huaweicloudsdksdrs`` v1, ``ShowJobStatusResponse``): ``status`` (``SUCCESS``,
``RUNNING``, ``FAIL``, ``INIT``), ``entities``, ``job_id``, ``job_type``
(``createProtectionGroupNoCG``, ``failoverProtectionGroupNoCG``, ...),
``begin_time`` / ``end_time`` (``yyyy-MM-dd'T'HH:mm:ss.SSSZ``), ``error_code``,
``fail_reason``, ``message`` / ``code`` (on an error).  ``entities``:
``server_group_id``, ``protected_instance_id``, ``replication_pair_id``,
``volume_ids``, ``native_server_id``, ``nic_id`` and ``sub_jobs``.  The page
documents no error body for a job that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service
from jobwatch._kinds import register

__all__ = ["KIND", "SdrsJob"]


@dataclass(frozen=True, slots=True)
class SdrsJob(FamilyJob):
    """A job of the SDRS job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``sdrs:<id>``."""

    SERVICE = "sdrs"


KIND = register(FamilyKind(Service(SdrsJob)))
