"""The ASGI application: routing, authentication, faults, errors and the request log.

Only anyio is used for waiting (``anyio.sleep``), so the app runs on asyncio and
trio alike.  All shared state lives in :class:`SimState`, guarded by one lock that
is never held across an ``await``: ``serve()`` runs the app in another thread.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs, quote

import anyio

from jobwatch._auth import SignatureError, verify_signature
from jobwatch.sim._cce import CceTree, answer_cce
from jobwatch.sim._clock import Clock
from jobwatch.sim._family import FAMILY_APIS, FAMILY_PATHS, FamilyBook, route_api
from jobwatch.sim._family import answer as family_answer
from jobwatch.sim._faults import ApiName, Fault, FaultKind, FaultSlot, SimulatedReset
from jobwatch.sim._http import (
    Response,
    api_error,
    fault_response,
    gateway_error,
    json_response,
    truncate,
)
from jobwatch.sim._joblists import (
    ENGINE_MAX_LIMIT,
    GES_BAD_PARAMETER,
    GES_JOB_NOT_FOUND,
    engine_job,
    engine_job_faults,
    ges_list,
    ges_list_faults,
)
from jobwatch.sim._joblists import int_param as _int_param
from jobwatch.sim._jobs import EngineSpec, GesSpec, StoredJob, SubJob
from jobwatch.sim._quota import QuotaBook
from jobwatch.sim._rds import RdsSpec, answer_rds

__all__ = ["RecordedRequest", "SimApp", "SimAuth", "SimState"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
EngineSchema: TypeAlias = Literal["2.2.13", "drift"]

# GES API reference, "查询job列表(2.2.13)" (ges_03_0204, GET
# /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/status?limit={limit}&offset={offset}):
# offset defaults to 0; limit "本次查询返回最大数量(最大100000)" defaults to and is at most
# 100000 (the hundred-billion-edge flavour ignores both).  The page documents no
# totalCount; the "drift" schema adds one, counted before paging.
# GES_JOB_NOT_FOUND (GES.8301) and GES_BAD_PARAMETER (GES.8000: bad parameters and
# unknown graphs) come from jobwatch.sim._joblists.


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the simulator answered (or failed to: ``status_code`` None).

    ``t`` is the sim time of arrival; ``api`` is None for unknown routes; ``job`` the
    job id asked for (the graph name for engine lists, None for the management job
    lists); ``fault`` the kind of the
    fault that hit it.  ``headers`` has lowercase names.
    """

    t: float
    method: str
    path: str
    query: str
    api: ApiName | None
    job: str | None
    status_code: int | None
    fault: FaultKind | None
    request_id: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    served: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True, repr=False)
class SimAuth:
    """What the simulator accepts: IAM tokens (``X-Auth-Token``) or AK/SK signatures.

    ``credentials`` maps access keys to secret keys; signatures are checked with
    ``jobwatch._auth.verify_signature`` against the real wall clock.
    ``token_expiry`` maps tokens to the simulation time they expire at: accepted
    before it, answered "token expires, expires_at: ..." from then on.  Anything
    else gets the gateway's 401 (``APIGW.0301``), which never repeats the token.
    The messages are those Huawei's FAQ "How Do I Handle the Error APIG.0301?"
    lists (decrypt token fail, x-auth-token not found, token expires, verify aksk
    signature fail).
    """

    tokens: AbstractSet[str] = frozenset()
    credentials: Mapping[str, str] = field(default_factory=dict)
    token_expiry: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.tokens, str):
            raise TypeError("tokens must be a collection of strings, not one string")
        object.__setattr__(self, "tokens", frozenset(self.tokens))
        object.__setattr__(self, "credentials", MappingProxyType(dict(self.credentials)))
        object.__setattr__(self, "token_expiry", MappingProxyType(dict(self.token_expiry)))

    def __repr__(self) -> str:
        return f"SimAuth(tokens=<{len(self.tokens)}>, credentials=<{len(self.credentials)}>)"


