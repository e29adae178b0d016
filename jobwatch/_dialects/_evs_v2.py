"""EVS v2 job API: ``GET /v2/{project_id}/jobs/{job_id}``.

The shared API notes list EVS v2 (snapshot groups, v5 snapshots) on this path
with the EVS body; no EVS page for the v2 path was found, and the installed
``huaweicloudsdkevs`` only models ``/v1/{project_id}/jobs/{job_id}``.  This kind
reads the EVS v1 body (``status`` ``INIT`` / ``RUNNING`` / ``SUCCESS`` / ``FAIL``,
``entities`` with ``sub_jobs``) on the v2 path.  Unconfirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service
from jobwatch._kinds import register

__all__ = ["KIND", "EvsV2Job"]


@dataclass(frozen=True, slots=True)
class EvsV2Job(FamilyJob):
    """A job of the EVS v2 job API (``/v2/{project_id}/jobs/{job_id}``): ``evs-v2:<id>``."""

    SERVICE = "evs-v2"
    VERSION = "v2"


KIND = register(FamilyKind(Service(EvsV2Job)))
