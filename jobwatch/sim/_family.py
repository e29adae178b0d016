"""The EVS-style job family in the simulator: which service answers, its bodies, its errors.

One simulator stands for one service's endpoint.  The first family job added
(``Simulator.add_evs_job(service=...)``) fixes it; a job of another endpoint is
refused.  EVS's endpoint serves ``evs`` (``/v1/{project_id}/jobs/{job_id}``) and
``evs-v2`` (``/v2/...``) jobs; IMS's serves each ``ims`` job on both
``/v1/{project_id}/jobs/{job_id}`` and ``/v1/cloudimages/job/{job_id}`` (IMS API
reference, ims_03_0905 and ims_03_0911: the same asynchronous jobs).  A path the
endpoint does not serve is the gateway's 404 ``APIGW.0101``.  A simulator
without family jobs answers ``/v1/.../jobs/...`` as EVS (as it always has).

``/v1/cloudimages/job/{job_id}`` has no project in its path: the simulator takes
it from the ``X-Project-Id`` header (``Client`` always sends it; the official SDK
sends and signs it).  No IMS page says how the service scopes this path (a
token is project-scoped); without the header the job is not found.

Each service's bodies are the EVS body (``jobwatch.sim._jobs.evs_body``) in its
own dialect: IMS lists sub-jobs under ``entities.sub_jobs_result`` (ims_03_0905,
``imsImportOvaImageJob`` example); ECS and BMS add ``entities.sub_jobs_total``
when a job has sub-jobs (ecs_02_0901, bms_api_0640); DCS sends a flat body
(``job_id``, ``job_type``, ``status``, ``begin_time``/``end_time`` as
milliseconds in a string, ``fail_reason``; DCS "Querying the Job Execution
Result of a Tenant").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast, get_args

from jobwatch.sim._http import Response, json_response
from jobwatch.sim._jobs import Frame, SubJob, evs_body, evs_path_listed

if TYPE_CHECKING:
    from jobwatch.sim._app import SimState

__all__ = [
    "FAMILY_APIS",
    "FAMILY_PATHS",
    "SERVICES",
    "FamilyBook",
    "FamilyService",
    "answer",
    "claim",
    "error_body",
    "route_api",
]

FamilyService: TypeAlias = Literal[
    "evs", "ecs", "bms", "vpc", "ims", "ims-cloudimages", "deh", "sdrs", "evs-v2", "dcs"
]
SERVICES: tuple[str, ...] = get_args(FamilyService)
FAMILY_APIS: frozenset[str] = frozenset(SERVICES)
PathKind: TypeAlias = Literal["v1", "v2", "cloudimages"]
FAMILY_PATHS: Mapping[str, PathKind] = {
    "evs": "v1",
    "evs-v2": "v2",
    "ims-cloudimages": "cloudimages",
}
"""The names the router gives the family's paths, before ``route_api`` names the service."""

# EVS documents "400 Common.0011 query job fail." for a job it cannot find (EVS API
# reference, "Querying Job Status").  No page of ECS, BMS, VPC/EIP, IMS, DEH, SDRS,
# EVS v2 or DCS documents its answer for a missing job: the simulator answers them
# the same code, status and message, in each service's own error-body shape.
NOT_FOUND_STATUS = 400
NOT_FOUND_CODE = "Common.0011"

ErrorShape: TypeAlias = Literal["nested", "flat", "dcs"]


@dataclass(frozen=True, slots=True)
class _Dialect:
    endpoint: str  # the services one simulator (one endpoint) may hold together
    path: PathKind
    error: ErrorShape
    job_type: str  # the default job type of an added job
    sub_jobs_key: str = "sub_jobs"
    counts_sub_jobs: bool = False  # sends entities.sub_jobs_total
    flat: bool = False  # DCS: no entities, times in milliseconds


# Error shapes: EVS {"error": {"message", "code"}} (EVS "Querying Job Status"); the flat
# {"code", "message"} of ECS (the shared API notes) and of the job bodies of BMS and SDRS
# ("message"/"code": "returned when an error occurs", bms_api_0640, sdrs_05_0101), used
# for VPC too (no page says); DCS {"error_msg", "error_code", "error_ext_msg": null}
# (DCS "Querying the Job Execution Result of a Tenant", status codes 400-500).  IMS,
# DEH and EVS v2: no page found; EVS's nested shape.
_DIALECTS: Mapping[str, _Dialect] = {
    "evs": _Dialect("evs", "v1", "nested", "createVolume"),
    "evs-v2": _Dialect("evs", "v2", "nested", "createSnapshotGroup"),
    "ecs": _Dialect("ecs", "v1", "flat", "createServer", counts_sub_jobs=True),
    "bms": _Dialect("bms", "v1", "flat", "baremetalBatchCreate", counts_sub_jobs=True),
    "vpc": _Dialect("vpc", "v1", "flat", "createBatchPublicip"),
    "ims": _Dialect("ims", "v1", "nested", "imsCreateImageByInstance", "sub_jobs_result"),
    "deh": _Dialect("deh", "v1", "nested", "allocateDedicatedHost"),
    "sdrs": _Dialect("sdrs", "v1", "flat", "createProtectionGroupNoCG"),
    "dcs": _Dialect("dcs", "v2", "dcs", "createDCSInstance", flat=True),
}
# The newer IMS path serves the jobs of "ims" (the same jobs, another path).
_CLOUDIMAGES = "ims-cloudimages"


