"""DCS job API: ``GET /v2/{project_id}/jobs/{job_id}``.

DCS API reference, "Querying the Job Execution Result of a Tenant"
(``ShowJobInfo`` of ``huaweicloudsdkdcs`` v2, ``ShowJobInfoResponse``): a flat
body of ``job_id``, ``job_type`` (``createDCSInstance``, ``masterStandbySwapJob``,
``modifyBandwidth``, ...), ``status`` (``INIT`` "to be executed", ``RUNNING``,
``SUCCESS``, ``FAIL``), ``begin_time`` / ``end_time`` as **milliseconds since the
epoch** in a string (``"1684191545379"``) and ``fail_reason``: no ``entities``,
no sub-jobs, no ``error_code``.  Errors (400, 401, 403, 404, 500) are
``{error_msg, error_code, error_ext_msg}``; the page names no code for a job that
does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service, parse_epoch_ms
from jobwatch._kinds import register

__all__ = ["KIND", "DcsJob"]


@dataclass(frozen=True, slots=True)
class DcsJob(FamilyJob):
    """A job of the DCS job API (``/v2/{project_id}/jobs/{job_id}``); prints as ``dcs:<id>``."""

    SERVICE = "dcs"
    VERSION = "v2"


KIND = register(FamilyKind(Service(DcsJob, time=parse_epoch_ms)))
