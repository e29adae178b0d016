"""Hostile tests of the Airflow provider and the Temporal example."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from temporalio.testing import ActivityEnvironment

from jobwatch.airflow import HuaweiCloudJobTrigger
from jobwatch.airflow._connection import BadConnection
from jobwatch.sim import ManualClock, Simulator
from jobwatch.testing import SimulatedCloud, simulated_cloud, wait_for_requests
from tests_orchestrators.conftest import AK, SK, P, set_connection
from tests_orchestrators.test_airflow_sensor import sensor
from tests_orchestrators.test_airflow_trigger import fire, trigger
from tests_orchestrators.test_temporal_example import example

# --- the sensor's decision on malformed events ---------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"status": "weird"},
        {"status": None, "ref": "evs:vol-1"},
        {"ref": "evs:vol-1", "state": "failed"},
        {"status": "SUCCEEDED"},
        {"status": "gave-up", "reason": "timeout"},
    ],
)
def test_an_event_without_a_known_status_does_not_succeed(event: dict[str, Any]) -> None:
    """Whatever execute_complete cannot read must not pass the task."""
    with pytest.raises(AirflowException):
        sensor().execute_complete({}, event)


@pytest.mark.parametrize(
    "event",
    [
        None,
        "succeeded",
        {"status": "succeeded", "failed_sub_jobs": [{"fail_reason": "quota"}]},
        {"status": "succeeded", "failed_sub_jobs": ["evs:s"]},
        {"status": "succeeded", "failed_sub_jobs": {"ref": "x"}},
    ],
)
def test_a_malformed_event_fails_with_an_airflow_exception(event: Any) -> None:
    """A clear Airflow error, not a TypeError/KeyError/AttributeError from deep inside."""
    with pytest.raises(AirflowException):
        sensor().execute_complete({}, event)


# --- poke mode -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_poke_mode_returns_the_payload_as_its_xcom(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    """The class docstring: 'The return value (an XCom) is the trigger's payload.'"""
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "SUCCESS")])
    made = sensor(deferrable=False, poke_interval=0.01, timeout=5)
    returned = await anyio.to_thread.run_sync(made.execute, {})
    assert isinstance(returned, dict), returned
    assert returned["status"] == "succeeded"


