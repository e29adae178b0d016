"""A simulator of the four job-status APIs jobwatch speaks, for tests, examples and demos.

:class:`Simulator` serves, as a pure ASGI application (:attr:`Simulator.app`):

* EVS jobs, ``GET /v1/{project_id}/jobs/{job_id}`` (sub-jobs nested in
  ``entities.sub_jobs``; an unknown job is HTTP 400 ``{"error": {"message", "code"}}``
  with EVS's code ``Common.0011``);
* GES management jobs, ``GET /v1.0/{project_id}/graphs/{graph_id}/jobs/{job_id}/status``
  and the same under ``/v2`` (HTTP 400 ``GES.8301`` when unknown);
* GES management job lists, ``GET /v1.0/{project_id}/graphs/jobs`` (``jobCount``,
  ``jobList``) and ``GET /v2/{project_id}/graphs/jobs`` (``job_count``, ``job_list``):
  ``offset``/``limit`` paging, ``status``, ``graph_name`` and date filters;
* GES engine job lists, ``GET /ges/v1.0/{project_id}/graphs/{graph_name}/jobs/status``
  (``limit``/``offset`` paging; HTTP 400 ``GES.8000`` for an unknown graph or a bad parameter),
  and each engine job's own ``.../graphs/{graph_name}/jobs/{job_id}/status`` (HTTP 400
  ``GES.8301`` when unknown);
* CCE jobs, ``GET /api/v3/projects/{project_id}/jobs/{job_id}`` (sub-jobs nested in
  ``spec.subJobs``; HTTP 404 ``{"errorCode", "errorMessage"}`` ``CCE.01404001`` when unknown);
* RDS jobs, ``GET /v3/{project_id}/jobs?id={job_id}`` (HTTP 400 ``{"error_code",
  "error_msg"}`` ``DBS.200543`` when unknown).

Any other path is a 404 and any method but GET a 405, both in the API gateway's
``{"error_code", "error_msg", "request_id"}`` shape.  Every response carries
``Content-Type`` and a unique ``X-Request-Id``.

Each job follows a timeline of ``(at, raw_status)`` pairs, ``at`` in seconds after
its creation; advance a :class:`ManualClock` to move jobs along.  Any status string
is allowed.  ``begin_time`` is the moment of the first entry whose status is not a
queued one (``INIT``/``WAITING_EXECUTE``/``PENDING_PAYMENT``, ``pending``/``waiting``);
``end_time`` that of the last entry, unless its status is an unfinished one (then the
job never ends).  ``expires_after`` deletes a job that long after its last entry: ECS
deletes ended jobs a day later and unpaid ones after 14 days
(:data:`ENDED_JOB_LIFETIME`, :data:`UNPAID_JOB_LIFETIME`).
Sim time ``t`` is shown as wall time ``epoch + t`` (default ``2024-01-01T00:00:00Z``),
so bodies are the same on every run.  :class:`Fault`
injects errors, throttling, latency and connection resets; :class:`SimAuth`
requires tokens or AK/SK signatures.  Drive the app in process::

    sim = Simulator(clock=ManualClock())
    sim.add_evs_job("proj", "job-1", [(0, "INIT"), (1, "RUNNING"), (5, "SUCCESS")])
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        sim.clock.advance(2)
        (await client.get("/v1/proj/jobs/job-1")).json()["status"]  # "RUNNING"

or on a real socket with :func:`serve` (needs the ``sim`` extra, uvicorn)::

    with serve(sim) as base_url:
        ...

Scenarios
---------
:meth:`Simulator.from_scenario` (a mapping) and :meth:`Simulator.from_scenario_file`
(a JSON file) build a simulator from data.  Every key is optional::

    {
      "version": 1,
      "seed": 0,
      "clock": "monotonic",              // or "manual" (a ManualClock at 0)
      "epoch": "2024-01-01T00:00:00Z",   // wall time of sim time 0
      "engine_schema": "2.2.13",         // or "drift"
      "auth": {"tokens": ["tok"], "credentials": {"AK": "SK"}},
      "graphs": [{"project_id": "p", "graph_name": "g"}],
      "faults": [{"kind": "throttle_429", "count": 2, "retry_after": 1, "api": "evs"}],
      "evs_jobs": [
        {"project_id": "p", "job_id": "j1",
         "timeline": [[0, "INIT"], [1, "RUNNING"], [5, "SUCCESS"]],
         "job_type": "batchCreateVolume",
         "sub_jobs": [{"job_id": "j1a", "timeline": [[2, "RUNNING"], [4, "FAIL"]],
                       "appear_at": 2, "fail_reason": "no capacity"}],
         "faults": [{"kind": "http_500", "window": [0, 1]}]}
      ],
      "ges_jobs": [
        {"project_id": "p", "graph_id": "g1", "job_id": "j2",
         "timeline": [[0, "pending"], [1, "running"], [3, "success"]],
         "v1_body": "wrapped",
         "import_detail": {"edgeset_path": [{"path": "obs://b/e.csv", "status": "partFailed",
                                             "total_lines": 10, "failed_lines": 2,
                                             "successful_lines": 8}]}}
      ],
      "engine_jobs": [
        {"project_id": "p", "graph_name": "g", "job_id": "j3",
         "timeline": [[0, "pending"], [2, "complete"]],
         "request": {"command": "import_graph", "url": "/ges/...", "body": {}}}
      ],
      "cce_jobs": [
        {"project_id": "p", "job_id": "j4", "timeline": [[0, "Initializing"], [5, "Success"]],
         "sub_jobs": [{"job_id": "j4a", "timeline": [[1, "Running"], [4, "Success"]]}]}
      ],
      "rds_jobs": [
        {"project_id": "p", "job_id": "j5", "timeline": [[0, "Running"], [5, "Completed"]],
         "process": [[0, "10%"], [3, "60%"]]}
      ]
    }

(``//`` comments are for this page only; JSON has none.)  The keys of an entry of
``evs_jobs``, ``ges_jobs``, ``engine_jobs``, ``cce_jobs``, ``rds_jobs`` and ``graphs``
are the parameters of :meth:`Simulator.add_evs_job`, :meth:`~Simulator.add_ges_job`,
:meth:`~Simulator.add_engine_job`, :meth:`~Simulator.add_cce_job`,
:meth:`~Simulator.add_rds_job` and :meth:`~Simulator.add_graph`; those of a
sub-job and a fault are the fields of :class:`SubJob` (:class:`CceSubJob` in
``cce_jobs``) and :class:`Fault`
(``window`` as a two-element list).  Timelines are lists of ``[at, status]``.
Unknown keys are errors.  ``from_scenario(data, clock=...)`` overrides ``"clock"``.
"""

