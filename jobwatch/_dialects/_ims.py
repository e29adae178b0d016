"""IMS job APIs: ``GET /v1/{project_id}/jobs/{job_id}`` and ``GET /v1/cloudimages/job/{job_id}``.

IMS API reference, "Querying the Status of an Asynchronous Job" (ims_03_0905,
``/v1/{project_id}/jobs/{job_id}``; ``ShowJob`` of ``huaweicloudsdkims`` v2) and
"Querying the Progress of an Asynchronous Job" (ims_03_0911,
``/v1/cloudimages/job/{job_id}``; ``ShowJobProgress``): both answer ``status``
(``SUCCESS``, ``FAIL``, ``RUNNING``, ``INIT``), ``job_id``, ``job_type``
(``imsCreateImageByInstance``, ``imsImportImageJob``, ``imsImportOvaImageJob``,
...), ``begin_time`` / ``end_time`` (UTC, ``2024-11-06T06:19:43.195Z`` in the
examples), ``error_code``, ``fail_reason`` and ``entities``: ``image_id``,
``image_name``, ``current_task``, ``process_percent`` (the job's progress: it
becomes ``snapshot.progress``, as sent), ``sub_jobs_list`` (IDs) and
``sub_jobs_result``: IMS's sub-jobs, each shaped like its parent (ims_03_0905's
``imsImportOvaImageJob`` example).  Neither page documents an error body for a
job that does not exist.

Two kinds, ``ims`` and ``ims-cloudimages``, because a reference names the status
API it is asked on: the newer path has no project in it (the project travels in
the ``X-Project-Id`` header ``Client`` always sends, or in the project-scoped
token), its entities add the progress, and IMS keeps both paths.  The same job
answers on both, so ``ImsJob(x)`` and ``ImsCloudImagesJob(x)`` are two ways to
ask about one job: watch it through one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service
from jobwatch._kinds import register, segment

__all__ = ["CLOUDIMAGES_KIND", "KIND", "ImsCloudImagesJob", "ImsJob"]


@dataclass(frozen=True, slots=True)
class ImsJob(FamilyJob):
    """A job of the IMS job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``ims:<id>``."""

    SERVICE = "ims"


@dataclass(frozen=True, slots=True)
class ImsCloudImagesJob(FamilyJob):
    """A job of IMS's ``/v1/cloudimages/job/{job_id}`` (no project in the path).

    Prints as ``ims-cloudimages:<id>``.  The project is sent in ``X-Project-Id``.
    """

    SERVICE = "ims-cloudimages"

    def path(self, project_id: str) -> str:
        """The status path of this job (the same under every project)."""
        return f"/v1/cloudimages/job/{segment(self.job_id)}"


_SUB_JOBS = "sub_jobs_result"
_PROGRESS = "process_percent"

KIND = register(FamilyKind(Service(ImsJob, sub_jobs_key=_SUB_JOBS, progress_key=_PROGRESS)))
CLOUDIMAGES_KIND = register(
    FamilyKind(Service(ImsCloudImagesJob, sub_jobs_key=_SUB_JOBS, progress_key=_PROGRESS))
)
