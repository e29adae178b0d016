"""The ``cpu`` scenario: the watcher's own CPU per poll, the client's, and the CLI's start-up.

Issue 14.  At each N (1,000 and 10,000 EVS jobs, RUNNING from 0, SUCCESS at a
uniform time in [a, b] s) three contenders run side by side against one simulator
server, on the default stack (aiohttp on asyncio), ``repeats`` times in turn:

- ``floor-aiohttp-json``: a bare ``aiohttp.ClientSession().get()`` that reads the
  body and parses it with ``json.loads`` (the same JSON ``Client.fetch`` parses),
  8 requests in flight;
- ``jobwatch-fetch-aiohttp``: ``Client.fetch`` in a loop, 8 in flight, no watcher
  (these two make ``cpu_requests`` requests each, after a warm-up);
- ``jobwatch-aiohttp``: a ``Watcher`` over the N jobs until each ended;
- ``jobwatch-saturated``: the same ``Watcher`` over the same N jobs, but every job
  due every 10 ms, for ``SATURATED_S`` seconds: it keeps its 8 requests in flight
  back to back, as the fetch loop does.  Informational: the watcher's own work per
  poll when its polls are not spread over time;
- ``jobwatch-fetch-paced``: ``Client.fetch`` again, but paced at the rate the
  watcher polled in this repeat (the i-th request due at i / rate, 8 tasks, up to
  ``PACED_REQUESTS``).  Informational: the watcher polls at the pace its jobs'
  intervals set, one wake-up or a few per batch of due polls, which costs more per
  request than 8 requests kept in flight back to back; a plain loop paced the
  same way shows what that pacing costs without the watcher.

Each repeat gives two ratios of CPU per poll (watcher / fetch, fetch / floor); the
medians over repeats are the figures (2 shared cores: ratios from one repeat, never
absolute times across runs).  Targets: watcher <= 1.3x fetch at 10,000 jobs and
<= 1.5x at 1,000; fetch <= 1.2x the floor.  Then the start-up figures of
``benchmarks.startup``: the CLI's first request <= 1.5x ``import aiohttp, pydantic``.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from benchmarks import startup
from benchmarks._common import Scenario

if TYPE_CHECKING:
    from benchmarks.harness import Harness, Server

Result = dict[str, Any]
#: watcher / fetch CPU per poll, by N (the largest N's limit also for larger N).
WATCHER_LIMITS = {1_000: 1.5, 10_000: 1.3}
FETCH_LIMIT = 1.2
CONTENDERS = (
    "floor-aiohttp-json",
    "jobwatch-fetch-aiohttp",
    "jobwatch-aiohttp",
    "jobwatch-saturated",
    "jobwatch-fetch-paced",
)
#: Seconds the saturated watcher runs (every job due every 10 ms meanwhile).
SATURATED_S = 3.0
SATURATED_POLICY = {"initial": 0.01, "multiplier": 1.0, "maximum": 0.01, "jitter": 0.1}
#: Requests of the paced ``Client.fetch`` run (about 8 s at the watcher's rate at 1,000 jobs).
PACED_REQUESTS = 2_000


def _ratio(a: Result, b: Result) -> float | None:
    x, y = a.get("cpu_per_poll_ms"), b.get("cpu_per_poll_ms")
    return x / y if isinstance(x, int | float) and isinstance(y, int | float) and y else None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def one_n(harness: Harness, n: int) -> Result:
    """The three contenders at ``n`` jobs, ``repeats`` times in turn, and their ratios."""
    from benchmarks.harness import DEFAULT_MAX_IN_FLIGHT, Server, installed, run_contender

    c = harness.config
    if not installed("jobwatch-aiohttp"):
        return {"skipped": "aiohttp missing"}
    scenario = Scenario("evs", n, c.cpu_a, c.cpu_b, c.seed)
    limit = c.cpu_b + c.time_limit_extra
    fixed = {
        "inflight": DEFAULT_MAX_IN_FLIGHT,
        "requests": c.cpu_requests,
        "warmup": c.floor_warmup,
    }
    plan = (
        ("floor-aiohttp-json", "floor", {**fixed, "transport": "aiohttp-json"}),
        ("jobwatch-fetch-aiohttp", "fetch", {**fixed, "transport": "aiohttp"}),
        (
            "jobwatch-aiohttp",
            "jobwatch",
            {
                "policy": c.policy,
                "time_limit": limit,
                "transport": "aiohttp",
                "warmup": c.floor_warmup,
            },
        ),
        (
            "jobwatch-saturated",
            "jobwatch",
            {
                "policy": SATURATED_POLICY,
                "time_limit": SATURATED_S,
                "transport": "aiohttp",
                "warmup": c.floor_warmup,
            },
        ),
    )
    repeats: list[Result] = []
    server = Server(scenario, harness.log)
    try:
        for number in range(1, c.cpu_repeats + 1):
            runs: Result = {}
            for label, name, params in plan:
                harness.say(f"  cpu: N={n}: {label} (repeat {number})")
                runs[label] = run_contender(server, name, params, limit + 120, harness.log, label)
            runs["jobwatch-fetch-paced"] = _paced(harness, server, fixed, runs["jobwatch-aiohttp"])
            runs["watcher/fetch"] = _ratio(runs["jobwatch-aiohttp"], runs["jobwatch-fetch-aiohttp"])
            runs["fetch/floor"] = _ratio(runs["jobwatch-fetch-aiohttp"], runs["floor-aiohttp-json"])
            runs["watcher/paced"] = _ratio(runs["jobwatch-aiohttp"], runs["jobwatch-fetch-paced"])
            runs["saturated/fetch"] = _ratio(
                runs["jobwatch-saturated"], runs["jobwatch-fetch-aiohttp"]
            )
            repeats.append(runs)
    finally:
        server.stop()
    out: Result = {"n": n, "repeats": repeats}
    for key in ("watcher/fetch", "fetch/floor", "watcher/paced", "saturated/fetch"):
        out[key] = _median([r[key] for r in repeats])
    for label in CONTENDERS:
        out[f"{label} ms"] = _median([r[label].get("cpu_per_poll_ms") for r in repeats])
    out["detected"] = [r["jobwatch-aiohttp"].get("detected") for r in repeats]
    return out


def _paced(harness: Harness, server: Server, fixed: Result, watcher: Result) -> Result:
    """``Client.fetch`` paced at the rate ``watcher`` polled (its polls over its wall time)."""
    from benchmarks.harness import run_contender

    polls, wall = watcher.get("polls"), watcher.get("wall_s")
    if not polls or not wall:
        return {"skipped": "the watcher's run gave no rate"}
    rate = polls / wall
    requests = min(int(polls), PACED_REQUESTS)
    params = {**fixed, "requests": requests, "transport": "aiohttp", "rate": rate}
    label = "jobwatch-fetch-paced"
    harness.say(f"  cpu: {label} at {rate:.0f}/s")
    return run_contender(server, "fetch", params, requests / rate + 120, harness.log, label)


def run(harness: Harness) -> Result:
    """The scenario, from the harness: every N, then the start-up figures."""
    c = harness.config
    out: Result = {"ns": {str(n): one_n(harness, n) for n in c.cpu_ns}}
    harness.say(f"  cpu: start-up, {c.startup_repeats} times each")
    try:
        out["startup"] = startup.measure(c.startup_repeats)
    except (OSError, RuntimeError) as exc:
        out["startup"] = {"error": str(exc)}
    return out


def _watcher_limit(n: int) -> float:
    fitting = [limit for at, limit in sorted(WATCHER_LIMITS.items()) if n >= at]
    return fitting[-1] if fitting else WATCHER_LIMITS[min(WATCHER_LIMITS)]


def targets(results: Result) -> list[tuple[str, float | None, float, str]]:
    """(target, figure, limit, text) of each of the scenario's targets."""
    from benchmarks.report import _fmt, _x

    section = results.get("cpu") or {}
    out: list[tuple[str, float | None, float, str]] = []
    for key, at in (section.get("ns") or {}).items():
        n = int(key)
        limit = _watcher_limit(n)
        value = at.get("watcher/fetch")
        tries = ", ".join(_x(r.get("watcher/fetch")) for r in at.get("repeats", []))
        out.append(
            (
                f"watcher <= {limit}x Client.fetch CPU per poll at {n} jobs (aiohttp)",
                value,
                limit,
                f"{_x(value)} median ({tries}; watcher "
                f"{_fmt(at.get('jobwatch-aiohttp ms'), '.3f')} ms, fetch "
                f"{_fmt(at.get('jobwatch-fetch-aiohttp ms'), '.3f')} ms)",
            )
        )
        value = at.get("fetch/floor")
        tries = ", ".join(_x(r.get("fetch/floor")) for r in at.get("repeats", []))
        out.append(
            (
                f"Client.fetch <= {FETCH_LIMIT}x a bare aiohttp GET + json.loads at {n} jobs",
                value,
                FETCH_LIMIT,
                f"{_x(value)} median ({tries}; floor "
                f"{_fmt(at.get('floor-aiohttp-json ms'), '.3f')} ms)",
            )
        )
    up = section.get("startup") or {}
    value = up.get("first_request/baseline")
    medians = up.get("median_s") or {}
    out.append(
        (
            f"CLI start to first request <= {startup.TARGET}x import aiohttp, pydantic",
            value,
            startup.TARGET,
            f"{_x(value)} (first request {_fmt(medians.get('first_request'), '.3f')} s, "
            f"baseline {_fmt(medians.get('baseline'), '.3f')} s, --help "
            f"{_fmt(medians.get('help'), '.3f')} s, bare interpreter "
            f"{_fmt(medians.get('bare'), '.3f')} s; medians of {up.get('repeats')})",
        )
    )
    return out


