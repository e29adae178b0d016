"""GES engine job list: ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/status``.

One request lists every job the graph engine keeps (``limit`` at most 100000,
``offset``).  Another revision of the page names fields ``rawRequest``,
``taskType`` and ``totalCount``; both are read.  ``complete`` is the only
terminal status the engine reports.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Hashable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import AliasChoices, Field

from jobwatch._dialects._common import WIRE_CONFIG, map_state, require_object, text, validate
from jobwatch._exceptions import JobwatchError, missing_from_list
from jobwatch._kinds import BatchResults, Requester, register, segment, validate_id
from jobwatch._snapshot import JobSnapshot, JobState

logger = logging.getLogger("jobwatch")

API = "ges-engine"
MAX_LIMIT = 100_000


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


async def list_jobs(
    requester: Requester, graph_name: str, *, page_size: int = MAX_LIMIT, offset: int = 0
) -> AsyncGenerator[JobSnapshot, None]:
    """``Client.list_engine_jobs`` through any requester: the list of ``graph_name``, paged.

    A page that repeats the previous one ends the list (some graphs ignore paging).
    """
    if not 1 <= page_size <= MAX_LIMIT:
        raise ValueError(f"page_size must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    path = engine_list_path(requester.project_id, graph_name)
    first_of_previous: JobSnapshot | None = None
    while True:
        params = {"limit": str(page_size), "offset": str(offset)}
        data = await requester.get_json(path, params, what=f"{API}:{graph_name}")
        page = parse_page(graph_name, data)
        if page.jobs and first_of_previous is not None and page.jobs[0] == first_of_previous:
            # Hundred-billion-edge graphs ignore limit/offset: the same page again.
            logger.warning("graph %s ignores paging; stopping after one page", graph_name)
            return
        for snapshot in page.jobs:
            yield snapshot
        offset += page.received
        full = page.received >= page_size
        if not full or (page.total_count is not None and offset >= page.total_count):
            return
        first_of_previous = page.jobs[0] if page.jobs else None


class EngineKind:
    """GES engine jobs: found in their graph's job list, one list for all jobs of a graph."""

    name = API
    ref_type = GesEngineJob

    def to_dict(self, ref: GesEngineJob) -> dict[str, str]:
        return {"api": API, "graph_name": ref.graph_name, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> GesEngineJob:
        return GesEngineJob(data.get("graph_name"), data.get("job_id"))  # type: ignore[arg-type]  # validated on init

    def batch_key(self, ref: GesEngineJob) -> str:
        """The graph: its jobs share one job list."""
        return ref.graph_name

    def parse(self, ref: GesEngineJob, data: object) -> JobSnapshot:
        """``ref`` in one page of its graph's job list; ``JobNotFound`` when it is not there."""
        for snapshot in parse_page(ref.graph_name, data).jobs:
            if snapshot.ref == ref:
                return snapshot
        raise missing_from_list(ref.job_id, ref.graph_name)

    async def fetch(self, requester: Requester, ref: GesEngineJob) -> JobSnapshot:
        """Look ``ref`` up in its graph's job list, reading no further than its page."""
        # Leaving the loop early must close the generator (trio warns otherwise).
        async with aclosing(list_jobs(requester, ref.graph_name)) as snapshots:
            async for snapshot in snapshots:
                if snapshot.ref == ref:
                    return snapshot
        raise missing_from_list(ref.job_id, ref.graph_name)

    async def fetch_batch(
        self, requester: Requester, refs: Iterable[GesEngineJob]
    ) -> BatchResults[GesEngineJob]:
        """Jobs of one graph, from one reading of its whole job list."""
        members = tuple(dict.fromkeys(refs))
        if not members:
            return {}
        graph = members[0].graph_name
        if any(ref.graph_name != graph for ref in members):
            raise ValueError("a batch of engine jobs must be of one graph")
        wanted = set(members)
        found: dict[Hashable, JobSnapshot] = {}
        try:
            async for snapshot in list_jobs(requester, graph):
                if snapshot.ref in wanted:
                    found[snapshot.ref] = snapshot
        except JobwatchError as exc:
            return dict.fromkeys(members, exc)
        return {ref: found.get(ref) or missing_from_list(ref.job_id, graph) for ref in members}


KIND = register(EngineKind())
