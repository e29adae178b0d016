"""Fixtures of the orchestrator tests: a simulator on a socket, an Airflow connection to it.

These tests run in .venv-orchestrators (``make test-orchestrators``), on asyncio
only: Airflow's triggerer and Temporal's workers are asyncio programs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

# Before Airflow is imported: a home of its own, no examples.
_HOME = tempfile.mkdtemp(prefix="jobwatch-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "false"

from jobwatch.airflow import _hub  # noqa: E402
from jobwatch.sim import ManualClock, SimAuth, Simulator  # noqa: E402
from jobwatch.testing import SimulatedCloud, simulated_cloud  # noqa: E402

P = "proj-af"
AK = "AK-AIRFLOW-TEST"
SK = "SK-airflow-test-secret"
CONN_ID = "huaweicloud_default"

#: A polling policy for tests, as the trigger takes it (JSON).
FAST = {"wait_initial": 0.01, "wait_max": 0.05, "wait_jitter": 0.0, "not_found_grace": 0.2}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sim() -> Simulator[ManualClock]:
    return Simulator(clock=ManualClock(), auth=SimAuth(credentials={AK: SK}))


@pytest.fixture
async def cloud(sim: Simulator[ManualClock]) -> AsyncIterator[SimulatedCloud[ManualClock]]:
    async with simulated_cloud(sim, socket=True, project_id=P) as running:
        yield running


def set_connection(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], conn_id: str = CONN_ID
) -> None:
    """Define Airflow connection ``conn_id`` through its environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture
def connection(
    cloud: SimulatedCloud[ManualClock], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The default connection, in the third-party provider's layout, to the simulator."""
    fields = {
        "conn_type": "huaweicloud",
        "login": AK,
        "password": SK,
        "extra": {"project_id": P, "endpoint": cloud.base_url},
    }
    set_connection(monkeypatch, fields)
    return fields


@pytest.fixture(autouse=True)
def no_hub_left() -> Iterator[None]:
    yield
    assert _hub._HUBS == {}, "a hub outlived its triggers"
