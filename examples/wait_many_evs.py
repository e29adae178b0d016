"""Wait for hundreds of EVS jobs at once and report the ones that failed.

Creating volumes in bulk (``POST /v2/{project_id}/cloudvolumes``, one call per
volume or a batch) leaves you with a job ID per call.  This example "creates" 400
volumes in the simulator, adds two job IDs that do not exist (a lost or mistyped
ID), and waits for all of them with one ``Watcher``: ``as_completed`` hands each
job's final outcome over as soon as it is known, so progress can be reported
while the rest are still running.  One scheduler polls every job with its own
backoff, and requests in flight stay within the client's ``max_in_flight``.

Run it with ``python examples/wait_many_evs.py``; it takes about three seconds
and prints progress, the failures (job, error code, reason), the jobs given up
on, and a summary::

    created 400 EVS jobs, plus 2 job IDs that do not exist
      100/402 finished
      ...
    failed (22):
      evs:vol-job-0025  EVS.5400  the volume type is sold out in this availability zone
      evs:vol-job-0027  EVS.2024  insufficient capacity
      ...
    gave up (2):
      evs:lost-job-1  not_found
      evs:lost-job-2  not_found
    402 jobs: 378 succeeded, 22 failed, 2 gave up
    1859 polls, 1859 requests, at most 8 in flight, 2.9 s

Against the cloud, keep the job IDs your create calls answer with, drop the
simulator, and build the client with real credentials and a gentler policy::

    client = jobwatch.Client(
        "https://evs.cn-north-4.myhuaweicloud.com",   # your region's EVS endpoint
        os.environ["HUAWEICLOUD_SDK_PROJECT_ID"],
        auth=jobwatch.AKSKAuth.from_env(),  # HUAWEICLOUD_SDK_AK / _SK / _SECURITY_TOKEN
        # or auth=jobwatch.TokenAuth(iam_token)
    )
    policy = jobwatch.PollPolicy(wait_initial=2.0, wait_max=30.0, timeout=3600)

(``jobwatch.Client.from_env(endpoint)`` does the first part in one call.)
``watcher.wait_all(refs)`` is the other way to wait: one list of final events,
in the order of ``refs``, once every job has ended.
"""

from __future__ import annotations

import random
import sys
import time

import anyio

import jobwatch
from jobwatch.sim import MonotonicClock, Simulator

PROJECT = "example-project"
VOLUMES = 400
FAIL_REASONS = {
    "EVS.2024": "insufficient capacity",
    "EVS.5400": "the volume type is sold out in this availability zone",
}


def create_volumes(sim: Simulator[MonotonicClock], count: int, rng: random.Random) -> list[str]:
    """Stand-in for the EVS create-volume calls: each one leaves a job in the simulator.

    About one volume in twenty fails; every job ends within two seconds.
    """
    job_ids: list[str] = []
    for n in range(count):
        job_id = f"vol-job-{n:04d}"
        start = rng.uniform(0.05, 0.5)
        end = start + rng.uniform(0.2, 1.5)
        code = rng.choice(sorted(FAIL_REASONS)) if rng.random() < 0.05 else None
        sim.add_evs_job(
            PROJECT,
            job_id,
            [(0, "INIT"), (start, "RUNNING"), (end, "FAIL" if code else "SUCCESS")],
            entities={"volume_id": f"vol-{n:04d}"},
            error_code=code,
            fail_reason=FAIL_REASONS[code] if code else None,
        )
        job_ids.append(job_id)
    return job_ids


async def main() -> int:
    sim = Simulator(seed=3)
    job_ids = create_volumes(sim, VOLUMES, random.Random(3))
    refs = [jobwatch.EvsJob(job_id) for job_id in job_ids]
    refs += [jobwatch.EvsJob("lost-job-1"), jobwatch.EvsJob("lost-job-2")]
    print(f"created {len(job_ids)} EVS jobs, plus 2 job IDs that do not exist")

    # Fast enough for a demo; see the docstring for the cloud.
    policy = jobwatch.PollPolicy(
        wait_initial=0.2, wait_exp_base=2, wait_max=1.0, not_found_grace=1.0
    )
    failed: list[jobwatch.Transition] = []
    gave_up: list[jobwatch.GaveUp] = []
    succeeded = 0
    started = time.monotonic()
    async with (
        jobwatch.Client("https://evs.example", PROJECT, transport=sim.transport()) as client,
        jobwatch.Watcher(client, policy=policy, events=False) as watcher,
    ):
        with anyio.fail_after(60):
            done = 0
            async for outcome in watcher.as_completed(refs):
                done += 1
                if isinstance(outcome, jobwatch.GaveUp):
                    gave_up.append(outcome)
                elif outcome.state is jobwatch.JobState.SUCCEEDED:
                    succeeded += 1
                else:
                    failed.append(outcome)
                if done % 100 == 0:
                    print(f"  {done}/{len(refs)} finished")
        stats = watcher.statistics()
    elapsed = time.monotonic() - started

    print(f"failed ({len(failed)}):")
    for event in sorted(failed, key=lambda e: e.ref.job_id):
        snapshot = event.snapshot
        print(f"  {event.ref}  {snapshot.error_code}  {snapshot.fail_reason}")
    print(f"gave up ({len(gave_up)}):")
    for give_up in sorted(gave_up, key=lambda e: e.ref.job_id):
        print(f"  {give_up.ref}  {give_up.reason.value}")
    print(f"{len(refs)} jobs: {succeeded} succeeded, {len(failed)} failed, {len(gave_up)} gave up")
    print(
        f"{stats.polls} polls, {stats.requests} requests, "
        f"at most {client.max_in_flight} in flight, {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
