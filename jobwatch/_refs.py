"""Job references: which job, on which API.

A reference is immutable and hashable, so it can key dictionaries and sets.
Every identifier is validated when the reference is built, before any URL
exists: ASCII letters, digits, ``-``, ``_`` and ``.`` only, never ``..``,
not empty, at most 256 characters.  Path segments are percent-encoded all the
same when the URL is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias
from urllib.parse import quote

__all__ = [
    "EvsJob",
    "GesEngineJob",
    "GesJob",
    "GesVersion",
    "JobRef",
    "validate_id",
]

MAX_ID_LENGTH = 256
_ID_RE = re.compile(r"[A-Za-z0-9._-]+")

GesVersion: TypeAlias = Literal["v1.0", "v2"]


def validate_id(field: str, value: object) -> str:
    """Return ``value`` if it is a safe identifier, else raise ``ValueError`` naming ``field``."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH}")
    if _ID_RE.fullmatch(value) is None:
        raise ValueError(
            f"{field} {value[:40]!r} may contain only ASCII letters, digits, '-', '_' and '.'"
        )
    if ".." in value:
        raise ValueError(f"{field} {value[:40]!r} must not contain '..'")
    return value


def segment(value: str) -> str:
    """Percent-encode one URL path segment (nothing is left unescaped but unreserved chars)."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class EvsJob:
    """A job of the EVS job API (``/v1/{project_id}/jobs/{job_id}``).

    ECS and other services answer on the same path with the same body, so
    this reference serves them too: point the client at their endpoint.
    """

    job_id: str

    def __post_init__(self) -> None:
        validate_id("job_id", self.job_id)

    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        return f"/v1/{segment(project_id)}/jobs/{segment(self.job_id)}"

    def __str__(self) -> str:
        return f"evs:{self.job_id}"


@dataclass(frozen=True, slots=True)
class GesJob:
    """A job of the GES management plane (graph creation, import, backup...).

    ``version`` chooses the API: ``"v2"`` (snake_case bodies) or ``"v1.0"``
    (camelCase bodies, in both of their generations).
    """

    graph_id: str
    job_id: str
    version: GesVersion = "v2"

    def __post_init__(self) -> None:
        validate_id("graph_id", self.graph_id)
        validate_id("job_id", self.job_id)
        if self.version not in ("v1.0", "v2"):
            raise ValueError(f"version must be 'v1.0' or 'v2', not {self.version!r}")

    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        return (
            f"/{self.version}/{segment(project_id)}/graphs/{segment(self.graph_id)}"
            f"/jobs/{segment(self.job_id)}/status"
        )

    def __str__(self) -> str:
        return f"ges-{self.version}:{self.graph_id}/{self.job_id}"


@dataclass(frozen=True, slots=True)
class GesEngineJob:
    """A job kept by a GES graph engine, seen through the engine's job list.

    The engine API is served by the graph's own access address; it has no
    per-job status path, so this job is found in the list of its graph.
    """

    graph_name: str
    job_id: str

    def __post_init__(self) -> None:
        validate_id("graph_name", self.graph_name)
        validate_id("job_id", self.job_id)

    def path(self, project_id: str) -> str:
        """The job-list path of this job's graph under ``project_id``."""
        return engine_list_path(project_id, self.graph_name)

    def __str__(self) -> str:
        return f"ges-engine:{self.graph_name}/{self.job_id}"


def engine_list_path(project_id: str, graph_name: str) -> str:
    """The GES engine job-list path of ``graph_name``."""
    validate_id("graph_name", graph_name)
    return f"/ges/v1.0/{segment(project_id)}/graphs/{segment(graph_name)}/jobs/status"


JobRef: TypeAlias = EvsJob | GesJob | GesEngineJob


def ref_to_dict(ref: JobRef) -> dict[str, str]:
    """A JSON-ready form of a reference (``ref_from_dict`` reads it back)."""
    if isinstance(ref, EvsJob):
        return {"api": "evs", "job_id": ref.job_id}
    if isinstance(ref, GesJob):
        return {
            "api": "ges",
            "version": ref.version,
            "graph_id": ref.graph_id,
            "job_id": ref.job_id,
        }
    return {"api": "ges-engine", "graph_name": ref.graph_name, "job_id": ref.job_id}


def ref_from_dict(data: object) -> JobRef:
    """Read a reference written by ``ref_to_dict``; ``ValueError`` when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a job reference must be a JSON object")
    api = data.get("api")
    if api == "evs":
        return EvsJob(data.get("job_id"))  # type: ignore[arg-type]  # validated on init
    if api == "ges":
        return GesJob(data.get("graph_id"), data.get("job_id"), data.get("version", "v2"))  # type: ignore[arg-type]
    if api == "ges-engine":
        return GesEngineJob(data.get("graph_name"), data.get("job_id"))  # type: ignore[arg-type]
    raise ValueError(f"unknown job API {str(api)[:20]!r}")
