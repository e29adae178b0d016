"""One watcher run in virtual time, in a child interpreter: ``python pressure_child.py JSON``.

Run by ``benchmarks.pressure`` with ``PYTHONPATH`` naming the jobwatch to measure
(this tree's, or a baseline commit's extracted copy), so this file imports nothing
but jobwatch, anyio and trio, and only API that both have: ``Simulator(clock=)``,
``add_evs_job``, ``Client(transport=)``, ``Watcher(policy=, events=, on_poll=,
seed=)``.  Its argument is a JSON object: ``n``, ``seed``, ``span`` ([a, b]: end
times uniform in it, or log-uniform with ``log``), ``time_limit``, optional
``policy`` (``PollPolicy`` keywords), ``quota`` (requests/s the simulator allows
the tenant) and ``headroom`` (``AdaptiveRate``'s), the last two this tree's only.
It prints one JSON object: requests, throttled answers, detected, the lags (seen -
end) and the same over each job's duration, the CPU seconds of the run and the
jobwatch file measured.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from typing import Any

import anyio
import trio
from trio.testing import MockClock

import jobwatch
from jobwatch.sim import Simulator

PROJECT = "bench-project"


class LoopClock:
    """Sim time that follows the event loop's clock (virtual on trio's MockClock)."""

    def __init__(self) -> None:
        self._origin = anyio.current_time()

    def now(self) -> float:
        return anyio.current_time() - self._origin


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    sim: Simulator[Any] = Simulator(clock=LoopClock())
    rng = random.Random(spec["seed"])
    a, b = spec["span"]
    if spec.get("log"):  # log-uniform: durations spread over orders of magnitude
        low, high = math.log(a), math.log(b)
        ends = {f"p{i:05d}": math.exp(rng.uniform(low, high)) for i in range(spec["n"])}
    else:
        ends = {f"p{i:05d}": rng.uniform(a, b) for i in range(spec["n"])}
    for job, end in ends.items():
        sim.add_evs_job(PROJECT, job, [(0, "RUNNING"), (end, "SUCCESS")])
    if spec.get("quota"):  # this tree's simulator only (a baseline may have no Quota)
        from jobwatch.sim import Quota

        sim.set_quota(Quota(spec["quota"]))
    seen: dict[str, float] = {}

    def on_poll(details: Any) -> None:
        snap = details.snapshot
        if snap is not None and snap.state.terminal:
            seen.setdefault(details.ref.job_id, sim.clock.now())

    policy = jobwatch.PollPolicy(**spec["policy"]) if spec.get("policy") else None
    extra: dict[str, Any] = {}
    if "headroom" in spec:  # this tree's AdaptiveRate only
        extra["adaptive"] = jobwatch.AdaptiveRate(headroom=spec["headroom"])
    client = jobwatch.Client("http://sim.test", PROJECT, transport=sim.transport(), **extra)
    cpu = time.process_time()
    async with (
        client,
        jobwatch.Watcher(
            client, policy=policy, events=False, on_poll=on_poll, seed=spec["seed"]
        ) as watcher,
    ):
        refs = [jobwatch.EvsJob(job) for job in sorted(ends)]
        watcher.watch_many(refs)
        with anyio.move_on_after(spec["time_limit"]):
            await watcher.wait_all(refs)
    return {
        "requests": len(sim.requests),
        "throttled": sum(r.status_code == 429 for r in sim.requests),
        "detected": len(seen),
        "lags": sorted(seen[job] - ends[job] for job in seen),
        "relative": sorted((seen[job] - ends[job]) / ends[job] for job in seen),
        "cpu_s": time.process_time() - cpu,
        "jobwatch": jobwatch.__file__,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])

    async def run() -> dict[str, Any]:
        return await measure(spec)

    result = trio.run(run, clock=MockClock(autojump_threshold=0))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
