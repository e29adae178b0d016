"""Turning a run's results into tables, ratios and the PASS/MISS list of the targets."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from benchmarks import cpu as cpu_scenario
from benchmarks import enginelist, statefile, triggers

Result = dict[str, Any]

TARGET_N = 10_000
ORDER = (
    "floor",
    "floor-aiohttp",
    "floor-aiohttp-raw",
    "naive",
    "naive-bounded",
    "sdk",
    "jobwatch-fetch",
    "jobwatch-fetch-aiohttp",
    "jobwatch",
    "jobwatch-inflight4",
    "jobwatch-aiohttp",
    "jobwatch-aiohttp-aksk",
)


def _fmt(value: object, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return format(value, spec)
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )
    return "\n".join(lines)


def _ratio(
    numerator: Result | None, denominator: Result | None, key: str = "cpu_per_poll_ms"
) -> float | None:
    if not numerator or not denominator:
        return None
    top, bottom = numerator.get(key), denominator.get(key)
    if not isinstance(top, int | float) or not isinstance(bottom, int | float) or bottom <= 0:
        return None
    return float(top) / float(bottom)


def with_lower_bound(result: Result | None) -> Result | None:
    """``result`` with CPU per poll; when no poll completed, the bound CPU / requests sent.

    Every request sent completes at most once, so CPU / requests is a lower bound
    of CPU / completed polls (used for the naive contender at large N, which may
    not finish a single poll before its time limit).
    """
    if not result or result.get("cpu_per_poll_ms") is not None:
        return result
    cpu, requests = result.get("cpu_s"), result.get("requests")
    if not isinstance(cpu, int | float) or not requests:
        return result
    return {**result, "cpu_per_poll_ms": cpu * 1000 / requests}


def ratios(contenders: dict[str, Result]) -> dict[str, float | None]:
    """CPU-per-poll ratios of one run: jobwatch against the floors and the peers."""
    jw = contenders.get("jobwatch")
    jw_aio = contenders.get("jobwatch-aiohttp")
    return {
        "jobwatch/floor": _ratio(jw, contenders.get("floor")),
        "naive/jobwatch": _ratio(with_lower_bound(contenders.get("naive")), jw),
        "sdk/jobwatch": _ratio(contenders.get("sdk"), jw),
        "jobwatch-fetch/floor": _ratio(contenders.get("jobwatch-fetch"), contenders.get("floor")),
        "jobwatch/floor-aiohttp": _ratio(jw, contenders.get("floor-aiohttp")),
        "jobwatch-aiohttp/floor": _ratio(jw_aio, contenders.get("floor")),
        "jobwatch-aiohttp/floor-aiohttp": _ratio(jw_aio, contenders.get("floor-aiohttp")),
        "jobwatch-aiohttp/floor-aiohttp-raw": _ratio(jw_aio, contenders.get("floor-aiohttp-raw")),
        "jobwatch-fetch-aiohttp/floor-aiohttp-raw": _ratio(
            contenders.get("jobwatch-fetch-aiohttp"), contenders.get("floor-aiohttp-raw")
        ),
        "naive/jobwatch-aiohttp": _ratio(with_lower_bound(contenders.get("naive")), jw_aio),
        "sdk/jobwatch-aiohttp": _ratio(contenders.get("sdk"), jw_aio),
        "sdk/jobwatch-aiohttp-aksk": _ratio(
            contenders.get("sdk"), contenders.get("jobwatch-aiohttp-aksk")
        ),
    }


def _fixed_work(name: str) -> bool:
    """Contenders that send a fixed number of requests rather than watch the jobs."""
    return name.startswith(("floor", "jobwatch-fetch"))


def _label(result: Result) -> str:
    name = str(result.get("contender"))
    if _fixed_work(name):
        return f"{name} (in flight {result.get('inflight')})"
    return name


def main_table(run: Result) -> str:
    contenders: dict[str, Result] = run["contenders"]
    n = int(run["n"])
    rows = []
    for name in sorted(contenders, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER)):
        r = contenders[name]
        if "error" in r or "skipped" in r:
            rows.append([name, r.get("error") or f"skipped: {r.get('skipped')}", *[""] * 10])
            continue
        is_floor = _fixed_work(name)
        polls = r.get("polls")
        cpu_per_poll = _fmt(r.get("cpu_per_poll_ms"), ".3f")
        bounded = with_lower_bound(r)
        if r.get("cpu_per_poll_ms") is None and bounded and bounded.get("cpu_per_poll_ms"):
            cpu_per_poll = f">={bounded['cpu_per_poll_ms']:.1f} (0 polls)"
        rows.append(
            [
                _label(r),
                cpu_per_poll,
                "-" if is_floor or not polls else _fmt(polls / n, ".1f"),
                _fmt(r.get("lag_mean_s"), ".3f"),
                _fmt(r.get("lag_over_interval"), ".2f"),
                _fmt(r.get("peak_rss_mb"), ".1f"),
                _fmt(r.get("requests"), "d"),
                _fmt(r.get("errors"), "d"),
                "-" if is_floor else f"{r.get('detected')}/{n}",
                _fmt(r.get("wall_s"), ".1f"),
                _fmt(r.get("cpu_s"), ".1f"),
                _fmt(r.get("server_busy", None) and 100 * r["server_busy"], ".0f"),
            ]
        )
    headers = [
        "contender",
        "CPU/poll ms",
        "polls/job",
        "lag mean s",
        "lag/intvl",
        "peak RSS MB",
        "requests",
        "errors",
        "detected",
        "wall s",
        "CPU s",
        "server %",
    ]
    return _table(headers, rows)


#: (stack, floor, Client.fetch contender, Watcher contender) for ``decomposition``.
_STACKS = (
    ("raw httpx GET", "floor", "jobwatch-fetch", "jobwatch"),
    ("bare aiohttp GET", "floor-aiohttp-raw", "jobwatch-fetch-aiohttp", "jobwatch-aiohttp"),
)


def decomposition(contenders: dict[str, Result]) -> list[str]:
    """Floor, client and watcher at the same requests in flight: where the CPU goes."""
    lines = []
    for what, floor, fetch_name, watcher_name in _STACKS:
        fetch = contenders.get(fetch_name, {})
        watcher = contenders.get(watcher_name, {})
        tries = contenders.get(floor, {}).get("tries") or {}
        inflight = fetch.get("inflight")
        same = tries.get(inflight) or tries.get(str(inflight))
        if not same or "cpu_per_poll_ms" not in fetch or "cpu_per_poll_ms" not in watcher:
            continue
        floor_ms = sum(same) / len(same)
        fetch_ms, watch_ms = fetch["cpu_per_poll_ms"], watcher["cpu_per_poll_ms"]
        lines.append(
            f"at {inflight} in flight: {what} {floor_ms:.3f} ms -> Client.fetch "
            f"{fetch_ms:.3f} ms ({fetch_ms / floor_ms:.2f}x) -> Watcher {watch_ms:.3f} ms "
            f"({watch_ms / floor_ms:.2f}x the GET)"
        )
    return lines


def _big_row(name: str, big: Result) -> list[str]:
    stall, steady = big.get("stall", {}), big.get("stall_after_register", {})
    full = big.get("gc", {}).get("gen2", {})
    return [
        name,
        _fmt(big.get("jobs"), "d"),
        _fmt(big.get("seen"), "d"),
        _fmt(big.get("all_seen_s"), ".1f"),
        _fmt(big.get("polls"), "d"),
        _fmt(big.get("cpu_per_poll_ms"), ".3f"),
        _fmt(big.get("steady_cpu_per_poll_ms"), ".3f"),
        _fmt(big.get("peak_rss_mb"), ".1f"),
        _fmt(big.get("rss_before_mb"), ".1f"),
        _fmt(big.get("register_s", 0) * 1000, ".0f"),
        _fmt(stall.get("max_ms"), ".1f"),
        _fmt(steady.get("max_ms"), ".1f"),
        _fmt(steady.get("p99_ms"), ".1f"),
        _fmt(steady.get("over_50ms"), "d"),
        _fmt(full.get("count"), "d"),
        _fmt(full.get("max_ms"), ".1f"),
    ]


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _load(values: Sequence[float] | None) -> str:
    return "-" if not values else " ".join(f"{v:.2f}" for v in values)


def render(results: Result) -> str:
    """The whole report as text."""
    out: list[str] = []
    m = results.get("machine", {})
    cfg = results.get("config", {})
    out.append(
        f"machine: {m.get('nproc')} CPUs, {m.get('cpu_model')}, Python {m.get('python')}, "
        f"load average at start {_load(m.get('loadavg_at_start'))}, "
        f"at end {_load(m.get('loadavg_at_end'))}"
    )
    policy = cfg.get("policy", {})
    out.append(
        f"scenario: EVS jobs RUNNING from 0, SUCCESS at uniform [{cfg.get('a')}, "
        f"{cfg.get('b')}] s; jobwatch PollPolicy(wait_initial={policy.get('initial')}, "
        f"wait_exp_base={policy.get('multiplier')}, wait_max={policy.get('maximum')}, "
        f"wait_jitter={policy.get('jitter')}); naive sleeps "
        f"{cfg.get('naive_interval')} s, SDK rounds every {cfg.get('sdk_interval')} s"
    )
    for key, run in results.get("main", {}).items():
        out.append("")
        out.append(f"N = {key}")
        out.append(main_table(run))
        rs = ratios(run["contenders"])
        run["ratios"] = rs
        out.append("ratios of CPU per poll:")
        out.extend(f"  {name:<32} {_x(value)}" for name, value in rs.items() if value is not None)
        for name, what in (
            ("floor", "httpx"),
            ("floor-aiohttp", "httpx-aiohttp"),
            ("floor-aiohttp-raw", "bare aiohttp"),
        ):
            floor = run["contenders"].get(name, {})
            if floor.get("tries"):
                tries = ", ".join(
                    f"{k}: {' / '.join(f'{v:.3f}' for v in values)}"
                    for k, values in floor["tries"].items()
                )
                out.append(f"{name} ({what}) CPU/poll ms by requests in flight, each pass: {tries}")
        out.extend(decomposition(run["contenders"]))
    big = results.get("big")
    if big is not None:
        out.append("")
        out.append("big: one Watcher, jobs that never end")
        if "error" in big:
            out.append(f"  error: {big['error']}")
        else:
            variants = [("default", big)]
            recipe = big.get("gc_freeze")
            if recipe is not None and "error" not in recipe:
                variants.append(("gc recipe", recipe))
            elif recipe is not None:
                out.append(f"  gc recipe: error: {recipe['error']}")
            rows = [_big_row(name, run) for name, run in variants]
            headers = [
                "variant",
                "jobs",
                "seen",
                "all seen s",
                "polls",
                "CPU/poll ms",
                "after reg.",
                "peak RSS MB",
                "RSS before",
                "watch_many ms",
                "max stall ms",
                "after reg.",
                "p99 after",
                ">50ms after",
                "full GCs",
                "max GC ms",
            ]
            out.append(_table(headers, rows))
    coalesce = results.get("coalesce")
    if coalesce:
        out.append("")
        out.append(
            "coalesce: N GES engine jobs of one graph (pending, running, complete at uniform "
            f"[{cfg.get('coalesce_a')}, {cfg.get('coalesce_b')}] s), one Watcher"
        )
        rows = []
        for key, r in coalesce.items():
            if "error" in r:
                rows.append([key, r["error"], *[""] * 8])
                continue
            polls, requests = r.get("polls") or 0, r.get("requests") or 0
            rows.append(
                [
                    key,
                    _fmt(r.get("ticks"), "d"),
                    _fmt(requests, "d"),
                    _fmt(r.get("requests_per_tick"), ".2f"),
                    _fmt(polls, "d"),
                    _fmt(polls / requests if requests else None, ".1f"),
                    _fmt(r.get("requests_per_s"), ".2f"),
                    _fmt(r.get("cpu_per_tick_ms"), ".2f"),
                    f"{r.get('detected')}/{key}",
                    _fmt(r.get("wall_s"), ".1f"),
                ]
            )
        headers = [
            "N",
            "ticks",
            "requests",
            "req/tick",
            "job polls",
            "polls/req",
            "req/s",
            "CPU/tick ms",
            "detected",
            "wall s",
        ]
        out.append(_table(headers, rows))
    if results.get("enginelist"):
        out.extend(enginelist.render(results["enginelist"]))
    if results.get("triggers"):
        out.extend(triggers.render(results["triggers"]))
    if results.get("state"):
        out.extend(statefile.render(results["state"]))
    if results.get("cpu"):
        out.extend(cpu_scenario.render(results["cpu"]))
    out.append("")
    out.append("targets")
    for t in results.get("targets", []):
        out.append(f"  {t['status']:<4}  {t['target']}: {t['figure']}")
    out.append(f"\nwhole run: {results.get('elapsed_s', 0):.0f} s")
    return "\n".join(out)


def _target_run(results: Result) -> tuple[Result | None, str]:
    runs: dict[str, Result] = results.get("main", {})
    if not runs:
        return None, ""
    if str(TARGET_N) in runs:
        return runs[str(TARGET_N)], ""
    key = max(runs, key=int)
    return runs[key], f" (at N={key}, not {TARGET_N})"


#: (what, jobwatch contender, its floor) for the per-stack targets.
_TARGET_STACKS = (
    ("default: aiohttp on asyncio", "jobwatch-aiohttp", "floor-aiohttp"),
    ("httpx, as on trio", "jobwatch", "floor"),
)


def targets(results: Result) -> list[Result]:
    """Each target with its figure and PASS, MISS, or N/A when not measured."""
    out: list[Result] = []

    def add(target: str, value: float | None, check: Callable[[float], bool], figure: str) -> None:
        if value is None:
            out.append({"target": target, "status": "N/A", "figure": "not measured", "value": None})
        else:
            out.append(
                {
                    "target": target,
                    "status": "PASS" if check(value) else "MISS",
                    "figure": figure,
                    "value": value,
                }
            )

    run, note = _target_run(results)
    contenders: dict[str, Result] = run["contenders"] if run else {}
    for stack, jw_name, floor_name in _TARGET_STACKS:
        jw = contenders.get(jw_name, {})
        if "skipped" in jw:
            continue
        floor = contenders.get(floor_name, {})
        value = _ratio(jw, floor)
        bare = _ratio(jw, contenders.get("floor-aiohttp-raw")) if jw_name != "jobwatch" else None
        bare_note = f"; {_x(bare)} a bare aiohttp GET" if bare is not None else ""
        add(
            f"CPU per poll <= 1.15x floor at {TARGET_N} jobs ({stack})",
            value,
            lambda v: v <= 1.15,
            f"{_x(value)}{note} ({jw_name} {_fmt(jw.get('cpu_per_poll_ms'), '.3f')} ms, "
            f"{floor_name} {_fmt(floor.get('cpu_per_poll_ms'), '.3f')} ms{bare_note})",
        )
        value = _ratio(with_lower_bound(contenders.get("naive")), jw)
        naive = contenders.get("naive", {})
        bound_note = ""
        if naive.get("cpu_per_poll_ms") is None and value is not None:
            bound_note = f" (a lower bound: naive completed no poll; {naive.get('requests')} sent)"
        add(
            f"naive >= 10x jobwatch's CPU per poll ({stack})",
            value,
            lambda v: v >= 10,
            f"{_x(value)}{note}{bound_note}",
        )
        value = _ratio(contenders.get("sdk"), jw)
        signing = contenders.get(f"{jw_name}-aksk")
        signed_note = ""
        if signing is not None and "cpu_per_poll_ms" in signing:
            signed_note = f"; {_x(_ratio(contenders.get('sdk'), signing))} when both sign AK/SK"
        add(
            f"official SDK >= 3x jobwatch's CPU per poll ({stack})",
            value,
            lambda v: v >= 3,
            f"{_x(value)}{note}{signed_note}",
        )
        value = jw.get("lag_over_interval")
        busy = jw.get("server_busy", None)
        add(
            f"mean detection lag <= 0.6x the job's current polling interval ({stack})",
            value,
            lambda v: v <= 0.6,
            f"{_fmt(value)}x{note} (mean lag {_fmt(jw.get('lag_mean_s'), '.3f')} s, mean "
            f"interval {_fmt(jw.get('interval_mean_s'), '.3f')} s; against the actual time "
            f"between the last two polls {_fmt(jw.get('lag_over_actual_interval'))}x; server "
            f"busy {_fmt(busy and 100 * busy, '.0f')} %)",
        )
    big = results.get("big") or {}
    jobs = big.get("jobs")
    big_note = "" if jobs in (None, 100_000) else f" (at {jobs} jobs, not 100000)"
    value = big.get("peak_rss_mb")
    add(
        "100,000 watched jobs: peak RSS <= 250 MB",
        value,
        lambda v: v <= 250,
        f"{_fmt(value, '.1f')} MB{big_note} "
        f"(before watching {_fmt(big.get('rss_before_mb'), '.1f')} MB)",
    )
    for name, run in (
        ("default", big),
        ("gc.disable() + gc.freeze() recipe", big.get("gc_freeze")),
    ):
        if run is None or "error" in run:
            continue
        stall = run.get("stall", {}).get("max_ms")
        steady = run.get("stall_after_register", {}).get("max_ms")
        full = run.get("gc", {}).get("gen2", {})
        add(
            f"100,000 watched jobs: no event-loop stall over 50 ms ({name})",
            stall,
            lambda v: v <= 50,
            f"longest {_fmt(stall, '.1f')} ms{big_note} (registering all jobs with "
            f"awatch_many {_fmt(run.get('register_s', 0) * 1000, '.0f')} ms; after it: "
            f"longest {_fmt(steady, '.1f')} ms; {_fmt(full.get('count'), 'd')} full GCs, "
            f"longest {_fmt(full.get('max_ms'), '.1f')} ms)",
        )
    coalesce: dict[str, Result] = results.get("coalesce") or {}
    per_tick = {k: r.get("requests_per_tick") for k, r in coalesce.items() if "error" not in r}
    measured = [v for v in per_tick.values() if isinstance(v, int | float)]
    add(
        "GES engine: about one request per tick whatever N",
        max(measured) if measured and len(measured) == len(coalesce) else None,
        lambda v: v <= 1.1,
        ", ".join(f"N={k}: {_fmt(v)}" for k, v in per_tick.items()) + " requests/tick",
    )
    section = results.get("triggers") or {}
    got = triggers.ratios(section)
    count = section.get("triggers")
    for key, what in (("cpu_s", "CPU"), ("peak_rss_delta_mb", "peak RSS growth")):
        add(
            f"Airflow: one client per trigger >= 5x the shared hub's {what} at 1,000 triggers",
            got[key],
            lambda v: v >= 5,
            f"{_x(got[key])}" + ("" if count == 1_000 else f" (at {count} triggers)"),
        )
    name, value = statefile.target(results)
    cpu = (results.get("state") or {}).get("cpu_s") or {}
    add(
        name,
        value,
        lambda v: v <= statefile.TARGET,
        f"{_x(value)} ({_fmt(cpu.get('with'), '.2f')} s against "
        f"{_fmt(cpu.get('without'), '.2f')} s)",
    )
    for name, value, limit, figure in cpu_scenario.targets(results):
        add(name, value, partial(operator.ge, limit), figure)  # value <= limit
    return out
