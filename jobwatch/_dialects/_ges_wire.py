"""The wire models of GES management jobs (imported at their first use: ``WireModel``)."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import AliasChoices, Field

from jobwatch._dialects._common import WIRE_CONFIG

__all__ = ["GesJobWire", "GesListWire", "ImportDetailWire", "ImportFileWire"]


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


class GesListWire(pydantic.BaseModel):
    """A page of a job list: its count and entries (read as sent; checked below)."""

    model_config = WIRE_CONFIG

    job_count: object = _field("job_count", "jobCount")
    job_list: list[Any] | None = _field("job_list", "jobList")
