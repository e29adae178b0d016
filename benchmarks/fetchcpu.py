"""``Client.fetch`` against the floor, side by side in one process.

``python -m benchmarks.fetchcpu``: a quick check of the ``cpu`` scenario's fetch
target (``Client.fetch`` <= 1.2x a bare aiohttp GET + ``json.loads``) without its
ten minutes.  One simulator server (``benchmarks.simserver``, N EVS jobs), then in
one asyncio loop, ``rounds`` times in turn, ``requests`` calls of each of:

- ``floor``: a bare ``aiohttp.ClientSession().get()``, the body read and parsed
  with ``json.loads`` (the ``floor-aiohttp-json`` contender);
- ``exchange``: jobwatch's own aiohttp exchange (``AiohttpExchange.get``, the
  client's headers) and ``json.loads``: the HTTP layer alone;
- ``fetch``: ``Client.fetch`` (``fast=True``), the snapshot included.

``inflight`` at once each.  Prints the CPU per call of each (ms) and its ratio to
the floor's, per round, then the medians.  ``--profile FILE`` runs the fetch rounds
under cProfile (CPU time) instead and writes its stats there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import time

import aiohttp

import jobwatch
from benchmarks._common import PROJECT, Scenario, cpu_seconds, job_id, start_timeline
from benchmarks.contenders import Run, in_flight
from jobwatch._exchange import AiohttpExchange

NAMES = ("floor", "exchange", "fetch")


async def compare(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """CPU ms per call of each way, per round (empty when profiling)."""
    n, count = args.jobs, args.requests
    urls = [f"{url}/v1/{PROJECT}/jobs/{job_id(i)}" for i in range(n)]
    refs = [jobwatch.EvsJob(job_id(i)) for i in range(n)]
    start_timeline(url)
    async with (
        aiohttp.ClientSession() as session,
        jobwatch.Client(url, PROJECT, fast=True, max_in_flight=args.inflight) as client,
    ):
        exchange = AiohttpExchange(
            auth=None,
            timeout=client.timeout,
            max_body_bytes=client.max_body_bytes,
            verify=True,
            connections=args.inflight,
            headers=client._headers,
        )

        async def floor_one(i: int) -> None:
            async with session.get(urls[i % n]) as response:
                json.loads(await response.read())

        async def exchange_one(i: int) -> None:
            json.loads((await exchange.get(urls[i % n])).body)

        async def fetch_one(i: int) -> None:
            await client.fetch(refs[i % n])

        runs: dict[str, Run] = {
            name: in_flight(args.inflight, one)
            for name, one in zip(NAMES, (floor_one, exchange_one, fetch_one), strict=True)
        }
        for run in runs.values():  # connections opened, code paths warm
            await run(count // 5)
        figures: dict[str, list[float]] = {name: [] for name in NAMES}
        try:
            if args.profile:
                profiler = cProfile.Profile(time.thread_time_ns, 1e-9)
                profiler.enable()
                for _ in range(args.rounds):
                    await runs["fetch"](count)
                profiler.disable()
                profiler.dump_stats(args.profile)
                return figures
            for _ in range(args.rounds):
                for name, run in runs.items():
                    before = cpu_seconds()
                    await run(count)
                    figures[name].append((cpu_seconds() - before) / count * 1000)
        finally:
            await exchange.aclose()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Start a simulator server, compare, stop it; print the figures."""
    from benchmarks.harness import Server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--profile", default="", help="cProfile the fetch rounds into this file")
    args = parser.parse_args(argv)
    server = Server(Scenario("evs", args.jobs, 3600.0, 7200.0), sys.stderr.buffer)
    try:
        figures = asyncio.run(compare(server.url, args))
    finally:
        server.stop()
    if args.profile:
        return 0
    floors = figures["floor"]
    for number in range(args.rounds):
        cells = "  ".join(
            f"{name} {figures[name][number]:.4f} ({figures[name][number] / floors[number]:.3f}x)"
            for name in NAMES
        )
        print(f"round {number + 1}: {cells}")
    medians = ", ".join(
        f"{name} {statistics.median(figures[name]):.4f} ms "
        f"({statistics.median(a / b for a, b in zip(figures[name], floors, strict=True)):.3f}x)"
        for name in NAMES
    )
    print(f"medians over {args.rounds} rounds of {args.requests}: {medians}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