def render(section: Result) -> list[str]:
    """The scenario's lines: CPU per poll of each contender per repeat, and the ratios."""
    from benchmarks.report import _fmt, _x

    out = ["", "cpu: CPU per poll (ms) on aiohttp, side by side, each repeat"]
    for key, at in (section.get("ns") or {}).items():
        if "skipped" in at:
            out.append(f"  N={key}: skipped ({at['skipped']})")
            continue
        for number, r in enumerate(at.get("repeats", []), 1):
            cells = "  ".join(f"{c} {_fmt(r[c].get('cpu_per_poll_ms'), '.3f')}" for c in CONTENDERS)
            out.append(
                f"  N={key} #{number}: {cells}  watcher/fetch {_x(r.get('watcher/fetch'))}"
                f"  fetch/floor {_x(r.get('fetch/floor'))}"
                f"  watcher/paced {_x(r.get('watcher/paced'))}"
                f"  saturated/fetch {_x(r.get('saturated/fetch'))}"
            )
        out.append(
            f"  N={key} median: watcher/fetch {_x(at.get('watcher/fetch'))}, fetch/floor "
            f"{_x(at.get('fetch/floor'))}; detected {at.get('detected')} of {key}"
        )
        out.append(
            f"  N={key} median, informational: watcher / Client.fetch paced at the watcher's"
            f" rate {_x(at.get('watcher/paced'))} (paced fetch"
            f" {_fmt(at.get('jobwatch-fetch-paced ms'), '.3f')} ms per request); the"
            f" watcher with every job always due / Client.fetch {_x(at.get('saturated/fetch'))}"
        )
    up = section.get("startup") or {}
    if "error" in up:
        out.append(f"  start-up: error: {up['error']}")
    elif up:
        medians = up.get("median_s") or {}
        out.append(
            "  start-up (s, medians): "
            + ", ".join(f"{k} {_fmt(v, '.3f')}" for k, v in medians.items())
            + f"; first_request/baseline {_x(up.get('first_request/baseline'))}"
        )
    return out
