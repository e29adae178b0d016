"""The benchmark harness's smoke run: every installed contender reports sane figures.

Speed belongs in the benchmark (``make bench``), not here: nothing below checks a
timing or a target, only that each figure was measured and makes sense.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
N = 50
BIG_N = 2_000


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _installed("uvicorn"):
        pytest.skip("the benchmarks serve the simulator with uvicorn (the 'sim' extra)")
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "smoke.json"
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--out",
            str(out),
            "--log",
            str(tmp / "log"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=300,  # a bound against a hang, not a timing: ~40 s on an idle machine
        check=False,
    )
    log = (tmp / "log").read_text(errors="replace") if (tmp / "log").exists() else ""
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:] + log[-3000:]
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _contenders(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    contenders: dict[str, dict[str, Any]] = results["main"][str(N)]["contenders"]
    return contenders


def test_every_installed_contender_ran(results: dict[str, Any]) -> None:
    expected = {"floor", "naive", "jobwatch", "jobwatch-fetch"}
    if _installed("huaweicloudsdkevs"):
        expected.add("sdk")
    if _installed("httpx_aiohttp"):
        expected.add("floor-aiohttp")
    if _installed("aiohttp"):
        expected |= {"floor-aiohttp-raw", "jobwatch-aiohttp", "jobwatch-fetch-aiohttp"}
    contenders = _contenders(results)
    assert expected <= set(contenders)
    for name in expected:
        assert "error" not in contenders[name], (name, contenders[name])
        assert "skipped" not in contenders[name], (name, contenders[name])


def test_fixed_work_contenders_measured_cpu_per_request(results: dict[str, Any]) -> None:
    fixed = {
        name: result
        for name, result in _contenders(results).items()
        if name.startswith(("floor", "jobwatch-fetch"))
    }
    assert {"floor", "jobwatch-fetch"} <= set(fixed)
    for result in fixed.values():
        assert result["polls"] == result["requests"] > 0
        assert result["errors"] == 0
        assert result["cpu_per_poll_ms"] > 0
    for name in ("floor", "floor-aiohttp", "floor-aiohttp-raw"):
        if name in fixed:
            assert str(fixed[name]["inflight"]) in fixed[name]["tries"]


@pytest.mark.parametrize("name", ["naive", "sdk", "jobwatch", "jobwatch-aiohttp"])
def test_pollers_detected_every_job(results: dict[str, Any], name: str) -> None:
    result = _contenders(results).get(name)
    if result is None or "skipped" in result:
        pytest.skip(f"{name} is not installed")
    assert result["detected"] == N
    assert result["polls"] >= N  # at least one poll per job
    assert result["requests"] >= result["polls"]
    assert result["errors"] == 0
    assert result["cpu_per_poll_ms"] > 0
    assert result["peak_rss_mb"] > 0
    assert result["wall_s"] > 0
    # seen after the job ended (end_time is truncated to the millisecond)
    assert result["lag_mean_s"] > -0.01
    assert result["lag_p95_s"] >= result["lag_p50_s"]


@pytest.mark.parametrize("name", ["jobwatch", "jobwatch-aiohttp"])
def test_jobwatch_reports_its_policy_and_intervals(results: dict[str, Any], name: str) -> None:
    result = _contenders(results).get(name)
    if result is None or "skipped" in result:
        pytest.skip(f"{name} is not installed")
    assert result["gave_up"] == 0
    assert result["policy"]["initial"] > 0
    assert result["interval_mean_s"] > 0
    assert result["lag_over_interval"] > 0
    assert result["lag_over_actual_interval"] > 0


def test_ratios_and_targets_are_reported(results: dict[str, Any]) -> None:
    names = [t["target"] for t in results["targets"]]
    stacks = 2 if _installed("aiohttp") else 1
    variants = 2 if "gc_freeze" in results["big"] else 1  # the gc recipe, side by side
    # CPU, naive, SDK, lag per stack; RSS; a stall per big variant; engine; Airflow CPU, RSS;
    # --state; the cpu scenario: watcher and fetch ratios per N, start-up
    assert len(names) == 4 * stacks + 1 + variants + 1 + 2 + 1 + 2 * len(results["cpu"]["ns"]) + 1
    assert all(t["status"] in ("PASS", "MISS", "N/A") for t in results["targets"])
    cpu = [t for t in results["targets"] if t["target"].startswith("CPU per poll")]
    assert len(cpu) == stacks
    assert all(t["value"] > 0 for t in cpu)  # jobwatch / floor was computed


def test_big_scenario_saw_every_job(results: dict[str, Any]) -> None:
    big = results["big"]
    assert "error" not in big, big
    assert big["jobs"] == big["seen"] == BIG_N
    assert big["polls"] >= BIG_N
    assert big["peak_rss_mb"] > 0
    assert big["stall"]["ticks"] > 0
    assert big["stall"]["max_ms"] >= 0


def test_coalesce_scenario_counted_ticks(results: dict[str, Any]) -> None:
    runs = results["coalesce"]
    assert runs
    for n, run in runs.items():
        assert "error" not in run, run
        assert run["detected"] == int(n)
        assert run["ticks"] > 0
        assert run["requests"] > 0
        assert run["requests_per_tick"] >= 1
        assert run["polls"] >= run["requests"]


def test_enginelist_scenario_paged_under_the_cap(results: dict[str, Any]) -> None:
    section = results["enginelist"]
    for mode in ("paged", "one-page", "halving", "parse-only"):
        assert "error" not in section[mode], (mode, section[mode])
        assert section[mode]["cpu_per_poll_s"] > 0
        assert section[mode]["traced_peak_mb"] > 0
    assert section["paged"]["requests_per_poll"] > 1  # the smoke cap still takes pages
    assert section["paged"]["errors_per_poll"] == 0
    assert section["one-page"]["requests_per_poll"] == 1
    assert section["halving"]["errors_per_poll"] >= 1  # ResponseTooLarge, then half the page
    assert section["parse-only"]["requests_per_poll"] == 0


def test_triggers_scenario_detected_every_job_both_ways(results: dict[str, Any]) -> None:
    section = results["triggers"]
    for mode in ("shared", "per-trigger"):
        run = section[mode]
        assert "error" not in run, (mode, run)
        assert run["detected"] == run["triggers"] == section["triggers"]
        assert run["cpu_s"] > 0
        assert run["server_requests"] >= run["triggers"]  # every job polled
        assert run["lag_mean_s"] is not None
    targets = [t["target"] for t in results["targets"] if t["target"].startswith("Airflow")]
    assert len(targets) == 2


def test_state_scenario_ran_the_cli_with_and_without_state(results: dict[str, Any]) -> None:
    section = results["state"]
    assert section["jobs"] == N
    assert section["all_succeeded"], section
    for name in ("without", "with"):
        (run,) = section["runs"][name]
        assert run["exit_status"] == 0
        assert run["succeeded"] == N
        assert run["cpu_s"] > 0
    assert section["runs"]["with"][0]["state_bytes"] > 0
    assert section["ratio"] > 0
    (target,) = [t for t in results["targets"] if t["target"].startswith("watch --state")]
    assert target["status"] in ("PASS", "MISS")


def test_cpu_scenario_measured_the_three_ratios_and_the_start_up(results: dict[str, Any]) -> None:
    section = results["cpu"]
    (at,) = section["ns"].values()
    (repeat,) = at["repeats"]
    for name in ("floor-aiohttp-json", "jobwatch-fetch-aiohttp", "jobwatch-aiohttp"):
        assert repeat[name]["cpu_per_poll_ms"] > 0, repeat[name]
    assert repeat["jobwatch-aiohttp"]["detected"] == N
    assert at["watcher/fetch"] > 0
    assert at["fetch/floor"] > 0
    paced = repeat["jobwatch-fetch-paced"]  # at the watcher's rate: it takes its time
    assert paced["rate"] == pytest.approx(
        repeat["jobwatch-aiohttp"]["polls"] / repeat["jobwatch-aiohttp"]["wall_s"]
    )
    assert paced["wall_s"] >= 0.9 * (paced["polls"] - 1) / paced["rate"], paced
    assert paced["errors"] == 0
    assert at["watcher/paced"] > 0
    saturated = repeat["jobwatch-saturated"]  # every job always due: polls back to back
    assert saturated["polls"] > 2 * N, saturated
    assert saturated["errors"] == 0
    assert at["saturated/fetch"] > 0
    medians = section["startup"]["median_s"]
    assert 0 < medians["bare"] < medians["baseline"]
    assert medians["help"] > 0
    assert medians["first_request"] > 0
    cpu = [
        t for t in results["targets"] if "Client.fetch" in t["target"] or "CLI start" in t["target"]
    ]
    assert len(cpu) == 3
    assert all(t["status"] in ("PASS", "MISS") for t in cpu), cpu


def test_quota_scenario_ran_the_round_robin_bound_and_judged_against_it(
    results: dict[str, Any],
) -> None:
    from benchmarks import quota

    (case,) = results["quota"].values()
    contenders = case["contenders"]
    bound, ours = contenders["round-robin"], contenders["jobwatch"]
    assert bound["detected"] == ours["detected"] == case["n"]
    assert bound["throttled"] == 0  # told R, it never exceeds it
    assert 0 < bound["lag_over_ideal"] <= ours["lag_over_ideal"] * 1.5
    lines = quota.verdicts(results["quota"])
    assert any("round robin at exactly R" in line for line in lines), lines


def test_pressure_scenario_measured_this_tree_against_the_baseline(
    results: dict[str, Any],
) -> None:
    from benchmarks import pressure

    section = results["pressure"]
    if "baseline_skipped" in section:
        pytest.skip(section["baseline_skipped"])
    (case,) = section["cases"].values()
    ours, theirs = case["runs"]["this tree"], case["runs"]["baseline"]
    # Each child imported the jobwatch it was told: this tree's, and the extracted one's.
    assert all(Path(r["jobwatch"]).is_relative_to(ROOT) for r in ours), ours
    assert not any(Path(r["jobwatch"]).is_relative_to(ROOT) for r in theirs), theirs
    assert all(r["detected"] == case["n"] and r["cpu_per_request_ms"] > 0 for r in ours + theirs)
    lines = pressure.verdicts(section)
    assert len(lines) == 2, lines
    assert all(line.split()[0] in ("PASS", "MISS") for line in lines), lines
    assert len(section["schedules"]) == 2
    assert all(row["mixed"]["detected"] > 0 for row in section["schedules"])


def test_the_poll_orders_model_ran_every_order(results: dict[str, Any]) -> None:
    found = results["orders"]
    assert set(found) == {
        "round robin",
        "round robin from 5 s",
        "likeliest ended",
        "window N/2",
        "window N/5",
    }
    assert all(0 < ratio < 3 for ratio in found.values()), found


def test_in_the_model_a_window_of_few_jobs_is_worse_than_round_robin() -> None:
    from benchmarks import orders

    assert orders.windowed(300, 8.0, 1, 30) > orders.windowed(300, 8.0, 1, 300)


def test_start_up_children_run_with_bytecode_as_an_installed_cli_does(tmp_path: Path) -> None:
    from benchmarks import startup

    env = startup._env(str(tmp_path))
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path)
    startup._until_exit([sys.executable, "-c", "import jobwatch._cli._app"], env)
    compiled = {p.name.split(".")[0] for p in tmp_path.rglob("*.pyc")}
    assert {"_app", "_errors", "_logs", "_version"} <= compiled, sorted(compiled)
