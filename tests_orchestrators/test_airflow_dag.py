"""End to end: ``airflow dags test`` runs examples/airflow_dag.py against the simulator on a socket.

Airflow gets a home of its own in a temporary folder (SQLite), the DAG folder
holds only the example, and the connection comes from its environment
variable.  ``dags test`` runs each deferred task's trigger in line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from jobwatch.sim import MonotonicClock, SimAuth, Simulator, SubJob
from jobwatch.testing import SimulatedCloud, simulated_cloud
from tests_orchestrators.conftest import AK, SK, P

EXAMPLE = Path(__file__).parent.parent / "examples" / "airflow_dag.py"
AIRFLOW = [sys.executable, "-m", "airflow"]

pytestmark = pytest.mark.anyio


@pytest.fixture
async def live() -> AsyncIterator[SimulatedCloud[MonotonicClock]]:
    sim = Simulator(clock=MonotonicClock(), auth=SimAuth(credentials={AK: SK}))
    sim.add_evs_job(P, "vol-job-1", [(0, "RUNNING"), (1, "SUCCESS")])
    ok = [SubJob("sub-1", [(0, "RUNNING"), (1, "SUCCESS")])]
    sim.add_evs_job(P, "batch-job-1", [(0, "RUNNING"), (1.5, "SUCCESS")], sub_jobs=ok)
    bad = [SubJob("sub-2", [(0, "RUNNING"), (1, "FAIL")], fail_reason="EVS quota exceeded")]
    sim.add_evs_job(P, "batch-job-2", [(0, "RUNNING"), (1.5, "SUCCESS")], sub_jobs=bad)
    async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
        yield cloud


def airflow_env(home: Path, endpoint: str) -> dict[str, str]:
    connection = {
        "conn_type": "huaweicloud",
        "login": AK,
        "password": SK,
        "extra": {"project_id": P, "endpoint": endpoint},
    }
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW_CONN_HUAWEICLOUD_DEFAULT": json.dumps(connection),
    }


async def airflow(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = await anyio.run_process([*AIRFLOW, *args], env=env, check=False)
    return done.returncode, done.stdout.decode() + done.stderr.decode()


async def test_dags_test_runs_the_example_dag(
    live: SimulatedCloud[MonotonicClock], tmp_path: Path
) -> None:
    (tmp_path / "dags").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "dags")
    env: dict[str, Any] = airflow_env(tmp_path, live.base_url)
    code, out = await airflow(env, "db", "migrate")
    assert code == 0, out

    code, out = await airflow(env, "dags", "test", "huaweicloud_jobs")
    assert code == 0, out
    assert "evs:vol-job-1 succeeded" in out
    assert "evs:batch-job-1 succeeded" in out
    assert "state=success" in out
    assert SK not in out

    conf = json.dumps({"batch_job": "batch-job-2"})
    code, out = await airflow(env, "dags", "test", "huaweicloud_jobs", "-c", conf)
    assert "evs:batch-job-2 ended with failed sub-jobs: evs:sub-2 (EVS quota exceeded)" in out
    assert "state=failed" in out
    assert SK not in out
    polled = {r.path.rsplit("/", 1)[-1] for r in live.simulator.requests}
    assert {"vol-job-1", "batch-job-1", "batch-job-2"} <= polled
