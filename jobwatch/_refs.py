"""Job references: which job, on which API.

A reference is immutable and hashable, so it can key dictionaries and sets.
Every identifier is validated when the reference is built, before any URL
exists: ASCII letters, digits, ``-``, ``_`` and ``.`` only, never ``..``,
not empty, at most 256 characters.  Path segments are percent-encoded all the
same when the URL is built.

Each reference class lives in the module of its API (``jobwatch._dialects``)
with its kind (``jobwatch._kinds``); this module gathers them.
"""

from __future__ import annotations

from typing import TypeAlias

from jobwatch._dialects._bms import BmsJob
from jobwatch._dialects._cce import CceJob
from jobwatch._dialects._dcs import DcsJob
from jobwatch._dialects._deh import DehJob
from jobwatch._dialects._ecs import EcsJob
from jobwatch._dialects._engine import GesEngineJob, engine_list_path
from jobwatch._dialects._evs import EvsJob
from jobwatch._dialects._evs_v2 import EvsV2Job
from jobwatch._dialects._ges import GesJob, GesVersion
from jobwatch._dialects._ims import ImsCloudImagesJob, ImsJob
from jobwatch._dialects._rds import RdsJob
from jobwatch._dialects._sdrs import SdrsJob
from jobwatch._dialects._vpc import VpcJob
from jobwatch._kinds import MAX_ID_LENGTH, kind_named, kind_of, segment, validate_id

__all__ = [
    "MAX_ID_LENGTH",
    "BmsJob",
    "CceJob",
    "DcsJob",
    "DehJob",
    "EcsJob",
    "EvsJob",
    "EvsV2Job",
    "GesEngineJob",
    "GesJob",
    "GesVersion",
    "ImsCloudImagesJob",
    "ImsJob",
    "JobRef",
    "RdsJob",
    "SdrsJob",
    "VpcJob",
    "engine_list_path",
    "ref_from_dict",
    "ref_to_dict",
    "segment",
    "validate_id",
]

JobRef: TypeAlias = (
    EvsJob
    | GesJob
    | GesEngineJob
    | EcsJob
    | BmsJob
    | VpcJob
    | ImsJob
    | ImsCloudImagesJob
    | DehJob
    | SdrsJob
    | EvsV2Job
    | DcsJob
    | CceJob
    | RdsJob
)


def ref_to_dict(ref: JobRef) -> dict[str, str]:
    """A JSON-ready form of a reference (``ref_from_dict`` reads it back)."""
    return kind_of(ref).to_dict(ref)


def ref_from_dict(data: object) -> JobRef:
    """Read a reference written by ``ref_to_dict``; ``ValueError`` when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a job reference must be a JSON object")
    api = data.get("api")
    kind = kind_named(api) if isinstance(api, str) else None
    if kind is None:
        raise ValueError(f"unknown job API {str(api)[:20]!r}")
    ref: JobRef = kind.from_dict(data)
    return ref
