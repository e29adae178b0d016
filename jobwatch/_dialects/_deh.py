"""DEH (Dedicated Host) job API: ``GET /v1/{project_id}/jobs/{job_id}``.

No DEH page describing this path was found (the DeH API reference documents its
hosts under ``/v1.0/{project_id}/dedicated-hosts``), and the installed
``huaweicloudsdkdeh`` has no job model: this kind reads the family's body and its
four status words, as the shared API notes (``/work/shared/api-reference.md``)
list DEH among the services answering on this path.  Unconfirmed.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobwatch._dialects._family import FamilyJob, FamilyKind, Service
from jobwatch._kinds import register

__all__ = ["KIND", "DehJob"]


@dataclass(frozen=True, slots=True)
class DehJob(FamilyJob):
    """A job of the DEH job API (``/v1/{project_id}/jobs/{job_id}``); prints as ``deh:<id>``."""

    SERVICE = "deh"


KIND = register(FamilyKind(Service(DehJob)))
