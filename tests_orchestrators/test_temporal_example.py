"""examples/temporal_activity.py: the activity heartbeats its resume token and resumes from it.

Run with Temporal's ``ActivityEnvironment`` (no server) against the simulator.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from temporalio.converter import DataConverter
from temporalio.testing import ActivityEnvironment

import jobwatch
from jobwatch.sim import ManualClock, Simulator
from jobwatch.testing import simulated_cloud, wait_for_requests

EXAMPLE = Path(__file__).parent.parent / "examples" / "temporal_activity.py"
P = "proj-temporal"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("temporal_activity", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["temporal_activity"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


example = load_example()


def test_the_example_runs_and_resumes_without_asking_again() -> None:
    done = subprocess.run(  # noqa: S603 - our interpreter and our example
        [sys.executable, "-W", "error", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("attempt 1: cancelled with ")
    assert lines[1] == "attempt 2: resumed; 0 of the jobs ended before were asked again"
    assert lines[2] == "outcomes of 20 jobs: {'failed': 1, 'succeeded': 19}"


@pytest.mark.anyio
@pytest.mark.parametrize("cut_after", [0, 1, 4, 9, 14])
async def test_a_retry_after_any_cut_gives_every_outcome_once(cut_after: int) -> None:
    """The first attempt is cancelled once ``cut_after`` outcomes were heartbeated."""
    jobs = [f"job-{n:02d}" for n in range(15)]
    sim = Simulator(clock=ManualClock())
    for n, job in enumerate(jobs):
        sim.add_evs_job(P, job, [(0, "RUNNING"), (1 + n, "FAIL" if n % 4 == 0 else "SUCCESS")])
    async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
        poll = {"wait_initial": 0.01, "wait_max": 0.02}  # each end seen within a clock step
        request = example.WatchRequest(cloud.base_url, P, jobs, poll, 0.0)
        beats: list[dict[str, Any]] = []
        env = ActivityEnvironment()
        env.on_heartbeat = beats.append
        first = asyncio.ensure_future(env.run(example.watch_jobs, request))
        await wait_for_requests(sim, count=len(jobs))
        while not beats or len(beats[-1]["outcomes"]) < cut_after:
            sim.clock.advance(0.25)
            await anyio.sleep(0.03)
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        last = beats[-1]
        # What Temporal would store: the details survive its converter unchanged.
        converter = DataConverter.default.payload_converter
        (stored,) = converter.from_payloads(converter.to_payloads([last]))
        assert stored == last

        asked = len(sim.requests)
        retry = ActivityEnvironment()
        retry.info = replace(retry.info, attempt=2, heartbeat_details=[stored])
        second = asyncio.ensure_future(retry.run(example.watch_jobs, request))
        await wait_for_requests(sim, since=sim.clock.now(), count=1)
        sim.clock.advance(30)
        outcomes = await second
    assert sorted(outcomes) == [f"evs:{job}" for job in jobs]
    for n, job in enumerate(jobs):
        assert outcomes[f"evs:{job}"] == ("failed" if n % 4 == 0 else "succeeded")
    again = {r.path.rsplit("/", 1)[-1] for r in sim.requests[asked:]}
    assert not again & {ref.split(":", 1)[1] for ref in last["outcomes"]}


@pytest.mark.anyio
async def test_a_heartbeat_of_max_jobs_stays_under_temporals_warning() -> None:
    ids = [f"ff8080817{n:023d}" for n in range(example.MAX_JOBS)]
    sim = Simulator(clock=ManualClock())
    for job in ids:
        sim.add_evs_job(P, job, [(0, "RUNNING")])
    async with (
        simulated_cloud(sim, project_id=P) as cloud,
        jobwatch.Watcher(cloud.client, events=False) as watcher,
    ):
        watcher.watch_many(jobwatch.EvsJob(job) for job in ids)
        await wait_for_requests(sim, count=len(ids), timeout=30)
        token = watcher.export_state()
    (payload,) = DataConverter.default.payload_converter.to_payloads(
        [{"token": token, "outcomes": {}}]
    )
    size = len(payload.SerializeToString())
    assert size < 256 * 1024, size


@pytest.mark.anyio
async def test_too_many_jobs_are_refused_before_any_request() -> None:
    request = example.WatchRequest("http://127.0.0.1:9", P, ["j"] * (example.MAX_JOBS + 1))
    with pytest.raises(ValueError, match="per activity"):
        await ActivityEnvironment().run(example.watch_jobs, request)
