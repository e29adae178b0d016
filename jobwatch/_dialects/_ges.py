"""GES management plane: ``GET /{v1.0|v2}/{project_id}/graphs/{graph_id}/jobs/{job_id}/status``.

One wire model reads every generation of body:

- v1.0, older page: ``{"status": "waiting"|"running"|"success", "errorCode": "", ...}``;
- v1.0, 1.0.0 page: flat camelCase fields (``jobId``, ``jobDetail``, ...), or the same
  object under a ``Job`` key (the field table's form);
- v2: the same fields in snake_case.

The job lists (issue 13): ``GET /v1.0/{project_id}/graphs/jobs`` ("Querying the
Job Center (1.1.8)", ges_03_0102: ``jobCount`` and ``jobList``, camelCase) and
``GET /v2/{project_id}/graphs/jobs`` ("Querying Job Details in the Job Center
(1.1.8)", ges_03_0374: ``job_count`` and ``job_list``, snake_case), paged by
``offset`` (default 0) and ``limit`` (default 10; no maximum documented, the
page's own example asks 100, as jobwatch does), filtered by ``graph_name`` (the
related graph's *name*), ``status``, and start and end dates.  Each entry has the
fields of a status body (the SDK's ``Job`` / ``ListJobsRespJobList`` models have
exactly ``ShowJobResponse``'s job fields), so an entry gives the snapshot its
status path gives; only the body-level ``errorCode`` is not there (empty on a
status answer that carries a job, so ``error_code`` is None either way).  The
older v1.0 status body (``status``, ``errorCode``, ``errorMessage`` only) is
poorer than a list entry: on such a server the listed snapshot has more fields.

Which request.  ``batch_key`` is the version: due jobs of one client (one
project) and version are one batch.  A batch of one job is asked on its status
path.  For more, the list is read page by page until every member is found or
the list ends, and a member not on it is then asked on its own status path (so a
job the list does not show, or shows late, gets the answer and the not-found
error, ``GES.8301``, of its status path, as before).  Entries are matched by job
ID alone: they name their graph, not its ID.  Another page is read only while the
pages read so far plus the members still missing are no more than the batch's
size, so a reading never costs more than one request above asking each member
on its own, and one request when they are on the first page.  A list request
refused with 400 or 404 (a region or gateway without the API: ``APIGW.0101``)
sends the batch to the status paths, and this client's batches of that version
after it.  A 401 or 403 is not: the client refuses every request after one.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from jobwatch._dialects._common import (
    WireModel,
    map_state,
    parse_time,
    require_object,
    text,
    validate,
)
from jobwatch._dialects._engine import count_of
from jobwatch._exceptions import (
    APIStatusError,
    JobwatchError,
    RateLimitError,
    ResponseValidationError,
)
from jobwatch._kinds import BatchResults, DirectKind, Requester, register, segment, validate_id
from jobwatch._snapshot import ImportDetail, ImportFile, ImportFileKind, JobSnapshot, JobState

if TYPE_CHECKING:
    from jobwatch._dialects._ges_wire import (
        GesJobWire,
        GesListWire,
        ImportDetailWire,
        ImportFileWire,
    )
else:
    GesJobWire = WireModel("jobwatch._dialects._ges_wire", "GesJobWire")
    GesListWire = WireModel("jobwatch._dialects._ges_wire", "GesListWire")
    ImportDetailWire = WireModel("jobwatch._dialects._ges_wire", "ImportDetailWire")
    ImportFileWire = WireModel("jobwatch._dialects._ges_wire", "ImportFileWire")

logger = logging.getLogger("jobwatch")

API = "ges"
#: Entries asked per page of a job list (the ``limit`` of the pages' example request).
PAGE_SIZE = 100
#: Pages in one reading of a job list before it is an error.
MAX_PAGES = 10_000

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


def list_path(project_id: str, version: GesVersion) -> str:
    """The job-list path of the management plane of ``version``."""
    return f"/{version}/{segment(project_id)}/graphs/jobs"


async def list_jobs(
    requester: Requester,
    version: GesVersion,
    *,
    graph_name: str | None = None,
    page_size: int = PAGE_SIZE,
    more: Callable[[int], bool] | None = None,
) -> AsyncGenerator[tuple[str, Mapping[str, Any]], None]:
    """``(job ID, entry)`` of every job in the management job list of ``version``.

    ``graph_name`` filters on the related graph's name.  The list ends at an
    empty page, at ``jobCount`` (a short page is not the end when it says more),
    without one at a short page, and at a page that repeats the one before.  An
    entry without a usable job ID is skipped with a warning.  ``more``, given the
    pages read so far, says whether to read another (the first is always read).
    """
    if not 1 <= page_size <= 10_000:
        raise ValueError("page_size must be between 1 and 10000")
    path = list_path(requester.project_id, version)
    what = f"{API}-{version}:jobs"
    offset = 0
    first_of_previous: object = None
    for pages in range(MAX_PAGES):
        if pages and more is not None and not more(pages):
            return
        params = {"offset": str(offset), "limit": str(page_size)}
        if graph_name is not None:
            params["graph_name"] = validate_id("graph_name", graph_name)
        data = await requester.get_json(path, params, what=what)
        body = require_object(data, "the GES job list")
        wire: GesListWire = validate(GesListWire, body, "the GES job list")
        entries = wire.job_list or []
        if entries and first_of_previous is not None and entries[0] == first_of_previous:
            logger.warning("the GES %s job list ignores paging; stopping after one page", version)
            return
        for entry in entries:
            job = require_object(entry, "a GES job list entry")
            try:
                job_id = validate_id("job_id", job.get("job_id", job.get("jobId")))
            except ValueError as exc:
                logger.warning("skipping a GES %s job list entry: %s", version, exc)
                continue
            yield job_id, job
        offset += len(entries)
        total = count_of(f"(GES {version} job list)", wire.job_count)
        if not entries or (total is not None and offset >= total):
            return
        if total is None and len(entries) < page_size:
            return
        first_of_previous = entries[0]
    raise ResponseValidationError(f"the GES {version} job list did not end after {MAX_PAGES} pages")


def summary(entry: Mapping[str, Any]) -> tuple[str, JobState, str | None]:
    """``(raw status, state, job name or type)`` of a job list entry (for listings)."""
    wire: GesJobWire = validate(GesJobWire, entry, "a GES job list entry")
    name = text(wire.job_name) or text(wire.job_type)
    return wire.status, map_state(API, wire.status, STATES), name


def _list_refused(error: JobwatchError) -> bool:
    """Whether a list request failed in a way the status paths may not (see the module)."""
    return (
        isinstance(error, APIStatusError)
        and not isinstance(error, RateLimitError)
        and error.status_code in (400, 404)
    )


class GesKind(DirectKind[GesJob]):
    """The GES management plane, v1.0 and v2: one job on its status path, more in the list."""

    name = API
    ref_type = GesJob
    graph_key = "graph_id"

    def __init__(self) -> None:
        # Requesters whose list request was refused, per version: status paths only.
        self._refused: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()

    def to_dict(self, ref: GesJob) -> dict[str, str]:
        return {"api": API, "version": ref.version, "graph_id": ref.graph_id, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> GesJob:
        return GesJob(data.get("graph_id"), data.get("job_id"), data.get("version", "v2"))  # type: ignore[arg-type]  # validated on init

    def batch_key(self, ref: GesJob) -> str:  # type: ignore[override]  # DirectKind's is None
        """The version: the jobs of one client and version share its job list."""
        return ref.version

    def parse(self, ref: GesJob, data: object) -> JobSnapshot:
        return parse(ref, data)

    async def fetch_batch(
        self, requester: Requester, refs: Iterable[GesJob]
    ) -> BatchResults[GesJob]:
        """One job: its status path; more: the job list, then the status paths of those
        it lacks (see the module docstring)."""
        members = tuple(dict.fromkeys(refs))
        if not members:
            return {}
        version = members[0].version
        if any(ref.version != version for ref in members):
            raise ValueError("a batch of GES jobs must be of one version")
        if len(members) == 1 or version in self._refused.get(requester, ()):
            return await super().fetch_batch(requester, members)
        by_id: dict[str, list[GesJob]] = {}
        for ref in members:
            by_id.setdefault(ref.job_id, []).append(ref)
        results: BatchResults[GesJob] = {}

        def more(pages: int) -> bool:  # no dearer than the status paths, plus one request
            return pages + sum(map(len, by_id.values())) <= len(members)

        try:
            async with aclosing(list_jobs(requester, version, more=more)) as entries:
                async for job_id, entry in entries:
                    for ref in by_id.pop(job_id, ()):
                        try:
                            results[ref] = parse(ref, entry)
                        except JobwatchError as exc:  # this entry's error, not the list's
                            results[ref] = exc
                    if not by_id:
                        break
        except JobwatchError as exc:
            if not _list_refused(exc):
                return dict.fromkeys(members, exc)
            logger.warning(
                "the GES %s job list was refused (%s); asking each job on its status path",
                version,
                exc,
            )
            self._refused.setdefault(requester, set()).add(version)
            return await super().fetch_batch(requester, members)
        missing = [ref for refs_of in by_id.values() for ref in refs_of]
        results.update(await super().fetch_batch(requester, missing))
        return {ref: results[ref] for ref in members}


KIND = register(GesKind())
