"""Tests of ``jobwatch.sim``: bodies, faults, auth, the request log, scenarios and serve()."""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import jobwatch.sim
from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch.sim import (
    Fault,
    ManualClock,
    MonotonicClock,
    RecordedRequest,
    SimAuth,
    SimulatedReset,
    Simulator,
    SubJob,
    serve,
)

P = "proj-1"
EVS_KEYS = {
    "status",
    "entities",
    "job_id",
    "job_type",
    "begin_time",
    "end_time",
    "error_code",
    "fail_reason",
}
EVS_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
GES_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Simulator[ManualClock]:
    return Simulator(clock=clock)


def client(sim: Simulator[Any], **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://sim", **kw
    )


async def get_json(sim: Simulator[Any], path: str, **params: Any) -> tuple[int, Any]:
    async with client(sim) as c:
        response = await c.get(path, params=params)
    return response.status_code, response.json()


def evs(job_id: str, project: str = P) -> str:
    return f"/v1/{project}/jobs/{job_id}"


def ges(version: str, graph: str, job_id: str, project: str = P) -> str:
    return f"/{version}/{project}/graphs/{graph}/jobs/{job_id}/status"


def engine(graph: str, project: str = P) -> str:
    return f"/ges/v1.0/{project}/graphs/{graph}/jobs/status"


# --- clocks, timelines, validation --------------------------------------------------------------


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=5)
    assert clock.now() == 5.0
    assert clock.advance(2.5) == 7.5
    clock.set(1)
    assert clock.now() == 1.0
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="finite"):
        clock.set(float("nan"))


def test_default_clock_is_monotonic_from_zero() -> None:
    sim = Simulator()
    assert isinstance(sim.clock, MonotonicClock)
    assert 0.0 <= sim.clock.now() < 5.0


@pytest.mark.parametrize(
    ("timeline", "message"),
    [
        ([], "must not be empty"),
        ([(2, "RUNNING"), (1, "INIT")], "time order"),
        ([(0, "")], "non-empty strings"),
        ([(0, "INIT", "extra")], "pairs"),
        ([("soon", "INIT")], "finite number"),
        ("INIT", "list of"),
    ],
)
def test_bad_timelines_are_refused(
    sim: Simulator[ManualClock], timeline: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sim.add_evs_job(P, "job-1", timeline)


def test_duplicate_and_invalid_ids_are_refused(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "job-1", [(0, "INIT")], sub_jobs=[SubJob("sub-1", [(0, "INIT")])])
    with pytest.raises(ValueError, match="already has"):
        sim.add_evs_job(P, "sub-1", [(0, "INIT")])
    with pytest.raises(ValueError, match="repeats"):
        sim.add_evs_job(P, "job-2", [(0, "INIT")], sub_jobs=[SubJob("job-2", [(0, "INIT")])])
    with pytest.raises(ValueError, match="job_id"):
        sim.add_evs_job(P, "../etc", [(0, "INIT")])
    sim.add_ges_job(P, "g", "job-1", [(0, "pending")])
    with pytest.raises(ValueError, match="already has"):
        sim.add_ges_job(P, "g", "job-1", [(0, "pending")])
    sim.add_engine_job(P, "g", "job-1", [(0, "pending")])
    with pytest.raises(ValueError, match="already has"):
        sim.add_engine_job(P, "g", "job-1", [(0, "pending")])
    with pytest.raises(ValueError, match="v1_body"):
        sim.add_ges_job(P, "g", "job-2", [(0, "pending")], v1_body="new")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="engine_schema"):
        sim.engine_schema = "3.0"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="timezone"):
        Simulator(epoch=datetime(2024, 1, 1))


def test_public_names() -> None:
    public = {
        name
        for name, value in vars(jobwatch.sim).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(jobwatch.sim.__all__) == public
    assert len(jobwatch.sim.__all__) == len(public)
    for name in public - {"ApiName", "FamilyService", "FaultKind", "DEFAULT_EPOCH"}:
        assert getattr(jobwatch.sim, name).__doc__, name


# --- EVS ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_evs_body_follows_the_timeline(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    sim.add_evs_job(
        P,
        "job-1",
        [(0, "INIT"), (1, "RUNNING"), (5, "SUCCESS")],
        entities={"volume_id": "vol-1"},
    )
    status, body = await get_json(sim, evs("job-1"))
    assert status == 200
    assert body == {
        "status": "INIT",
        "entities": {"volume_id": "vol-1"},
        "job_id": "job-1",
        "job_type": "createVolume",
        "begin_time": "",
        "end_time": "",
        "error_code": None,
        "fail_reason": None,
    }
    clock.advance(1.25)
    _, body = await get_json(sim, evs("job-1"))
    assert (body["status"], body["begin_time"], body["end_time"]) == (
        "RUNNING",
        "2024-01-01T00:00:01.000Z",
        "",
    )
    clock.advance(10)
    _, body = await get_json(sim, evs("job-1"))
    assert body["status"] == "SUCCESS"
    assert body["begin_time"] == "2024-01-01T00:00:01.000Z"
    assert body["end_time"] == "2024-01-01T00:00:05.000Z"
    assert set(body) == EVS_KEYS


@pytest.mark.anyio
async def test_evs_times_use_creation_time_and_epoch(clock: ManualClock) -> None:
    sim = Simulator(clock=clock, epoch=datetime(2016, 3, 8, 7, 40, 13, 219000, tzinfo=UTC))
    clock.set(100)
    sim.add_evs_job(P, "now", [(0, "RUNNING"), (0.5, "FAIL")], fail_reason="x", error_code="E.1")
    sim.add_evs_job(P, "later", [(0, "RUNNING")], created_at=200)
    _, body = await get_json(sim, evs("now"))
    assert body["begin_time"] == "2016-03-08T07:41:53.219Z"
    assert body["end_time"] == ""
    assert (body["fail_reason"], body["error_code"]) == (None, None)
    clock.advance(1)
    _, body = await get_json(sim, evs("now"))
    assert body["end_time"] == "2016-03-08T07:41:53.719Z"
    assert (body["status"], body["fail_reason"], body["error_code"]) == ("FAIL", "x", "E.1")
    assert (await get_json(sim, evs("later")))[0] == 400
    clock.set(200)
    _, body = await get_json(sim, evs("later"))
    assert body["begin_time"] == "2016-03-08T07:43:33.219Z"


