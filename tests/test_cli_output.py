"""What the CLI writes: the JSON Lines schema, the live table, server strings, logs, ``sim``.

Runs go through real HTTP to the simulator on a loopback socket (click's
``CliRunner``); the live table is also rendered on rich consoles of 80 and 100
columns (``record=True``).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console
from schema_subset import SchemaError, validate

from jobwatch import EvsJob, GesJob, JobSnapshot, JobState, RateLimitError, Transition
from jobwatch._cli import _display, _jsonl, _sim
from jobwatch._cli._app import cli
from jobwatch._cli._model import Run
from jobwatch._cli._table import live_view, shorten_middle
from jobwatch._exceptions import ConnectError, TransportCause
from jobwatch._retry import RetryDetails
from jobwatch.sim import Fault, ManualClock, Simulator, SubJob, serve
from jobwatch.sim._clock import FirstReadClock

P = "proj-out"
FAST = ("--interval", "0.05", "--max-interval", "0.2")
HOSTILE = ("[/x]", "[reverse]bad")
RICH_NAMES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES", "NO_COLOR")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*RICH_NAMES, "JOBWATCH_TOKEN", "JOBWATCH_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def invoke(args: Sequence[str], env: Mapping[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


def watch(url: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    return invoke(["watch", "--endpoint", url, "--project-id", P, *args], env)


def lines_of(stdout: str) -> list[dict[str, Any]]:
    """Every JSON line, each checked against the shipped schema."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    for line in lines:
        validate(line, _jsonl.schema())
    assert [line["event"] for line in lines].count("summary") == 1
    assert lines[-1]["event"] == "summary"
    return lines


# -- the JSON Lines schema -----------------------------------------------------------------------


def test_the_schema_ships_in_the_package_and_the_validator_is_strict() -> None:
    shipped = resources.files("jobwatch._cli").joinpath("events.schema.json")
    assert json.loads(shipped.read_text(encoding="utf-8")) == _jsonl.schema()
    good = {
        "event": "gave_up",
        "api": "evs",
        "graph": None,
        "job_id": "j",
        "parent_id": None,
        "reason": "timeout",
        "message": "m",
        "at": "2024-05-01T12:00:03.125Z",
        "error": None,
        "cause": None,
    }
    validate(good, _jsonl.schema())
    for bad in (
        {**good, "extra": 1},
        {**good, "reason": "bored"},
        {**good, "cause": "sunspots"},
        {**good, "at": "yesterday"},
        {**good, "graph": 3},
        {k: v for k, v in good.items() if k != "api"},
        {**good, "event": "summary"},
    ):
        with pytest.raises(SchemaError):
            validate(bad, _jsonl.schema())
    with pytest.raises(SchemaError, match="unsupported keywords"):
        validate(1, {"pattern": "x"})


def test_json_carries_api_graph_import_failures_failed_sub_jobs_and_a_summary() -> None:
    sim = Simulator(clock=ManualClock())
    leaves = [SubJob("leaf-bad", [(0, "RUNNING"), (1, "FAIL")], fail_reason="quota")]
    sim.add_evs_job(P, "batch-1", [(0, "RUNNING"), (2, "SUCCESS")], sub_jobs=leaves)
    edges = {"path": "obs://b/e.csv", "status": "partFailed", "cause": "12 malformed lines"}
    sim.add_ges_job(P, "g-1", "imp-1", [(0, "success")], import_detail={"edgeset_path": [edges]})
    sim.clock.set(5)
    with serve(sim) as url:
        evs = watch(url, "--api", "evs", "--json", "batch-1")
        ges = watch(url, "--api", "ges-v2", "--graph", "g-1", "--json", "imp-1")
    assert (evs.exit_code, ges.exit_code) == (1, 0)
    *events, summary = lines_of(evs.stdout)
    final = [e for e in events if e["job_id"] == "batch-1"][-1]
    assert (final["api"], final["graph"], final["final"], final["state"]) == (
        "evs",
        None,
        True,
        "succeeded",
    )
    assert final["failed_sub_jobs"] == ["leaf-bad"]
    assert (summary["jobs"], summary["sub_jobs"], summary["batches_with_failed_sub_jobs"]) == (
        1,
        1,
        1,
    )
    assert summary["problems"] == ["evs:leaf-bad (in evs:batch-1): failed: quota"]
    (imported, summary) = lines_of(ges.stdout)
    assert (imported["api"], imported["graph"], imported["import_failures"]) == ("ges-v2", "g-1", 1)
    assert summary["imports_with_failed_files"] == 1


