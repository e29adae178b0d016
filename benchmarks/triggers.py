"""The ``triggers`` scenario: N deferred Airflow tasks waiting in one triggerer-like process.

Issue 12: every trigger of a triggerer process that reaches the same endpoint
shares one client and one watcher (``jobwatch.airflow._hub``), where the
existing providers run one client and one polling loop per trigger.  Each
variant runs in its own process (the peak RSS is per process) against the same
simulator server, N EVS jobs ending at uniform times in [a, b] seconds:

- ``shared``: each trigger awaits ``wait_for_job`` (what ``HuaweiCloudJobTrigger.run``
  does once it has read its connection);
- ``per-trigger``: each trigger opens its own ``Client`` and ``Watcher`` and waits
  for its one job, as one polling loop per trigger does.

Both use the same polling policy and sign every request with AK/SK.  Figures:
the process's CPU from the first trigger to the last outcome, the peak RSS over
the RSS before the triggers started, requests, jobs detected and how long after
their end (one client per trigger spends so long making its clients that most
jobs have ended by their first poll: fewer requests, and a longer lag).  Airflow is not
imported: the triggerer's own cost per trigger is the same for both variants.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    PROJECT,
    Scenario,
    cpu_seconds,
    current_rss_mb,
    job_id,
    peak_rss_mb,
    start_timeline,
)

if TYPE_CHECKING:
    from benchmarks.harness import Harness

Result = dict[str, Any]
VARIANTS = ("shared", "per-trigger")
AK, SK = "AK-BENCH-TRIGGERS", "SK-bench-triggers-secret"


async def triggers(url: str, scenario: Scenario, params: Result) -> Result:
    """The contender: ``params["mode"]`` is one of ``VARIANTS``."""
    import anyio

    import jobwatch
    from jobwatch.airflow._hub import Target, wait_for_job

    mode = str(params["mode"])
    p = params["policy"]
    policy = jobwatch.PollPolicy(
        wait_initial=p["initial"],
        wait_exp_base=p["multiplier"],
        wait_max=p["maximum"],
        wait_jitter=p["jitter"],
    )
    refs = [jobwatch.EvsJob(job_id(i)) for i in range(scenario.n)]
    target = Target(url, PROJECT, ak=AK, sk=SK)
    lags: list[float] = []
    requests: list[int] = []

    def detected(final: object) -> None:
        """A job's outcome came: how long after the job ended (the simulator's wall time)."""
        if isinstance(final, jobwatch.Transition) and final.snapshot.end_time is not None:
            lags.append(time.time() - final.snapshot.end_time.timestamp())

    async def shared(ref: jobwatch.EvsJob) -> None:
        final, _ = await wait_for_job(target, ref, policy, None)
        detected(final)

    async def per_trigger(ref: jobwatch.EvsJob) -> None:
        auth = jobwatch.AKSKAuth(AK, SK)
        async with (
            jobwatch.Client(url, PROJECT, auth=auth) as client,
            jobwatch.Watcher(client, policy=policy, events=False) as watcher,
        ):
            (final,) = await watcher.wait_all([ref])
            requests.append(client.statistics().requests)
        detected(final)

    one = shared if mode == "shared" else per_trigger
    rss_before = current_rss_mb()
    start_timeline(url)
    cpu, wall = cpu_seconds(), time.perf_counter()
    with anyio.move_on_after(float(params["time_limit"])):
        async with anyio.create_task_group() as tg:
            for ref in refs:
                tg.start_soon(one, ref)
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    peak = peak_rss_mb()
    return {
        "mode": mode,
        "triggers": scenario.n,
        "detected": len(lags),
        "lag_mean_s": sum(lags) / len(lags) if lags else None,
        "lag_max_s": max(lags, default=None),
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "peak_rss_delta_mb": None if rss_before is None else peak - rss_before,
        "client_requests": sum(requests) if requests else None,
    }


def run(harness: Harness) -> Result:
    """The scenario, from the harness: both variants against one server each."""
    from benchmarks.harness import Server, run_contender

    c = harness.config
    scenario = Scenario("evs", c.triggers_n, c.triggers_a, c.triggers_b, c.seed)
    limit = c.triggers_b + c.time_limit_extra
    out: Result = {"triggers": c.triggers_n, "a": c.triggers_a, "b": c.triggers_b}
    for mode in VARIANTS:
        harness.say(f"  triggers: {c.triggers_n} triggers, {mode}")
        server = Server(scenario, harness.log)  # a fresh one: its request count is the variant's
        try:
            params = {"mode": mode, "policy": c.policy, "time_limit": limit}
            out[mode] = run_contender(server, "triggers", params, limit + 120, harness.log, mode)
        finally:
            server.stop()
    return out


def ratios(section: Result) -> dict[str, float | None]:
    """per-trigger over shared, for CPU, peak RSS growth and requests."""
    shared, alone = section.get("shared") or {}, section.get("per-trigger") or {}
    out: dict[str, float | None] = {}
    for key in ("cpu_s", "peak_rss_delta_mb", "server_requests"):
        mine, theirs = shared.get(key), alone.get(key)
        out[key] = theirs / mine if isinstance(mine, int | float) and mine and theirs else None
    return out


def render(section: Result) -> list[str]:
    """The scenario's table and the ratios of the two variants, measured in the same run."""
    from benchmarks.report import _fmt, _table, _x

    n = section.get("triggers")
    out = [
        "",
        f"triggers: {n} deferred tasks in one process, EVS jobs ending in "
        f"[{section.get('a')}, {section.get('b')}] s",
    ]
    rows = []
    for mode in VARIANTS:
        r = section.get(mode) or {}
        if "error" in r:
            rows.append([mode, r["error"], *[""] * 7])
            continue
        rows.append(
            [
                mode,
                f"{r.get('detected')}/{r.get('triggers')}",
                _fmt(r.get("cpu_s"), ".2f"),
                _fmt(r.get("peak_rss_delta_mb"), ".1f"),
                _fmt(r.get("peak_rss_mb"), ".1f"),
                _fmt(r.get("server_requests"), "d"),
                _fmt(r.get("lag_mean_s"), ".2f"),
                _fmt(r.get("lag_max_s"), ".2f"),
                _fmt(r.get("wall_s"), ".1f"),
            ]
        )
    headers = [
        "variant",
        "detected",
        "CPU s",
        "peak RSS +MB",
        "peak RSS MB",
        "requests",
        "lag mean s",
        "lag max s",
        "wall s",
    ]
    out.append(_table(headers, rows))
    got = ratios(section)
    out.append(
        f"  per-trigger / shared: CPU {_x(got['cpu_s'])}, peak RSS growth "
        f"{_x(got['peak_rss_delta_mb'])}, requests {_x(got['server_requests'])}"
    )
    return out
