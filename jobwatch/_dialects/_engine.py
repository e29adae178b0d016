"""GES engine jobs: the graph's job list, and each job's own status path.

- The list, ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/status``
  ("Querying the Job List", ges_03_0204 / ges_03_0471): one request lists every
  job the graph engine keeps (``limit`` at most 100000, ``offset``).
- The job, ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/{job_id}/status``
  ("Querying Job Status" on the service plane, ges_03_0037 / ges_03_0472): a body
  of ``status``, ``data`` (the job's result records, paged by ``offset`` and
  ``limit``, up to 100000 by default), ``result`` and ``errorCode`` /
  ``errorMessage``; a job the engine does not keep is HTTP 400 ``GES.8301``.
  jobwatch asks ``limit=1``: the status is all it reads, and an algorithm's
  result must not make the body large.  The page names queries and algorithms
  as its jobs, and no page says it answers for the others (imports...): on
  ``GES.8301`` the graph's list is read, and decides.

Which request (issue 13).  Per batch of one graph's due jobs: one job is asked on
its own status path (one small body instead of the whole list); two or more are
looked up in one reading of the list.  Either way the snapshot is the same: a
watched engine job's snapshot carries ``ref``, ``state`` and ``raw_status``, what
both answers carry (``raw`` is the body or list entry it was read from).  The
list's ``request`` and ``taskType`` are not on the status path, so they are not
in a watched job's snapshot; ``Client.list_engine_jobs`` (the listing) keeps them.

The list's details.  Another revision of the page names fields ``rawRequest``,
``taskType`` and ``totalCount``; both are read.  ``complete`` is the only
terminal status the engine reports.

Paging (issue 11).  100,000 entries are ~19 MB, more than the client's default
8 MiB body cap, so the page size comes from the cap: ``page_size_for`` allows
``BYTES_PER_ENTRY`` bytes an entry (the documented sample entry is 413 bytes of
compact JSON, the simulator's 170 to 200; 512 leaves a margin).  A page that is
still ``ResponseTooLarge`` is asked again with half the limit (at most
``MAX_HALVINGS`` times in one reading; the smaller size is kept for the pages
after it), so any cap works unless a single entry exceeds it.

The list ends at an empty page; at ``totalCount`` when the body carries one (a
short page is then not the end: a server may answer fewer than asked); without
it, at a short page.  A ``totalCount`` that is not a non-negative integer is
ignored (with a warning), as if absent; a huge one ends at the first empty
page; each page's own is read (the list changes while it is read).  A page
repeating the previous one ends the list (graphs that ignore paging).  A
reading that has not ended after ``MAX_PAGES`` pages raises
``ResponseValidationError``: a list that never ends is not read for ever, and
its jobs are not reported missing from a list that was never read whole.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Hashable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobwatch._dialects._common import WireModel, map_state, require_object, text, validate
from jobwatch._exceptions import (
    JobNotFound,
    JobwatchError,
    ResponseTooLarge,
    ResponseValidationError,
    missing_from_list,
)
from jobwatch._kinds import BatchResults, Requester, register, segment, validate_id
from jobwatch._snapshot import JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._dialects._engine_wire import EngineJobWire, EngineListWire, EngineStatusWire
else:
    EngineJobWire = WireModel("jobwatch._dialects._engine_wire", "EngineJobWire")
    EngineListWire = WireModel("jobwatch._dialects._engine_wire", "EngineListWire")
    EngineStatusWire = WireModel("jobwatch._dialects._engine_wire", "EngineStatusWire")

logger = logging.getLogger("jobwatch")

API = "ges-engine"
#: The documented maximum (and default) of ``limit`` (page ges_03_0204).
MAX_LIMIT = 100_000
#: Bytes allowed per list entry when deriving the page size from the body cap.
BYTES_PER_ENTRY = 512
#: Bytes of a page that are not entries (``result``, ``totalCount``, brackets).
ENVELOPE_BYTES = 256
#: Halvings of the page size in one reading of a list: 100000 halves to 1 in 17.
MAX_HALVINGS = 17
#: Pages in one reading of a list before it is an error.
MAX_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class GesEngineJob:
    """A job kept by a GES graph engine (served by the graph's own access address).

    Watched alone, it is asked on its own status path; with other jobs of its
    graph, it is looked up in the graph's job list (one request for them all).
    """

    graph_name: str
    job_id: str

    def __post_init__(self) -> None:
        validate_id("graph_name", self.graph_name)
        validate_id("job_id", self.job_id)

    def path(self, project_id: str) -> str:
        """The job-list path of this job's graph under ``project_id``."""
        return engine_list_path(project_id, self.graph_name)

    def status_path(self, project_id: str) -> str:
        """This job's own status path under ``project_id``."""
        return engine_job_path(project_id, self.graph_name, self.job_id)

    def __str__(self) -> str:
        return f"ges-engine:{self.graph_name}/{self.job_id}"


def engine_list_path(project_id: str, graph_name: str) -> str:
    """The GES engine job-list path of ``graph_name``."""
    validate_id("graph_name", graph_name)
    return f"/ges/v1.0/{segment(project_id)}/graphs/{segment(graph_name)}/jobs/status"


def engine_job_path(project_id: str, graph_name: str, job_id: str) -> str:
    """The GES engine status path of one job."""
    validate_id("graph_name", graph_name)
    validate_id("job_id", job_id)
    return (
        f"/ges/v1.0/{segment(project_id)}/graphs/{segment(graph_name)}"
        f"/jobs/{segment(job_id)}/status"
    )


#: The query of a per-job status request: the first result record at most.
STATUS_PARAMS: Mapping[str, str] = {"offset": "0", "limit": "1"}

STATES: Mapping[str, JobState] = {
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "complete": JobState.SUCCEEDED,
    # The status path's 1.0.0 page (ges_03_0037) says success / failed where the
    # 2.2.13 list says complete; the newer list page (ges_03_0471) lists all five.
    "success": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
}


def parse_status(ref: GesEngineJob, data: object) -> JobSnapshot:
    """The snapshot of ``ref`` in the body of its own status path."""
    body = require_object(data, "the GES engine job status")
    wire: EngineStatusWire = validate(EngineStatusWire, body, "the GES engine job status")
    return JobSnapshot(
        ref=ref, state=map_state(API, wire.status, STATES), raw_status=wire.status, raw=body
    )


def watched(snapshot: JobSnapshot) -> JobSnapshot:
    """A listed job's snapshot as a watch sees it: what the status path says too."""
    return JobSnapshot(
        ref=snapshot.ref, state=snapshot.state, raw_status=snapshot.raw_status, raw=snapshot.raw
    )


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
    total = count_of(graph_name, wire.total_count)
    return EnginePage(jobs=tuple(jobs), total_count=total, received=len(wire.jobs))


def count_of(graph_name: str, value: object) -> int | None:
    """``totalCount`` as a count: a non-negative integer, else None (ignored, with a warning)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    logger.warning(
        "ignoring the totalCount %.40r of the job list of graph %s: not a count", value, graph_name
    )
    return None


def page_size_for(max_body_bytes: object) -> int:
    """The ``limit`` whose page fits a body cap of ``max_body_bytes`` (MAX_LIMIT: no cap known)."""
    if not isinstance(max_body_bytes, int) or isinstance(max_body_bytes, bool):
        return MAX_LIMIT
    return max(1, min(MAX_LIMIT, (max_body_bytes - ENVELOPE_BYTES) // BYTES_PER_ENTRY))


async def list_jobs(
    requester: Requester, graph_name: str, *, page_size: int | None = None, offset: int = 0
) -> AsyncGenerator[JobSnapshot, None]:
    """``Client.list_engine_jobs`` through any requester: the list of ``graph_name``, paged.

    ``page_size`` None: derived from the requester's ``max_body_bytes`` (see
    ``page_size_for``).  The end rules and bounds are in the module docstring.
    """
    if page_size is None:
        page_size = page_size_for(getattr(requester, "max_body_bytes", None))
    if not 1 <= page_size <= MAX_LIMIT:
        raise ValueError(f"page_size must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    path = engine_list_path(requester.project_id, graph_name)
    what = f"{API}:{graph_name}"
    first_of_previous: JobSnapshot | None = None
    halvings = 0
    for _ in range(MAX_PAGES):
        params = {"limit": str(page_size), "offset": str(offset)}
        try:
            data = await requester.get_json(path, params, what=what)
        except ResponseTooLarge:
            if page_size == 1 or halvings >= MAX_HALVINGS:
                raise
            halvings += 1
            page_size = max(1, page_size // 2)
            logger.info("%s: a page was larger than the body cap; asking %d", what, page_size)
            continue
        page = parse_page(graph_name, data)
        if page.jobs and first_of_previous is not None and page.jobs[0] == first_of_previous:
            # Hundred-billion-edge graphs ignore limit/offset: the same page again.
            logger.warning("graph %s ignores paging; stopping after one page", graph_name)
            return
        for snapshot in page.jobs:
            yield snapshot
        offset += page.received
        total = page.total_count
        if page.received == 0:
            if total is not None and offset < total:
                logger.warning(
                    "the job list of graph %s ended at %d entries; its totalCount said %d",
                    graph_name,
                    offset,
                    total,
                )
            return
        if total is not None and offset >= total:
            return
        if total is None and page.received < page_size:
            return
        first_of_previous = page.jobs[0] if page.jobs else None
    raise ResponseValidationError(
        f"the job list of graph {graph_name} did not end after {MAX_PAGES} pages"
    )


class EngineKind:
    """GES engine jobs: one job on its status path, several of a graph in one list reading."""

    name = API
    ref_type = GesEngineJob
    graph_key = "graph_name"

    def to_dict(self, ref: GesEngineJob) -> dict[str, str]:
        return {"api": API, "graph_name": ref.graph_name, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> GesEngineJob:
        return GesEngineJob(data.get("graph_name"), data.get("job_id"))  # type: ignore[arg-type]  # validated on init

    def batch_key(self, ref: GesEngineJob) -> str:
        """The graph: its jobs share one job list."""
        return ref.graph_name

    def parse(self, ref: GesEngineJob, data: object) -> JobSnapshot:
        """``ref`` in its status body, or in one page of its graph's job list (with ``jobs``).

        ``JobNotFound`` when a page does not list it.
        """
        if isinstance(data, Mapping) and "jobs" in data:
            for snapshot in parse_page(ref.graph_name, data).jobs:
                if snapshot.ref == ref:
                    return watched(snapshot)
            raise missing_from_list(ref.job_id, ref.graph_name)
        return parse_status(ref, data)

    async def fetch(self, requester: Requester, ref: GesEngineJob) -> JobSnapshot:
        """GET the job's own status path; when it says ``GES.8301``, the graph's list decides.

        The status page names queries and algorithms as its jobs: a job it does
        not know (an import?) may still be on the list, which shows every job.
        """
        path = ref.status_path(requester.project_id)
        try:
            data = await requester.get_json(path, STATUS_PARAMS, what=str(ref))
        except JobNotFound:
            async with aclosing(list_jobs(requester, ref.graph_name)) as snapshots:
                async for snapshot in snapshots:
                    if snapshot.ref == ref:
                        return watched(snapshot)
            raise
        return parse_status(ref, data)

    async def fetch_batch(
        self, requester: Requester, refs: Iterable[GesEngineJob]
    ) -> BatchResults[GesEngineJob]:
        """One job: its status path.  More: one reading of the graph's job list, up to
        the last member's page."""
        members = tuple(dict.fromkeys(refs))
        if not members:
            return {}
        graph = members[0].graph_name
        if any(ref.graph_name != graph for ref in members):
            raise ValueError("a batch of engine jobs must be of one graph")
        if len(members) == 1:
            try:
                return {members[0]: await self.fetch(requester, members[0])}
            except JobwatchError as exc:
                return {members[0]: exc}
        wanted = set(members)
        found: dict[Hashable, JobSnapshot] = {}
        try:
            # The pages after the last member's are not read; a member absent from
            # every page is known only once the whole list was read.
            async with aclosing(list_jobs(requester, graph)) as snapshots:
                async for snapshot in snapshots:
                    if snapshot.ref in wanted and snapshot.ref not in found:
                        found[snapshot.ref] = watched(snapshot)
                        if len(found) == len(wanted):
                            break
        except JobwatchError as exc:
            return dict.fromkeys(members, exc)
        return {ref: found.get(ref) or missing_from_list(ref.job_id, graph) for ref in members}


KIND = register(EngineKind())
