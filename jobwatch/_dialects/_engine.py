"""GES engine job list: ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/status``.

One request lists every job the graph engine keeps (``limit`` at most 100000,
``offset``).  Another revision of the page names fields ``rawRequest``,
``taskType`` and ``totalCount``; both are read.  ``complete`` is the only
terminal status the engine reports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import AliasChoices, Field

from jobwatch._dialects._common import WIRE_CONFIG, map_state, require_object, text, validate
from jobwatch._refs import GesEngineJob
from jobwatch._snapshot import JobSnapshot, JobState

logger = logging.getLogger("jobwatch")

API = "ges-engine"
MAX_LIMIT = 100_000

STATES: Mapping[str, JobState] = {
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "complete": JobState.SUCCEEDED,
    # Not on the page, but the obvious reading should an engine send it.
    "failed": JobState.FAILED,
}


class EngineJobWire(pydantic.BaseModel):
    """One entry of ``jobs``."""

    model_config = WIRE_CONFIG

    job_id: str = Field(validation_alias=AliasChoices("jobId", "job_id"))
    status: str
    request: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("request", "rawRequest")
    )
    task_type: str | None = Field(default=None, validation_alias=AliasChoices("taskType"))


class EngineListWire(pydantic.BaseModel):
    """The job list body."""

    model_config = WIRE_CONFIG

    result: str | None = None
    jobs: list[EngineJobWire] = Field(default_factory=list)
    total_count: int | None = Field(default=None, validation_alias=AliasChoices("totalCount"))


@dataclass(frozen=True, slots=True)
class EnginePage:
    """One page of an engine job list."""

    jobs: tuple[JobSnapshot, ...]
    total_count: int | None
    received: int


def parse_page(graph_name: str, data: object) -> EnginePage:
    """Read one page of the engine job list into snapshots.

    An entry whose ``jobId`` is not a valid job ID cannot be watched; it is
    skipped with a warning rather than failing the whole page.
    """
    body = require_object(data, "the GES engine job list")
    wire: EngineListWire = validate(EngineListWire, body, "the GES engine job list")
    raw_jobs = body.get("jobs") or []
    jobs: list[JobSnapshot] = []
    for entry, raw in zip(wire.jobs, raw_jobs, strict=False):
        try:
            ref = GesEngineJob(graph_name, entry.job_id)
        except ValueError as exc:
            logger.warning(
                "skipping an engine job of graph %s with a bad jobId: %s", graph_name, exc
            )
            continue
        request = entry.request
        job_type = text(entry.task_type) or (text(request.get("command")) if request else None)
        jobs.append(
            JobSnapshot(
                ref=ref,
                state=map_state(API, entry.status, STATES),
                raw_status=entry.status,
                job_type=job_type,
                request=request,
                raw=raw,
            )
        )
    return EnginePage(jobs=tuple(jobs), total_count=wire.total_count, received=len(wire.jobs))
