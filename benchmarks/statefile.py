"""The ``state`` scenario: the CPU of ``jobwatch watch`` with and without ``--state``.

Issue 15: ``--state FILE`` rewrote the whole file after every event (5,000 EVS jobs:
110 s CPU against 4.1 s without it).  Here the real CLI runs as a child process
against the simulator server, on N EVS jobs (``RUNNING`` from 0, ``SUCCESS`` at a
uniform time in [a, b] s), once without ``--state`` and once with a fresh FILE, in
turn (``passes`` times each, alternating, so that drift on a shared machine shows on
both).  The figure is the child's CPU (user + system, all threads, from
``RUSAGE_CHILDREN``), imports included, and the target is with / without <= 1.3x.
Each run's JSON Lines are counted: every job must have ended ``succeeded``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from benchmarks._common import PROJECT, Scenario, job_id, start_timeline

if TYPE_CHECKING:
    from benchmarks.harness import Harness, Server

Result = dict[str, Any]
VARIANTS = ("without", "with")
TARGET = 1.3


def watch_once(
    server: Server, n: int, state: Path | None, log: IO[bytes], policy: Result
) -> Result:
    """One ``jobwatch watch --json`` child over the ``n`` jobs; its CPU and outcome."""
    from benchmarks.harness import child_env

    argv = [
        sys.executable, "-m", "jobwatch", "watch", "--api", "evs", "--endpoint", server.url,
        "--project-id", PROJECT, "--json", "--interval", str(policy["initial"]),
        "--max-interval", str(policy["maximum"]),
        *(["--state", str(state)] if state is not None else []),
        *(job_id(i) for i in range(n)),
    ]  # fmt: skip
    env = {k: v for k, v in child_env().items() if not k.startswith(("JOBWATCH_", "HUAWEICLOUD_"))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start_timeline(server.url)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, stdout=out, stderr=log, env=env, timeout=600, check=False
        )
        wall = time.perf_counter() - started
        out.seek(0)
        events = [json.loads(line) for line in out]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    succeeded = sum(e.get("state") == "succeeded" for e in events)
    result: Result = {"cpu_s": cpu, "wall_s": wall, "events": len(events), "succeeded": succeeded}
    result["exit_status"] = done.returncode
    if state is not None:
        result["state_bytes"] = state.stat().st_size
    return result


def run(harness: Harness) -> Result:
    """The scenario, from the harness: both variants, in turn, against one server."""
    from benchmarks.harness import Server

    c = harness.config
    n = c.state_n
    server = Server(Scenario("evs", n, c.a, c.b, c.seed), harness.log)
    runs: dict[str, list[Result]] = {name: [] for name in VARIANTS}
    try:
        with tempfile.TemporaryDirectory(prefix="jobwatch-bench-state-") as tmp:
            for number in range(c.state_passes):
                for name in VARIANTS:
                    harness.say(f"  state: {n} EVS jobs, jobwatch watch {name} --state")
                    path = Path(tmp) / f"state-{number}.jsonl" if name == "with" else None
                    runs[name].append(watch_once(server, n, path, harness.log, c.policy))
    finally:
        server.stop()
    out: Result = {"jobs": n, "passes": c.state_passes, "runs": runs}
    cpu = {name: sum(r["cpu_s"] for r in rs) / len(rs) for name, rs in runs.items()}
    out["cpu_s"] = cpu
    out["ratio"] = cpu["with"] / cpu["without"] if cpu["without"] else None
    every = [r for rs in runs.values() for r in rs]
    out["all_succeeded"] = all(r["succeeded"] == n and r["exit_status"] == 0 for r in every)
    return out


def render(section: Result) -> list[str]:
    """The scenario's lines: CPU of each variant, the ratio, PASS or MISS."""
    from benchmarks.report import _fmt, _x

    cpu = section.get("cpu_s") or {}
    ratio = section.get("ratio")
    status = "N/A" if ratio is None else "PASS" if ratio <= TARGET else "MISS"
    checked = "" if section.get("all_succeeded") else " (NOT every job seen succeeded!)"
    return [
        "",
        f"state: jobwatch watch --json on {section.get('jobs')} EVS jobs, mean of "
        f"{section.get('passes')} pass(es){checked}",
        f"  CPU without --state {_fmt(cpu.get('without'), '.2f')} s, "
        f"with --state {_fmt(cpu.get('with'), '.2f')} s",
        f"  {status}: with / without --state {_x(ratio)} (target <= {TARGET}x)",
    ]


def target(results: Result) -> tuple[str, float | None]:
    """The target's name and figure, for the report's list of targets."""
    section = results.get("state") or {}
    value = section.get("ratio")
    return f"watch --state CPU <= {TARGET}x without, at {section.get('jobs')} jobs", value
