"""The ``pressure`` scenario: no quota in force, this tree against jobwatch before issue 14.

Issue 14 asks that learning the quota costs nothing when no quota binds: with no
quota in force, detection lag and CPU no worse than before, and at small N (60
jobs) no slower to detect.  "Before" is a baseline commit (``BASELINE``, main just
before issue 14's work), extracted with ``git archive`` into a temporary
directory; both run the same child (``benchmarks/pressure_child.py``) in virtual
time (trio's ``MockClock``, the simulator in process), alternating, ``repeats``
times.  Lags are exact in virtual time; CPU is the child's process time over the
run, the in-process simulator included, per request.

Then the table behind the default ``PollPolicy``: a few schedules against EVS
jobs whose durations are log-uniform over [2 s, 30 min] (from a volume attach to
a GES graph) and uniform in [5, 45] s, with requests per job, mean detection lag
and lag relative to the job's duration.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.harness import Harness

Result = dict[str, Any]

#: main before issue 14's work (the adaptive budget, the batched hand-off).
BASELINE = "82b0aa0"
ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "pressure_child.py"
CASES = (("small", 60), ("large", 1500))
SPAN = (5.0, 45.0)
TIME_LIMIT = 150.0
#: Schedules compared for the default (wait_initial, wait_exp_base, wait_max).
SCHEDULES = ((1.0, 2.0, 30.0), (1.0, 1.5, 30.0), (2.0, 1.5, 30.0), (1.0, 2.0, 10.0))
MIXED = {"span": [2.0, 1800.0], "log": True, "time_limit": 2000.0}
#: Lag and CPU per request may be this much above the baseline's and still PASS
#: (CPU: drift on two shared cores between alternating children).
LAG_SLACK = 1.0
CPU_SLACK = 1.10


@contextmanager
def baseline_tree() -> Iterator[Path | None]:
    """The baseline's ``jobwatch`` package in a temporary directory (None without git)."""
    try:
        archive = subprocess.run(  # noqa: S603 - git on our own checkout
            ["git", "-C", str(ROOT), "archive", BASELINE, "jobwatch"],  # noqa: S607
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="jobwatch-baseline-") as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def child(tree: Path, spec: Result) -> Result:
    """One run of the child with ``tree``'s jobwatch; its figures."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(  # noqa: S603 - our own interpreter and child
        [sys.executable, str(CHILD), json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    raw: Result = json.loads(out)
    lags, relative = raw["lags"], raw["relative"]
    return {
        "requests": raw["requests"],
        "throttled": raw["throttled"],
        "detected": raw["detected"],
        "mean_lag_s": statistics.fmean(lags) if lags else None,
        "p95_lag_s": lags[int(0.95 * (len(lags) - 1))] if lags else None,
        "mean_relative_lag": statistics.fmean(relative) if relative else None,
        "p95_relative_lag": relative[int(0.95 * (len(relative) - 1))] if relative else None,
        "cpu_per_request_ms": raw["cpu_s"] * 1000 / max(raw["requests"], 1),
        "jobwatch": raw["jobwatch"],
    }


def run(harness: Harness, *, smoke: bool = False) -> Result:
    """This tree against the baseline, then the schedules table."""
    seed = harness.config.seed
    repeats = 1 if smoke else 3
    cases = (("small", 20),) if smoke else CASES
    result: Result = {"baseline": BASELINE, "repeats": repeats, "cases": {}}
    with baseline_tree() as base:
        trees = {"this tree": ROOT} if base is None else {"this tree": ROOT, "baseline": base}
        if base is None:
            result["baseline_skipped"] = "no git checkout: the baseline cannot be extracted"
        for name, n in cases:
            spec = {"n": n, "seed": seed, "span": list(SPAN), "time_limit": TIME_LIMIT}
            runs: dict[str, list[Result]] = {label: [] for label in trees}
            for number in range(repeats):
                for label, tree in trees.items():
                    harness.say(f"pressure {name} N={n}: {label} (repeat {number + 1})")
                    runs[label].append(child(tree, spec))
            result["cases"][name] = {"n": n, "runs": runs}
    result["schedules"] = schedules(harness, smoke=smoke)
    return result


def schedules(harness: Harness, *, smoke: bool = False) -> list[Result]:
    rows = []
    n = 30 if smoke else 300
    for initial, base, most in SCHEDULES[:2] if smoke else SCHEDULES:
        policy = {"wait_initial": initial, "wait_exp_base": base, "wait_max": most}
        harness.say(f"pressure schedules: {policy}")
        row: Result = {"policy": policy}
        for label, spread in (("mixed", MIXED), ("uniform", {"span": list(SPAN)})):
            spec = {"n": n, "seed": harness.config.seed, "time_limit": TIME_LIMIT, **spread}
            row[label] = child(ROOT, {**spec, "policy": policy})
        rows.append(row)
    return rows


def _median(runs: list[Result], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def verdicts(pressure: Result) -> list[str]:
    """PASS/MISS: with no quota, lag and CPU no worse than the baseline's."""
    lines = []
    if "baseline_skipped" in pressure:
        return [f"N/A   no-quota checks against the baseline: {pressure['baseline_skipped']}"]
    for name, case in pressure["cases"].items():
        ours, theirs = case["runs"]["this tree"], case["runs"]["baseline"]
        lag, base_lag = _median(ours, "mean_lag_s"), _median(theirs, "mean_lag_s")
        ok = lag is not None and base_lag is not None and lag <= base_lag * LAG_SLACK
        found = f"{_median(ours, 'detected'):.0f} vs {_median(theirs, 'detected'):.0f} detected"
        lines.append(
            f"{'PASS' if ok else 'MISS'}  no quota, N={case['n']} ({name}): mean detection lag "
            f"{_num(lag)} s against the baseline's {_num(base_lag)} s (target: no worse; {found})"
        )
        cpu, base_cpu = (_median(r, "cpu_per_request_ms") for r in (ours, theirs))
        ratio = None if cpu is None or not base_cpu else cpu / base_cpu
        lines.append(
            f"{'PASS' if ratio is not None and ratio <= CPU_SLACK else 'MISS'}  no quota, "
            f"N={case['n']} ({name}): CPU per request {_num(cpu, 3)} ms, {_num(ratio)}x the "
            f"baseline's {_num(base_cpu, 3)} ms (target <= {CPU_SLACK}x, simulator included)"
        )
    return lines


