"""Embed a watcher in a trio program: ``trio.run``, a nursery, a trio memory channel.

jobwatch is written against anyio, so it runs under trio unchanged.  This program
watches two kinds of jobs with one ``Watcher``:

* 40 GES engine import jobs of graph ``movies``, through a client for the graph
  engine's address (``watcher.watch(ref, client=engine)``).  The engine has no
  per-job status path; the watcher refreshes every job of a graph with one
  job-list request per tick, so 40 jobs cost about as much as one;
* 10 EVS volume jobs (one fails), through the watcher's default client.

In a nursery, one task forwards the watcher's events into a
``trio.open_memory_channel`` and another prints each job's final outcome while a
third prints progress every half second, until the consumer is done and cancels
the nursery.  ``trio.fail_after`` bounds the run.  The simulator listens on a
loopback socket (``jobwatch.sim.serve``, started before ``trio.run``), so both
clients make real HTTP requests.  Run it with ``python examples/trio_program.py``
(about three seconds); it prints::

    simulator listening on http://127.0.0.1:PORT
    [progress] 50 open
    ...
    [done] evs:vol-3 failed: insufficient capacity
    ...
    50 jobs: 49 succeeded, 1 failed
    engine jobs: 506 polls, 15 list requests (491 saved by coalescing); EVS jobs: 61 polls

(the counts vary a little from run to run.)

Against the cloud, the two clients point at two different places: EVS at
``https://evs.{region}.myhuaweicloud.com``, the engine jobs at the graph's access
address (``https://{graph access IP or domain}``), both with your project ID and
credentials::

    evs = jobwatch.Client(evs_endpoint, project_id, auth=jobwatch.AKSKAuth.from_env())
    engine = jobwatch.Client(graph_address, project_id, auth=jobwatch.TokenAuth(iam_token))
"""

from __future__ import annotations

import sys
from collections import Counter

import trio

import jobwatch
from jobwatch.sim import MonotonicClock, Simulator, serve

PROJECT = "example-project"
GRAPH = "movies"
ENGINE_JOBS = 40
EVS_JOBS = 10


def build_simulator() -> Simulator[MonotonicClock]:
    """40 engine import jobs of one graph and 10 EVS jobs, all ending within two seconds."""
    sim = Simulator()
    for n in range(ENGINE_JOBS):
        sim.add_engine_job(
            PROJECT,
            GRAPH,
            f"import-{n:02d}",
            [(0, "pending"), (0.1 + n * 0.01, "running"), (0.6 + n * 0.025, "complete")],
        )
    for n in range(EVS_JOBS):
        failing = n == 3
        sim.add_evs_job(
            PROJECT,
            f"vol-{n}",
            [(0, "INIT"), (0.2, "RUNNING"), (0.4 + n * 0.1, "FAIL" if failing else "SUCCESS")],
            fail_reason="insufficient capacity" if failing else None,
        )
    return sim


async def forward(watcher: jobwatch.Watcher, send: trio.MemorySendChannel[jobwatch.Event]) -> None:
    """Forward the watcher's events into a trio channel; closing it ends the consumer."""
    async with send:
        async for event in watcher.events():
            await send.send(event)


async def report(
    receive: trio.MemoryReceiveChannel[jobwatch.Event],
    outcomes: Counter[str],
    nursery: trio.Nursery,
) -> None:
    """Print each job's final outcome; when all are in, cancel the other tasks."""
    async with receive:
        async for event in receive:
            if not event.final:
                continue
            if isinstance(event, jobwatch.GaveUp):
                outcomes["gave up"] += 1
                print(f"[done] {event.ref} gave up: {event.reason.value}")
                continue
            outcomes[event.state.value] += 1
            if event.state is jobwatch.JobState.FAILED:
                print(f"[done] {event.ref} failed: {event.snapshot.fail_reason}")
    nursery.cancel_scope.cancel()  # stops the progress task


async def progress(watcher: jobwatch.Watcher) -> None:
    """Print how many jobs are still open, every half second."""
    while True:
        print(f"[progress] {watcher.statistics().jobs_open} open")
        await trio.sleep(0.5)


async def main(base_url: str) -> int:
    policy = jobwatch.PollPolicy(wait_initial=0.05, wait_exp_base=2, wait_max=0.2)
    outcomes: Counter[str] = Counter()
    polls: Counter[str] = Counter()

    def count_poll(details: jobwatch.PollDetails) -> None:
        polls[type(details.ref).__name__] += 1

    async with (
        jobwatch.Client(base_url, PROJECT) as evs,
        jobwatch.Client(base_url, PROJECT) as engine,
        jobwatch.Watcher(evs, policy=policy, on_poll=count_poll) as watcher,
    ):
        for n in range(ENGINE_JOBS):
            watcher.watch(jobwatch.GesEngineJob(GRAPH, f"import-{n:02d}"), client=engine)
        watcher.watch_many(jobwatch.EvsJob(f"vol-{n}") for n in range(EVS_JOBS))
        send, receive = trio.open_memory_channel[jobwatch.Event](0)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(forward, watcher, send)
                nursery.start_soon(report, receive, outcomes, nursery)
                nursery.start_soon(progress, watcher)
        saved = watcher.statistics().requests_saved
        lists = engine.statistics().requests
    total = sum(outcomes.values())
    print(f"{total} jobs: {outcomes['succeeded']} succeeded, {outcomes['failed']} failed")
    print(
        f"engine jobs: {polls['GesEngineJob']} polls, {lists} list requests "
        f"({saved} saved by coalescing); EVS jobs: {polls['EvsJob']} polls"
    )
    return 0


if __name__ == "__main__":
    simulator = build_simulator()
    with serve(simulator) as url:
        print(f"simulator listening on {url}")
        status = trio.run(main, url)
    sys.exit(status)