@dataclass(slots=True)
class SimState:
    """Everything a simulator holds; the app reads it, ``Simulator`` fills it."""

    clock: Clock
    epoch: datetime
    auth: SimAuth | None
    rng: random.Random
    ids: random.Random
    engine_schema: EngineSchema = "2.2.13"
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (project, job id) -> (top-level job, path from it to the job asked for)
    evs: dict[tuple[str, str], tuple[StoredJob[SubJob], tuple[SubJob, ...]]] = field(
        default_factory=dict
    )
    ges: dict[tuple[str, str, str], StoredJob[GesSpec]] = field(default_factory=dict)
    # (project, graph name) -> its jobs in creation order; a key means the graph exists
    engine: dict[tuple[str, str], list[StoredJob[EngineSpec]]] = field(default_factory=dict)
    engine_ids: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # of ``engine``
    family: FamilyBook = field(default_factory=FamilyBook)  # the EVS-style family's services
    cce: dict[tuple[str, str], CceTree] = field(default_factory=dict)  # as ``evs``
    rds: dict[tuple[str, str], StoredJob[RdsSpec]] = field(default_factory=dict)
    faults: list[FaultSlot] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    seq: int = 0
    quota: QuotaBook | None = None  # the tenant quota in force (Simulator.set_quota)


@dataclass(frozen=True, slots=True)
class _Route:
    api: ApiName
    project_id: str
    job: str  # the job id, or the graph name of an engine list ("" for a management list)
    graph: str = ""
    listing: bool = False  # an engine job's own status path, or a management job list


def _route(path: str, query: str) -> _Route | None:
    parts = path.split("/")
    if parts[0] or any(not part for part in parts[1:]):
        return None
    match parts[1:]:
        case ["v1", project, "jobs", job]:
            return _Route("evs", project, job)  # the family's v1 path: see _family_route
        case ["v2", project, "jobs", job]:
            return _Route("evs-v2", project, job)
        case ["v1", "cloudimages", "job", job]:
            return _Route("ims-cloudimages", "", job)  # the project: X-Project-Id
        case ["v1.0" | "v2" as version, project, "graphs", graph, "jobs", job, "status"]:
            return _Route("ges-v1.0" if version == "v1.0" else "ges-v2", project, job, graph)
        case ["ges", "v1.0", project, "graphs", graph, "jobs", "status"]:
            return _Route("ges-engine", project, graph, graph)
        case ["ges", "v1.0", project, "graphs", graph, "jobs", job, "status"]:
            return _Route("ges-engine", project, job, graph, listing=True)
        case ["v1.0" | "v2" as version, project, "graphs", "jobs"]:
            return _Route("ges-v1.0" if version == "v1.0" else "ges-v2", project, "", listing=True)
        case ["api", "v3", "projects", project, "jobs", job]:
            return _Route("cce", project, job)
        case ["v3", project, "jobs"]:  # the job is the query's ``id`` ("" without one)
            return _Route("rds", project, (parse_qs(query).get("id") or [""])[-1])
    return None


def _family_route(
    state: SimState, route: _Route | None, headers: Mapping[str, str]
) -> _Route | None:
    """A family path as the service this simulator stands for answers it (None: no such API)."""
    if route is None or route.api not in FAMILY_PATHS:
        return route
    with state.lock:
        api = route_api(state.family, route.api)
    if api is None:
        return None
    project = headers.get("x-project-id", "") if api == "ims-cloudimages" else route.project_id
    return replace(route, api=api, project_id=project)


def _over_quota(
    state: SimState, route: _Route, t: float, headers: Mapping[str, str], request_id: str
) -> Response | None:
    """The gateway's 429 when the request's tenant is over the quota (see ``_quota``)."""
    book = state.quota
    if book is None:
        return None
    with state.lock:
        admitted = book.admit(book.tenant(route.project_id, headers), t)
    if admitted:
        return None
    return gateway_error(429, "APIGW.0308", book.quota.message, request_id)


@dataclass(frozen=True, slots=True)
class _Hit:
    fault: Fault
    owner: str | None  # the engine job whose own fault this is; None for global faults