@pytest.mark.anyio
async def test_evs_queued_unknown_and_endless_statuses(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    sim.add_evs_job(P, "new", [(0, "WAITING_EXECUTE"), (2, "MIGRATING")])
    sim.add_evs_job(P, "stuck", [(0, "INIT"), (1, "RUNNING")])
    _, body = await get_json(sim, evs("new"))
    assert (body["status"], body["begin_time"]) == ("WAITING_EXECUTE", "")
    clock.advance(3)
    _, body = await get_json(sim, evs("new"))
    assert body["status"] == "MIGRATING"
    assert body["begin_time"] == body["end_time"] == "2024-01-01T00:00:02.000Z"
    _, body = await get_json(sim, evs("stuck"))
    assert (body["status"], body["end_time"]) == ("RUNNING", "")
    assert EVS_TIME.fullmatch(body["begin_time"])


@pytest.mark.anyio
async def test_evs_not_found_and_project_isolation(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "job-1", [(0, "INIT")])
    status, body = await get_json(sim, evs("job-1", project="other"))
    assert status == 400  # EVS documents "400 Common.0011 query job fail."
    assert body == {
        "error": {"message": "query job fail. job job-1 not found", "code": "Common.0011"}
    }
    assert (await get_json(sim, evs("nope")))[0] == 400


@pytest.mark.anyio
async def test_evs_sub_jobs_appear_nest_and_fail_alone(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    grandchild = SubJob("vol-c", [(3, "RUNNING"), (4, "SUCCESS")], entities={"volume_id": "c"})
    sim.add_evs_job(
        P,
        "batch",
        [(0, "INIT"), (1, "RUNNING"), (6, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[
            SubJob(
                "vol-a",
                [(1, "RUNNING"), (2, "FAIL")],
                appear_at=1,
                fail_reason="no capacity",
                error_code="EVS.2024",
            ),
            SubJob(
                "vol-b",
                [(2, "INIT"), (3, "RUNNING"), (5, "SUCCESS")],
                appear_at=2.5,
                job_type="batchCreateVolume",
                sub_jobs=[grandchild],
            ),
        ],
    )
    _, body = await get_json(sim, evs("batch"))
    assert body["entities"] == {"sub_jobs": []}
    assert (await get_json(sim, evs("vol-a")))[0] == 400

    clock.set(2)
    _, body = await get_json(sim, evs("batch"))
    [sub_a] = body["entities"]["sub_jobs"]
    assert set(sub_a) == EVS_KEYS
    assert (sub_a["job_id"], sub_a["status"], sub_a["fail_reason"]) == (
        "vol-a",
        "FAIL",
        "no capacity",
    )
    assert sub_a["error_code"] == "EVS.2024"

    clock.set(3.5)
    _, body = await get_json(sim, evs("batch"))
    sub_a, sub_b = body["entities"]["sub_jobs"]
    assert (sub_b["job_id"], sub_b["status"]) == ("vol-b", "RUNNING")
    [sub_c] = sub_b["entities"]["sub_jobs"]
    assert sub_c["entities"] == {"volume_id": "c"}
    assert sub_c["status"] == "RUNNING"

    clock.set(7)
    _, body = await get_json(sim, evs("batch"))
    assert body["status"] == "SUCCESS"
    statuses = [sub["status"] for sub in body["entities"]["sub_jobs"]]
    assert statuses == ["FAIL", "SUCCESS"]
    status, alone = await get_json(sim, evs("vol-c"))
    assert status == 200
    assert alone == body["entities"]["sub_jobs"][1]["entities"]["sub_jobs"][0]


def test_sub_job_validation() -> None:
    with pytest.raises(ValueError, match="not both"):
        SubJob("a", [(0, "INIT")], entities={"sub_jobs": []}, sub_jobs=[SubJob("b", [(0, "X")])])
    with pytest.raises(TypeError, match="SubJob"):
        SubJob("a", [(0, "INIT")], sub_jobs=[{"job_id": "b"}])  # type: ignore[list-item]


# --- GES management plane -----------------------------------------------------------------------


IMPORT_DETAIL = {
    "edgeset_path": [
        {
            "path": "obs://bucket/edges.csv",
            "status": "partFailed",
            "cause": "2 bad lines",
            "log": "obs://bucket/log/edges.log",
            "total_lines": 10,
            "failed_lines": 2,
            "successful_lines": 8,
        }
    ],
    "schemaPath": [{"path": "obs://bucket/schema.xml", "status": "success"}],
}


@pytest.mark.anyio
async def test_ges_v2_body_over_time(sim: Simulator[ManualClock], clock: ManualClock) -> None:
    sim.add_ges_job(
        P,
        "graph-1",
        "job-1",
        [(0, "pending"), (1, "running"), (3, "success")],
        related_graph="GES_UI_AUTO",
        import_detail=IMPORT_DETAIL,
    )
    status, body = await get_json(sim, ges("v2", "graph-1", "job-1"))
    assert status == 200
    assert body["status"] == "pending"
    assert "begin_time" not in body
    assert "end_time" not in body
    clock.set(2)
    _, body = await get_json(sim, ges("v2", "graph-1", "job-1"))
    assert (body["status"], body["begin_time"]) == ("running", "2024-01-01T00:00:01")
    assert "end_time" not in body
    clock.set(3)
    _, body = await get_json(sim, ges("v2", "graph-1", "job-1"))
    assert body == {
        "job_id": "job-1",
        "status": "success",
        "job_type": "GraphManagement",
        "job_name": "ImportGraph",
        "related_graph": "GES_UI_AUTO",
        "begin_time": "2024-01-01T00:00:01",
        "end_time": "2024-01-01T00:00:03",
        "job_detail": {
            "vertexset_path": [],
            "edgeset_path": [
                {
                    "path": "obs://bucket/edges.csv",
                    "log": "obs://bucket/log/edges.log",
                    "cause": "2 bad lines",
                    "status": "partFailed",
                    "total_lines": 10,
                    "failed_lines": 2,
                    "successful_lines": 8,
                }
            ],
            "schema_path": [
                {
                    "path": "obs://bucket/schema.xml",
                    "log": None,
                    "cause": None,
                    "status": "success",
                    "total_lines": -1,
                    "failed_lines": -1,
                    "successful_lines": -1,
                }
            ],
        },
        "job_progress": 0,
    }


@pytest.mark.anyio
async def test_ges_v1_flat_is_the_v2_body_in_camel_case(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    sim.add_ges_job(
        P,
        "g",
        "job-1",
        [(0, "pending"), (1, "running"), (3, "success")],
        import_detail=IMPORT_DETAIL,
    )
    clock.set(4)
    _, v2 = await get_json(sim, ges("v2", "g", "job-1"))
    _, v1 = await get_json(sim, ges("v1.0", "g", "job-1"))
    assert set(v1) == {
        "jobId",
        "status",
        "jobType",
        "jobName",
        "relatedGraph",
        "beginTime",
        "endTime",
        "jobDetail",
        "jobProgress",
    }
    assert (v1["jobId"], v1["beginTime"], v1["endTime"]) == (
        v2["job_id"],
        v2["begin_time"],
        v2["end_time"],
    )
    [edges] = v1["jobDetail"]["edgesetPath"]
    assert (edges["status"], edges["totalLines"], edges["failedLines"]) == ("partFailed", 10, 2)
    assert edges["successfulLines"] == 8
    assert v1["jobDetail"]["schemaPath"][0]["totalLines"] == -1


@pytest.mark.anyio
async def test_ges_v1_wrapped_and_old_generations(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    timeline = [(0, "pending"), (1, "running"), (2, "success")]
    sim.add_ges_job(P, "g", "wrapped", timeline, v1_body="wrapped", job_name="CreateGraph")
    sim.add_ges_job(P, "g", "old", timeline, v1_body="old")
    _, body = await get_json(sim, ges("v1.0", "g", "old"))
    assert body == {"status": "waiting", "errorMessage": "", "errorCode": ""}
    _, body = await get_json(sim, ges("v1.0", "g", "wrapped"))
    assert body == {
        "errorMessage": "",
        "errorCode": "",
        "Job": {
            "jobId": "wrapped",
            "status": "pending",
            "jobType": "GraphManagement",
            "jobName": "CreateGraph",
            "relatedGraph": "g",
            "jobProgress": 0,
        },
    }
    clock.set(1)
    assert (await get_json(sim, ges("v1.0", "g", "old")))[1]["status"] == "running"
    clock.set(2)
    assert (await get_json(sim, ges("v1.0", "g", "old")))[1]["status"] == "success"
    _, body = await get_json(sim, ges("v1.0", "g", "wrapped"))
    assert body["Job"]["endTime"] == "2024-01-01T00:00:02"
    assert "jobDetail" not in body["Job"]
    _, v2 = await get_json(sim, ges("v2", "g", "old"))
    assert (v2["status"], v2["job_detail"]) == (
        "success",
        {"vertexset_path": [], "edgeset_path": [], "schema_path": []},
    )


@pytest.mark.anyio
async def test_ges_failed_job_reports_its_reason(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    timeline = [(0, "running"), (1, "failed")]
    sim.add_ges_job(P, "g", "flat", timeline, job_name="StartGraph", fail_reason="no quota")
    sim.add_ges_job(P, "g", "old", timeline, fail_reason="no quota", v1_body="old")
    _, body = await get_json(sim, ges("v2", "g", "flat"))
    assert "fail_reason" not in body
    assert GES_TIME.fullmatch(body["begin_time"])
    clock.set(1)
    _, body = await get_json(sim, ges("v2", "g", "flat"))
    assert (body["status"], body["fail_reason"]) == ("failed", "no quota")
    _, body = await get_json(sim, ges("v1.0", "g", "flat"))
    assert (body["status"], body["failReason"]) == ("failed", "no quota")
    _, body = await get_json(sim, ges("v1.0", "g", "old"))
    assert body == {"status": "failed", "errorMessage": "no quota", "errorCode": ""}


@pytest.mark.anyio
async def test_ges_not_found_shapes(sim: Simulator[ManualClock]) -> None:
    sim.add_ges_job(P, "g", "job-1", [(0, "pending")])
    status, body = await get_json(sim, ges("v1.0", "g", "missing"))
    assert status == 400
    assert body == {"errorMessage": "can not find job, jobId is missing", "errorCode": "GES.8301"}
    status, body = await get_json(sim, ges("v2", "other-graph", "job-1"))
    assert status == 400
    assert body == {"error_msg": "can not find job, jobId is job-1", "error_code": "GES.8301"}


def test_ges_import_detail_validation(sim: Simulator[ManualClock]) -> None:
    with pytest.raises(ValueError, match="only for job_name"):
        sim.add_ges_job(
            P, "g", "j", [(0, "pending")], job_name="CreateGraph", import_detail=IMPORT_DETAIL
        )
    bad_details: list[Any] = [
        {"edges": []},
        {"edgeset_path": [{"path": "x"}]},
        {"edgeset_path": [{"path": "x", "status": "success", "lines": 3}]},
        {"edgeset_path": [{"path": "x", "status": "success", "total_lines": "3"}]},
        {"edgeset_path": "x.csv"},
    ]
    for detail in bad_details:
        with pytest.raises(ValueError, match="import_detail"):
            sim.add_ges_job(P, "g", "j", [(0, "pending")], import_detail=detail)


# --- GES engine ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_engine_list_in_creation_order_over_time(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    request = {"command": "import_graph", "url": "/ges/v1.0/p/graphs/g/action", "body": {"a": 1}}
    sim.add_engine_job(P, "movie", "second", [(0, "running"), (2, "complete")], created_at=1)
    sim.add_engine_job(P, "movie", "first", [(0, "pending"), (1, "complete")], request=request)
    sim.add_engine_job(P, "other", "elsewhere", [(0, "pending")])
    status, body = await get_json(sim, engine("movie"))
    assert status == 200
    assert body == {
        "jobs": [{"jobId": "first", "status": "pending", "request": request}],
        "result": "success",
    }
    clock.set(3)
    _, body = await get_json(sim, engine("movie"))
    assert [(job["jobId"], job["status"]) for job in body["jobs"]] == [
        ("first", "complete"),
        ("second", "complete"),
    ]
    assert body["jobs"][1]["request"]["command"] == "import_graph"
    assert body["jobs"][1]["request"]["url"] == (
        f"/ges/v1.0/{P}/graphs/movie/action?action_id=import-graph"
    )


@pytest.mark.anyio
async def test_engine_paging(sim: Simulator[ManualClock]) -> None:
    for i in range(5):
        sim.add_engine_job(P, "g", f"job-{i}", [(0, "complete")])

    async def ids(**params: Any) -> list[str]:
        status, body = await get_json(sim, engine("g"), **params)
        assert status == 200
        return [job["jobId"] for job in body["jobs"]]

    assert await ids() == [f"job-{i}" for i in range(5)]
    assert await ids(limit=2) == ["job-0", "job-1"]
    assert await ids(limit=2, offset=2) == ["job-2", "job-3"]
    assert await ids(offset=4, limit=100000) == ["job-4"]
    assert await ids(offset=9) == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "100001"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"limit": "-3"},
        {"limit": "+-3"},
        {"limit": "\uff11\uff10"},
        {"offset": "-1"},
        {"offset": "x"},
    ],
)
async def test_engine_rejects_bad_paging(
    sim: Simulator[ManualClock], params: dict[str, str]
) -> None:
    sim.add_graph(P, "g")
    status, body = await get_json(sim, engine("g"), **params)
    assert status == 400
    assert set(body) == {"errorMessage", "errorCode", "result"}
    assert (body["errorCode"], body["result"]) == ("GES.8000", "failed")
    assert next(iter(params)) in body["errorMessage"]


@pytest.mark.anyio
async def test_engine_unknown_graph_and_empty_graph(sim: Simulator[ManualClock]) -> None:
    status, body = await get_json(sim, engine("movidde"))
    assert status == 400
    assert body == {
        "errorMessage": "graph : movidde not exist",
        "errorCode": "GES.8000",
        "result": "failed",
    }
    sim.add_graph(P, "movidde")
    assert await get_json(sim, engine("movidde")) == (200, {"jobs": [], "result": "success"})
    assert (await get_json(sim, engine("movidde", project="other")))[0] == 400


@pytest.mark.anyio
async def test_engine_schema_drift(sim: Simulator[ManualClock], clock: ManualClock) -> None:
    sim.add_engine_job(P, "g", "a", [(0, "running")])
    sim.add_engine_job(P, "g", "b", [(0, "complete")], request={"command": "add_index"})
    sim.add_engine_job(P, "g", "c", [(5, "pending")])
    sim.engine_schema = "drift"
    _, body = await get_json(sim, engine("g"), limit=1)
    assert body["totalCount"] == 2
    assert body["result"] == "success"
    [entry] = body["jobs"]
    assert set(entry) == {"jobId", "status", "rawRequest", "taskType"}
    assert entry["taskType"] == "import_graph"
    _, body = await get_json(sim, engine("g"), offset=1)
    assert body["jobs"][0]["taskType"] == "add_index"
    sim.engine_schema = "2.2.13"
    _, body = await get_json(sim, engine("g"))
    assert "totalCount" not in body
    assert "request" in body["jobs"][0]


# --- visibility ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_visible_after_and_expires_after_on_every_api(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    sim.add_evs_job(P, "e", [(0, "INIT"), (4, "SUCCESS")], visible_after=2, expires_after=3)
    sim.add_ges_job(P, "g", "m", [(0, "pending"), (4, "success")], visible_after=2, expires_after=3)
    sim.add_engine_job(
        P, "g", "x", [(0, "pending"), (4, "complete")], visible_after=2, expires_after=3
    )

    async def seen() -> tuple[int, int, int, int]:
        _, listed = await get_json(sim, engine("g"))
        return (
            (await get_json(sim, evs("e")))[0],
            (await get_json(sim, ges("v1.0", "g", "m")))[0],
            (await get_json(sim, ges("v2", "g", "m")))[0],
            len(listed["jobs"]),
        )

    assert await seen() == (400, 400, 400, 0)
    clock.set(2)
    assert await seen() == (200, 200, 200, 1)
    clock.set(6.99)
    assert await seen() == (200, 200, 200, 1)
    clock.set(7)
    assert await seen() == (400, 400, 400, 0)


@pytest.mark.anyio
async def test_ecs_lifetimes_ended_after_a_day_unpaid_after_14_days(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    # ECS API page ecs_02_0901: SUCCESS/FAIL jobs are deleted a day later; a job left
    # PENDING_PAYMENT (cancelled order) keeps that status until it is deleted at 14 days.
    day = jobwatch.sim.ENDED_JOB_LIFETIME
    assert day == 86_400
    assert jobwatch.sim.UNPAID_JOB_LIFETIME == 14 * 86_400
    sim.add_evs_job(P, "done", [(0, "RUNNING"), (5, "SUCCESS")], expires_after=day)
    unpaid = [(0, "PENDING_PAYMENT")]
    sim.add_evs_job(P, "unpaid", unpaid, expires_after=jobwatch.sim.UNPAID_JOB_LIFETIME)

    async def answers() -> tuple[Any, Any]:
        (s1, b1), (s2, b2) = await get_json(sim, evs("done")), await get_json(sim, evs("unpaid"))
        return (s1, b1.get("status") or b1["error"]["code"]), (s2, b2.get("status"))

    clock.set(5 + day - 0.001)
    assert await answers() == ((200, "SUCCESS"), (200, "PENDING_PAYMENT"))
    _, body = await get_json(sim, evs("unpaid"))
    assert (body["begin_time"], body["end_time"]) == ("", "")  # never began, never ends
    clock.set(5 + day)
    assert await answers() == ((400, "Common.0011"), (200, "PENDING_PAYMENT"))
    clock.set(14 * day - 0.001)
    assert (await answers())[1] == (200, "PENDING_PAYMENT")
    clock.set(14 * day)
    assert (await get_json(sim, evs("unpaid")))[0] == 400


@pytest.mark.anyio
async def test_sub_job_without_id_is_listed_with_null_and_answers_nowhere(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    sim.add_evs_job(
        P,
        "batch",
        [(0, "RUNNING"), (3, "FAIL")],
        sub_jobs=[
            SubJob(None, [(0, "RUNNING"), (2, "FAIL")], sub_jobs=[SubJob("leaf", [(0, "INIT")])]),
            SubJob("named", [(0, "SUCCESS")]),
        ],
    )
    _, body = await get_json(sim, evs("batch"))
    anonymous, named = body["entities"]["sub_jobs"]
    assert anonymous["job_id"] is None
    assert named["job_id"] == "named"
    assert anonymous["entities"]["sub_jobs"][0]["job_id"] == "leaf"
    assert [(await get_json(sim, evs(j)))[0] for j in ("named", "leaf", "None")] == [200, 200, 400]
    # a second job may list an anonymous sub-job too: no ID is taken twice
    sim.add_evs_job(P, "batch-2", [(0, "RUNNING")], sub_jobs=[SubJob(None, [(0, "INIT")])])
    with pytest.raises(ValueError, match="job_id"):
        sim.add_evs_job(P, None, [(0, "INIT")])  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_ecs_errorcode_message_is_sent_in_sub_job_entities_once_ended(
    sim: Simulator[ManualClock], clock: ManualClock
) -> None:
    # ECS API page ecs_02_0901, sub_jobs.entities: server_id, nic_id, errorcode_message.
    sub = SubJob(
        "srv-job",
        [(0, "RUNNING"), (2, "FAIL")],
        job_type="createSingleServer",
        entities={"server_id": "srv-1"},
        errorcode_message="Ecs.0013: insufficient quota",
    )
    sim.add_evs_job(P, "ecs-batch", [(0, "RUNNING"), (3, "FAIL")], sub_jobs=[sub])
    _, body = await get_json(sim, evs("srv-job"))
    assert body["entities"] == {"server_id": "srv-1"}
    clock.set(2)
    _, body = await get_json(sim, evs("ecs-batch"))
    (listed,) = body["entities"]["sub_jobs"]
    assert listed["entities"] == {
        "server_id": "srv-1",
        "errorcode_message": "Ecs.0013: insufficient quota",
    }
    assert listed["fail_reason"] is None


@pytest.mark.anyio
async def test_scenario_sub_jobs_with_null_ids_and_errorcode_messages() -> None:
    data = {
        "clock": "manual",
        "evs_jobs": [
            {
                "project_id": P,
                "job_id": "b",
                "timeline": [[0, "RUNNING"], [1, "FAIL"]],
                "expires_after": jobwatch.sim.ENDED_JOB_LIFETIME,
                "sub_jobs": [
                    {"job_id": None, "timeline": [[0, "FAIL"]], "errorcode_message": "Ecs.0001"}
                ],
            }
        ],
    }
    sim = Simulator.from_scenario(data)
    _, body = await get_json(sim, evs("b"))
    (sub,) = body["entities"]["sub_jobs"]
    assert (sub["job_id"], sub["status"], sub["entities"]) == (
        None,
        "FAIL",
        {"errorcode_message": "Ecs.0001"},
    )


def test_negative_windows_are_refused(sim: Simulator[ManualClock]) -> None:
    with pytest.raises(ValueError, match="visible_after"):
        sim.add_evs_job(P, "e", [(0, "INIT")], visible_after=-1)
    with pytest.raises(ValueError, match="expires_after"):
        sim.add_engine_job(P, "g", "x", [(0, "pending")], expires_after=-1)


# --- routing and headers ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_routes_methods_and_request_ids(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "job-1", [(0, "INIT")])
    async with client(sim) as c:
        responses = [
            await c.get(evs("job-1")),
            await c.get(evs("job-1")),
            await c.get("/v3/nothing/here"),
            await c.get("/v1//jobs/x"),
            await c.post(evs("job-1"), json={}),
            await c.delete(evs("job-1")),
            await c.get(evs("missing")),
        ]
    assert [r.status_code for r in responses] == [200, 200, 404, 404, 405, 405, 400]
    assert responses[2].json()["error_code"] == "APIGW.0101"
    assert responses[4].headers["allow"] == "GET"
    assert set(responses[4].json()) == {"error_code", "error_msg", "request_id"}
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == len(ids)
    assert all(HEX32.fullmatch(i) for i in ids)
    assert all(r.headers["content-type"].startswith("application/json") for r in responses)
    assert responses[4].json()["request_id"] == ids[4]
    assert [r.request_id for r in sim.requests] == ids


@pytest.mark.anyio
async def test_request_ids_are_deterministic_per_seed() -> None:
    async def first_id(seed: int) -> str:
        sim = Simulator(clock=ManualClock(), seed=seed)
        async with client(sim) as c:
            return (await c.get("/")).headers["x-request-id"]

    assert await first_id(1) == await first_id(1)
    assert await first_id(1) != await first_id(2)


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (evs("j"), {"error": {"message": "internal server error (simulated)", "code": "SIM.0500"}}),
        (
            ges("v2", "g", "j"),
            {"error_msg": "internal server error (simulated)", "error_code": "SIM.0500"},
        ),
        (
            ges("v1.0", "g", "j"),
            {"errorMessage": "internal server error (simulated)", "errorCode": "SIM.0500"},
        ),
        (
            engine("g"),
            {
                "errorMessage": "internal server error (simulated)",
                "errorCode": "SIM.0500",
                "result": "failed",
            },
        ),
    ],
)
async def test_http_500_speaks_each_apis_error_shape(
    sim: Simulator[ManualClock], path: str, expected: dict[str, Any]
) -> None:
    sim.add_fault(Fault("http_500"))
    assert await get_json(sim, path) == (500, expected)
    assert sim.requests[-1].fault == "http_500"
    assert sim.requests[-1].status_code == 500


@pytest.mark.anyio
async def test_http_503_html(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("http_503_html", api="evs"))
    async with client(sim) as c:
        response = await c.get(evs("j"))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>503 Service Temporarily Unavailable</h1>" in response.text
    assert HEX32.fullmatch(response.headers["x-request-id"])


@pytest.mark.anyio
async def test_throttle_429_with_and_without_retry_after(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("throttle_429", count=1, retry_after=7))
    sim.add_fault(Fault("throttle_429", count=1, throttle_limit=50, throttle_period="1 second"))
    async with client(sim) as c:
        first, second, third = [await c.get(evs("j")) for _ in range(3)]
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert first.json() == {
        "error_code": "APIGW.0308",
        "error_msg": "The throttling threshold has been reached: "
        "policy user over ratelimit,limit:200,time:5 minute",
        "request_id": first.headers["x-request-id"],
    }
    assert second.status_code == 429
    assert "retry-after" not in second.headers
    assert second.json()["error_msg"].endswith("limit:50,time:1 second")
    assert third.status_code == 200


@pytest.mark.anyio
async def test_error_200(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("error_200", count=1, error_code="EVS.5400", error_message="busy"))
    sim.add_fault(Fault("error_200", count=1))
    first = await get_json(sim, evs("j"))
    second = await get_json(sim, evs("j"))
    assert first == (200, {"error": {"code": "EVS.5400", "message": "busy"}})
    assert second[0] == 200
    assert second[1]["error"]["code"] == "SIM.0200"


@pytest.mark.anyio
async def test_malformed_json(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    async with client(sim) as c:
        good = await c.get(evs("j"))
        sim.add_fault(Fault("malformed_json"))
        bad = await c.get(evs("j"))
    assert bad.status_code == 200
    assert bad.headers["content-type"].startswith("application/json")
    assert good.content.startswith(bad.content)
    assert 0 < len(bad.content) < len(good.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.content)


@pytest.mark.anyio
async def test_unknown_status_on_every_api(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(
        P,
        "e",
        [(0, "RUNNING")],
        faults=[Fault("unknown_status", status="PAUSED")],
        sub_jobs=[SubJob("s", [(0, "RUNNING")])],
    )
    sim.add_ges_job(
        P,
        "g",
        "old",
        [(0, "pending")],
        v1_body="old",
        faults=[Fault("unknown_status", status="frozen")],
    )
    sim.add_ges_job(P, "g", "m", [(0, "pending")], faults=[Fault("unknown_status", api="ges-v2")])
    sim.add_engine_job(P, "g", "a", [(0, "running")], faults=[Fault("unknown_status", count=1)])
    sim.add_engine_job(P, "g", "b", [(0, "running")])

    _, body = await get_json(sim, evs("e"))
    assert body["status"] == "PAUSED"
    assert body["entities"]["sub_jobs"][0]["status"] == "RUNNING"
    assert (await get_json(sim, ges("v1.0", "g", "old")))[1]["status"] == "frozen"
    assert (await get_json(sim, ges("v2", "g", "m")))[1]["status"] == "UNRECOGNISED"
    assert (await get_json(sim, ges("v1.0", "g", "m")))[1]["status"] == "pending"
    _, body = await get_json(sim, engine("g"))
    assert [job["status"] for job in body["jobs"]] == ["UNRECOGNISED", "running"]
    sim.add_fault(Fault("unknown_status", status="lost", api="ges-engine"))
    _, body = await get_json(sim, engine("g"))
    assert [job["status"] for job in body["jobs"]] == ["lost", "lost"]


@pytest.mark.anyio
async def test_latency_waits_then_answers(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("latency", latency=0.05, count=1))
    sim.add_fault(Fault("latency", latency=30, count=1))
    async with client(sim) as c:
        started = time.monotonic()
        response = await c.get(evs("j"))
        assert time.monotonic() - started >= 0.04
        assert response.json()["status"] == "INIT"
        with anyio.move_on_after(0.05) as scope:
            await c.get(evs("j"))
    assert scope.cancelled_caught
    assert [(r.fault, r.status_code) for r in sim.requests] == [
        ("latency", 200),
        ("latency", None),
    ]


@pytest.mark.anyio
async def test_reset_in_process(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")], faults=[Fault("reset", count=2)])
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as c:
        with pytest.raises(httpx.ReadError, match="reset"):
            await c.get(evs("j"))
    async with client(sim) as c:
        with pytest.raises(SimulatedReset):
            await c.get(evs("j"))
        assert (await c.get(evs("j"))).status_code == 200
    assert [(r.fault, r.status_code) for r in sim.requests] == [
        ("reset", None),
        ("reset", None),
        (None, 200),
    ]


@pytest.mark.anyio
async def test_fault_window_in_sim_time(sim: Simulator[ManualClock], clock: ManualClock) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("http_500", window=(1, 2)))
    statuses = []
    for t in (0, 1, 1.5, 2, 3):
        clock.set(t)
        statuses.append((await get_json(sim, evs("j")))[0])
    assert statuses == [200, 500, 500, 200, 200]


@pytest.mark.anyio
async def test_fault_probability_is_seeded() -> None:
    async def pattern(seed: int, probability: float) -> list[int]:
        sim = Simulator(clock=ManualClock(), seed=seed)
        sim.add_evs_job(P, "j", [(0, "INIT")])
        sim.add_fault(Fault("http_500", probability=probability))
        async with client(sim) as c:
            return [(await c.get(evs("j"))).status_code for _ in range(40)]

    half = await pattern(7, 0.5)
    assert half == await pattern(7, 0.5)
    assert half != await pattern(8, 0.5)
    assert 5 < half.count(500) < 35
    assert set(await pattern(7, 0.0)) == {200}
    assert set(await pattern(7, 1.0)) == {500}


@pytest.mark.anyio
async def test_fault_api_filter_job_scope_and_order(sim: Simulator[ManualClock]) -> None:
    sim.add_ges_job(P, "g", "mine", [(0, "pending")], faults=[Fault("http_500", count=1)])
    sim.add_ges_job(P, "g", "other", [(0, "pending")])
    sim.add_fault(Fault("throttle_429", api="ges-v2", count=2))
    async with client(sim) as c:
        mine_v1 = await c.get(ges("v1.0", "g", "mine"))  # its own fault first
        mine_v2 = await c.get(ges("v2", "g", "mine"))  # then the global, v2 only
        other_v1 = await c.get(ges("v1.0", "g", "other"))
        other_v2 = await c.get(ges("v2", "g", "other"))
        other_v2_again = await c.get(ges("v2", "g", "other"))
    assert [r.status_code for r in (mine_v1, mine_v2, other_v1, other_v2, other_v2_again)] == [
        500,
        429,
        200,
        429,
        200,
    ]
    assert [r.fault for r in sim.requests] == [
        "http_500",
        "throttle_429",
        None,
        "throttle_429",
        None,
    ]
    assert [r.job for r in sim.requests_for("mine")] == ["mine", "mine"]


@pytest.mark.anyio
async def test_a_fault_that_fires_hides_later_ones(sim: Simulator[ManualClock]) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_fault(Fault("http_500", count=1))
    sim.add_fault(Fault("error_200", count=1))
    statuses = [await get_json(sim, evs("j")) for _ in range(3)]
    assert [s[0] for s in statuses] == [500, 200, 200]
    assert "error" in statuses[1][1]
    assert statuses[2][1]["status"] == "INIT"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "http_500", "probability": 1.5}, "probability"),
        ({"kind": "http_500", "count": -1}, "count"),
        ({"kind": "http_500", "count": 1.5}, "count"),
        ({"kind": "http_500", "window": (2, 1)}, "window"),
        ({"kind": "http_500", "api": "no-such-api"}, "api"),
        ({"kind": "latency", "latency": -1}, "latency"),
        ({"kind": "throttle_429", "retry_after": True}, "retry_after"),
    ],
)
def test_bad_faults_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)


def test_add_fault_wants_a_fault(sim: Simulator[ManualClock]) -> None:
    with pytest.raises(TypeError, match="Fault"):
        sim.add_fault("http_500")  # type: ignore[arg-type]


# --- auth ---------------------------------------------------------------------------------------

AK, SK = "AKSIMTEST0001", "sk-sim-secret"


@pytest.fixture
def secured(clock: ManualClock) -> Simulator[ManualClock]:
    sim = Simulator(clock=clock, auth=SimAuth(tokens=frozenset({"good"}), credentials={AK: SK}))
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_engine_job(P, "g", "x", [(0, "pending")])
    return sim


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("auth", "status", "reason"),
    [
        (TokenAuth("good"), 200, None),
        (TokenAuth("bad-token-value"), 401, "decrypt token fail"),
        (None, 401, "x-auth-token not found"),
        (AKSKAuth(AK, SK), 200, None),
        (AKSKAuth(AK, "wrong-secret"), 401, "verify aksk signature fail, signature mismatch"),
        (AKSKAuth("AKUNKNOWN", SK), 401, "verify aksk signature fail, unknown access key"),
    ],
)
async def test_auth(
    secured: Simulator[ManualClock], auth: httpx.Auth | None, status: int, reason: str | None
) -> None:
    async with client(secured, auth=auth) as c:
        responses = [await c.get(evs("j")), await c.get(engine("g"), params={"limit": 5})]
    for response in responses:
        assert response.status_code == status
        if reason is not None:
            assert response.json() == {
                "error_code": "APIGW.0301",
                "error_msg": f"Incorrect IAM authentication information: {reason}",
                "request_id": response.headers["x-request-id"],
            }
            assert "bad-token-value" not in response.text
    assert [(r.status_code, r.api) for r in secured.requests] == [
        (status, "evs"),
        (status, "ges-engine"),
    ]


