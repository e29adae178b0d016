"""The ``Simulator``: the public face of the simulated APIs."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from os import PathLike
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, cast, get_args, overload

from typing_extensions import TypeVar

from jobwatch._refs import validate_id
from jobwatch.sim._app import EngineSchema, RecordedRequest, SimApp, SimAuth, SimState
from jobwatch.sim._cce import CceSubJob
from jobwatch.sim._clock import Clock, MonotonicClock
from jobwatch.sim._family import FamilyService, claim, default_job_type, stored_service
from jobwatch.sim._faults import Fault, FaultSlot
from jobwatch.sim._jobs import (
    EngineSpec,
    GesSpec,
    StoredJob,
    SubJob,
    V1Body,
    parse_import_detail,
    parse_timeline,
)
from jobwatch.sim._quota import Quota, QuotaBook
from jobwatch.sim._rds import RdsSpec

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_EPOCH", "ENDED_JOB_LIFETIME", "UNPAID_JOB_LIFETIME", "Simulator"]

DEFAULT_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""The wall-clock time of sim time 0 unless a simulator is given another."""

# ECS API page ecs_02_0901 ("Querying Job Execution Status"): jobs in SUCCESS or FAIL
# are deleted automatically one day later; a PENDING_PAYMENT job whose order is
# cancelled keeps that status and is deleted after 14 days.
ENDED_JOB_LIFETIME = 86_400.0
"""Seconds ECS keeps a job once it ended (``expires_after=ENDED_JOB_LIFETIME``)."""
UNPAID_JOB_LIFETIME = 14 * 86_400.0
"""Seconds ECS keeps a job left ``PENDING_PAYMENT`` (as the ``expires_after`` of a job
whose timeline ends in that status)."""

ClockT = TypeVar("ClockT", bound=Clock, default=Clock)
_S = TypeVar("_S", SubJob, GesSpec, EngineSpec, CceSubJob, RdsSpec)
_T = TypeVar("_T", SubJob, CceSubJob)  # a job of a tree of sub-jobs
_When: TypeAlias = tuple[float | None, float, float | None, Sequence[Fault]]
"""``created_at``, ``visible_after``, ``expires_after`` and ``faults`` of an added job."""


