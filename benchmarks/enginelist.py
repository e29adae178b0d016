"""The ``enginelist`` scenario: one poll of a GES engine job in a graph of 100,000 jobs.

Issue 11: the list of such a graph (~19 MB) is larger than the client's default
8 MiB body cap, so jobwatch reads it in pages that fit.  Each variant runs in
its own contender process against the same simulator server (jobs that never
end), and measures polls for the graph's *last* job, the worst case: every page
is read.

- ``paged``: the default client (8 MiB cap), the page size derived from it;
- ``one-page``: the baseline, a cap large enough for the whole list in one page;
- ``halving``: the default cap with ``limit`` 100000 asked first (the size before
  issue 11): the halvings it costs;
- ``parse-only``: the floor, the whole body fetched once, then only decoded and
  read into snapshots (no HTTP) per poll.

Figures: client CPU per poll, requests per poll, the peak RSS over the process's
RSS before the first (warm-up) poll, and the peak of Python allocations during
one more poll (``tracemalloc``, measured apart: it slows everything down).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    GRAPH,
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
#: The variants, each in its own process (the peak RSS is per process).
VARIANTS = ("paged", "one-page", "halving", "parse-only")
ONE_PAGE_CAP = 256 * 1024 * 1024


async def enginelist(url: str, scenario: Scenario, params: Result) -> Result:
    """The contender: ``params["mode"]`` is one of ``VARIANTS``."""
    import httpx

    import jobwatch
    from jobwatch._dialects import decode_json, parse_engine_page

    mode = str(params["mode"])
    polls = int(params["polls"])
    cap = int(params["cap"]) if mode != "one-page" else ONE_PAGE_CAP
    last = jobwatch.GesEngineJob(GRAPH, job_id(scenario.n - 1))
    async with jobwatch.Client(url, PROJECT, max_body_bytes=cap) as client:
        start_timeline(url)
        if mode == "parse-only":
            async with httpx.AsyncClient(base_url=url, timeout=120) as http:
                path = f"/ges/v1.0/{PROJECT}/graphs/{GRAPH}/jobs/status"
                body = (await http.get(path, params={"limit": "100000"})).content

            async def poll() -> None:
                page = parse_engine_page(GRAPH, decode_json(body))
                assert page.jobs[-1].ref == last

        elif mode == "halving":

            async def poll() -> None:
                async for snapshot in client.list_engine_jobs(GRAPH, page_size=100_000):
                    if snapshot.ref == last:
                        return
                raise AssertionError("the last job was not listed")

        else:

            async def poll() -> None:
                # The list reading of the graph, to its last job (issue 13: a job
                # watched alone is asked on its own status path instead; the
                # list is what several jobs of the graph cost).
                async with aclosing(client.list_engine_jobs(GRAPH)) as snapshots:
                    async for snapshot in snapshots:
                        if snapshot.ref == last:
                            return
                raise AssertionError("the last job was not listed")

        rss_before = current_rss_mb()  # the peak of the warm-up counts too
        await poll()  # warm-up: connections, first allocations
        result = await measure(poll, polls, client.statistics)
        result["rss_before_mb"] = rss_before
        if rss_before is not None:
            result["peak_rss_delta_mb"] = result["peak_rss_mb"] - rss_before
    return {"mode": mode, "cap": cap, "jobs": scenario.n, **result}


async def measure(
    poll: Callable[[], Awaitable[None]], polls: int, statistics: Callable[[], Any]
) -> Result:
    """CPU, wall, requests and memory of ``polls`` polls, then one traced poll."""
    before = statistics()
    cpu, wall = cpu_seconds(), time.perf_counter()
    for _ in range(polls):
        await poll()
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    after = statistics()
    peak = peak_rss_mb()
    tracemalloc.start()
    try:
        await poll()
        traced_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {
        "polls": polls,
        "cpu_per_poll_s": cpu / polls,
        "wall_per_poll_s": wall / polls,
        "requests_per_poll": (after.requests - before.requests) / polls,
        "errors_per_poll": (after.errors - before.errors) / polls,
        "peak_rss_mb": peak,
        "peak_rss_delta_mb": None,
        "traced_peak_mb": traced_peak / (1024 * 1024),
    }


def run(harness: Harness) -> Result:
    """The scenario, from the harness: every variant against one server."""
    from benchmarks.harness import Server, run_contender

    c = harness.config
    scenario = Scenario("engine", c.enginelist_n, 0.0, None, c.seed)
    out: Result = {"jobs": c.enginelist_n, "cap": c.enginelist_cap}
    server = Server(scenario, harness.log)
    try:
        for mode in VARIANTS:
            harness.say(f"  enginelist: {c.enginelist_n} engine jobs, {mode}")
            params = {"mode": mode, "polls": c.enginelist_polls, "cap": c.enginelist_cap}
            out[mode] = run_contender(server, "enginelist", params, 600, harness.log, mode)
    finally:
        server.stop()
    return out


def render(section: Result) -> list[str]:
    """The scenario's table and its ratios to the baselines measured in the same run."""
    from benchmarks.report import _fmt, _table, _x

    out = [
        "",
        f"enginelist: one poll of the last of {section.get('jobs')} GES engine jobs of one "
        f"graph (cap {section.get('cap')} bytes; one-page: cap {ONE_PAGE_CAP})",
    ]
    rows = []
    for mode in VARIANTS:
        r = section.get(mode) or {}
        if "error" in r:
            rows.append([mode, r["error"], *[""] * 6])
            continue
        rows.append(
            [
                mode,
                _fmt(r.get("cpu_per_poll_s"), ".3f"),
                _fmt(r.get("wall_per_poll_s"), ".3f"),
                _fmt(r.get("requests_per_poll"), ".1f"),
                _fmt(r.get("errors_per_poll"), ".1f"),
                _fmt(r.get("peak_rss_delta_mb"), ".1f"),
                _fmt(r.get("peak_rss_mb"), ".1f"),
                _fmt(r.get("traced_peak_mb"), ".1f"),
            ]
        )
    headers = [
        "variant",
        "CPU s/poll",
        "wall s/poll",
        "req/poll",
        "too large/poll",
        "peak RSS +MB",
        "peak RSS MB",
        "traced peak MB",
    ]
    out.append(_table(headers, rows))
    paged = section.get("paged") or {}
    for base in ("one-page", "parse-only"):
        other = section.get(base) or {}
        for key, what in (("cpu_per_poll_s", "CPU"), ("traced_peak_mb", "traced peak")):
            mine, theirs = paged.get(key), other.get(key)
            value = mine / theirs if mine is not None and theirs else None
            out.append(f"  paged / {base} {what}: {_x(value)}")
    return out