@dataclass(slots=True)
class FamilyBook:
    """Which endpoint a simulator stands for, and the service of each family job."""

    endpoint: str | None = None
    services: dict[tuple[str, str], str] = field(default_factory=dict)  # (project, job)


def stored_service(service: str) -> str:
    """The service a job is stored under (``ims-cloudimages`` jobs are ``ims`` jobs)."""
    if service not in FAMILY_APIS:
        raise ValueError(f"service must be one of {list(SERVICES)}, not {service!r}")
    return "ims" if service == _CLOUDIMAGES else service


def default_job_type(service: str) -> str:
    """The job type an added job of ``service`` has unless one is given."""
    return _DIALECTS[stored_service(service)].job_type


def claim(book: FamilyBook, service: str, keys: Sequence[tuple[str, str]]) -> None:
    """Record ``keys`` as jobs of ``service``; ``ValueError`` for another endpoint's service.

    Call with the simulator's lock held, after every other check.
    """
    stored = stored_service(service)
    endpoint = _DIALECTS[stored].endpoint
    if book.endpoint is not None and book.endpoint != endpoint:
        raise ValueError(
            f"this simulator stands for the {book.endpoint} endpoint: a {service} job needs"
            " a simulator of its own"
        )
    book.endpoint = endpoint
    book.services.update(dict.fromkeys(keys, stored))


def route_api(book: FamilyBook, routed: str) -> FamilyService | None:
    """The API answering a family path on this endpoint; None when it serves no such path.

    ``routed`` names the path as the router does: ``"evs"`` for ``/v1/{p}/jobs/{j}``,
    ``"evs-v2"`` for ``/v2/{p}/jobs/{j}``, ``"ims-cloudimages"`` for the IMS path.
    """
    path = FAMILY_PATHS[routed]
    endpoint = book.endpoint or ("ims" if path == "cloudimages" else "evs")
    if path == "cloudimages":
        return "ims-cloudimages" if endpoint == "ims" else None
    for name, dialect in _DIALECTS.items():
        if dialect.endpoint == endpoint and dialect.path == path:
            return cast("FamilyService", name)  # (every key is a FamilyService)
    return None


def error_body(api: str, code: str, message: str) -> dict[str, object] | None:
    """An error in ``api``'s own shape; None when ``api`` is not of the family."""
    if api not in FAMILY_APIS:
        return None
    shape = _DIALECTS[stored_service(api)].error
    if shape == "nested":
        return {"error": {"message": message, "code": code}}
    if shape == "flat":
        return {"code": code, "message": message}
    return {"error_msg": message, "error_code": code, "error_ext_msg": None}


def answer(state: SimState, api: str, project_id: str, job_id: str, status: str | None) -> Response:
    """The answer of ``api`` for one job (``status`` replaces its own); call with the lock."""
    now = state.clock.now()
    stored = stored_service(api)
    found = state.evs.get((project_id, job_id))
    body = None
    if found is not None and state.family.services.get((project_id, job_id), "evs") == stored:
        top, path = found
        elapsed = top.elapsed(now)
        if top.visible(now) and evs_path_listed(path, elapsed):
            body = job_body(stored, path[-1], elapsed, top.frame(state.epoch), status)
    if body is None:
        message = f"query job fail. job {job_id} not found"
        error = error_body(api, NOT_FOUND_CODE, message)
        return json_response(NOT_FOUND_STATUS, error)
    served = tuple(_served(body, _DIALECTS[stored].sub_jobs_key))
    return replace(json_response(200, body), served=served)


def job_body(
    service: str, job: SubJob, elapsed: float, frame: Frame, status: str | None = None
) -> dict[str, Any] | None:
    """The body of ``job`` in ``service``'s dialect, or None before its timeline begins."""
    body = evs_body(job, elapsed, frame, status)
    if body is None:
        return None
    return _dialect_body(_DIALECTS[service], body, job, elapsed)


def _dialect_body(
    dialect: _Dialect, body: dict[str, Any], job: SubJob, elapsed: float
) -> dict[str, Any]:
    if dialect.flat:
        return {
            "job_id": body["job_id"],
            "job_type": body["job_type"],
            "status": body["status"],
            "begin_time": _millis(body["begin_time"]),
            "end_time": _millis(body["end_time"]),
            "fail_reason": body["fail_reason"],
        }
    entities: dict[str, Any] = body["entities"]
    subs = entities.pop("sub_jobs", None)
    if subs is not None:
        # evs_body lists exactly the sub-jobs whose path is listed, in their order
        listed = [sub for sub in job.sub_jobs if evs_path_listed((job, sub), elapsed)]
        entities[dialect.sub_jobs_key] = [
            _dialect_body(dialect, sub_body, sub, elapsed)
            for sub, sub_body in zip(listed, subs, strict=True)
        ]
        if dialect.counts_sub_jobs:
            entities["sub_jobs_total"] = len(job.sub_jobs)
    return body


def _millis(evs_time: str) -> str:
    """``2024-01-01T00:00:00.400Z`` as DCS's ``"1704067200400"``; ``""`` stays ``""``."""
    if not evs_time:
        return ""
    return str(round(datetime.fromisoformat(evs_time).timestamp() * 1000))


def _served(body: Mapping[str, Any], sub_jobs_key: str) -> Iterator[tuple[str, str]]:
    """``(job_id, status)`` of a body and of its sub-jobs at any depth."""
    stack = [body]
    while stack:
        job = stack.pop()
        yield str(job.get("job_id")), str(job.get("status"))
        entities = job.get("entities")
        if isinstance(entities, Mapping):
            stack.extend(reversed(entities.get(sub_jobs_key) or []))
