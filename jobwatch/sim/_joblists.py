"""The GES requests beyond the status paths: an engine job's own status, the management job lists.

Called by the app (``jobwatch.sim._app``) with the state's lock held.

- ``engine_job``: ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/{job_id}/status``,
  "Querying Job Status" on the service plane (ges_03_0472; ges_03_0037 for 1.0.0).
  Its sample answers ``{"status": "complete", "data": {...}, "result": "success"}``
  and a job the engine does not keep with HTTP 400 ``{"errorMessage": "can not
  find job, jobId is ...", "errorCode": "GES.8301", "result": "failed"}``.  The
  status is the one the graph's job list shows for the job (the engine keeps one
  status per job; both pages' samples say ``complete``).  ``data`` holds an
  algorithm's result records, paged by ``offset``/``limit`` (at most 100000); the
  simulated jobs have none, so it is ``{}``.  No page says what an unknown graph
  gets here: the list's documented ``GES.8000`` "graph : ... not exist".
- ``ges_list``: ``GET /v1.0/{project_id}/graphs/jobs`` ("Querying the Job Center
  (1.1.8)", ges_03_0102: ``{"errorMessage", "errorCode", "jobCount", "jobList"}``,
  camelCase entries) and ``GET /v2/{project_id}/graphs/jobs`` ("Querying Job
  Details in the Job Center (1.1.8)", ges_03_0374: ``{"job_count", "job_list"}``,
  snake_case entries).  Entries carry the 1.0.0 status fields (whatever the job's
  ``v1_body``: the list has one documented form), in the job's own vocabulary: a
  job of the older v1.0 generation says ``waiting`` there too (the 1.1.8 page's
  status filter names ``waiting``; no page shows such an entry).  ``offset`` defaults to 0 and
  ``limit`` to 10 (no maximum is documented; none is enforced); ``jobCount`` is
  counted after the filters, before paging.  Filters: ``status`` (documented
  values ``running``, ``waiting``, ``success``, ``failed``, v2 also
  ``partiallyFailed``; ``waiting`` matches the jobs that say ``pending``),
  ``graph_name`` (the related graph's name), and dates ``startTime``/``endTime``
  (v1.0) or ``start_time``/``end_time`` (v2) as ``yyyy-MM-dd``.  No page says: the
  order of the list (here the newest job first), what the date filters compare
  (here: begun on or after the start date, ended on or before the end date; a job
  that has not begun or ended is left out), and the error of a bad parameter
  (here HTTP 400 ``GES.8000``, the code GES uses for bad parameters).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs

from jobwatch.sim._faults import ApiName, FaultSlot
from jobwatch.sim._http import Response, api_error, json_response
from jobwatch.sim._jobs import OLD_V1_STATUS, GesSpec, StoredJob, camelize

if TYPE_CHECKING:
    from jobwatch.sim._app import SimState

__all__ = [
    "ENGINE_MAX_LIMIT",
    "engine_job",
    "engine_job_faults",
    "ges_list",
    "ges_list_faults",
    "int_param",
]

ENGINE_MAX_LIMIT = 100_000
GES_JOB_NOT_FOUND = "GES.8301"
GES_BAD_PARAMETER = "GES.8000"
LIST_DEFAULT_LIMIT = 10
_INTEGER = re.compile(r"[+-]?[0-9]{1,12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_STATUS_FILTERS: Mapping[str, frozenset[str]] = {
    "running": frozenset({"running"}),
    "waiting": frozenset({"waiting", "pending"}),
    "success": frozenset({"success"}),
    "failed": frozenset({"failed"}),
    "partiallyFailed": frozenset({"partiallyFailed"}),  # v2 only (ges_03_0374)
}


def int_param(
    params: Mapping[str, list[str]], name: str, default: int, low: int, high: int | None
) -> int:
    """The last value of query parameter ``name`` as an integer in ``[low, high]``.

    ``ValueError`` with the message the simulator answers for anything else.
    """
    values = params.get(name)
    if not values:
        return default
    bounds = f"at least {low}" if high is None else f"between {low} and {high}"
    if _INTEGER.fullmatch(values[-1]) is None:
        raise ValueError(f"{name} must be an integer {bounds}, not {values[-1]!r}")
    value = int(values[-1])
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {bounds}, not {value}")
    return value


# --- the engine: one job's status ---------------------------------------------------------------


def engine_job_faults(
    state: SimState, project_id: str, graph: str, job_id: str
) -> Iterator[tuple[str | None, FaultSlot]]:
    """The job's own faults (those of its graph's other jobs hit only the list)."""
    for job in state.engine.get((project_id, graph), ()):
        if job.spec.job_id == job_id:
            yield from ((job_id, slot) for slot in job.faults)


def engine_job(
    state: SimState, project_id: str, graph: str, job_id: str, query: str, status: str | None
) -> Response:
    """The answer of one engine job's status path; ``status`` replaces the job's own."""
    jobs = state.engine.get((project_id, graph))
    if jobs is None:
        return api_error("ges-engine", 400, GES_BAD_PARAMETER, f"graph : {graph} not exist")
    params = parse_qs(query, keep_blank_values=True)
    try:
        int_param(params, "offset", 0, 0, None)
        int_param(params, "limit", ENGINE_MAX_LIMIT, 1, ENGINE_MAX_LIMIT)
    except ValueError as exc:
        return api_error("ges-engine", 400, GES_BAD_PARAMETER, str(exc))
    now = state.clock.now()
    current = None
    if job_id in state.engine_ids.get((project_id, graph), ()):
        for job in jobs:
            if job.spec.job_id == job_id and job.visible(now):
                entry = job.spec.entry(job.elapsed(now), drift=False, status=status)
                current = None if entry is None else str(entry["status"])
                break
    if current is None:
        message = f"can not find job, jobId is {job_id}"
        return api_error("ges-engine", 400, GES_JOB_NOT_FOUND, message)
    body = {"status": current, "data": {}, "result": "success"}
    return replace(json_response(200, body), served=((job_id, current),))


# --- the management plane: the job lists --------------------------------------------------------


def _project_jobs(state: SimState, project_id: str) -> list[StoredJob[GesSpec]]:
    return [job for (project, _, _), job in state.ges.items() if project == project_id]


def ges_list_faults(state: SimState, project_id: str) -> Iterator[tuple[str | None, FaultSlot]]:
    """The faults of every GES job of the project: the list answers for them all."""
    for job in _project_jobs(state, project_id):
        yield from ((job.spec.job_id, slot) for slot in job.faults)


def ges_list(
    state: SimState,
    api: ApiName,
    project_id: str,
    query: str,
    override: tuple[str | None, str] | None,
) -> Response:
    """A page of the management job list of ``api`` (``ges-v1.0`` or ``ges-v2``).

    ``override`` is ``(owner, status)`` of an ``unknown_status`` fault: the
    status of the owner's entry (of every entry when the owner is None).
    """
    version: Literal["v1.0", "v2"] = "v1.0" if api == "ges-v1.0" else "v2"
    params = parse_qs(query, keep_blank_values=True)
    try:
        offset = int_param(params, "offset", 0, 0, None)
        limit = int_param(params, "limit", LIST_DEFAULT_LIMIT, 1, None)
        wanted = _status_filter(params, version)
        start = _date_param(params, "startTime" if version == "v1.0" else "start_time")
        end = _date_param(params, "endTime" if version == "v1.0" else "end_time")
    except ValueError as exc:
        return api_error(api, 400, GES_BAD_PARAMETER, str(exc))
    graph_names = params.get("graph_name")
    graph_name = graph_names[-1] if graph_names else None
    now = state.clock.now()
    jobs = sorted(_project_jobs(state, project_id), key=lambda j: (j.created_at, j.seq))
    entries: list[dict[str, Any]] = []
    for job in reversed(jobs):  # the newest first
        if not job.visible(now):
            continue
        status = None
        if override is not None and override[0] in (None, job.spec.job_id):
            status = override[1]
        body = job.spec.body("v2", job.elapsed(now), job.frame(state.epoch), status)
        if body is None:
            continue
        if version == "v1.0" and job.spec.v1_body == "old":
            body["status"] = OLD_V1_STATUS.get(body["status"], body["status"])
        if not _kept(body, wanted, graph_name, start, end):
            continue
        entries.append(body)
    page = entries[offset : offset + limit]
    served = tuple((str(e["job_id"]), str(e["status"])) for e in page)
    if version == "v2":
        answer: dict[str, object] = {"job_count": len(entries), "job_list": page}
    else:
        answer = {
            "errorMessage": "",
            "errorCode": "",
            "jobCount": len(entries),
            "jobList": camelize(page),
        }
    return replace(json_response(200, answer), served=served)


def _status_filter(params: Mapping[str, list[str]], version: str) -> frozenset[str] | None:
    values = params.get("status")
    if not values:
        return None
    value = values[-1]
    allowed = [name for name in _STATUS_FILTERS if version == "v2" or name != "partiallyFailed"]
    if value not in allowed:
        raise ValueError(f"status must be one of {', '.join(allowed)}, not {value[:40]!r}")
    return _STATUS_FILTERS[value]


def _date_param(params: Mapping[str, list[str]], name: str) -> date | None:
    values = params.get(name)
    if not values:
        return None
    value = values[-1]
    try:
        if _DATE.fullmatch(value) is None:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be a date yyyy-MM-dd, not {value[:40]!r}") from None


def _kept(
    body: Mapping[str, Any],
    wanted: frozenset[str] | None,
    graph_name: str | None,
    start: date | None,
    end: date | None,
) -> bool:
    if wanted is not None and body["status"] not in wanted:
        return False
    if graph_name is not None and body.get("related_graph") != graph_name:
        return False
    if start is not None:
        begun = body.get("begin_time")
        if begun is None or date.fromisoformat(begun[:10]) < start:
            return False
    if end is not None:
        ended = body.get("end_time")
        if ended is None or date.fromisoformat(ended[:10]) > end:
            return False
    return True