@pytest.mark.anyio
async def test_signature_without_credentials_is_refused(clock: ManualClock) -> None:
    sim = Simulator(clock=clock, auth=SimAuth(tokens={"good"}))
    sim.add_evs_job(P, "j", [(0, "INIT")])
    async with client(sim, auth=AKSKAuth(AK, SK)) as c:
        response = await c.get(evs("j"))
    assert response.status_code == 401
    assert "verify aksk signature fail" in response.json()["error_msg"]
    assert "good" not in repr(sim.auth)


# --- request log --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_request_log(sim: Simulator[ManualClock], clock: ManualClock) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT")])
    sim.add_graph(P, "g")
    async with client(sim, headers={"User-Agent": "probe/1"}) as c:
        await c.get(evs("j"))
        clock.advance(2.5)
        await c.get(engine("g"), params={"limit": 3, "offset": 1})
        await c.get("/unknown")
    first, second, third = sim.requests
    assert first == RecordedRequest(
        t=0.0,
        method="GET",
        path=evs("j"),
        query="",
        api="evs",
        job="j",
        status_code=200,
        fault=None,
        request_id=first.request_id,
        served=(("j", "INIT"),),
    )
    assert first.headers["user-agent"] == "probe/1"
    assert (second.t, second.api, second.job, second.query) == (
        2.5,
        "ges-engine",
        "g",
        "limit=3&offset=1",
    )
    assert (third.api, third.job, third.status_code) == (None, None, 404)
    assert sim.requests_for("g") == [second]
    sim.clear_requests()
    assert sim.requests == []


