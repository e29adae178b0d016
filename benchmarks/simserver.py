"""The simulator server of the benchmarks: one process, uvicorn in its main thread.

``python -m benchmarks.simserver --scenario JSON`` binds a free loopback port,
prints ``LISTENING http://127.0.0.1:PORT`` and serves until SIGTERM/SIGINT.

Besides the simulator's own routes it answers:

- ``GET /_bench/start``: (re)build a ``jobwatch.sim.Simulator`` holding the
  scenario's jobs, whose sim time 0 is *now* and whose ``epoch`` is the real wall
  time of that moment, so that ``end_time`` in the bodies is the true wall time a
  job ended.  Answers ``{"epoch": POSIX seconds, "build_seconds": ...}``.
- ``GET /_bench/stats``: ``{"requests", "status_codes", "cpu_s", "wall_s"}``: what the
  current simulator answered, and this process's CPU and the wall time since
  ``/_bench/start`` (how busy the server was).

Before the first ``/_bench/start`` every other request gets a 503.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import uvicorn

from benchmarks._common import GRAPH, PROJECT, Scenario, job_id
from jobwatch.sim import Simulator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def end_times(scenario: Scenario) -> list[float | None]:
    """When each job of ``scenario`` ends, in seconds after t=0 (None: never)."""
    rng = random.Random(scenario.seed)
    b = scenario.b
    if b is None:
        return [None] * scenario.n
    return [rng.uniform(scenario.a, b) for _ in range(scenario.n)]


def build(scenario: Scenario) -> Simulator[Any]:
    """A simulator whose sim time 0 is now, holding the jobs of ``scenario``."""
    epoch = datetime.now(UTC)
    sim = Simulator(epoch=epoch)  # its MonotonicClock starts at 0 now
    ends = end_times(scenario)
    if scenario.kind == "evs":
        for index, end in enumerate(ends):
            timeline = [(0.0, "RUNNING")] if end is None else [(0.0, "RUNNING"), (end, "SUCCESS")]
            sim.add_evs_job(PROJECT, job_id(index), timeline, created_at=0.0)
    else:
        rng = random.Random(scenario.seed + 1)
        sim.add_graph(PROJECT, GRAPH)
        for index, end in enumerate(ends):
            start = rng.uniform(0.0, scenario.a)
            timeline = [(0.0, "pending"), (start, "running")]
            if end is not None:
                timeline.append((end, "complete"))
            sim.add_engine_job(PROJECT, GRAPH, job_id(index), timeline, created_at=0.0)
    return sim


class BenchApp:
    """The simulator's ASGI app, plus the ``/_bench/...`` control routes."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.sim: Simulator[Any] | None = None
        self._cpu_at_start = 0.0
        self._wall_at_start = time.perf_counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/_bench/start":
            started = time.perf_counter()
            sim = build(self.scenario)
            self.sim = sim
            self._cpu_at_start = _cpu_seconds()
            self._wall_at_start = time.perf_counter()
            built = time.perf_counter() - started
            await _json(send, 200, {"epoch": sim.epoch.timestamp(), "build_seconds": built})
        elif path == "/_bench/stats":
            sim_now = self.sim
            requests = sim_now.requests if sim_now is not None else []
            codes = Counter(str(r.status_code) for r in requests)
            stats = {
                "requests": len(requests),
                "status_codes": dict(codes),
                "cpu_s": _cpu_seconds() - self._cpu_at_start,
                "wall_s": time.perf_counter() - self._wall_at_start,
            }
            await _json(send, 200, stats)
        elif self.sim is None:
            await _json(send, 503, {"error_code": "BENCH.0503", "error_msg": "not started"})
        else:
            await self.sim.app(scope, receive, send)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _json(send: Send, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True, help="a Scenario as JSON")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    scenario = Scenario.from_json(args.scenario)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit proto 0 from socket.socket(AF_INET, SOCK_STREAM);
    # without it every keep-alive answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, 0))
    sock.listen(4096)  # connections queue here until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        BenchApp(scenario),
        interface="asgi3",
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        backlog=4096,
    )
    sys.stdout.write(f"LISTENING http://{args.host}:{port}\n")
    sys.stdout.flush()
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
