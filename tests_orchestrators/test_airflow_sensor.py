"""``HuaweiCloudJobSensor``: deferring, deciding from the payload, and poking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)

from jobwatch import EvsJob, PollPolicy
from jobwatch.airflow import HuaweiCloudJobSensor, HuaweiCloudJobTrigger
from jobwatch.airflow._connection import BadConnection
from jobwatch.sim import ManualClock
from jobwatch.testing import SimulatedCloud
from tests_orchestrators.conftest import AK, FAST, SK, P, set_connection


def sensor(**kwargs: Any) -> HuaweiCloudJobSensor:
    kwargs.setdefault("job", EvsJob("vol-1"))
    kwargs.setdefault("policy", FAST)
    return HuaweiCloudJobSensor(task_id="wait", **kwargs)


def payload(status: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": status,
        "job": {"api": "evs", "job_id": "vol-1"},
        "ref": "evs:vol-1",
        "state": None,
        "raw_status": None,
        "fail_reason": None,
        "error_code": None,
        "reason": None,
        "message": None,
        "failed_sub_jobs": [],
        "import_has_failures": False,
    }
    return {**base, **fields}


@pytest.mark.anyio
async def test_execute_defers_with_an_absolute_deadline(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    made = sensor(timeout=600, policy=PollPolicy(wait_initial=2.0, wait_max=20.0))
    with pytest.raises(TaskDeferred) as deferred:
        await anyio.to_thread.run_sync(made.execute, {})
    trigger = deferred.value.trigger
    assert isinstance(trigger, HuaweiCloudJobTrigger)
    assert deferred.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["job"] == {"api": "evs", "job_id": "vol-1"}
    assert kwargs["policy"] == {"wait_initial": 2.0, "wait_max": 20.0}
    deadline = datetime.fromisoformat(kwargs["deadline"])
    assert abs(deadline - (datetime.now(UTC) + timedelta(seconds=600))) < timedelta(seconds=30)
    assert deferred.value.timeout > timedelta(seconds=600)  # a backstop after the deadline
    assert cloud.simulator.requests == []  # the wait is the triggerer's


def test_a_connection_that_lacks_something_fails_before_deferring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, {"conn_type": "huaweicloud", "login": AK, "password": SK})
    with pytest.raises(BadConnection, match="no endpoint and no region"):
        sensor().execute({})


def test_bad_policy_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="wait_initial"):
        sensor(policy={"wait_initial": -1})


@pytest.mark.parametrize(
    ("event", "options", "raised", "message"),
    [
        (payload("succeeded", state="succeeded"), {}, None, None),
        (
            payload("failed", state="failed", fail_reason="no capacity", error_code="EVS.2024"),
            {},
            AirflowFailException,
            "failed: no capacity .error code EVS.2024.",
        ),
        (
            payload("succeeded", failed_sub_jobs=[{"ref": "evs:s", "fail_reason": "quota"}]),
            {},
            AirflowFailException,
            "failed sub-jobs: evs:s .quota.",
        ),
        (
            payload("succeeded", failed_sub_jobs=[{"ref": "evs:s", "fail_reason": "quota"}]),
            {"fail_on_sub_job_failure": False},
            None,
            None,
        ),
        (payload("succeeded", import_has_failures=True), {}, None, None),
        (
            payload("succeeded", import_has_failures=True),
            {"fail_on_import_failures": True},
            AirflowFailException,
            "failed files",
        ),
        (payload("gave_up", reason="timeout", message="m"), {}, AirflowSensorTimeout, "timeout"),
        (payload("gave_up", reason="not_found", message="m"), {}, AirflowFailException, "not_"),
        (payload("gave_up", reason="expired", message="m"), {}, AirflowFailException, "expired"),
        (payload("gave_up", reason="auth", message="m"), {}, AirflowException, "auth"),
        (payload("gave_up", reason="error", message="m"), {}, AirflowException, "error"),
    ],
)
def test_execute_complete_decides_from_the_payload(
    event: dict[str, Any], options: dict[str, Any], raised: type[Exception] | None, message: str
) -> None:
    made = sensor(**options)
    if raised is None:
        assert made.execute_complete({}, event) == event
        return
    with pytest.raises(raised, match=message) as caught:
        made.execute_complete({}, event)
    if event.get("reason") in ("auth", "error"):
        # Trouble a retry may mend: retried, not failed for good.
        assert not isinstance(caught.value, AirflowFailException | AirflowSensorTimeout)


@pytest.mark.anyio
async def test_poking_without_deferring(
    cloud: SimulatedCloud[ManualClock], connection: dict[str, Any]
) -> None:
    sim = cloud.simulator
    sim.add_evs_job(P, "vol-1", [(0, "RUNNING"), (5, "SUCCESS")])
    sim.add_evs_job(P, "vol-2", [(0, "FAIL")], fail_reason="broken")
    made = sensor(deferrable=False)
    assert (await anyio.to_thread.run_sync(made.poke, {})).is_done is False
    sim.clock.advance(10)
    done = await anyio.to_thread.run_sync(made.poke, {})
    assert done.is_done is True
    assert done.xcom_value["status"] == "succeeded"  # the payload, as when deferred
    with pytest.raises(AirflowFailException, match="broken"):
        await anyio.to_thread.run_sync(sensor(job=EvsJob("vol-2"), deferrable=False).poke, {})
    missing = sensor(job=EvsJob("missing"), deferrable=False, policy={"not_found_grace": 0.05})
    assert (await anyio.to_thread.run_sync(missing.poke, {})).is_done is False  # the grace
    await anyio.sleep(0.1)
    with pytest.raises(AirflowFailException, match="not_found"):
        await anyio.to_thread.run_sync(missing.poke, {})