# --- scenarios ----------------------------------------------------------------------------------


def _docstring_scenario() -> dict[str, Any]:
    doc = jobwatch.sim.__doc__ or ""
    text = doc.split("Every key is optional::", 1)[1].split("(``//``", 1)[0]
    return dict(json.loads(re.sub(r" +//[^\n]*", "", text)))


@pytest.mark.anyio
async def test_the_documented_scenario_loads_and_runs(tmp_path: Path) -> None:
    data = _docstring_scenario()
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    clock = ManualClock()
    sim = Simulator.from_scenario_file(path, clock=clock)
    assert sim.clock is clock
    assert sim.auth is not None
    assert sim.auth.tokens == frozenset({"tok"})
    headers = {"X-Auth-Token": "tok"}
    async with client(sim, headers=headers) as c:
        assert (await c.get(evs("j1", project="p"))).status_code == 500  # job fault, window [0, 1)
        clock.set(4.5)
        throttled = [(await c.get(evs("j1", project="p"))).status_code for _ in range(2)]
        assert throttled == [429, 429]  # the global fault, twice
        body = (await c.get(evs("j1", project="p"))).json()
        assert body["entities"]["sub_jobs"][0]["status"] == "FAIL"
        assert body["entities"]["sub_jobs"][0]["fail_reason"] == "no capacity"
        ges_body = (await c.get(ges("v1.0", "g1", "j2", project="p"))).json()
        assert ges_body["Job"]["jobDetail"]["edgesetPath"][0]["failedLines"] == 2
        listed = (await c.get(engine("g", project="p"))).json()
        assert listed["jobs"][0]["status"] == "complete"


