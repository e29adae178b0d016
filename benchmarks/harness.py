"""The benchmark harness: servers and contenders as subprocesses, then the report.

For each scenario it starts the simulator server (``benchmarks.simserver``) in
its own process, then runs the contenders one after another, each in its own
process; each contender re-creates the server's simulator when it is ready
(``/_bench/start``), so that every contender sees the same timeline relative to
its own start.  The server's CPU over each contender is recorded too (a server
near 100 % of a core means the contender was held back by the server).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import jobwatch
from benchmarks import cpu, enginelist, orders, pressure, quota, statefile, triggers
from benchmarks._common import RESULT_PREFIX, Scenario
from benchmarks.report import render, targets

ROOT = Path(__file__).resolve().parent.parent
#: jobwatch's default requests in flight (the watcher's concurrency too).
DEFAULT_MAX_IN_FLIGHT = int(inspect.signature(jobwatch.Client).parameters["max_in_flight"].default)
Result = dict[str, Any]

MAIN_CONTENDERS = (
    "floor",
    "naive",
    "sdk",
    "jobwatch",
    "jobwatch-aiohttp",
    "jobwatch-aiohttp-aksk",
)
#: Variants for analysis, run only when named in --contenders.
OPTIONAL_CONTENDERS = ("naive-bounded", "jobwatch-inflight4")
#: What each contender needs beyond the project's own dependencies.
NEEDS = {
    "sdk": "huaweicloudsdkevs",
    "jobwatch-aiohttp": "aiohttp",
    "jobwatch-aiohttp-aksk": "aiohttp",
    "floor-aiohttp": "httpx_aiohttp",
    "floor-aiohttp-raw": "aiohttp",
}
#: The floor's HTTP stacks (the contender's ``transport``) and their result names.
FLOORS = {"httpx": "floor", "aiohttp": "floor-aiohttp", "aiohttp-raw": "floor-aiohttp-raw"}


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a run's figures depend on, written into the results."""

    ns: tuple[int, ...] = (1_000, 10_000)
    a: float = 5.0  # jobs end at a uniform time in [a, b] seconds after the contender starts
    b: float = 30.0
    policy: dict[str, float] = field(
        default_factory=lambda: {"initial": 1.0, "multiplier": 1.5, "maximum": 8.0, "jitter": 0.1}
    )
    naive_interval: float = 1.0
    sdk_interval: float = 1.0
    time_limit_extra: float = 30.0  # contenders stop at b + this (undetected jobs count as missed)
    floor_inflight: tuple[int, ...] = (4, 8, 16)
    floor_requests: int = 1_500
    floor_warmup: int = 150
    floor_passes: int = 2  # before and after the other contenders
    big_n: int = 100_000
    big_time_limit: float = 240.0
    big_settle: float = 5.0
    big_gc_recipe: bool = True  # big again with gc.disable() while registering, then gc.freeze()
    coalesce_ns: tuple[int, ...] = (10, 100, 1_000)
    coalesce_a: float = 3.0  # engine jobs complete at a uniform time in [a, b] seconds
    coalesce_b: float = 15.0
    enginelist_n: int = 100_000  # engine jobs of one graph, one poll of the last
    enginelist_cap: int = 8 * 1024 * 1024  # the client's default max_body_bytes
    enginelist_polls: int = 3
    triggers_n: int = 1_000  # deferred tasks of one triggerer-like process
    triggers_a: float = 5.0  # their EVS jobs end at a uniform time in [a, b] seconds
    triggers_b: float = 20.0
    state_n: int = 10_000  # jobwatch watch with and without --state
    state_passes: int = 2
    cpu_ns: tuple[int, ...] = (1_000, 10_000)  # the cpu scenario (issue 14)
    cpu_a: float = 5.0
    cpu_b: float = 15.0
    cpu_repeats: int = 3
    cpu_requests: int = 5_000  # of the saturated floor and fetch runs (1.5-2 s: less noise)
    startup_repeats: int = 7
    seed: int = 20240101


