"""GES management plane: ``GET /{v1.0|v2}/{project_id}/graphs/{graph_id}/jobs/{job_id}/status``.

One wire model reads every generation of body:

- v1.0, older page: ``{"status": "waiting"|"running"|"success", "errorCode": "", ...}``;
- v1.0, 1.0.0 page: flat camelCase fields (``jobId``, ``jobDetail``, ...), or the same
  object under a ``Job`` key (the field table's form);
- v2: the same fields in snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import pydantic
from pydantic import AliasChoices, Field

from jobwatch._dialects._common import (
    WIRE_CONFIG,
    map_state,
    parse_time,
    require_object,
    text,
    validate,
)
from jobwatch._kinds import DirectKind, register, segment, validate_id
from jobwatch._snapshot import ImportDetail, ImportFile, ImportFileKind, JobSnapshot, JobState

API = "ges"

GesVersion: TypeAlias = Literal["v1.0", "v2"]


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


STATES: Mapping[str, JobState] = {
    "waiting": JobState.PENDING,
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "success": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}


def _field(snake: str, camel: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(snake, camel))


class ImportFileWire(pydantic.BaseModel):
    """One file of ``jobDetail`` / ``job_detail``."""

    model_config = WIRE_CONFIG

    path: str | None = None
    log: str | None = None
    status: str | None = None
    cause: str | None = None
    total_lines: int | None = _field("total_lines", "totalLines")
    failed_lines: int | None = _field("failed_lines", "failedLines")
    successful_lines: int | None = _field("successful_lines", "successfulLines")


class ImportDetailWire(pydantic.BaseModel):
    """``jobDetail`` / ``job_detail`` of an ImportGraph job."""

    model_config = WIRE_CONFIG

    schema_path: list[ImportFileWire] | None = _field("schema_path", "schemaPath")
    edgeset_path: list[ImportFileWire] | None = _field("edgeset_path", "edgesetPath")
    vertexset_path: list[ImportFileWire] | None = _field("vertexset_path", "vertexsetPath")


class GesJobWire(pydantic.BaseModel):
    """A GES management-plane job, camelCase (v1.0) or snake_case (v2)."""

    model_config = WIRE_CONFIG

    status: str
    job_id: str | None = _field("job_id", "jobId")
    job_type: str | None = _field("job_type", "jobType")
    job_name: str | list[Any] | None = _field("job_name", "jobName")
    related_graph: str | None = _field("related_graph", "relatedGraph")
    begin_time: str | None = _field("begin_time", "beginTime")
    end_time: str | None = _field("end_time", "endTime")
    job_detail: ImportDetailWire | None = _field("job_detail", "jobDetail")
    fail_reason: str | None = _field("fail_reason", "failReason")
    job_progress: float | None = _field("job_progress", "jobProgress")


def parse(ref: GesJob, data: object) -> JobSnapshot:
    """Read a GES management job body (any generation) into a snapshot."""
    body = require_object(data, "the GES job body")
    wrapped = body.get("Job")
    job = require_object(wrapped, "the GES 'Job' object") if wrapped is not None else body
    wire: GesJobWire = validate(GesJobWire, job, "the GES job body")
    return JobSnapshot(
        ref=ref,
        state=map_state(API, wire.status, STATES),
        raw_status=wire.status,
        job_type=text(wire.job_type),
        job_name=text(wire.job_name),
        related_graph=text(wire.related_graph),
        begin_time=parse_time(wire.begin_time, "begin_time"),
        end_time=parse_time(wire.end_time, "end_time"),
        fail_reason=text(wire.fail_reason),
        error_code=text(body.get("errorCode") or body.get("error_code")),
        progress=wire.job_progress,
        import_detail=_detail(wire.job_detail),
        raw=body,
    )


def _detail(wire: ImportDetailWire | None) -> ImportDetail | None:
    if wire is None:
        return None
    return ImportDetail(
        schema=_files("schema", wire.schema_path),
        edges=_files("edges", wire.edgeset_path),
        vertices=_files("vertices", wire.vertexset_path),
    )


def _files(kind: ImportFileKind, files: list[ImportFileWire] | None) -> tuple[ImportFile, ...]:
    return tuple(
        ImportFile(
            kind=kind,
            path=f.path,
            status=f.status,
            cause=text(f.cause),
            log=text(f.log),
            total_lines=_count(f.total_lines),
            failed_lines=_count(f.failed_lines),
            successful_lines=_count(f.successful_lines),
        )
        for f in files or ()
    )


def _count(value: int | None) -> int | None:
    """-1 means "not returned by this version"."""
    return None if value is None or value < 0 else value


class GesKind(DirectKind[GesJob]):
    """The GES management plane, v1.0 and v2: one GET per job."""

    name = API
    ref_type = GesJob
    graph_key = "graph_id"

    def to_dict(self, ref: GesJob) -> dict[str, str]:
        return {"api": API, "version": ref.version, "graph_id": ref.graph_id, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> GesJob:
        return GesJob(data.get("graph_id"), data.get("job_id"), data.get("version", "v2"))  # type: ignore[arg-type]  # validated on init

    def parse(self, ref: GesJob, data: object) -> JobSnapshot:
        return parse(ref, data)


KIND = register(GesKind())