def test_scenario_defaults_and_clock_choice() -> None:
    sim = Simulator.from_scenario({"clock": "manual", "seed": 3, "epoch": "2020-02-02T00:00:00Z"})
    assert isinstance(sim.clock, ManualClock)
    assert sim.seed == 3
    assert sim.epoch == datetime(2020, 2, 2, tzinfo=UTC)
    assert isinstance(Simulator.from_scenario({}).clock, MonotonicClock)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"jobs": []}, "unknown keys"),
        ({"version": 2}, "version"),
        ({"clock": "wall"}, "clock"),
        ({"epoch": "2020-01-01T00:00:00"}, "timezone"),
        ({"evs_jobs": [{"project_id": "p", "job_id": "j"}]}, r"evs_jobs\[0\]: missing timeline"),
        ({"evs_jobs": [{"project_id": "p", "job_id": "j", "timeline": [], "colour": 1}]}, "colour"),
        (
            {
                "ges_jobs": [
                    {
                        "project_id": "p",
                        "graph_id": "g",
                        "job_id": "j",
                        "timeline": [[0, "pending"]],
                        "faults": [{"kind": "boom"}],
                    }
                ]
            },
            r"ges_jobs\[0\]\.faults\[0\]: kind",
        ),
        (
            {
                "evs_jobs": [
                    {
                        "project_id": "p",
                        "job_id": "j",
                        "timeline": [[0, "INIT"]],
                        "sub_jobs": [{"job_id": "s"}],
                    }
                ]
            },
            r"sub_jobs\[0\]: missing timeline",
        ),
        ({"engine_jobs": {"project_id": "p"}}, "must be a list"),
        ({"faults": ["http_500"]}, "must be an object"),
        ({"auth": {"token": "x"}}, "unknown keys"),
    ],
)
def test_bad_scenarios_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Simulator.from_scenario(data)