SMOKE = Config(
    ns=(50,),
    a=0.3,
    b=1.2,
    policy={"initial": 0.15, "multiplier": 1.5, "maximum": 0.6, "jitter": 0.1},
    naive_interval=0.2,
    sdk_interval=0.2,
    time_limit_extra=10.0,
    floor_inflight=(8,),
    floor_requests=200,
    floor_warmup=20,
    floor_passes=1,
    big_n=2_000,
    big_time_limit=20.0,
    big_settle=0.5,
    coalesce_ns=(10,),
    coalesce_a=0.3,
    coalesce_b=1.2,
    enginelist_n=3_000,
    enginelist_cap=64 * 1024,  # small enough that the smoke list still takes pages
    enginelist_polls=1,
    triggers_n=50,
    triggers_a=0.3,
    triggers_b=1.2,
    state_n=50,
    state_passes=1,
    cpu_ns=(50,),
    cpu_a=0.3,
    cpu_b=1.2,
    cpu_repeats=1,
    cpu_requests=200,
    startup_repeats=1,
)


def installed(contender: str) -> bool:
    """Whether the packages ``contender`` needs are importable."""
    module = NEEDS.get(contender)
    return module is None or importlib.util.find_spec(module) is not None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


class Server:
    """A ``benchmarks.simserver`` process serving one scenario."""

    def __init__(self, scenario: Scenario, log: IO[bytes]) -> None:
        self.scenario = scenario
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "benchmarks.simserver", "--scenario", scenario.to_json()],
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=child_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"the simulator server did not start (said {line!r})")
        self.url = line.split(" ", 1)[1]

    def stats(self) -> Result:
        with urllib.request.urlopen(self.url + "/_bench/stats", timeout=30) as response:  # noqa: S310
            data: Result = json.loads(response.read())
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_contender(
    server: Server, name: str, params: Result, timeout: float, log: IO[bytes], label: str
) -> Result:
    """Run one contender process against ``server``; its result (or an ``error``)."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.contenders",
        name,
        "--url",
        server.url,
        "--scenario",
        server.scenario.to_json(),
        "--params",
        json.dumps(params),
    ]
    log.write(f"\n=== {label}: {' '.join(command)}\n".encode())
    log.flush()
    started = time.perf_counter()
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=child_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"contender": label, "error": f"no result within {timeout:.0f}s"}
    elapsed = time.perf_counter() - started
    lines = [
        line[len(RESULT_PREFIX) :]
        for line in done.stdout.decode(errors="replace").splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    if done.returncode != 0 or not lines:
        return {"contender": label, "error": f"exit status {done.returncode}; see the log"}
    result: Result = json.loads(lines[-1])
    result["contender"] = label
    result["process_s"] = elapsed
    try:
        stats = server.stats()
    except OSError:
        stats = {}
    result["server_requests"] = stats.get("requests")
    result["server_cpu_s"] = stats.get("cpu_s")
    if stats.get("wall_s"):
        result["server_busy"] = stats["cpu_s"] / stats["wall_s"]
    return result


def best_floors(runs: Sequence[Result]) -> dict[str, Result]:
    """The floor of each transport: the in-flight count whose mean over passes is lowest.

    Passes run before and after the other contenders, so that drift in a noisy
    machine shows (``tries`` keeps every figure).
    """
    out: dict[str, Result] = {}
    for transport, name in FLOORS.items():
        mine = [r for r in runs if r.get("transport") == transport]
        ok = [r for r in mine if "error" not in r]
        if not mine:
            continue
        if not ok:
            out[name] = {"contender": name, "error": mine[0].get("error")}
            continue
        tries: dict[int, list[float]] = {}
        for r in ok:
            tries.setdefault(int(r["inflight"]), []).append(float(r["cpu_per_poll_ms"]))
        means = {k: statistics.fmean(v) for k, v in tries.items()}
        inflight = min(means, key=means.__getitem__)
        best = dict(next(r for r in ok if int(r["inflight"]) == inflight))
        best.update(contender=name, cpu_per_poll_ms=means[inflight], tries=tries)
        out[name] = best
    return out


class Harness:
    def __init__(self, config: Config, contenders: Sequence[str], log: IO[bytes]) -> None:
        self.config = config
        self.contenders = contenders
        self.log = log

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def main_scenario(self, n: int) -> Result:
        c = self.config
        scenario = Scenario("evs", n, c.a, c.b, c.seed)
        limit = c.b + c.time_limit_extra
        timeout = limit + 120.0
        results: dict[str, Result] = {}
        server = Server(scenario, self.log)
        try:
            floor_runs: list[Result] = []
            if "floor" in self.contenders:
                floor_runs += self.floors(server, n, 1)
            runs: list[tuple[str, str, Result]] = [
                ("naive", "naive", {"interval": c.naive_interval, "time_limit": limit}),
                (
                    "naive-bounded",
                    "naive",
                    {"interval": c.naive_interval, "time_limit": limit, "bound": 8},
                ),
                ("sdk", "sdk", {"interval": c.sdk_interval, "time_limit": limit}),
                ("jobwatch", "jobwatch", {"policy": c.policy, "time_limit": limit}),
                (
                    "jobwatch-aiohttp",
                    "jobwatch",
                    {"policy": c.policy, "time_limit": limit, "transport": "aiohttp"},
                ),
                (
                    "jobwatch-aiohttp-aksk",
                    "jobwatch",
                    {
                        "policy": c.policy,
                        "time_limit": limit,
                        "transport": "aiohttp",
                        "auth": "aksk",
                    },
                ),
                (
                    "jobwatch-inflight4",
                    "jobwatch",
                    {"policy": c.policy, "time_limit": limit, "max_in_flight": 4},
                ),
            ]
            for label, name, params in runs:
                if label not in self.contenders:
                    continue
                if not installed(label):
                    self.say(f"  N={n}: {label} skipped ({NEEDS[label]} is not installed)")
                    results[label] = {"contender": label, "skipped": f"{NEEDS[label]} missing"}
                    continue
                self.say(f"  N={n}: {label}")
                results[label] = run_contender(server, name, params, timeout, self.log, label)
            if "jobwatch" in self.contenders:
                for label, transport in (
                    ("jobwatch-fetch", "httpx"),
                    ("jobwatch-fetch-aiohttp", "aiohttp"),
                ):
                    if transport == "aiohttp" and not installed("jobwatch-aiohttp"):
                        continue
                    self.say(f"  N={n}: {label} (Client.fetch in a loop, no watcher)")
                    params = {
                        "inflight": DEFAULT_MAX_IN_FLIGHT,
                        "requests": c.floor_requests,
                        "warmup": c.floor_warmup,
                        "transport": transport,
                    }
                    results[label] = run_contender(server, "fetch", params, 300, self.log, label)
            if "floor" in self.contenders:
                for number in range(2, c.floor_passes + 1):
                    floor_runs += self.floors(server, n, number)
                results.update(best_floors(floor_runs))
        finally:
            server.stop()
        return {"n": n, "scenario": scenario.to_json(), "contenders": results}

    def floors(self, server: Server, n: int, number: int) -> list[Result]:
        """One pass over the floor's transports and in-flight counts."""
        c = self.config
        transports = [t for t, name in FLOORS.items() if installed(name)]
        runs = []
        for transport in transports:
            for inflight in c.floor_inflight:
                label = f"floor-{transport}-{inflight}"
                self.say(f"  N={n}: {label} (pass {number})")
                params = {
                    "inflight": inflight,
                    "requests": c.floor_requests,
                    "warmup": c.floor_warmup,
                    "transport": transport,
                }
                result = run_contender(server, "floor", params, 300, self.log, label)
                result.setdefault("transport", transport)  # errors too
                runs.append(result)
        return runs

    def big_scenario(self) -> Result:
        c = self.config
        scenario = Scenario("evs", c.big_n, 0.0, None, c.seed)
        params = {"policy": c.policy, "time_limit": c.big_time_limit, "settle": c.big_settle}
        self.say(f"  big: {c.big_n} jobs")
        server = Server(scenario, self.log)
        try:
            timeout = c.big_time_limit + c.big_settle + 180
            result = run_contender(server, "big", params, timeout, self.log, "big")
            if c.big_gc_recipe:
                self.say(f"  big: {c.big_n} jobs, gc.freeze() after registering")
                params = {**params, "gc": "freeze"}
                result["gc_freeze"] = run_contender(
                    server, "big", params, timeout, self.log, "big-gc-freeze"
                )
            return result
        finally:
            server.stop()

    def coalesce_scenario(self) -> Result:
        c = self.config
        out: Result = {}
        for n in c.coalesce_ns:
            scenario = Scenario("engine", n, c.coalesce_a, c.coalesce_b, c.seed)
            limit = c.coalesce_b + c.time_limit_extra
            params = {"policy": c.policy, "time_limit": limit}
            self.say(f"  coalesce: {n} engine jobs on one graph")
            server = Server(scenario, self.log)
            try:
                out[str(n)] = run_contender(
                    server, "coalesce", params, limit + 120, self.log, f"coalesce-{n}"
                )
            finally:
                server.stop()
        return out