from __future__ import annotations

# A simulator's timelines start when it is made: the client and the watcher, which
# ``import jobwatch`` leaves to their first use, and the dialects' wire models, which
# wait for their first validation, are imported now rather than inside the first
# timeline (a job's first states last a tenth of a second in many tests).
import jobwatch._dialects
import jobwatch._wait  # imported for its cost, see above
from jobwatch.sim._app import RecordedRequest, SimAuth
from jobwatch.sim._cce import CceSubJob
from jobwatch.sim._clock import Clock, ManualClock, MonotonicClock
from jobwatch.sim._family import FamilyService
from jobwatch.sim._faults import ApiName, Fault, FaultKind, SimulatedReset
from jobwatch.sim._jobs import SubJob
from jobwatch.sim._quota import Quota
from jobwatch.sim._server import serve
from jobwatch.sim._simulator import (
    DEFAULT_EPOCH,
    ENDED_JOB_LIFETIME,
    UNPAID_JOB_LIFETIME,
    Simulator,
)

jobwatch._dialects.import_wire_models()

__all__ = [
    "DEFAULT_EPOCH",
    "ENDED_JOB_LIFETIME",
    "UNPAID_JOB_LIFETIME",
    "ApiName",
    "CceSubJob",
    "Clock",
    "FamilyService",
    "Fault",
    "FaultKind",
    "ManualClock",
    "MonotonicClock",
    "Quota",
    "RecordedRequest",
    "SimAuth",
    "SimulatedReset",
    "Simulator",
    "SubJob",
    "serve",
]