# --- a real socket ------------------------------------------------------------------------------


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    def servers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("jobwatch.sim.serve")]

    assert servers() == []
    yield
    assert servers() == []


@pytest.mark.anyio
@pytest.mark.usefixtures("no_thread_left")
async def test_serve_on_a_socket(sim: Simulator[ManualClock], clock: ManualClock) -> None:
    sim.add_evs_job(P, "j", [(0, "INIT"), (1, "SUCCESS")])
    sim.add_evs_job(P, "flaky", [(0, "INIT")], faults=[Fault("reset", count=1)])
    with serve(sim) as base_url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        async with httpx.AsyncClient(base_url=base_url) as c:
            first = await c.get(evs("j"))
            clock.advance(1)
            second = await c.get(evs("j"))
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(evs("flaky"))
            after_reset = await c.get(evs("flaky"))
    assert (first.status_code, first.json()["status"]) == (200, "INIT")
    assert second.json()["status"] == "SUCCESS"
    assert HEX32.fullmatch(second.headers["x-request-id"])
    assert after_reset.status_code == 200
    assert [r.status_code for r in sim.requests] == [200, 200, None, 200]


@pytest.mark.usefixtures("no_thread_left")
def test_serve_without_an_event_loop() -> None:
    sim = Simulator()
    sim.add_ges_job(P, "g", "j", [(0, "pending"), (60, "success")])
    with serve(sim, port=0) as base_url, httpx.Client(base_url=base_url) as c:
        response = c.get(ges("v2", "g", "j"))
        assert any(t.name.startswith("jobwatch.sim.serve") for t in threading.enumerate())
    assert response.status_code == 200
    assert response.json()["status"] == "pending"


