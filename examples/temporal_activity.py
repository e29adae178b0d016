"""A Temporal activity that watches a set of EVS jobs and survives its own retries.

The activity watches its jobs with one ``Watcher`` and heartbeats the watcher's
resume token (``export_state()``) with the outcomes so far.  When the worker
dies or the activity times out, Temporal retries it with the last heartbeat in
``activity.info().heartbeat_details``: the new attempt resumes from it, so the
jobs that already ended are not asked again, and the open ones go on from the
state they were last seen in.

Temporal warns when a payload passes 256 KB and fails one over 2 MB.  The token
costs about 175 bytes per open EVS job (a 32-character ID, its endpoint and
project) and an outcome about 60: keep an activity to ``MAX_JOBS`` jobs (a
heartbeat then stays near 250 KB) and split larger sets over several activities.

Credentials never travel in the activity's input (Temporal keeps inputs in the
workflow's history): the worker reads them from its environment, with the
official SDK's variable names ``HUAWEICLOUD_SDK_AK`` and ``HUAWEICLOUD_SDK_SK``.

``python examples/temporal_activity.py`` runs the activity twice in Temporal's
test environment (no server) against the simulator: a first attempt cancelled
half way (a worker lost), then a retry that resumes from its heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from temporalio import activity
from temporalio.testing import ActivityEnvironment

import jobwatch

#: The most jobs one activity should watch (Temporal's payload limits, above).
MAX_JOBS = 1_400


@dataclass
class WatchRequest:
    """What the workflow asks: EVS job IDs at an endpoint and project.

    ``poll`` holds ``PollPolicy`` fields.  The activity heartbeats on events, at
    most every ``heartbeat_every`` seconds, and on a timer of that period (1 s
    when 0) while nothing happens; keep it well under the heartbeat timeout
    (Temporal throttles heartbeats too).
    """

    endpoint: str
    project_id: str
    job_ids: list[str]
    poll: dict[str, Any] = field(default_factory=dict)
    heartbeat_every: float = 1.0


def _auth() -> jobwatch.AKSKAuth | None:
    ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK"), os.environ.get("HUAWEICLOUD_SDK_SK")
    return jobwatch.AKSKAuth(ak, sk) if ak and sk else None


def _outcome(event: jobwatch.Event) -> str:
    if isinstance(event, jobwatch.GaveUp):
        return f"gave_up:{event.reason}"
    return event.state.value


@activity.defn
async def watch_jobs(request: WatchRequest) -> dict[str, str]:
    """Wait for every job; each job's outcome (``succeeded``, ``failed``, ``gave_up:REASON``)."""
    if len(request.job_ids) > MAX_JOBS:
        raise ValueError(f"{len(request.job_ids)} jobs: at most {MAX_JOBS} per activity")
    details = activity.info().heartbeat_details
    saved: dict[str, Any] | None = details[0] if details else None
    outcomes: dict[str, str] = dict(saved["outcomes"]) if saved else {}
    policy = jobwatch.PollPolicy(**request.poll)
    async with (
        jobwatch.Client(request.endpoint, request.project_id, auth=_auth()) as client,
        jobwatch.Watcher(client, policy=policy) as watcher,
    ):
        if saved is not None:
            watcher.resume(saved["token"])  # the open jobs, in the states last delivered
        else:
            watcher.watch_many(jobwatch.EvsJob(job) for job in request.job_ids)

        def heartbeat() -> None:
            # Copies: the SDK may encode the details later, when it sends them.
            activity.heartbeat({"token": watcher.export_state(), "outcomes": dict(outcomes)})

        async def keep_beating() -> None:
            # Jobs may run for long without a change: beat all the same, or Temporal
            # takes the activity for dead (and it would not hear of a cancellation).
            while True:
                await anyio.sleep(request.heartbeat_every or 1.0)
                heartbeat()

        async with anyio.create_task_group() as beating:
            beating.start_soon(keep_beating)
            last_beat = anyio.current_time()
            async for event in watcher.events():
                if event.final and event.parent is None:
                    outcomes[str(event.ref)] = _outcome(event)
                if anyio.current_time() - last_beat >= request.heartbeat_every:
                    heartbeat()
                    last_beat = anyio.current_time()
            beating.cancel_scope.cancel()
    return outcomes


async def demo() -> None:
    """Two attempts of the activity against the simulator: cancelled, then resumed."""
    from jobwatch.testing import simulated_cloud

    jobs = [f"vol-{n:02d}" for n in range(20)]
    scenario = {
        "evs_jobs": [
            {
                "project_id": "demo-project",
                "job_id": job,
                "timeline": [[0, "RUNNING"], [0.3 + 0.2 * n, "FAIL" if n == 7 else "SUCCESS"]],
            }
            for n, job in enumerate(jobs)
        ]
    }
    async with simulated_cloud(scenario, socket=True) as cloud:
        request = WatchRequest(cloud.base_url, cloud.project_id, jobs, {"wait_initial": 0.1})
        beats: list[Any] = []
        half_way = asyncio.Event()

        def heartbeat(details: Any) -> None:
            beats.append(details)
            if len(details["outcomes"]) >= 5:
                half_way.set()

        env = ActivityEnvironment()
        env.on_heartbeat = heartbeat
        attempt = asyncio.ensure_future(env.run(watch_jobs, request))
        await half_way.wait()
        env.cancel()  # the worker is lost half way
        with contextlib.suppress(asyncio.CancelledError):
            await attempt
        last = beats[-1]
        print(f"attempt 1: cancelled with {len(last['outcomes'])} outcomes heartbeated")
        asked = len(cloud.simulator.requests)

        retry = ActivityEnvironment()
        retry.info = replace(retry.info, attempt=2, heartbeat_details=[last])
        outcomes = await retry.run(watch_jobs, request)
        again = {r.path for r in cloud.simulator.requests[asked:]}
        ended_before = [j for j in jobs if f"evs:{j}" in last["outcomes"]]
        repolled = [j for j in ended_before if any(p.endswith(f"/{j}") for p in again)]
        print(f"attempt 2: resumed; {len(repolled)} of the jobs ended before were asked again")
        states = list(outcomes.values())
        counts = {state: states.count(state) for state in sorted(set(states))}
        print(f"outcomes of {len(outcomes)} jobs: {counts}")


if __name__ == "__main__":
    asyncio.run(demo())
