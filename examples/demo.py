"""Watch the built-in demo scenario over a real loopback socket and summarise.

Run with ``make demo`` (or ``python examples/demo.py``).  It starts the simulator
on a free loopback port, watches a few hundred jobs of all four APIs with one
``Watcher``, prints each state change, and ends with a summary.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import anyio

from jobwatch import Client, GaveUp, PollPolicy, RetryPolicy, Transition, Watcher
from jobwatch.sim import serve
from jobwatch.sim._demo import demo_scenario


async def main() -> int:
    scenario = demo_scenario(jobs=300)
    policy = PollPolicy(initial=0.5, multiplier=1.5, maximum=4.0)
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    with serve(scenario.simulator) as base_url:
        print(f"simulator listening on {base_url}; watching {len(scenario.refs)} jobs")
        retry = RetryPolicy(wait_initial=0.2, retry_after_max=2.0)
        async with (
            Client(base_url, scenario.project_id, retry=retry) as client,
            Watcher(client, policy=policy) as watcher,
        ):
            watcher.watch_many(scenario.refs)
            with anyio.fail_after(90):
                async for event in watcher.events():
                    parent = f" (in {event.parent})" if event.parent else ""
                    if isinstance(event, Transition):
                        before = event.previous.value if event.previous else "-"
                        print(f"{event.ref}{parent}: {before} -> {event.state.value}")
                        if event.final and event.parent is None:
                            outcomes[event.state.value] += 1
                            if event.snapshot.import_has_failures:
                                outcomes["imports with failed files"] += 1
                            if event.failed_sub_jobs:
                                outcomes["batches with failed sub-jobs"] += 1
                    elif isinstance(event, GaveUp):
                        print(f"{event.ref}{parent}: gave up ({event.reason.value})")
                        if event.parent is None:
                            outcomes[f"gave up: {event.reason.value}"] += 1
            stats = watcher.statistics()
    elapsed = time.monotonic() - started
    naive = int(len(scenario.refs) * elapsed)  # one request per job per second
    print()
    print(f"jobs watched       {stats.jobs_watched}")
    for name, count in sorted(outcomes.items()):
        print(f"  {name:<32}{count}")
    print(f"polls              {stats.polls}")
    print(f"HTTP requests      {stats.requests} (retries {stats.retries})")
    print(f"saved by coalescing {stats.requests_saved}")
    print(f"naive 1 s polling  ~{naive} requests")
    print(f"elapsed            {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