@pytest.mark.anyio
async def test_request_log_records_what_each_readable_body_served() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        "p",
        "top",
        [(0, "RUNNING"), (2, "SUCCESS")],
        sub_jobs=[
            SubJob("kid", [(0, "INIT"), (1, "FAIL")], sub_jobs=[SubJob("grand", [(0, "INIT")])])
        ],
    )
    sim.add_ges_job("p", "g", "old", [(0, "pending")], v1_body="old")
    sim.add_engine_job("p", "movie", "e1", [(0, "running")])
    sim.add_engine_job("p", "movie", "e2", [(0, "pending")])
    sim.add_fault(Fault("malformed_json", count=1, api="ges-v2"))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as client:
        await client.get("/v1/p/jobs/top")
        await client.get("/v2/p/graphs/g/jobs/old/status")  # malformed: nothing readable
        await client.get("/v1.0/p/graphs/g/jobs/old/status")
        await client.get("/ges/v1.0/p/graphs/movie/jobs/status")
        await client.get("/v1/p/jobs/missing")
    served = [r.served for r in sim.requests]
    assert served == [
        (("top", "RUNNING"), ("kid", "INIT"), ("grand", "INIT")),
        (),
        (("old", "waiting"),),
        (("e1", "running"), ("e2", "pending")),
        (),
    ]
