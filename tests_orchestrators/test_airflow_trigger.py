"""``HuaweiCloudJobTrigger``: serialisation, every outcome, determinism, cancellation."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from airflow.triggers.base import TriggerEvent

from jobwatch import EvsJob, GesJob
from jobwatch.airflow import HuaweiCloudJobTrigger
from jobwatch.airflow._hub import hub_statistics
from jobwatch.sim import ManualClock, Simulator, SubJob
from jobwatch.testing import SimulatedCloud, wait_for_requests, wait_until
from tests_orchestrators.conftest import AK, FAST, SK, P, set_connection

pytestmark = pytest.mark.anyio


def trigger(job: str = "vol-1", **kwargs: Any) -> HuaweiCloudJobTrigger:
    kwargs.setdefault("policy", FAST)
    return HuaweiCloudJobTrigger(job={"api": "evs", "job_id": job}, **kwargs)


async def fire(made: HuaweiCloudJobTrigger) -> dict[str, Any]:
    """Run a trigger to its end: exactly one event, whose payload is returned."""
    events = [event async for event in made.run()]
    assert len(events) == 1
    (event,) = events
    assert isinstance(event, TriggerEvent)
    json.dumps(event.payload)  # plain JSON
    payload: dict[str, Any] = event.payload
    return payload


def test_serialize_round_trip() -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    made = trigger(
        deadline=deadline, region="cn-north-4", client_options={"timeout": 20.0}, conn_id="hw"
    )
    path, kwargs = made.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is HuaweiCloudJobTrigger
    again = cls(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again.ref == EvsJob("vol-1")
    assert again.policy == made.policy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job": {"api": "nope", "job_id": "x"}}, "unknown job API"),
        ({"job": {"api": "evs", "job_id": "../x"}}, "job_id"),
        ({"job": {"api": "evs", "job_id": "x"}, "policy": {"wait_initail": 1}}, "policy"),
        ({"job": {"api": "evs", "job_id": "x"}, "deadline": "2026-01-01T00:00:00"}, "zone"),
        ({"job": {"api": "evs", "job_id": "x"}, "client_options": {"auth": "x"}}, "options"),
    ],
)
def test_bad_arguments_are_refused_when_made(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HuaweiCloudJobTrigger(**kwargs)


async def test_credentials_are_read_from_the_connection_never_kept(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "SUCCESS")])
    made = trigger()
    assert SK not in json.dumps(made.serialize()) + repr(made.__dict__)
    assert (await fire(made))["status"] == "succeeded"


async def drive(
    cloud: SimulatedCloud[ManualClock], made: HuaweiCloudJobTrigger, job: str, advance: float = 10.0
) -> dict[str, Any]:
    """Fire ``made`` while the simulator's clock moves on once the job was polled."""
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await fire(made))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await wait_for_requests(cloud.simulator, job=job, timeout=10)
        cloud.manual_clock.advance(advance)
    return result


async def test_succeeded(cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]) -> None:
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "RUNNING"), (5, "SUCCESS")])
    payload = await drive(cloud, trigger(), "vol-1")
    assert payload == {
        "status": "succeeded",
        "job": {"api": "evs", "job_id": "vol-1"},
        "ref": "evs:vol-1",
        "state": "succeeded",
        "raw_status": "SUCCESS",
        "fail_reason": None,
        "error_code": None,
        "reason": None,
        "message": None,
        "failed_sub_jobs": [],
        "import_has_failures": False,
    }


async def test_failed(cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]) -> None:
    cloud.simulator.add_evs_job(
        P, "vol-1", [(0, "RUNNING"), (5, "FAIL")], fail_reason="no capacity", error_code="EVS.2024"
    )
    payload = await drive(cloud, trigger(), "vol-1")
    assert (payload["status"], payload["state"], payload["raw_status"]) == (
        "failed",
        "failed",
        "FAIL",
    )
    assert (payload["fail_reason"], payload["error_code"]) == ("no capacity", "EVS.2024")