def table(pressure: Result) -> list[str]:
    lines = [f"pressure: no quota, this tree against {pressure['baseline']} (medians)"]
    for case in pressure["cases"].values():
        for label, runs in case["runs"].items():
            lines.append(
                f"  N={case['n']:<5} {label:10} requests {_median(runs, 'requests'):>7.0f}  "
                f"detected {_median(runs, 'detected'):>5.0f}  mean lag "
                f"{_num(_median(runs, 'mean_lag_s'))} s  p95 {_num(_median(runs, 'p95_lag_s'))} s"
                f"  CPU/request {_num(_median(runs, 'cpu_per_request_ms'), 3)} ms"
            )
    lines.append(
        "schedules (wait_initial, wait_exp_base, wait_max): requests per job, mean lag, "
        "mean and p95 lag / duration"
    )
    for row in pressure["schedules"]:
        p = row["policy"]
        cells = []
        for label in ("mixed", "uniform"):
            r = row[label]
            n = max(r["detected"], 1)
            cells.append(
                f"{label} {r['requests'] / n:5.1f} req/job, lag {_num(r['mean_lag_s'])} s, "
                f"{_num(r['mean_relative_lag'])}/{_num(r['p95_relative_lag'])}"
            )
        lines.append(
            f"  ({p['wait_initial']:g}, {p['wait_exp_base']:g}, {p['wait_max']:g})  "
            + "  |  ".join(cells)
        )
    return lines


def _num(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:.{places}f}"