# --- the connection, checked before deferral ---------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"project_id": P, "endpoint": "http://127.0.0.1:notaport"},
        {"project_id": "bad project", "endpoint": "http://127.0.0.1:9"},
    ],
)
def test_a_connection_the_client_refuses_fails_before_deferring(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    """README: 'a connection that lacks something fails there ... before any deferral'."""
    set_connection(
        monkeypatch, {"conn_type": "huaweicloud", "login": AK, "password": SK, "extra": extra}
    )
    try:
        sensor().execute({})
    except TaskDeferred:
        pytest.fail("deferred: the triggerer will fail on it instead")
    except BadConnection:
        pass


@pytest.mark.parametrize("extra", [["project_id", P], "just a string", 42])
def test_an_extra_that_is_not_an_object_is_a_bad_connection(
    monkeypatch: pytest.MonkeyPatch, extra: Any
) -> None:
    set_connection(
        monkeypatch,
        {"conn_type": "huaweicloud", "login": AK, "password": SK, "extra": json.dumps(extra)},
    )
    with pytest.raises(BadConnection):
        sensor().execute({})


@pytest.mark.anyio
async def test_a_bad_client_option_in_a_trigger_is_not_logged_as_a_hub_bug(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="jobwatch.airflow")
    with pytest.raises(ValueError, match="max_in_flight"):
        await fire(trigger(client_options={"max_in_flight": 0}))
    assert "hub" not in caplog.text, caplog.text


# --- determinism of the payload ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_refused_trigger_run_twice_fires_the_same_payload(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: 'a trigger re-created on another triggerer ... fires the same payload'."""
    cloud.simulator.add_evs_job(P, "vol-1", [(0, "RUNNING")])
    set_connection(monkeypatch, {**connection, "password": "wrong-secret"})
    made = trigger()
    first = await fire(made)
    again = HuaweiCloudJobTrigger(**made.serialize()[1])
    second = await fire(again)
    assert first["reason"] == "auth"
    assert first == second, (first["message"], second["message"])


@pytest.mark.anyio
async def test_a_trigger_re_created_after_its_deadline_fires_the_same_payload(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    """HA: the first run reached the deadline; its copy, re-created just after, fires again."""
    cloud.simulator.add_evs_job(P, "slow", [(0, "RUNNING")])
    cloud.simulator.add_evs_job(P, "warm", [(0, "SUCCESS")])
    await fire(trigger("warm"))  # imports and connections made: the first run sees the job
    made = trigger("slow", deadline=(datetime.now(UTC) + timedelta(seconds=0.6)).isoformat())
    first = await fire(made)
    assert first["state"] == "running"  # the first run saw the job
    again = await fire(HuaweiCloudJobTrigger(**made.serialize()[1]))
    assert first["reason"] == "timeout"
    assert first == again, {k: (first[k], again[k]) for k in first if first[k] != again[k]}


# --- the Temporal example ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_activity_heartbeats_while_its_jobs_run_unchanged() -> None:
    """Temporal kills an activity that misses its heartbeat timeout, and only a heartbeating
    activity hears of its cancellation: a long job with no state change must still heartbeat."""
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "long", [(0, "RUNNING")])
    async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
        request = example.WatchRequest(
            cloud.base_url, P, ["long"], {"wait_initial": 0.01, "wait_max": 0.02}, 0.05
        )
        beats: list[Any] = []
        env = ActivityEnvironment()
        env.on_heartbeat = beats.append
        task = asyncio.ensure_future(env.run(example.watch_jobs, request))
        await wait_for_requests(sim, job="long", count=20, timeout=5)
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(beats) >= 5, f"{len(beats)} heartbeats in 20 polls"


@pytest.mark.anyio
async def test_heartbeat_details_are_not_changed_after_they_were_sent() -> None:
    jobs = [f"job-{n:02d}" for n in range(6)]
    sim = Simulator(clock=ManualClock())
    for n, job in enumerate(jobs):
        sim.add_evs_job(P, job, [(0, "RUNNING"), (1 + n, "SUCCESS")])
    async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
        request = example.WatchRequest(cloud.base_url, P, jobs, {"wait_initial": 0.01}, 0.0)
        beats: list[Any] = []
        copies: list[Any] = []

        def beat(details: Any) -> None:
            beats.append(details)
            copies.append(copy.deepcopy(details))

        env = ActivityEnvironment()
        env.on_heartbeat = beat
        task = asyncio.ensure_future(env.run(example.watch_jobs, request))
        await wait_for_requests(sim, count=len(jobs))
        for _ in range(10):
            sim.clock.advance(1)
            await anyio.sleep(0.05)
        outcomes = await asyncio.wait_for(task, 5)
    assert len(outcomes) == len(jobs)
    assert beats == copies


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(6))
async def test_a_retry_of_a_retry_after_random_cuts(seed: int) -> None:
    """Three attempts, each cut at a random moment, the last let finish: each outcome once."""
    import random

    rng = random.Random(seed)
    jobs = [f"job-{n:02d}" for n in range(10)]
    sim = Simulator(clock=ManualClock())
    for n, job in enumerate(jobs):
        sim.add_evs_job(P, job, [(0, "RUNNING"), (1 + n, "FAIL" if n % 3 == 0 else "SUCCESS")])
    async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
        request = example.WatchRequest(
            cloud.base_url, P, jobs, {"wait_initial": 0.01}, rng.choice([0.0, 0.02])
        )
        details: list[Any] = []
        for attempt in (1, 2):
            beats: list[Any] = []
            env = ActivityEnvironment()
            env.info = replace(env.info, attempt=attempt, heartbeat_details=details)
            env.on_heartbeat = beats.append
            task = asyncio.ensure_future(env.run(example.watch_jobs, request))
            for _ in range(rng.randint(0, 6)):
                sim.clock.advance(rng.uniform(0, 1.5))
                await anyio.sleep(rng.uniform(0, 0.05))
            env.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if beats:
                details = [copy.deepcopy(beats[-1])]
        env = ActivityEnvironment()
        env.info = replace(env.info, attempt=3, heartbeat_details=details)
        task = asyncio.ensure_future(env.run(example.watch_jobs, request))
        await anyio.sleep(0.1)
        sim.clock.advance(30)
        outcomes = await asyncio.wait_for(task, 10)
    assert sorted(outcomes) == [f"evs:{job}" for job in jobs]
    for n, job in enumerate(jobs):
        assert outcomes[f"evs:{job}"] == ("failed" if n % 3 == 0 else "succeeded")


def test_soft_fail_skips_on_a_deferred_timeout() -> None:
    """soft_fail=True: a sensor that times out is skipped, deferred or not."""
    from airflow.sdk.exceptions import AirflowSkipException

    event = {
        "status": "gave_up",
        "ref": "evs:vol-1",
        "reason": "timeout",
        "message": "did not end before its deadline",
    }
    with pytest.raises(AirflowSkipException):  # as Airflow resumes a deferred task
        sensor(soft_fail=True).resume_execution("execute_complete", {"event": event}, {})