class Simulator(Generic[ClockT]):
    """A simulated Huawei Cloud serving the four job-status APIs.

    Add jobs with :meth:`add_evs_job`, :meth:`add_ges_job`, :meth:`add_engine_job`,
    :meth:`add_cce_job` and :meth:`add_rds_job`,
    faults with :meth:`add_fault`, then send requests to :attr:`app` (an ASGI
    application: ``httpx.ASGITransport(app=sim.app)``, :meth:`transport`, or
    :func:`jobwatch.sim.serve` for a real socket).  Every request is recorded in
    :attr:`requests`.

    ``clock`` gives the sim time (default: a :class:`MonotonicClock` starting at 0;
    a :class:`ManualClock` for tests); sim time ``t`` is shown as wall time
    ``epoch + t`` seconds, so bodies are the same on every run.  ``seed`` seeds the
    random choices: fault probabilities and the ``X-Request-Id`` values (unique
    within a simulator, the same on every run).  ``auth`` None accepts any
    request.  ``engine_schema`` ``"drift"`` makes the engine job list drift from
    2.2.13: ``request`` becomes ``rawRequest``, each job gains ``taskType`` (its
    request's command) and the body gains ``totalCount`` (before paging).

    Safe to fill from one thread while ``serve()`` answers from another.
    """

    @overload
    def __init__(
        self: Simulator[MonotonicClock],
        *,
        clock: None = None,
        auth: SimAuth | None = None,
        seed: int = 0,
        epoch: datetime = DEFAULT_EPOCH,
        engine_schema: EngineSchema = "2.2.13",
    ) -> None: ...
    @overload
    def __init__(
        self,
        *,
        clock: ClockT,
        auth: SimAuth | None = None,
        seed: int = 0,
        epoch: datetime = DEFAULT_EPOCH,
        engine_schema: EngineSchema = "2.2.13",
    ) -> None: ...
    def __init__(
        self,
        *,
        clock: ClockT | None = None,
        auth: SimAuth | None = None,
        seed: int = 0,
        epoch: datetime = DEFAULT_EPOCH,
        engine_schema: EngineSchema = "2.2.13",
    ) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        if auth is not None and not isinstance(auth, SimAuth):
            raise TypeError(f"auth must be a SimAuth or None, not {type(auth).__name__}")
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must have a now() method, not {type(clock).__name__}")
        self.seed = seed
        self._state = SimState(
            clock=MonotonicClock() if clock is None else clock,
            epoch=epoch,
            auth=auth,
            rng=random.Random(seed),
            ids=random.Random(f"request-ids:{seed}"),
        )
        self.engine_schema = engine_schema
        self.app = SimApp(self._state)
        """The ASGI application serving the four APIs."""
        self._connection_counters: list[Callable[[], int]] = []

    @property
    def clock(self) -> ClockT:
        """The simulator's clock."""
        return cast("ClockT", self._state.clock)

    @property
    def auth(self) -> SimAuth | None:
        """What requests must carry to pass, or None when anything passes."""
        return self._state.auth

    @property
    def epoch(self) -> datetime:
        """The wall-clock time of sim time 0."""
        return self._state.epoch

    @property
    def engine_schema(self) -> EngineSchema:
        """``"2.2.13"`` (the documented engine job list) or ``"drift"``; may be changed."""
        return self._state.engine_schema

    @engine_schema.setter
    def engine_schema(self, value: EngineSchema) -> None:
        if value not in get_args(EngineSchema):
            raise ValueError(
                f"engine_schema must be one of {get_args(EngineSchema)}, not {value!r}"
            )
        self._state.engine_schema = value

    def add_evs_job(
        self,
        project_id: str,
        job_id: str,
        timeline: Iterable[tuple[float, str]],
        *,
        service: FamilyService = "evs",
        job_type: str | None = None,
        entities: Mapping[str, Any] | None = None,
        fail_reason: str | None = None,
        error_code: str | None = None,
        sub_jobs: Sequence[SubJob] = (),
        created_at: float | None = None,
        visible_after: float = 0.0,
        expires_after: float | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        """Add an EVS job (``GET /v1/{project_id}/jobs/{job_id}``).

        ``timeline`` is ``(at, raw_status)`` pairs, ``at`` in seconds after
        ``created_at`` (default: the clock's time now).  The job answers from its
        first entry and ``visible_after`` seconds on, until ``expires_after``
        seconds after its last entry (never when None; ECS's documented lifetimes
        are :data:`ENDED_JOB_LIFETIME` and :data:`UNPAID_JOB_LIFETIME`).  ``sub_jobs`` are listed in
        ``entities.sub_jobs`` as they appear (see :class:`SubJob`) and answer on
        their own ids too.  ``faults`` hit only requests for this job.

        ``service`` makes it a job of another service of the EVS job family
        (``"ecs"``, ``"bms"``, ``"vpc"``, ``"ims"``, ``"deh"``, ``"sdrs"``, ``"evs-v2"``,
        ``"dcs"``; ``"ims-cloudimages"`` is ``"ims"``), answered on that service's
        path in its dialect (see ``jobwatch.sim._family``); give its own entities
        (``server_id``, ``image_id``, ...).  One simulator stands for one service's
        endpoint: a job of another endpoint raises ``ValueError``.  ``job_type``
        defaults to a job type of the service (``createVolume`` for EVS).
        """
        validate_id("project_id", project_id)
        validate_id("job_id", job_id)
        stored_service(service)  # ValueError for an unknown service, before anything else
        top = SubJob(
            job_id,
            parse_timeline(timeline),
            job_type=default_job_type(service) if job_type is None else job_type,
            entities=entities,
            sub_jobs=sub_jobs,
            fail_reason=fail_reason,
            error_code=error_code,
        )
        when = (created_at, visible_after, expires_after, faults)
        self._add_tree(self._state.evs, "EVS", project_id, top, when, service)

    def add_ges_job(
        self,
        project_id: str,
        graph_id: str,
        job_id: str,
        timeline: Iterable[tuple[float, str]],
        *,
        job_type: str = "GraphManagement",
        job_name: str = "ImportGraph",
        related_graph: str | None = None,
        import_detail: Mapping[str, Any] | None = None,
        fail_reason: str | None = None,
        v1_body: V1Body = "flat",
        created_at: float | None = None,
        visible_after: float = 0.0,
        expires_after: float | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        """Add a GES management-plane job; it answers on ``/v1.0/...`` and ``/v2/...``.

        ``/v2`` sends snake_case.  ``/v1.0`` sends camelCase in the generation
        ``v1_body``: ``"flat"`` (the 1.0.0 sample), ``"wrapped"`` (the same under
        ``"Job"`` with empty ``errorMessage``/``errorCode``) or ``"old"`` (only
        ``status``, ``pending`` said as ``waiting``, ``errorMessage``, ``errorCode``).
        ``import_detail`` is a ``job_detail`` in wire form, sent only for
        ``job_name == "ImportGraph"`` (empty sections when not given); see
        :meth:`add_evs_job` for the timeline, visibility and faults.
        ``related_graph`` defaults to ``graph_id``.
        """
        validate_id("project_id", project_id)
        validate_id("graph_id", graph_id)
        validate_id("job_id", job_id)
        if v1_body not in get_args(V1Body):
            raise ValueError(f"v1_body must be one of {get_args(V1Body)}, not {v1_body!r}")
        if import_detail is not None and job_name != "ImportGraph":
            raise ValueError("import_detail is sent only for job_name 'ImportGraph'")
        spec = GesSpec(
            graph_id=graph_id,
            job_id=job_id,
            timeline=parse_timeline(timeline),
            job_type=job_type,
            job_name=job_name,
            related_graph=graph_id if related_graph is None else related_graph,
            import_detail=None if import_detail is None else parse_import_detail(import_detail),
            fail_reason=fail_reason,
            v1_body=v1_body,
        )
        key = (project_id, graph_id, job_id)
        with self._state.lock:
            if key in self._state.ges:
                raise ValueError(
                    f"graph {graph_id} of project {project_id} already has job {job_id}"
                )
            self._state.ges[key] = self._store(
                spec, created_at, visible_after, expires_after, faults
            )

    def add_engine_job(
        self,
        project_id: str,
        graph_name: str,
        job_id: str,
        timeline: Iterable[tuple[float, str]],
        *,
        request: Mapping[str, Any] | None = None,
        created_at: float | None = None,
        visible_after: float = 0.0,
        expires_after: float | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        """Add a job to the engine job list of ``graph_name`` (which then exists).

        ``request`` is the job's original request ``{"command", "url", "body"}``
        (default: an ``import_graph`` request).  The list shows visible jobs in
        creation order; ``faults`` hit the list requests of this graph and
        ``unknown_status`` changes only this job's entry.  See :meth:`add_evs_job`
        for the timeline and visibility.
        """
        validate_id("project_id", project_id)
        validate_id("graph_name", graph_name)
        validate_id("job_id", job_id)
        if request is None:
            url = f"/ges/v1.0/{project_id}/graphs/{graph_name}/action?action_id=import-graph"
            request = {"command": "import_graph", "url": url, "body": {}}
        if not isinstance(request, Mapping):
            raise TypeError(f"request must be a mapping, not {type(request).__name__}")
        spec = EngineSpec(graph_name, job_id, parse_timeline(timeline), dict(request))
        with self._state.lock:
            jobs = self._state.engine.setdefault((project_id, graph_name), [])
            ids = self._state.engine_ids.setdefault((project_id, graph_name), set())
            if job_id in ids:
                raise ValueError(f"graph {graph_name} of project {project_id} already has {job_id}")
            stored = self._store(spec, created_at, visible_after, expires_after, faults)
            # Creation order; a graph of 100,000 jobs is filled in linear time (issue 11).
            bisect.insort(jobs, stored, key=_creation_order)
            ids.add(job_id)

    def add_cce_job(
        self,
        project_id: str,
        job_id: str,
        timeline: Iterable[tuple[float, str]],
        *,
        job_type: str = "CreateCluster",
        cluster_uid: str | None = None,
        resource_id: str | None = None,
        resource_name: str | None = None,
        extend_param: Mapping[str, str] | None = None,
        reason: str | None = None,
        sub_jobs: Sequence[CceSubJob] = (),
        created_at: float | None = None,
        visible_after: float = 0.0,
        expires_after: float | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        """Add a CCE job (``GET /api/v3/projects/{project_id}/jobs/{job_id}``).

        Phases are ``Initializing``, ``Running``, ``Success``, ``Failed``; ``reason``
        is sent as ``status.reason`` once the job has ended.  ``sub_jobs`` are listed
        in ``spec.subJobs`` as they appear (see :class:`CceSubJob`) and answer on
        their own IDs too; see :meth:`add_evs_job` for the timeline, visibility and
        faults.  An unknown job is HTTP 404 ``CCE.01404001``.
        """
        validate_id("project_id", project_id)
        validate_id("job_id", job_id)
        top = CceSubJob(
            job_id,
            parse_timeline(timeline),
            job_type=job_type,
            cluster_uid=cluster_uid,
            resource_id=resource_id,
            resource_name=resource_name,
            extend_param=extend_param,
            reason=reason,
            sub_jobs=sub_jobs,
        )
        when = (created_at, visible_after, expires_after, faults)
        self._add_tree(self._state.cce, "CCE", project_id, top, when)

    def add_rds_job(
        self,
        project_id: str,
        job_id: str,
        timeline: Iterable[tuple[float, str]],
        *,
        name: str = "CreateMysqlSingleHAInstance",
        instance: Mapping[str, Any] | None = None,
        entities: Mapping[str, Any] | None = None,
        fail_reason: str | None = None,
        process: Iterable[tuple[float, str]] | None = None,
        created_at: float | None = None,
        visible_after: float = 0.0,
        expires_after: float | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        """Add an RDS task-center job (``GET /v3/{project_id}/jobs?id={job_id}``).

        Statuses are ``Running``, ``Completed``, ``Failed``; ``fail_reason`` is sent
        once the job has ended, ``process`` (``(at, "60%")`` pairs) while it is
        ``Running``.  RDS says a new job takes several seconds to be found
        (``visible_after``) and keeps a month of jobs (``expires_after``); see
        :meth:`add_evs_job` for the timeline and faults.  An unknown job is HTTP 400
        ``DBS.200543``.
        """
        validate_id("project_id", project_id)
        validate_id("job_id", job_id)
        for what, value in (("instance", instance), ("entities", entities)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"{what} must be a mapping, not {type(value).__name__}")
        spec = RdsSpec(
            job_id=job_id,
            timeline=parse_timeline(timeline),
            name=name,
            instance=None if instance is None else dict(instance),
            entities=None if entities is None else dict(entities),
            fail_reason=fail_reason,
            process=None if process is None else parse_timeline(process),
        )
        with self._state.lock:
            if (project_id, job_id) in self._state.rds:
                raise ValueError(f"project {project_id} already has RDS job {job_id}")
            stored = self._store(spec, created_at, visible_after, expires_after, faults)
            self._state.rds[(project_id, job_id)] = stored

    def add_graph(self, project_id: str, graph_name: str) -> None:
        """Make ``graph_name`` exist for the engine job list, with no jobs yet."""
        validate_id("project_id", project_id)
        validate_id("graph_name", graph_name)
        with self._state.lock:
            self._state.engine.setdefault((project_id, graph_name), [])
            self._state.engine_ids.setdefault((project_id, graph_name), set())

    def add_fault(self, fault: Fault) -> None:
        """Add a global fault (it may hit any request; see :class:`Fault`)."""
        slot = FaultSlot(fault)
        with self._state.lock:
            self._state.faults.append(slot)

    def set_quota(self, quota: Quota | None) -> None:
        """Throttle each tenant to ``quota`` from now on (None: no quota), with fresh buckets.

        Beyond it the gateway answers HTTP 429 ``APIGW.0308`` naming the limit (see
        :class:`Quota`); the buckets fill by the simulator's clock.
        """
        book = None if quota is None else QuotaBook(quota)
        with self._state.lock:
            self._state.quota = book

    @property
    def quota(self) -> Quota | None:
        """The tenant quota in force, or None."""
        book = self._state.quota
        return None if book is None else book.quota

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    def requests_for(self, job: str) -> list[RecordedRequest]:
        """The requests for job id ``job`` (or for the engine list of graph ``job``)."""
        return [request for request in self.requests if request.job == job]

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._state.lock:
            self._state.requests.clear()

    def project_ids(self) -> set[str]:
        """The projects that jobs or graphs were added to."""
        state = self._state
        with state.lock:
            return (
                {key[0] for key in state.evs}
                | {key[0] for key in state.ges}
                | {key[0] for key in state.engine}
                | {key[0] for key in state.cce}
                | {key[0] for key in state.rds}
            )

    @property
    def open_connections(self) -> int:
        """HTTP connections open right now on the sockets ``serve()`` runs for this simulator."""
        return sum(count() for count in list(self._connection_counters))

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport to :attr:`app`; the ``reset`` fault raises ``httpx.ReadError``."""
        from jobwatch.sim._transport import SimTransport

        return SimTransport(self.app)

    @classmethod
    def from_scenario(cls, data: Mapping[str, Any], *, clock: Clock | None = None) -> Simulator:
        """Build a simulator from a scenario (see the ``jobwatch.sim`` docs for its form).

        ``clock`` overrides the scenario's own ``"clock"``.
        """
        from jobwatch.sim._scenario import build

        return build(cls, data, clock)

    @classmethod
    def from_scenario_file(
        cls, path: str | PathLike[str], *, clock: Clock | None = None
    ) -> Simulator:
        """Build a simulator from a JSON scenario file (UTF-8)."""
        from jobwatch.sim._scenario import build, load

        return build(cls, load(path), clock)

    def _add_tree(
        self,
        table: dict[tuple[str, str], tuple[StoredJob[_T], tuple[_T, ...]]],
        what: str,
        project_id: str,
        top: _T,
        when: _When,
        service: FamilyService | None = None,
    ) -> None:
        """Store the job ``top`` and put every job of its tree with an ID in ``table``.

        ``ValueError`` when an ID repeats in the tree or ``table`` holds one already
        (``what`` names the service), or when ``service`` (a family job's) is not the
        endpoint's.
        """
        paths = [path for path in top.walk() if path[-1].job_id is not None]
        keys = [(project_id, str(path[-1].job_id)) for path in paths]
        if len(set(keys)) != len(keys):
            raise ValueError(f"job {top.job_id} repeats a job id among its sub-jobs")
        with self._state.lock:
            taken = sorted(key[1] for key in keys if key in table)
            if taken:
                raise ValueError(f"project {project_id} already has {what} jobs {taken}")
            stored = self._store(top, *when)
            if service is not None:
                claim(self._state.family, service, keys)  # ValueError: another endpoint's job
            table.update((key, (stored, path)) for key, path in zip(keys, paths, strict=True))

    def _store(
        self,
        spec: _S,
        created_at: float | None,
        visible_after: float,
        expires_after: float | None,
        faults: Sequence[Fault],
    ) -> StoredJob[_S]:
        """Wrap ``spec`` with when it exists and its faults; call with the lock held."""
        state = self._state
        state.seq += 1
        return StoredJob(
            spec=spec,
            created_at=state.clock.now() if created_at is None else created_at,
            visible_after=visible_after,
            expires_after=expires_after,
            faults=tuple(FaultSlot(fault) for fault in faults),
            seq=state.seq,
        )

    def __repr__(self) -> str:
        return f"Simulator(clock={self._state.clock!r}, seed={self.seed!r})"


def _creation_order(job: StoredJob[EngineSpec]) -> tuple[float, int]:
    return (job.created_at, job.seq)
