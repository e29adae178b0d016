"""BMS job API: ``GET /v1/{project_id}/jobs/{job_id}``.

BMS API reference, "Querying Task Statuses" (bms_api_0640; ``ShowJobInfos`` of
``huaweicloudsdkbms`` v1, ``ShowJobInfosResponse``): ``status``, ``entities``,
``job_id``, ``job_type`` (``baremetalBatchCreate``, ``baremetalBatchOperate``,
``baremetalAttachVolume``, ...), ``begin_time`` / ``end_time`` (ISO 8601, e.g.
``2019-04-25T20:04:47.591Z``), ``error_code``, ``fail_reason``, ``message`` /
``code`` (on an error).  ``entities``: ``server_id``, ``nic_id``,
``sub_jobs_total`` (0 without sub-jobs) and ``sub_jobs`` (each shaped like its
parent).

Status words: ``SUCCESS``, ``RUNNING``, ``FAIL``, ``INIT`` and
``PENDING_PAYMENT`` ("A yearly/monthly order is to be paid": pending).  The page
documents no error body for a job that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service, states
from jobwatch._kinds import register
from jobwatch._snapshot import JobState

__all__ = ["KIND", "BmsJob"]


@dataclass(frozen=True, slots=True)
class BmsJob(FamilyJob):
    """A job of the BMS job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``bms:<id>``."""

    SERVICE = "bms"


KIND = register(FamilyKind(Service(BmsJob, states(PENDING_PAYMENT=JobState.PENDING))))