class SimApp:
    """The simulator's ASGI 3 application (``Simulator.app``)."""

    def __init__(self, state: SimState) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the simulator serves HTTP only, not {scope['type']!r}")
        state = self._state
        body = await _read_body(receive)
        headers = _headers(scope)
        method: str = scope["method"]
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        route = _family_route(state, _route(scope["path"], query), headers)
        with state.lock:
            t = state.clock.now()
            request_id = f"{state.ids.getrandbits(128):032x}"
        hit: _Hit | None = None

        def record(status: int | None, served: tuple[tuple[str, str], ...] = ()) -> None:
            entry = RecordedRequest(
                t=t,
                method=method,
                path=scope["path"],
                query=query,
                api=None if route is None else route.api,
                job=None if route is None else route.job or None,
                status_code=status,
                fault=None if hit is None else hit.fault.kind,
                request_id=request_id,
                headers=headers,
                served=served,
            )
            with state.lock:
                state.requests.append(entry)

        recorded = False
        try:
            if method != "GET":
                message = f"method {method} is not allowed: the simulator serves GET only"
                response = gateway_error(405, "SIM.0405", message, request_id, (("Allow", "GET"),))
            elif route is None:
                message = "The API does not exist or has not been published in the environment"
                response = gateway_error(404, "APIGW.0101", message, request_id)
            elif failure := _authenticate(state, t, scope, method, query, headers, body):
                message = f"Incorrect IAM authentication information: {failure}"
                response = gateway_error(401, "APIGW.0301", message, request_id)
            elif (throttled := _over_quota(state, route, t, headers, request_id)) is not None:
                response = throttled
            else:
                hit = self._pick_fault(route, t)
                if hit is not None and hit.fault.kind == "latency":
                    if await _sleep_unless_disconnected(receive, hit.fault.latency):
                        return  # the client went away: nobody to answer
                elif hit is not None and hit.fault.kind == "reset":
                    await send({"type": "http.response.start", "status": 200, "headers": []})
                    raise SimulatedReset("connection reset (simulated)")
                response = self._answer(route, query, hit, request_id)
            # Log the request before answering: over a socket the client may read the
            # answer (and look at the log) before this task runs again.
            record(response.status, response.served)
            recorded = True
            await _send(send, response, request_id)
        finally:
            if not recorded:
                record(None)

    def _pick_fault(self, route: _Route, now: float) -> _Hit | None:
        state = self._state
        with state.lock:
            for owner, slot in self._fault_slots(route):
                if slot.fires(route.api, now, state.rng):
                    return _Hit(slot.fault, owner)
        return None

    def _fault_slots(self, route: _Route) -> Iterator[tuple[str | None, FaultSlot]]:
        """Candidate faults for ``route``: the job's own, then the global ones."""
        state = self._state
        if route.api in FAMILY_APIS:
            found = state.evs.get((route.project_id, route.job))
            if found is not None and len(found[1]) == 1:  # a top-level job, not a sub-job
                yield from ((None, slot) for slot in found[0].faults)
        elif route.api == "ges-engine" and route.listing:
            yield from engine_job_faults(state, route.project_id, route.graph, route.job)
        elif route.listing:
            yield from ges_list_faults(state, route.project_id)
        elif route.api == "ges-engine":
            for job in state.engine.get((route.project_id, route.graph), ()):
                yield from ((job.spec.job_id, slot) for slot in job.faults)
        elif route.api == "cce":
            tree = state.cce.get((route.project_id, route.job))
            if tree is not None and len(tree[1]) == 1:  # a top-level job, not a sub-job
                yield from ((None, slot) for slot in tree[0].faults)
        elif route.api == "rds":
            rds_job = state.rds.get((route.project_id, route.job))
            yield from ((None, slot) for slot in (rds_job.faults if rds_job else ()))
        else:
            ges_job = state.ges.get((route.project_id, route.graph, route.job))
            if ges_job is not None:
                yield from ((None, slot) for slot in ges_job.faults)
        yield from ((None, slot) for slot in state.faults)

    def _answer(self, route: _Route, query: str, hit: _Hit | None, request_id: str) -> Response:
        if hit is not None:
            canned = fault_response(hit.fault, route.api, request_id)
            if canned is not None:
                return canned
        override = hit if hit is not None and hit.fault.kind == "unknown_status" else None
        with self._state.lock:
            if route.api in FAMILY_APIS:
                status = None if override is None else override.fault.status
                response = family_answer(
                    self._state, route.api, route.project_id, route.job, status
                )
            elif route.listing:
                response = self._listing(route, query, override)
            elif route.api == "ges-engine":
                response = self._engine(route, query, override)
            elif route.api in ("cce", "rds"):
                answer = answer_cce if route.api == "cce" else answer_rds
                status = None if override is None else override.fault.status
                response = answer(self._state, route.project_id, route.job, status)
            else:
                response = self._ges(route, override)
        if hit is not None and hit.fault.kind == "malformed_json":
            return truncate(response)
        return response

    def _ges(self, route: _Route, override: _Hit | None) -> Response:
        state = self._state
        now = state.clock.now()
        job = state.ges.get((route.project_id, route.graph, route.job))
        body = None
        if job is not None and job.visible(now):
            version: Literal["v1.0", "v2"] = "v1.0" if route.api == "ges-v1.0" else "v2"
            status = None if override is None else override.fault.status
            body = job.spec.body(version, job.elapsed(now), job.frame(state.epoch), status)
        if body is None:
            message = f"can not find job, jobId is {route.job}"
            return api_error(route.api, 400, GES_JOB_NOT_FOUND, message)
        job_body = body.get("Job", body)
        served = ((route.job or "", str(job_body["status"])),) if "status" in job_body else ()
        return replace(json_response(200, body), served=served)

    def _listing(self, route: _Route, query: str, override: _Hit | None) -> Response:
        state = self._state
        status = None if override is None else (override.owner, override.fault.status)
        if route.api != "ges-engine":
            return ges_list(state, route.api, route.project_id, query, status)
        own = status[1] if status is not None else None
        return engine_job(state, route.project_id, route.graph, route.job, query, own)

    def _engine(self, route: _Route, query: str, override: _Hit | None) -> Response:
        state = self._state
        jobs = state.engine.get((route.project_id, route.graph))
        if jobs is None:
            message = f"graph : {route.graph} not exist"
            return api_error("ges-engine", 400, GES_BAD_PARAMETER, message)
        params = parse_qs(query, keep_blank_values=True)
        try:
            offset = _int_param(params, "offset", 0, 0, None)
            limit = _int_param(params, "limit", ENGINE_MAX_LIMIT, 1, ENGINE_MAX_LIMIT)
        except ValueError as exc:
            return api_error("ges-engine", 400, GES_BAD_PARAMETER, str(exc))
        now = state.clock.now()
        drift = state.engine_schema == "drift"
        # Only the entries of the page are built: a graph of 100,000 jobs read in many
        # pages costs the simulator one pass over its jobs per page, not 100,000 dicts.
        page: list[dict[str, Any]] = []
        total = 0
        for job in jobs:
            if not job.visible(now):
                continue
            if offset <= total < offset + limit:
                status = None
                if override is not None and override.owner in (None, job.spec.job_id):
                    status = override.fault.status
                entry = job.spec.entry(job.elapsed(now), drift, status)
                if entry is None:  # not started yet: not listed, not counted
                    continue
                page.append(entry)
            elif not job.spec.listed(job.elapsed(now)):
                continue
            total += 1
        body: dict[str, object] = {"jobs": page}
        if drift:
            body["totalCount"] = total
        body["result"] = "success"
        served = tuple((str(e["jobId"]), str(e["status"])) for e in page)
        return replace(json_response(200, body), served=served)


