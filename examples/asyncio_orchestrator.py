"""Embed a watcher in a plain asyncio program, next to the program's other asyncio tasks.

jobwatch is written against anyio, which runs on asyncio's own event loop: a
program started with ``asyncio.run`` can use ``Client`` and ``Watcher`` as it is,
and the watcher's tasks are ordinary asyncio tasks.  This "orchestrator" keeps
four tasks in an ``asyncio.TaskGroup``:

* ``submit``: starts jobs in three waves (here it adds them to the simulator, as
  your create calls would in the cloud) and hands each job ID to the watcher;
* ``pump``: forwards the watcher's events into an ``asyncio.Queue``;
* ``record``: takes events off the queue and writes a row per finished job with
  ``asyncio.to_thread`` (a blocking database driver, say);
* ``heartbeat``: prints the watcher's counters every half second until the end.

The simulator listens on a real loopback socket (``jobwatch.sim.serve``, started
before the event loop), so the polls are real HTTP requests made by asyncio.
``asyncio.timeout`` bounds the whole run.  Run it with
``python examples/asyncio_orchestrator.py`` (about three seconds); it prints::

    simulator listening on http://127.0.0.1:PORT
    the watcher runs 9 asyncio tasks: jobwatch scheduler, jobwatch worker 0, ...
    [submit] wave 1: 20 jobs
    [heartbeat] 20 open, 0 finished, 0 polls
    ...
    [record] evs:wave2-job07 failed: insufficient capacity
    ...
    60 jobs: 57 succeeded, 3 failed; 60 rows written

Against the cloud, build the client with your endpoint, project ID and
credentials instead of the simulator's address (and watch the job IDs your create
calls answer with)::

    client = jobwatch.Client(
        "https://evs.cn-north-4.myhuaweicloud.com",
        project_id,
        auth=jobwatch.AKSKAuth.from_env(),  # or jobwatch.TokenAuth(iam_token)
    )
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import jobwatch
from jobwatch.sim import MonotonicClock, Simulator, serve

PROJECT = "example-project"
WAVES = 3
PER_WAVE = 20


async def submit(sim: Simulator[MonotonicClock], watcher: jobwatch.Watcher) -> None:
    """Start WAVES waves of PER_WAVE jobs, 0.4 s apart, and watch each one."""
    for wave in range(1, WAVES + 1):
        for n in range(PER_WAVE):
            job_id = f"wave{wave}-job{n:02d}"
            failing = n == 7  # one job of each wave fails
            sim.add_evs_job(  # in the cloud: the create-volume call answering with job_id
                PROJECT,
                job_id,
                [(0, "INIT"), (0.2, "RUNNING"), (0.5 + n * 0.03, "FAIL" if failing else "SUCCESS")],
                fail_reason="insufficient capacity" if failing else None,
            )
            watcher.watch(jobwatch.EvsJob(job_id))
        print(f"[submit] wave {wave}: {PER_WAVE} jobs")
        await asyncio.sleep(0.4)


async def pump(
    watcher: jobwatch.Watcher, queue: asyncio.Queue[jobwatch.Event | None], expected: int
) -> None:
    """Forward events into ``queue`` until ``expected`` jobs have ended, then a None."""
    finished = 0
    async for event in watcher.events(until_idle=False):  # jobs keep coming: do not stop
        await queue.put(event)
        if event.final and event.parent is None:
            finished += 1
            if finished == expected:
                break
    await queue.put(None)


def write_row(table: list[str], row: str) -> None:
    """A blocking write (a database driver without asyncio support)."""
    table.append(row)


async def record(
    queue: asyncio.Queue[jobwatch.Event | None], table: list[str], outcomes: Counter[str]
) -> None:
    """Write one row per finished job; report the failures."""
    while (event := await queue.get()) is not None:
        if not event.final:
            continue
        if isinstance(event, jobwatch.GaveUp):
            outcomes["gave up"] += 1
            print(f"[record] {event.ref} gave up: {event.reason.value}")
        else:
            outcomes[event.state.value] += 1
            if event.state is jobwatch.JobState.FAILED:
                print(f"[record] {event.ref} failed: {event.snapshot.fail_reason}")
        await asyncio.to_thread(write_row, table, f"{event.ref.job_id},{event.final}")


async def heartbeat(watcher: jobwatch.Watcher, stop: asyncio.Event) -> None:
    """Print the watcher's counters every half second until ``stop`` is set."""
    while not stop.is_set():
        stats = watcher.statistics()
        finished = stats.jobs_watched - stats.jobs_open
        print(f"[heartbeat] {stats.jobs_open} open, {finished} finished, {stats.polls} polls")
        try:
            async with asyncio.timeout(0.5):
                await stop.wait()
        except TimeoutError:
            pass


async def main(sim: Simulator[MonotonicClock], base_url: str) -> int:
    policy = jobwatch.PollPolicy(wait_initial=0.1, wait_exp_base=2, wait_max=0.4)
    queue: asyncio.Queue[jobwatch.Event | None] = asyncio.Queue(maxsize=16)
    table: list[str] = []
    outcomes: Counter[str] = Counter()
    stop = asyncio.Event()
    async with (
        asyncio.timeout(30),
        jobwatch.Client(base_url, PROJECT) as client,
        jobwatch.Watcher(client, policy=policy) as watcher,
    ):
        names = sorted(
            task.get_name()
            for task in asyncio.all_tasks()
            if task.get_name().startswith("jobwatch")
        )
        print(f"the watcher runs {len(names)} asyncio tasks: {', '.join(names[:3])}, ...")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(submit(sim, watcher), name="submit")
            tg.create_task(pump(watcher, queue, WAVES * PER_WAVE), name="pump")
            recorder = tg.create_task(record(queue, table, outcomes), name="record")
            tg.create_task(heartbeat(watcher, stop), name="heartbeat")
            await recorder
            stop.set()
    total = sum(outcomes.values())
    print(
        f"{total} jobs: {outcomes['succeeded']} succeeded, {outcomes['failed']} failed; "
        f"{len(table)} rows written"
    )
    return 0


if __name__ == "__main__":
    simulator = Simulator()
    with serve(simulator) as url:
        print(f"simulator listening on {url}")
        status = asyncio.run(main(simulator, url))
    sys.exit(status)