def machine() -> Result:
    """What the figures were measured on."""
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        model = platform.processor() or None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in ("jobwatch", "httpx", "httpcore", "anyio", "uvicorn", "h11", "huaweicloudsdkevs"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    for name in ("httpx-aiohttp", "aiohttp"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Client CPU per poll of jobwatch, the official SDK and hand-written "
        "polling, against the simulator served from another process.",
    )
    parser.add_argument(
        "--scenario",
        choices=(
            "all",
            "main",
            "big",
            "coalesce",
            "enginelist",
            "triggers",
            "state",
            "cpu",
            "quota",
            "pressure",
        ),
        default="all",
        help="main: the contenders at each --n; big: 100,000 watched jobs in one process; "
        "coalesce: GES engine jobs of one graph; enginelist: one poll in a graph of "
        "100,000 engine jobs, paged to the body cap, against baselines; triggers: 1,000 Airflow "
        "triggers sharing one watcher against one client per trigger; state: the CLI's "
        "CPU with and without --state; cpu: the watcher's CPU per poll against Client.fetch "
        "and a bare aiohttp GET, and the CLI's start-up; quota: polling under a tenant quota "
        "the simulator enforces, in virtual time; pressure: no quota, this tree against "
        "jobwatch before issue 14, and the default schedule's table (default: all nine)",
    )
    parser.add_argument(
        "--n",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        help="job counts of the main scenario, comma-separated (default 1000,10000); "
        "the largest is the state scenario's (default 10000)",
    )
    parser.add_argument(
        "--contenders",
        type=lambda text: tuple(part.strip() for part in text.split(",")),
        help=f"main-scenario contenders (default {','.join(MAIN_CONTENDERS)}; "
        f"also {','.join(OPTIONAL_CONTENDERS)})",
    )
    parser.add_argument("--smoke", action="store_true", help="small and short: N=50, big at 2,000")
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--log", type=Path, help="the subprocesses' stderr (default: a temp file)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = SMOKE if args.smoke else Config()
    if args.n:
        config = replace(config, ns=args.n, state_n=max(args.n))
    contenders = args.contenders or MAIN_CONTENDERS
    unknown = set(contenders) - {*MAIN_CONTENDERS, *OPTIONAL_CONTENDERS}
    if unknown:
        print(f"unknown contenders: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    log_path = args.log or Path(tempfile.gettempdir()) / f"jobwatch-bench-{os.getpid()}.log"
    started = time.time()
    results: Result = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine(),
        "packages": package_versions(),
        "config": {**asdict(config), "smoke": args.smoke},
        "log": str(log_path),
    }
    with open(log_path, "ab") as log:
        harness = Harness(config, contenders, log)
        print(f"jobwatch benchmarks; subprocess log: {log_path}", file=sys.stderr, flush=True)
        if args.scenario in ("all", "main"):
            results["main"] = {str(n): harness.main_scenario(n) for n in config.ns}
        if args.scenario in ("all", "big"):
            results["big"] = harness.big_scenario()
        if args.scenario in ("all", "coalesce"):
            results["coalesce"] = harness.coalesce_scenario()
        if args.scenario in ("all", "enginelist"):
            results["enginelist"] = enginelist.run(harness)
        if args.scenario in ("all", "triggers"):
            results["triggers"] = triggers.run(harness)
        if args.scenario in ("all", "state"):
            results["state"] = statefile.run(harness)
        if args.scenario in ("all", "cpu"):
            results["cpu"] = cpu.run(harness)
        if args.scenario in ("all", "quota"):
            results["quota"] = quota.run(harness, smoke=args.smoke)
            harness.say("quota: poll orders at exactly R (model)")
            found = orders.run(150, 4.0, range(1, 2)) if args.smoke else orders.run()
            results["orders"] = found
        if args.scenario in ("all", "pressure"):
            results["pressure"] = pressure.run(harness, smoke=args.smoke)
    results["elapsed_s"] = time.time() - started
    results["machine"]["loadavg_at_end"] = machine()["loadavg_at_start"]
    results["targets"] = targets(results)
    print(render(results))
    if "quota" in results:
        print("\n".join(["", *quota.table(results["quota"]), *quota.verdicts(results["quota"])]))
        print("poll orders at exactly R (model, benchmarks/orders.py)")
        print("\n".join(orders.table(results["orders"])))
    if "pressure" in results:
        found = results["pressure"]
        print("\n".join(["", *pressure.table(found), *pressure.verdicts(found)]))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.out}")
    return 0
