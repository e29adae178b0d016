"""The contenders, one per process: ``python -m benchmarks.contenders NAME --url ... ``.

Each builds its client, asks the simulator server to start the scenario's
timeline (``/_bench/start``), then measures its own CPU (user + system of this
process, every thread included), wall time and peak RSS while it works, and
prints one ``BENCH-RESULT {json}`` line.

- ``floor``: raw GETs, ``inflight`` at once: ``httpx.AsyncClient`` (``transport``
  ``httpx``, or ``aiohttp`` for the ``httpx-aiohttp`` transport), or a bare
  ``aiohttp.ClientSession`` (``aiohttp-raw``; ``aiohttp-json`` also parses the body).
- ``fetch``: ``jobwatch.Client.fetch`` in a loop, ``inflight`` at once (no watcher).
- ``naive``: one asyncio task per job, a fixed sleep between polls, plain httpx
  (``bound``: at most that many requests in flight, through a semaphore).
- ``sdk``: the official ``huaweicloudsdkevs`` ``EvsAsyncClient``, every open job
  polled in rounds with a fixed sleep between rounds.
- ``jobwatch``: a ``jobwatch.Watcher`` on the jobs.
- ``big``: a ``Watcher`` on many jobs that never end, with an event-loop stall ticker.
- ``coalesce``: a ``Watcher`` on GES engine jobs of one graph; counts list requests per tick.
- ``enginelist``: polls of one job in a graph of 100,000 engine jobs (``benchmarks.enginelist``).
- ``triggers``: Airflow triggers sharing one watcher, or one client each (``benchmarks.triggers``).

Optional packages (the SDK, httpx-aiohttp, aiohttp) are imported with ``importlib``:
they have no type hints, and the harness runs without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

import anyio
import httpx

import jobwatch
from benchmarks._common import (
    GRAPH,
    PROJECT,
    Scenario,
    cpu_seconds,
    current_rss_mb,
    emit,
    evs_time,
    job_id,
    peak_rss_mb,
    start_timeline,
)
from benchmarks.enginelist import enginelist
from benchmarks.triggers import triggers

Params = dict[str, Any]
Result = dict[str, Any]

#: Seconds past its time limit after which the naive contender reports from another thread.
WATCHDOG_GRACE = 5.0
#: Fake credentials for the SDK: the simulator checks no signature unless asked to.
FAKE_AK = "BENCHFAKEACCESSKEY00"
FAKE_SK = "bench-fake-secret-key-never-checked"


class Meter:
    """Client CPU, wall time and RSS of this process from its creation on.

    Made once the contender is ready (imports, setup and the timeline's start done).
    """

    def __init__(self) -> None:
        self.rss_before_mb = current_rss_mb()
        self._cpu = cpu_seconds()
        self._wall = time.perf_counter()

    def cpu(self) -> float:
        """CPU seconds since the meter was made."""
        return cpu_seconds() - self._cpu

    def wall(self) -> float:
        """Wall seconds since the meter was made."""
        return time.perf_counter() - self._wall

    def figures(self, polls: int) -> Result:
        """The common figures: CPU, wall time, CPU per poll, peak RSS."""
        cpu, wall = self.cpu(), self.wall()
        return {
            "cpu_s": cpu,
            "wall_s": wall,
            "cpu_per_poll_ms": cpu / polls * 1000 if polls else None,
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": self.rss_before_mb,
        }


def lag_figures(lags: Iterable[float]) -> Result:
    """Mean, median and 95th percentile of detection lags (seconds)."""
    values = sorted(lags)
    if not values:
        return {"lag_mean_s": None, "lag_p50_s": None, "lag_p95_s": None}
    return {
        "lag_mean_s": statistics.fmean(values),
        "lag_p50_s": values[len(values) // 2],
        "lag_p95_s": values[min(len(values) - 1, math.ceil(len(values) * 0.95) - 1)],
    }


def job_urls(base_url: str, n: int) -> list[str]:
    """The EVS job URLs of a scenario's ``n`` jobs."""
    return [f"{base_url}/v1/{PROJECT}/jobs/{job_id(i)}" for i in range(n)]


def optional(module: str) -> Any:
    """Import an optional, untyped package (``ModuleNotFoundError`` when absent)."""
    return importlib.import_module(module)


def watch_transport(transport: str) -> httpx.AsyncBaseTransport | None:
    """A ``jobwatch.Client``'s transport: None (httpx's own) or httpx-aiohttp's."""
    if transport == "aiohttp":
        aiohttp_transport: httpx.AsyncBaseTransport = optional("httpx_aiohttp").AiohttpTransport()
        return aiohttp_transport
    if transport != "httpx":
        raise ValueError(f"unknown transport {transport!r}")
    return None


def http_client(transport: str, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on httpx's own transport or on httpx-aiohttp's."""
    return httpx.AsyncClient(transport=watch_transport(transport), **kwargs)


# -- floor ----------------------------------------------------------------------------------------


async def floor(url: str, scenario: Scenario, params: Params) -> Result:
    """Raw GETs, ``inflight`` at a time: the least CPU a poll can cost with this client."""
    inflight = int(params["inflight"])
    count = int(params["requests"])
    warmup = int(params["warmup"])
    transport = str(params["transport"])
    urls = job_urls(url, scenario.n)
    errors = 0

    async with contextlib.AsyncExitStack() as stack:
        get = await stack.enter_async_context(raw_get(transport))

        async def one(i: int) -> None:
            nonlocal errors
            if await get(urls[i % len(urls)]) != 200:
                errors += 1

        result = await measured(in_flight(inflight, one), url, warmup, count)
    return {
        "inflight": inflight,
        "transport": transport,
        "polls": count,
        "requests": count,
        "errors": errors,
        "requests_per_s": count / result["wall_s"],
        **result,
    }


@contextlib.asynccontextmanager
async def raw_get(transport: str) -> AsyncIterator[Callable[[str], Awaitable[int]]]:
    """A bare GET (the whole body read) on one of the floor's HTTP stacks; returns the status."""
    if transport in ("aiohttp-raw", "aiohttp-json"):
        parse = transport == "aiohttp-json"
        async with optional("aiohttp").ClientSession() as session:

            async def get_aiohttp(target: str) -> int:
                async with session.get(target) as response:
                    body = await response.read()
                    if parse:  # the same JSON Client.fetch parses, nothing more
                        json.loads(body)
                    status: int = response.status
                    return status

            yield get_aiohttp
        return
    async with http_client(transport) as client:

        async def get_httpx(target: str) -> int:
            return (await client.get(target)).status_code

        yield get_httpx


Run = Callable[[int], Awaitable[None]]


def in_flight(inflight: int, one: Run) -> Run:
    """A run of ``total`` calls ``one(0) .. one(total - 1)``, ``inflight`` at a time."""

    async def run(total: int) -> None:
        feed: Iterator[int] = iter(range(total))

        async def worker() -> None:
            for i in feed:
                await one(i)

        await asyncio.gather(*(worker() for _ in range(inflight)))

    return run


def paced(rate: float, inflight: int, one: Run) -> Run:
    """A run of ``total`` calls, the i-th due ``i / rate`` seconds after the start, by
    ``inflight`` tasks (each sleeps until its next call's time: a wake-up per call)."""

    async def run(total: int) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def worker(first: int) -> None:
            for i in range(first, total, inflight):
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await one(i)

        await asyncio.gather(*(worker(w) for w in range(inflight)))

    return run


async def measured(
    run: Callable[[int], Awaitable[None]], url: str, warmup: int, count: int
) -> Result:
    """Start the timeline, warm up (connections opened, code paths warm), then measure."""
    start_timeline(url)
    await run(warmup)
    meter = Meter()
    await run(count)
    return meter.figures(count)


async def fetch(url: str, scenario: Scenario, params: Params) -> Result:
    """``jobwatch.Client.fetch`` in a loop, ``inflight`` at once: the client without the watcher.

    Between the floor and the watcher: what the client adds to a raw GET (request
    building, retries, limiter, timeout scope, body cap, JSON and snapshot parsing).
    """
    inflight = int(params["inflight"])
    count = int(params["requests"])
    warmup = int(params["warmup"])
    transport = str(params.get("transport", "httpx"))
    refs = [jobwatch.EvsJob(job_id(i)) for i in range(scenario.n)]
    async with jobwatch.Client(
        url, PROJECT, fast=transport == "aiohttp", max_in_flight=inflight
    ) as client:

        async def one(i: int) -> None:
            await client.fetch(refs[i % len(refs)])

        rate = params.get("rate")
        run = in_flight(inflight, one) if rate is None else paced(float(rate), inflight, one)
        result = await measured(run, url, warmup, count)
    return {
        "inflight": inflight,
        "rate": rate,
        "transport": transport,
        "polls": count,
        "requests": client.statistics().requests - warmup,
        "errors": client.statistics().errors,
        "requests_per_s": count / result["wall_s"],
        **result,
    }


# -- naive ----------------------------------------------------------------------------------------


async def naive(url: str, scenario: Scenario, params: Params) -> Result:
    """What people hand-write: one task per job, ``sleep(interval)`` between polls."""
    interval = float(params["interval"])
    limit = float(params["time_limit"])
    bound = params.get("bound")  # requests in flight at most (None: unbounded, the naive way)
    gate = asyncio.Semaphore(int(bound)) if bound else contextlib.nullcontext()
    urls = job_urls(url, scenario.n)
    detected: dict[int, tuple[float, float | None]] = {}
    polls = requests = errors = 0

    # A generous timeout: with thousands of tasks sharing httpx's pool of 100
    # connections, the default 5 s pool timeout fails most polls outright.
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:

        async def watch(index: int) -> None:
            nonlocal polls, requests, errors
            while True:
                requests += 1
                try:
                    async with gate:
                        response = await client.get(urls[index])
                    data = response.json()
                except (httpx.HTTPError, ValueError):
                    errors += 1
                    await asyncio.sleep(interval)
                    continue
                polls += 1
                if data.get("status") in ("SUCCESS", "FAIL"):
                    detected[index] = (time.time(), evs_time(data.get("end_time")))
                    return
                await asyncio.sleep(interval)

        start_timeline(url)
        meter = Meter()

        def figures() -> Result:
            done = list(detected.values())  # one C call: safe against the loop thread
            return {
                "interval_s": interval,
                "bound": bound,
                "polls": polls,
                "requests": requests,
                "errors": errors,
                "detected": len(done),
                **lag_figures(seen - end for seen, end in done if end is not None),
                **meter.figures(polls),
            }

        def leave(result: Result) -> None:
            # Cancelling thousands of requests queued in httpx's pool takes minutes of
            # CPU (each cancellation walks the queue): report now and leave at once.
            emit({"contender": "naive", "n": scenario.n, **result})
            os._exit(0)

        def watchdog() -> None:
            # With thousands of tasks, one turn of the event loop can outlast the time
            # limit (httpx's pool does O(queued requests x connections) work per
            # request), so the limit is enforced from another thread too.
            if not finished.wait(limit + WATCHDOG_GRACE):
                leave({**figures(), "stopped_by_watchdog": True})

        finished = threading.Event()
        threading.Thread(target=watchdog, name="naive watchdog", daemon=True).start()
        tasks = [asyncio.ensure_future(watch(i)) for i in range(scenario.n)]
        _, pending = await asyncio.wait(tasks, timeout=limit)  # the rest counts as missed
        result = figures()
        finished.set()
        if pending:
            leave(result)
    return result


# -- the official SDK -----------------------------------------------------------------------------


def sdk(url: str, scenario: Scenario, params: Params) -> Result:
    """``huaweicloudsdkevs`` ``EvsAsyncClient.show_job_async``: every open job, in rounds.

    The SDK's "async" client returns futures run by its own thread pool (8
    threads, ``requests`` underneath); a round submits one request per open job,
    collects the answers, then sleeps ``interval``.
    """
    interval = float(params["interval"])
    limit = float(params["time_limit"])
    evs = optional("huaweicloudsdkevs.v2")
    credentials_module = optional("huaweicloudsdkcore.auth.credentials")
    credentials = credentials_module.BasicCredentials(FAKE_AK, FAKE_SK, PROJECT)
    client = evs.EvsAsyncClient.new_builder().with_credentials(credentials)
    client = client.with_endpoints([url]).build()
    pending = [job_id(i) for i in range(scenario.n)]
    detected: dict[str, tuple[float, float | None]] = {}
    polls = requests = errors = rounds = 0

    start_timeline(url)
    meter = Meter()
    deadline = time.monotonic() + limit
    while pending and time.monotonic() < deadline:
        rounds += 1
        futures = [(j, client.show_job_async(evs.ShowJobRequest(job_id=j))) for j in pending]
        requests += len(futures)
        still: list[str] = []
        for j, future in futures:
            try:
                response = future.result()
            except Exception:  # noqa: BLE001 - the SDK raises its own exception tree
                errors += 1
                still.append(j)
                continue
            polls += 1
            if response.status in ("SUCCESS", "FAIL"):
                detected[j] = (time.time(), evs_time(response.end_time))
            else:
                still.append(j)
        pending = still
        if pending:
            time.sleep(interval)
    result = meter.figures(polls)
    client.get_http_client().close()
    return {
        "interval_s": interval,
        "rounds": rounds,
        "polls": polls,
        "requests": requests,
        "errors": errors,
        "detected": len(detected),
        **lag_figures(seen - end for seen, end in detected.values() if end is not None),
        **result,
    }


# -- jobwatch -------------------------------------------------------------------------------------


def poll_policy(params: Params) -> jobwatch.PollPolicy:
    """The ``PollPolicy`` named in ``params["policy"]``."""
    p = params["policy"]
    return jobwatch.PollPolicy(
        wait_initial=float(p["initial"]),
        wait_exp_base=float(p["multiplier"]),
        wait_max=float(p["maximum"]),
        wait_jitter=float(p.get("jitter", 0.1)),
    )


class Intervals:
    """An ``on_poll`` hook noting, for each job's last poll, the interval it ended.

    ``scheduled``: the delay the watcher had chosen before that poll (the job's
    current polling interval); ``actual``: the time since the job's previous poll.
    """

    def __init__(self) -> None:
        self._delay: dict[jobwatch.JobRef, float] = {}
        self._at: dict[jobwatch.JobRef, float] = {}
        self.final: dict[jobwatch.JobRef, tuple[float, float]] = {}

    def __call__(self, details: jobwatch.PollDetails) -> None:
        now = time.monotonic()
        ref = details.ref
        if details.next_delay is None:
            previous = self._at.get(ref)
            scheduled = self._delay.get(ref)
            if previous is not None and scheduled is not None:
                self.final[ref] = (scheduled, now - previous)
        else:
            self._delay[ref] = details.next_delay
        self._at[ref] = now


async def watch_jobs(url: str, scenario: Scenario, params: Params) -> Result:
    """A ``Watcher`` on the scenario's EVS jobs, until each has ended (or the time limit)."""
    policy = poll_policy(params)
    limit = float(params["time_limit"])
    transport = str(params.get("transport", "httpx"))
    client_options: dict[str, Any] = {}
    if params.get("max_in_flight"):
        client_options["max_in_flight"] = int(params["max_in_flight"])
    if params.get("auth") == "aksk":  # signs every request, as the SDK contender does
        client_options["auth"] = jobwatch.AKSKAuth("BENCHAK0000000000001", "bench-secret-key")
    refs = [jobwatch.EvsJob(job_id(i)) for i in range(scenario.n)]
    warmup = int(params.get("warmup", 0))
    intervals = Intervals()
    detected: dict[jobwatch.JobRef, tuple[float, float | None]] = {}
    gave_up = 0
    async with (
        jobwatch.Client(url, PROJECT, fast=transport == "aiohttp", **client_options) as client,
        jobwatch.Watcher(client, policy=policy, on_poll=intervals) as watcher,
    ):
        warm_up = await warmed(client, url, refs, warmup)
        start_timeline(url)
        meter = Meter()
        watcher.watch_many(refs)
        with anyio.move_on_after(limit):
            async for event in watcher.events():
                if event.parent is not None or not event.final:
                    continue
                if isinstance(event, jobwatch.Transition):
                    ended = event.snapshot.end_time
                    wall_end = None if ended is None else ended.timestamp()
                    detected[event.ref] = (time.time(), wall_end)
                else:
                    gave_up += 1
        stats = watcher.statistics()
        result = meter.figures(stats.polls)
    ratios_scheduled: list[float] = []
    ratios_actual: list[float] = []
    scheduled_all: list[float] = []
    for ref, (seen, end) in detected.items():
        interval = intervals.final.get(ref)
        if end is None or interval is None:
            continue
        scheduled_all.append(interval[0])
        ratios_scheduled.append((seen - end) / interval[0])
        ratios_actual.append((seen - end) / interval[1])
    return {
        "transport": transport,
        "max_in_flight": client.max_in_flight,
        "policy": params["policy"],
        "polls": stats.polls,
        "requests": stats.requests,
        "retries": stats.retries,
        "errors": stats.errors,
        "gave_up": gave_up,
        "detected": len(detected),
        **lag_figures(seen - end for seen, end in detected.values() if end is not None),
        "interval_mean_s": statistics.fmean(scheduled_all) if scheduled_all else None,
        "lag_over_interval": statistics.fmean(ratios_scheduled) if ratios_scheduled else None,
        "lag_over_actual_interval": statistics.fmean(ratios_actual) if ratios_actual else None,
        **warm_up,
        **result,
    }


async def warmed(
    client: jobwatch.Client, url: str, refs: Sequence[jobwatch.JobRef], count: int
) -> Result:
    """Warm ``client`` up as ``measured`` warms the fetch contender's (``count``
    ``Client.fetch`` calls, the watcher's ``max_in_flight`` at once, on a timeline
    started for them), so that the CPU per poll compares steady states: the one-off
    costs of a first request (lazy imports, the TLS context, connections) are the
    start-up figure's.  Returns the warm-up's own CPU, unmetered otherwise."""
    if not count:
        return {}
    start_timeline(url)
    meter = Meter()

    async def one(i: int) -> None:
        await client.fetch(refs[i % len(refs)])

    await in_flight(client.max_in_flight, one)(count)
    return {"warmup": count, "warmup_cpu_s": meter.cpu()}


# -- big: many watched jobs in one process ------------------------------------------------------


class StallTicker:
    """Sleeps ``period`` seconds over and over and records how late each wake-up is."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.overshoots: list[float] = []
        self.woke_at: list[float] = []  # perf_counter() of each wake-up

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await anyio.sleep(self.period)
            now = time.perf_counter()
            self.overshoots.append(now - before - self.period)
            self.woke_at.append(now)

    def summary(self, since: int = 0, origin: float = 0.0) -> Result:
        values = sorted(self.overshoots[since:])
        if not values:
            return {"max_ms": None, "p99_ms": None, "over_50ms": 0, "ticks": 0, "worst": []}
        worst = sorted(
            range(since, len(self.overshoots)), key=self.overshoots.__getitem__, reverse=True
        )[:5]
        return {
            "max_ms": values[-1] * 1000,
            "p99_ms": values[min(len(values) - 1, math.ceil(len(values) * 0.99) - 1)] * 1000,
            "over_50ms": sum(1 for v in values if v > 0.05),
            "ticks": len(values),
            # the longest stalls: [ms, seconds after the start when the ticker woke]
            "worst": [[self.overshoots[i] * 1000, self.woke_at[i] - origin] for i in worst],
        }


class GcPauses:
    """Times the garbage collector's runs (``gc.callbacks``), by generation."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float]] = []  # generation, started at, seconds
        self._started = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((info["generation"], self._started, now - self._started))

    def summary(self, origin: float = 0.0) -> Result:
        out: Result = {}
        for generation in (0, 1, 2):
            times = [p[2] for p in self.pauses if p[0] == generation]
            out[f"gen{generation}"] = {
                "count": len(times),
                "total_ms": sum(times) * 1000,
                "max_ms": max(times) * 1000 if times else None,
            }
        longest = sorted(self.pauses, key=lambda p: p[2], reverse=True)[:5]
        # [generation, ms, seconds after the start when it began]
        out["longest"] = [[g, d * 1000, at - origin] for g, at, d in longest]
        return out


async def big(url: str, scenario: Scenario, params: Params) -> Result:
    """A ``Watcher`` on ``n`` jobs that never end: RSS, CPU per poll, event-loop stalls.

    The jobs are registered with ``awatch_many`` (what the docs advise for this
    many).  With ``params["gc"] == "freeze"`` the process follows the recipe for
    many watched jobs: the garbage collector is off while they are registered,
    then ``gc.freeze()`` moves every object there is out of its reach.  Runs until
    every job was polled at least once (first sight), then ``settle`` seconds
    more; ``time_limit`` caps it.
    """
    policy = poll_policy(params)
    limit = float(params["time_limit"])
    settle = float(params["settle"])
    recipe = params.get("gc", "default")
    if recipe not in ("default", "freeze"):
        raise ValueError(f"unknown gc recipe {recipe!r}")
    refs = [jobwatch.EvsJob(job_id(i)) for i in range(scenario.n)]
    ticker = StallTicker()
    seen = 0
    gc_pauses = GcPauses()
    async with (
        jobwatch.Client(url, PROJECT) as client,
        jobwatch.Watcher(client, policy=policy) as watcher,
        anyio.create_task_group() as tg,
    ):
        start_timeline(url)
        meter = Meter()
        origin = time.perf_counter()
        gc_pauses.start()
        tg.start_soon(ticker.run)
        await anyio.sleep(0.05)  # let the ticker take its first steps
        registered_at = time.perf_counter()
        if recipe == "freeze":
            gc.disable()
            try:
                await watcher.awatch_many(refs)
            finally:
                gc.enable()
            gc.freeze()
        else:
            await watcher.awatch_many(refs)
        register_s = time.perf_counter() - registered_at
        cpu_registered = meter.cpu()
        ticks_registered = len(ticker.overshoots)
        with anyio.move_on_after(limit):
            async for event in watcher.events(until_idle=False):
                if isinstance(event, jobwatch.Transition) and event.previous is None:
                    seen += 1
                    if seen == scenario.n:
                        break
        all_seen_s = meter.wall() if seen == scenario.n else None
        await anyio.sleep(settle)
        stats = watcher.statistics()
        result = meter.figures(stats.polls)
        rss_now = current_rss_mb()
        gc_pauses.stop()
        tg.cancel_scope.cancel()
    steady_cpu = result["cpu_s"] - cpu_registered
    return {
        "policy": params["policy"],
        "gc_recipe": recipe,
        "jobs": scenario.n,
        "seen": seen,
        "all_seen_s": all_seen_s,
        "polls": stats.polls,
        "requests": stats.requests,
        "errors": stats.errors,
        "register_s": register_s,
        "register_cpu_s": cpu_registered,
        "steady_cpu_per_poll_ms": steady_cpu / stats.polls * 1000 if stats.polls else None,
        "rss_end_mb": rss_now,
        "register_at_s": registered_at - origin,
        "stall": ticker.summary(origin=origin),
        "stall_after_register": ticker.summary(since=ticks_registered + 1, origin=origin),
        "gc": gc_pauses.summary(origin=origin),
        # at the end: objects a full collection scans, and those frozen out of its reach
        "gc_objects_end": {"gen2": len(gc.get_objects(2)), "frozen": gc.get_freeze_count()},
        **result,
    }


# -- coalesce: GES engine jobs of one graph -----------------------------------------------------


class Ticks:
    """An ``on_poll`` hook counting a graph's ticks: a tick polls each open member once."""

    def __init__(self) -> None:
        self.ticks = 0
        self._current: set[jobwatch.JobRef] = set()

    def __call__(self, details: jobwatch.PollDetails) -> None:
        if not self._current or details.ref in self._current:
            self.ticks += 1
            self._current = set()
        self._current.add(details.ref)


async def coalesce(url: str, scenario: Scenario, params: Params) -> Result:
    """A ``Watcher`` on ``n`` engine jobs of one graph, until each completed."""
    policy = poll_policy(params)
    limit = float(params["time_limit"])
    refs = [jobwatch.GesEngineJob(GRAPH, job_id(i)) for i in range(scenario.n)]
    ticks = Ticks()
    done = 0
    async with (
        jobwatch.Client(url, PROJECT) as client,
        jobwatch.Watcher(client, policy=policy, on_poll=ticks) as watcher,
    ):
        start_timeline(url)
        meter = Meter()
        watcher.watch_many(refs)
        with anyio.move_on_after(limit):
            async for event in watcher.events():
                if event.final and isinstance(event, jobwatch.Transition):
                    done += 1
        stats = watcher.statistics()
        result = meter.figures(stats.polls)
    return {
        "policy": params["policy"],
        "jobs": scenario.n,
        "detected": done,
        "polls": stats.polls,
        "requests": stats.requests,
        "errors": stats.errors,
        "requests_saved": stats.requests_saved,
        "ticks": ticks.ticks,
        "requests_per_tick": stats.requests / ticks.ticks if ticks.ticks else None,
        "requests_per_s": stats.requests / result["wall_s"],
        "cpu_per_tick_ms": result["cpu_s"] / ticks.ticks * 1000 if ticks.ticks else None,
        **result,
    }


# -- entry point ----------------------------------------------------------------------------------

ASYNC: dict[str, Callable[[str, Scenario, Params], Any]] = {
    "floor": floor,
    "fetch": fetch,
    "naive": naive,
    "jobwatch": watch_jobs,
    "big": big,
    "coalesce": coalesce,
    "enginelist": enginelist,
    "triggers": triggers,
}
NAMES = (*ASYNC, "sdk")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark contender.")
    parser.add_argument("name", choices=NAMES)
    parser.add_argument("--url", required=True)
    parser.add_argument("--scenario", required=True, help="a Scenario as JSON")
    parser.add_argument("--params", default="{}", help="the contender's parameters as JSON")
    args = parser.parse_args(argv)
    scenario = Scenario.from_json(args.scenario)
    params: Params = json.loads(args.params)
    if args.name == "sdk":
        result = sdk(args.url, scenario, params)
    elif args.name in ("floor", "fetch", "naive"):
        result = asyncio.run(ASYNC[args.name](args.url, scenario, params))
    else:
        result = anyio.run(ASYNC[args.name], args.url, scenario, params)
    emit({"contender": args.name, "n": scenario.n, **result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