def _authenticate(
    state: SimState,
    t: float,
    scope: Scope,
    method: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str | None:
    """None when the request may pass, else why not (never echoing what was sent)."""
    auth = state.auth
    if auth is None:
        return None
    token = headers.get("x-auth-token")
    if token is not None and token in auth.token_expiry:
        expiry = auth.token_expiry[token]
        if t < expiry:
            return None
        expired_at = (state.epoch + timedelta(seconds=expiry)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"token expires, expires_at: {expired_at}"
    if token is not None and token in auth.tokens:
        return None
    if "authorization" in headers:
        if not auth.credentials:
            return "verify aksk signature fail, AK/SK is not accepted here"
        raw_path = scope.get("raw_path")
        path = quote(scope["path"]) if raw_path is None else bytes(raw_path).decode("latin-1")
        try:
            verify_signature(
                method=method,
                raw_path=path.partition("?")[0],
                query=query,
                headers=headers,
                body=body,
                secrets=auth.credentials,
            )
        except SignatureError as exc:
            return f"verify aksk signature fail, {exc}"
        return None
    return "x-auth-token not found" if token is None else "decrypt token fail"


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def _sleep_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``, or less if the client disconnects; True when it did."""
    disconnected = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await anyio.sleep(seconds)
        tg.cancel_scope.cancel()
    return disconnected


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send: Send, response: Response, request_id: str) -> None:
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("latin-1")),
        (b"x-request-id", request_id.encode("latin-1")),
        *(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers
        ),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