async def test_failed_sub_job(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    subs = [
        SubJob("sub-ok", [(0, "RUNNING"), (1, "SUCCESS")]),
        SubJob("sub-bad", [(0, "RUNNING"), (1, "FAIL")], fail_reason="quota"),
    ]
    cloud.simulator.add_evs_job(P, "batch", [(0, "RUNNING"), (2, "SUCCESS")], sub_jobs=subs)
    payload = await drive(cloud, trigger("batch"), "batch")
    assert payload["status"] == "succeeded"
    assert [(s["ref"], s["state"], s["fail_reason"]) for s in payload["failed_sub_jobs"]] == [
        ("evs:sub-bad", "failed", "quota")
    ]


async def test_partly_failed_import(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    edges = {"path": "obs://b/e.csv", "status": "partFailed", "cause": "12 malformed lines"}
    cloud.simulator.add_ges_job(
        P,
        "graph-1",
        "imp-1",
        [(0, "running"), (3, "success")],
        import_detail={"edgeset_path": [edges]},
    )
    made = HuaweiCloudJobTrigger(
        job={"api": "ges", "graph_id": "graph-1", "job_id": "imp-1", "version": "v2"}, policy=FAST
    )
    assert made.ref == GesJob("graph-1", "imp-1", "v2")
    payload = await drive(cloud, made, "imp-1")
    assert (payload["status"], payload["import_has_failures"]) == ("succeeded", True)


async def test_not_found(cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]) -> None:
    payload = await drive(cloud, trigger("missing"), "missing")
    assert (payload["status"], payload["reason"], payload["state"]) == (
        "gave_up",
        "not_found",
        None,
    )


async def test_expired(cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]) -> None:
    cloud.simulator.add_evs_job(P, "old", [(0, "RUNNING")], expires_after=5)
    payload = await drive(cloud, trigger("old"), "old")
    assert (payload["status"], payload["reason"]) == ("gave_up", "expired")
    assert payload["state"] == "running"  # the last snapshot seen


async def test_deadline(cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]) -> None:
    cloud.simulator.add_evs_job(P, "slow", [(0, "RUNNING")])
    deadline = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    payload = await fire(trigger("slow", deadline=deadline))
    assert (payload["status"], payload["reason"], payload["state"]) == (
        "gave_up",
        "timeout",
        "running",
    )
    assert deadline in payload["message"]


async def test_a_trigger_made_after_its_deadline_looks_once(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    """Re-created after its deadline (its triggerer was down): one poll tells how the job is."""
    cloud.simulator.add_evs_job(P, "open", [(0, "RUNNING")])
    cloud.simulator.add_evs_job(P, "ended", [(0, "SUCCESS")])
    deadline = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    payload = await fire(trigger("open", deadline=deadline))
    assert (payload["reason"], payload["state"]) == ("timeout", "running")
    assert (await fire(trigger("ended", deadline=deadline)))["status"] == "succeeded"
    assert (await fire(trigger("missing", deadline=deadline)))["reason"] == "timeout"
    assert len(cloud.simulator.requests) == 3


async def test_refused_credentials(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "RUNNING")])
    set_connection(monkeypatch, {**connection, "password": "wrong-secret"})
    payload = await fire(trigger())
    assert (payload["status"], payload["reason"]) == ("gave_up", "auth")
    assert "wrong-secret" not in json.dumps(payload)
    assert len(cloud.simulator.requests) == 1  # refused once, never asked again


async def test_a_trigger_run_twice_fires_the_same_payload(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    """High availability: a trigger re-created elsewhere from its kwargs ends the same way."""
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "RUNNING"), (1, "FAIL")], fail_reason="x")
    made = trigger(deadline=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    first = await drive(cloud, made, "vol-1")
    _path, kwargs = made.serialize()
    again = HuaweiCloudJobTrigger(**kwargs)
    assert await fire(again) == first


async def test_cancelling_one_trigger_leaves_nothing_and_the_others_go_on(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    sim: Simulator[ManualClock] = cloud.simulator
    for n in range(5):
        sim.add_evs_job(P, f"vol-{n}", [(0, "RUNNING"), (5, "SUCCESS")])
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        tasks = [loop.create_task(fire(trigger(f"vol-{n}"))) for n in range(5)]
        await wait_for_requests(sim, count=5, timeout=10)
        assert [s.triggers for s in hub_statistics()] == [5]
        tasks[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        assert [(s.triggers, s.jobs) for s in hub_statistics()] == [(4, 4)]
        sim.clock.advance(10)
        payloads = await asyncio.gather(*tasks[1:])
        gc.collect()
    assert [p["status"] for p in payloads] == ["succeeded"] * 4
    assert hub_statistics() == []
    assert asyncio.all_tasks() == before
    # The client was closed: the server sees its connections go (once it reads the FIN).
    await wait_until(lambda: sim.open_connections == 0, timeout=5)


async def test_a_connection_without_project_fails_before_any_request(
    cloud: SimulatedCloud[ManualClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(
        monkeypatch,
        {
            "conn_type": "huaweicloud",
            "login": AK,
            "password": SK,
            "extra": {"endpoint": cloud.base_url},
        },
    )
    with pytest.raises(ValueError, match="no project_id"):
        await fire(trigger())
    assert cloud.simulator.requests == []
