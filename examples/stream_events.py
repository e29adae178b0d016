"""Stream a watcher's events to another coroutine through an anyio memory object stream.

A common shape: the watcher's events feed some other part of the program (a
database writer, a notifier, a web socket) that works at its own pace.  Here a
producer task forwards ``watcher.events()`` into the send side of a bounded
``anyio.create_memory_object_stream`` and a consumer coroutine handles each
event from the receive side.  Each side closes its end with ``async with``, so
the consumer's loop ends by itself once the producer is done (the watcher's
``events()`` ends when no watched job is left open).

Backpressure all the way: the stream holds at most ``STREAM_BUFFER`` events and
``send()`` waits while it is full; the watcher is made with ``buffer=1``, so when
the producer waits the watcher's workers wait too and polling slows down to the
consumer's pace.  Nothing is dropped.

Run it with ``python examples/stream_events.py``; it takes about two seconds and
prints each event as the consumer stores it, then a summary::

    [stored] evs:vol-00: - -> pending
    ...
    [stored] evs:batch-1-c (in evs:batch-1): running -> failed
    ...
    [stored] evs:batch-1: running -> succeeded  (failed sub-jobs: evs:batch-1-c)
    [stored] evs:vol-09: running -> succeeded
    consumer stored 39 events; jobs: 10 succeeded, 1 failed; sub-jobs: 2 succeeded, 1 failed
    the stream held at most 4 events (its buffer: 4); the producer waited for room 16 times; ...

(event counts vary a little from run to run: a job can pass through a state
between two polls.)  To use the cloud instead of the simulator, build the client
with your endpoint, project ID and credentials and leave everything else::

    client = jobwatch.Client(
        "https://evs.cn-north-4.myhuaweicloud.com",
        project_id,
        auth=jobwatch.AKSKAuth.from_env(),  # or jobwatch.TokenAuth(iam_token)
    )
"""

from __future__ import annotations

import sys
from collections import Counter

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import jobwatch
from jobwatch.sim import MonotonicClock, Simulator, SubJob

PROJECT = "example-project"
STREAM_BUFFER = 4
STORE_DELAY = 0.03  # what "storing" an event costs the consumer


def build_simulator() -> Simulator[MonotonicClock]:
    """Ten volume jobs (one fails) and a batch job with three sub-jobs (one fails)."""
    sim = Simulator()
    for n in range(10):
        final = "FAIL" if n == 7 else "SUCCESS"
        sim.add_evs_job(
            PROJECT,
            f"vol-{n:02d}",
            [(0, "INIT"), (0.1 + n * 0.05, "RUNNING"), (0.5 + n * 0.08, final)],
            fail_reason="insufficient capacity" if final == "FAIL" else None,
        )
    sim.add_evs_job(
        PROJECT,
        "batch-1",
        [(0, "INIT"), (0.2, "RUNNING"), (1.2, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[
            SubJob("batch-1-a", [(0, "RUNNING"), (0.6, "SUCCESS")], appear_at=0.2),
            SubJob("batch-1-b", [(0, "RUNNING"), (0.8, "SUCCESS")], appear_at=0.3),
            SubJob(
                "batch-1-c", [(0, "RUNNING"), (0.9, "FAIL")], appear_at=0.3, fail_reason="quota"
            ),
        ],
    )
    return sim


async def produce(
    watcher: jobwatch.Watcher, send: MemoryObjectSendStream[jobwatch.Event], counts: Counter[str]
) -> None:
    """Forward every event into the stream; closing ``send`` tells the consumer we are done."""
    async with send:
        async for event in watcher.events():
            if send.statistics().current_buffer_used >= STREAM_BUFFER:
                counts["waits"] += 1  # the consumer is behind: this send() waits for room
            await send.send(event)
            counts["peak"] = max(counts["peak"], send.statistics().current_buffer_used)


async def consume(
    receive: MemoryObjectReceiveStream[jobwatch.Event], outcomes: Counter[str]
) -> None:
    """Store each event (slowly) and count the final outcomes of jobs and sub-jobs."""
    async with receive:
        async for event in receive:
            await anyio.sleep(STORE_DELAY)  # e.g. an INSERT into a database
            if isinstance(event, jobwatch.GaveUp):
                print(f"[stored] {event.ref}: gave up ({event.reason.value})")
                continue
            before = event.previous.value if event.previous else "-"
            note = ""
            if event.final and event.failed_sub_jobs:
                failed = ", ".join(str(s.ref) for s in event.failed_sub_jobs)
                note = f"  (failed sub-jobs: {failed})"
            where = f" (in {event.parent})" if event.parent else ""
            print(f"[stored] {event.ref}{where}: {before} -> {event.state.value}{note}")
            outcomes["events"] += 1
            if event.final:
                level = "sub-job" if event.parent else "job"
                outcomes[f"{level} {event.state.value}"] += 1


async def main() -> int:
    sim = build_simulator()
    refs = [jobwatch.EvsJob(f"vol-{n:02d}") for n in range(10)] + [jobwatch.EvsJob("batch-1")]
    policy = jobwatch.PollPolicy(wait_initial=0.05, wait_exp_base=2, wait_max=0.2)
    outcomes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    async with (
        jobwatch.Client("https://evs.example", PROJECT, transport=sim.transport()) as client,
        jobwatch.Watcher(client, policy=policy, buffer=1) as watcher,
    ):
        watcher.watch_many(refs)
        send, receive = anyio.create_memory_object_stream[jobwatch.Event](STREAM_BUFFER)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(produce, watcher, send, counts)
                tg.start_soon(consume, receive, outcomes)
        polls = watcher.statistics().polls
    print(
        f"consumer stored {outcomes['events']} events; "
        f"jobs: {outcomes['job succeeded']} succeeded, {outcomes['job failed']} failed; "
        f"sub-jobs: {outcomes['sub-job succeeded']} succeeded, {outcomes['sub-job failed']} failed"
    )
    print(
        f"the stream held at most {counts['peak']} events (its buffer: {STREAM_BUFFER}); "
        f"the producer waited for room {counts['waits']} times; the watcher polled {polls} times"
    )
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