def test_a_timed_out_run_against_a_refused_endpoint_says_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = watch(url, "--api", "evs", "--json", "--timeout", "1", *FAST, "j-1")
    assert result.exit_code == 3
    gave_up, summary = lines_of(result.stdout)
    assert (gave_up["reason"], gave_up["cause"]) == ("timeout", "refused")
    assert gave_up["error"] in ("ConnectError", "EndpointUnreachable")
    assert datetime.fromisoformat(gave_up["at"]).tzinfo is not None
    assert summary["transport_errors"]["refused"] >= 1


# -- server strings are text, never markup -------------------------------------------------------


def hostile_sim() -> Simulator[ManualClock]:
    sim = Simulator(clock=ManualClock())
    for i, reason in enumerate(HOSTILE):
        sim.add_evs_job(P, f"bad-{i}", [(0, "FAIL")], fail_reason=reason)
    for i, text in enumerate(HOSTILE):
        request = {"command": text, "url": "/x", "body": {}}
        sim.add_engine_job(P, "movies", f"eng-{i}", [(0, "complete")], request=request)
    return sim


@pytest.mark.parametrize("terminal", [True, False])
def test_hostile_server_strings_are_shown_as_text(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    monkeypatch.setattr(_display, "is_terminal", lambda: terminal)
    env = {"FORCE_COLOR": "1", "COLUMNS": "100", "LINES": "30"} if terminal else {}
    with serve(hostile_sim()) as url:
        watched = watch(url, "--api", "evs", "bad-0", "bad-1", env=env)
        listed = invoke(
            [
                "list",
                "--api",
                "ges-engine",
                "--graph",
                "movies",
                "--endpoint",
                url,
                "--project-id",
                P,
            ],
            env,
        )
    assert (watched.exit_code, listed.exit_code) == (1, 0), watched.output + listed.output
    for result in (watched, listed):
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
        assert "[/x]" in plain
        assert "[reverse]bad" in plain
        assert "\x1b[7m" not in result.stdout  # nothing was restyled
    summary = watched.stdout.split("\n\n")[-1]
    assert "! evs:bad-0: failed: [/x]" in re.sub(r"\x1b\[[0-9;]*m", "", summary)


# -- the live table ------------------------------------------------------------------------------

HEX = "ff8080818d3a4b5c018d3a4b5c6d"  # Huawei job IDs: 32 hex digits, alike at the start


def feed(run: Run, ref: EvsJob | GesJob, state: JobState, raw: str, reason: str = "") -> None:
    snapshot = JobSnapshot(ref, state, raw, fail_reason=reason or None)
    event = Transition(ref, None, None, state, snapshot, datetime.now(UTC))
    run.apply(event)


def render(run: Run, width: int, height: int = 40) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(live_view(run, "", width=width, height=height))
    return console.export_text().splitlines()


def test_shorten_middle_keeps_both_ends() -> None:
    assert shorten_middle("abc", 5) == "abc"
    assert shorten_middle(f"{HEX}0001", 13) == "ff8080…6d0001"
    short = {shorten_middle(f"{HEX}{i:04d}", 12) for i in range(10)}
    assert len(short) == 10  # distinct at the end: distinct shortened
    assert all(len(s) == 12 for s in short)


@pytest.mark.parametrize("width", [80, 100])
def test_the_live_table_keeps_states_whole_and_ids_distinct(width: int) -> None:
    refs = [EvsJob(f"{HEX}{i:04d}") for i in range(6)]
    run = Run(refs)
    long_reason = "insufficient capacity in the availability zone az-1, retry later " * 2
    states = [
        (JobState.SUCCEEDED, "SUCCESS", ""),
        (JobState.FAILED, "FAIL", long_reason),
        (JobState.RUNNING, "RUNNING", ""),
        (JobState.PENDING, "INIT", ""),
        (JobState.UNKNOWN, "WEIRD", ""),
    ]
    for ref, (state, raw, reason) in zip(refs, states, strict=False):
        feed(run, ref, state, raw, reason)
    lines = render(run, width)
    assert all(len(line) <= width for line in lines)
    rows = [line for line in lines if line.startswith("ff80")]
    assert len(rows) == 6
    ids = {row.split()[0] for row in rows}
    assert len(ids) == 6  # distinct IDs stay distinct
    assert all(i.endswith(f"{n:04d}") for i, n in zip(sorted(ids), range(6), strict=True))
    words = [row.split()[1] for row in rows]
    assert words == ["succeeded", "failed", "running", "pending", "unknown", "not"]
    failed = rows[1]
    assert "insufficient capacity" in failed
    assert failed.rstrip().endswith("…")


def test_hundreds_of_jobs_show_trouble_and_running_first_and_count_the_rest() -> None:
    refs = [EvsJob(f"{HEX}{i:04d}") for i in range(450)]
    run = Run(refs)
    for i, ref in enumerate(refs):
        if i % 50 == 7:
            feed(run, ref, JobState.FAILED, "FAIL", "quota")
        elif i % 15 == 1:
            feed(run, ref, JobState.RUNNING, "RUNNING")
        elif i % 37 == 2:
            feed(run, ref, JobState.PENDING, "INIT")
        else:
            feed(run, ref, JobState.SUCCEEDED, "SUCCESS")
    lines = render(run, 80, height=40)
    assert len(lines) <= 40
    rows = [line for line in lines if line.startswith("ff80")]
    shown = Counter(row.split()[1] for row in rows)
    assert shown == {"failed": 9, "running": 34 - 9}  # trouble, then running; nothing else
    everything = Counter(node.state.value for node in run.nodes.values() if node.state)
    (more,) = [line for line in lines if line.startswith("… and")]
    left = everything - shown
    listed = ", ".join(f"{n} {name}" for name, n in sorted(left.items()))
    assert more == f"… and {450 - len(rows)} more ({listed})"
    assert left["succeeded"] > 300


def test_throttling_and_refused_connections_show_in_a_status_line() -> None:
    run = Run([EvsJob("job-1")])
    assert run.trouble.line() == ""
    throttled = RateLimitError("throttled", status_code=429, error_code="APIGW.0308")
    for _ in range(3):
        run.trouble.on_retry(RetryDetails("GET", 1, 4.0, 0.0, throttled))
    refused = ConnectError("cannot connect", cause=TransportCause.REFUSED)
    for _ in range(2):
        run.trouble.on_retry(RetryDetails("GET", 1, 0.5, 0.0, refused))
    lines = render(run, 80)
    assert lines[1] == "throttled \u00d73, paused 4 s · connection refused \u00d72"


def test_a_run_shows_throttling_in_the_summary_and_logs_with_verbose() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "ok-1", [(0, "SUCCESS")])
    sim.add_fault(Fault("throttle_429", count=2, retry_after=1))
    with serve(sim) as url:
        quiet = watch(url, "--api", "evs", "ok-1")
        sim.add_fault(Fault("throttle_429", count=1, retry_after=1))
        verbose = watch(url, "--api", "evs", "--verbose", "ok-1")
        sim.add_fault(Fault("throttle_429", count=1, retry_after=1))
        debug = watch(url, "--api", "evs", "--log-level", "DEBUG", "ok-1")
    assert quiet.exit_code == verbose.exit_code == debug.exit_code == 0
    # The rate the client's budget learned from the window named (limit:200,time:5 minute).
    line = r"^throttled \u00d72, paused [12] s, rate 0\.653/s$"
    assert re.search(line, quiet.stdout, re.M), quiet.stdout
    assert "jobwatch: info:" not in quiet.stderr
    assert "batches with failed sub-jobs" in quiet.stdout  # EVS: applies
    assert "imports with failed files" not in quiet.stdout  # no GES job: dropped
    assert re.search(r"^jobwatch: info: .*retrying in", verbose.stderr, re.M), verbose.stderr
    assert "jobwatch: debug: GET /v1/" in debug.stderr
    assert "jobwatch: debug:" not in verbose.stderr


# -- jobwatch sim: the clock starts at the first request -----------------------------------------


def test_first_read_clock_stays_at_zero_until_armed_and_read() -> None:
    clock = FirstReadClock()
    time.sleep(0.05)
    assert clock.now() == 0.0
    clock.arm()
    time.sleep(0.05)
    assert clock.now() == 0.0  # the first reading starts it
    time.sleep(0.05)
    assert 0.04 < clock.now() < 1.0


def test_sim_starts_the_built_in_scenario_at_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[Any] = []

    @contextmanager
    def fake_serving(simulator: Any, host: str, port: int) -> Iterator[str]:
        served.append(simulator)
        yield "http://127.0.0.1:1"

    @contextmanager
    def at_once(stop: Any) -> Iterator[None]:
        stop.set()
        yield

    monkeypatch.setattr(_sim, "_serving", fake_serving)
    monkeypatch.setattr(_sim, "_until_signal", at_once)
    result = invoke(["sim"])
    assert result.exit_code == 0
    assert "try: jobwatch watch --api evs" in result.stderr
    (simulator,) = served
    time.sleep(0.1)
    assert simulator.clock.now() == 0.0  # a first request reads it...
    time.sleep(0.1)
    assert simulator.clock.now() > 0.05  # ... and it runs from then
