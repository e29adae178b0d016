"""The command line, through real HTTP to the simulator on a loopback socket.

In process with click's ``CliRunner`` (stdout and stderr apart), and as
``python -m jobwatch`` children for what only a real process shows: exit
statuses, signals, flushing, the simulator server and the demo.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from subprocess import PIPE, CompletedProcess, Popen
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from schema_subset import validate

import jobwatch
from jobwatch._cli import _display
from jobwatch._cli import _jsonl as jsonl
from jobwatch._cli._app import cli
from jobwatch.sim import Fault, ManualClock, SimAuth, Simulator, SubJob, serve

P = "proj-cli"
TOKEN = "tok-SECRET-0123456789abcdef"
WRONG_TOKEN = "tok-WRONG-SECRET-fedcba9876543210"
AK = "AKIDCLITEST0000001"
SK = "sk-SECRET-do-not-print-0123456789"
SECURITY_TOKEN = "sts-SECRET-security-token-0123456789"
SECRETS = (TOKEN, WRONG_TOKEN, SK, SECURITY_TOKEN)
FAST = ("--interval", "0.05", "--max-interval", "0.2")
STATES = {"pending", "running", "succeeded", "failed", "unknown"}
SCHEMA = jsonl.schema()
ENV_NAMES = (
    "JOBWATCH_TOKEN",
    "JOBWATCH_ENDPOINT",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
)
CHILD_ENV = {name: value for name, value in os.environ.items() if name not in ENV_NAMES}


# rich reads these: the tables below are checked as plain text.
RICH_NAMES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ENV_NAMES, *RICH_NAMES):
        monkeypatch.delenv(name, raising=False)


# -- helpers ---------------------------------------------------------------------------------


def invoke(args: Sequence[str], env: Mapping[str, str] | None = None) -> Result:
    """Run the CLI in process; no run may show a secret or a traceback."""
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    for secret in SECRETS:
        assert secret not in result.stdout
        assert secret not in result.stderr
    assert "Traceback" not in result.stderr
    return result


def watch(url: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    return invoke(["watch", "--api", "evs", "--endpoint", url, "--project-id", P, *args], env)


def events_of(stdout: str) -> list[dict[str, Any]]:
    """Parse JSON Lines, checking every line against the shipped schema; the events.

    The last line is the summary, and only the last.
    """
    lines = [json.loads(line) for line in stdout.splitlines()]
    for line in lines:
        validate(line, SCHEMA)
    *events, summary = lines
    assert summary["event"] == "summary"
    for event in events:
        assert event["event"] in ("transition", "gave_up")
        assert datetime.fromisoformat(event["at"]).utcoffset() == timedelta(0)
        assert event["at"].endswith("Z")
        if event["event"] == "transition":
            assert event["final"] == (event["state"] in ("succeeded", "failed"))
    return events


def by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        jobs.setdefault(event["job_id"], []).append(event)
    return jobs


def one_error_line(result: Result | CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jobwatch: error: ")
    return lines[0]


def done_sim(auth: SimAuth | None = None) -> Simulator[ManualClock]:
    """Jobs whose timelines are over (the clock is past them): one poll each."""
    sim = Simulator(clock=ManualClock(), auth=auth)
    sim.add_evs_job(P, "ok-1", [(0, "INIT"), (1, "RUNNING"), (2, "SUCCESS")])
    sim.add_evs_job(P, "ok-2", [(0, "SUCCESS")])
    sim.add_evs_job(
        P,
        "bad-1",
        [(0, "RUNNING"), (1, "FAIL")],
        fail_reason="insufficient capacity",
        error_code="EVS.2024",
    )
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    sim.add_ges_job(P, "graph-1", "ges-1", [(0, "pending"), (1, "success")], v1_body="old")
    edges = {"path": "obs://b/e.csv", "status": "partFailed", "cause": "12 malformed lines"}
    sim.add_ges_job(
        P, "graph-1", "imp-1", [(0, "success")], import_detail={"edgeset_path": [edges]}
    )
    for i in range(5):
        sim.add_engine_job(P, "movies", f"eng-{i}", [(0, "running"), (1, "complete")])
    sim.clock.set(10)
    return sim


INTERRUPTIBLE = [
    sys.executable,
    "-W",
    "error",
    "-c",
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'jobwatch'; runpy.run_module('jobwatch', run_name='__main__')",
]


@contextmanager
def stepping(sim: Simulator[ManualClock], *times: float) -> Iterator[None]:
    """Move the clock to each of ``times`` in turn, once a poll was answered at the last one.

    The CLI then sees every state of a timeline, however slow the machine.
    """
    stop = threading.Event()

    def step() -> None:
        for t in times:
            now = sim.clock.now()
            while not any(request.t == now for request in sim.requests):
                if stop.wait(0.005):
                    return
            sim.clock.set(t)

    thread = threading.Thread(target=step, name="stepping", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def jobwatch_argv(*args: str) -> list[str]:
    return [sys.executable, "-W", "error", "-m", "jobwatch", *args]


@contextmanager
def child(argv: list[str], env: Mapping[str, str] | None = None) -> Iterator[Popen[bytes]]:
    """A child process (our own interpreter) with its output piped, killed if left running."""
    with Popen(  # noqa: S603 - our interpreter, our arguments
        argv, stdout=PIPE, stderr=PIPE, env={**CHILD_ENV, **(env or {})}
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def run(argv: list[str], env: Mapping[str, str] | None = None) -> CompletedProcess[str]:
    with child(argv, env) as proc:
        out, err = proc.communicate(timeout=60)
    return CompletedProcess(argv, proc.returncode, out.decode(), err.decode())


def read_line(proc: Popen[bytes], timeout: float = 15.0) -> str:
    """One line of a child's stdout, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            assert left > 0, f"no line from the child within {timeout}s: {data!r}"
            if selector.select(left):
                chunk = os.read(fd, 1)
                assert chunk, f"the child closed stdout: {data!r}"
                data += chunk
    return data.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the demo: started before the other tests, in the background, checked last ------------------


@pytest.fixture(scope="module", autouse=True)
def demo_process() -> Iterator[Popen[bytes]]:
    """``jobwatch demo`` lives ~20 s of real job time: let it run while the others do."""
    with child(jobwatch_argv("demo", "--jobs", "40", "--json")) as proc:
        yield proc  # killed at the end if its test did not run (-k)


# -- watch: the JSON Lines contract and every exit status ---------------------------------------


def test_json_lines_contract_sub_jobs_at_depth_two_and_a_failed_sub_job_exits_1() -> None:
    sim = Simulator(clock=ManualClock())
    leaves = [
        SubJob("leaf-ok", [(1, "RUNNING"), (2, "SUCCESS")]),
        SubJob("leaf-bad", [(1, "RUNNING"), (3, "FAIL")], fail_reason="quota"),
    ]
    group = SubJob("group-a", [(1, "RUNNING"), (4, "SUCCESS")], appear_at=1, sub_jobs=leaves)
    sim.add_evs_job(
        P,
        "batch-1",
        [(0, "INIT"), (1, "RUNNING"), (5, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[group],
    )
    with serve(sim) as url, stepping(sim, 1, 2, 3, 4, 5):
        result = watch(url, "--json", *FAST, "batch-1")
    assert result.exit_code == 1, result.output  # the parent succeeded, a sub-job failed
    assert result.stderr.startswith("jobwatch: note: no credentials")
    events = events_of(result.stdout)
    assert [(e["job_id"], e["parent_id"], e["previous"], e["state"]) for e in events] == [
        ("batch-1", None, None, "pending"),
        ("batch-1", None, "pending", "running"),
        ("group-a", "batch-1", None, "running"),  # None: first sight
        ("leaf-ok", "group-a", None, "running"),  # depth 2: the parent is the sub-job
        ("leaf-bad", "group-a", None, "running"),
        ("leaf-ok", "group-a", "running", "succeeded"),
        ("leaf-bad", "group-a", "running", "failed"),
        ("group-a", "batch-1", "running", "succeeded"),
        ("batch-1", None, "running", "succeeded"),
    ]
    assert [e["raw_status"] for e in events if e["job_id"] == "batch-1"] == [
        "INIT",
        "RUNNING",
        "SUCCESS",
    ]
    assert [(e["fail_reason"], e["error_code"]) for e in events if e["state"] == "failed"] == [
        ("quota", None)
    ]


def test_all_succeeded_exits_0_with_plain_lines_and_a_summary() -> None:
    sim = done_sim()
    with serve(sim) as url:
        result = watch(url, "ok-1", "ok-2", "ok-1")  # a repeated ID is watched once
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    events = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    assert sorted(events) == ["evs:ok-1: succeeded (SUCCESS)", "evs:ok-2: succeeded (SUCCESS)"]
    assert "2 jobs in " in result.stdout
    assert ["succeeded", "2"] in [line.split() for line in lines]
    assert "polls 2, HTTP requests 2" in result.stdout
    assert len(sim.requests) == 2


def test_a_failed_job_exits_1_with_its_reason_and_code() -> None:
    with serve(done_sim()) as url:
        result = watch(url, "--json", "ok-1", "bad-1")
    assert result.exit_code == 1
    final = by_job(events_of(result.stdout))["bad-1"][-1]
    assert (final["state"], final["fail_reason"], final["error_code"]) == (
        "failed",
        "insufficient capacity",
        "EVS.2024",
    )


def test_failed_wins_over_gave_up() -> None:
    with serve(done_sim()) as url:
        result = watch(url, "--json", "--timeout", "0.3", *FAST, "bad-1", "missing-1")
    assert result.exit_code == 1
    ((gave_up,),) = [by_job(events_of(result.stdout))["missing-1"]]
    del gave_up["at"]
    assert gave_up == {
        "event": "gave_up",
        "api": "evs",
        "graph": None,
        "job_id": "missing-1",
        "parent_id": None,
        "reason": "not_found",
        "message": "not found within 0.3s",
        "error": "JobNotFound",
        "cause": None,
    }


def test_not_found_exits_3() -> None:
    with serve(done_sim()) as url:
        result = watch(url, "--timeout", "0.3", *FAST, "missing-1", "ok-2")
    assert result.exit_code == 3
    assert "evs:missing-1: gave up (not_found): not found within 0.3s" in result.stdout
    assert ["gave", "up:", "not_found", "1"] in [
        line.split() for line in result.stdout.splitlines()
    ]


def test_timeout_exits_3_and_the_interval_flags_pace_the_polls() -> None:
    sim = Simulator()  # real time: the request log's ``t`` says when each poll came
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    gaps: list[list[float]] = []
    with serve(sim) as url:
        for timeout, pace in (("0.8", ("--max-interval", "0.1")), ("1.5", ())):
            sim.clear_requests()
            result = watch(
                url, "--json", "--timeout", timeout, "--interval", "0.05", *pace, "forever"
            )
            assert result.exit_code == 3
            events = events_of(result.stdout)
            assert [(e["event"], e.get("reason")) for e in events] == [
                ("transition", None),
                ("gave_up", "timeout"),
            ]
            assert events[1]["message"] == f"not finished within {timeout}s"
            times = [request.t for request in sim.requests]
            gaps.append([b - a for a, b in itertools.pairwise(times)])  # none at the deadline
    capped, backing_off = gaps
    # --interval 0.05 (not the default 1 s), held by --max-interval 0.1 (gaps add latency).
    assert 0.03 < min(capped) <= max(capped) < 0.3, gaps
    # Without --max-interval (default 30 s) the interval grows by half: 0.05, 0.075,
    # 0.11, 0.17, 0.25, 0.38 (the sixth gap ends at 1.42 s, inside the 1.5 s).
    assert min(backing_off) > 0.03, gaps
    assert max(backing_off) >= 0.3, gaps


def test_a_hung_request_still_ends_the_run_at_the_timeout() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "stuck", [(0, "RUNNING")])
    sim.add_fault(Fault("latency", latency=3.0, window=(1.0, 2.0)))  # every poll from t=1
    with serve(sim) as url, stepping(sim, 1):
        started = time.monotonic()
        result = watch(url, "--json", "--timeout", "0.3", *FAST, "stuck")
        elapsed = time.monotonic() - started
    assert result.exit_code == 3
    assert [(e["event"], e.get("reason")) for e in events_of(result.stdout)] == [
        ("transition", None),
        ("gave_up", "timeout"),
    ]
    assert elapsed < 2.9  # 0.3 s + the 1 s safety margin cut the 3 s request short


def test_an_auth_failure_exits_3_and_never_shows_the_token() -> None:
    with serve(done_sim(SimAuth(tokens={TOKEN}))) as url:
        as_json = watch(url, "--json", "--token", WRONG_TOKEN, "ok-1", "ok-2")
        plain = watch(url, "--token", WRONG_TOKEN, "ok-1")
    assert as_json.exit_code == plain.exit_code == 3
    events = events_of(as_json.stdout)
    assert {(e["job_id"], e["reason"]) for e in events} == {("ok-1", "auth"), ("ok-2", "auth")}
    assert "APIGW.0301" in events[0]["message"]
    assert "evs:ok-1: gave up (auth): " in plain.stdout


@pytest.mark.parametrize(
    ("api", "graph", "job", "sim_api"),
    [
        ("ges-v1", "graph-1", "ges-1", "ges-v1.0"),
        ("ges-v2", "graph-1", "ges-1", "ges-v2"),
        ("ges-engine", "movies", "eng-3", "ges-engine"),
    ],
)
def test_the_ges_apis_take_a_graph(api: str, graph: str, job: str, sim_api: str) -> None:
    sim = done_sim()
    with serve(sim) as url:
        args = ["--api", api, "--graph", graph, "--endpoint", url, "--project-id", P, "--json"]
        result = invoke(["watch", *args, job])
    assert result.exit_code == 0, result.output
    (event,) = events_of(result.stdout)
    assert (event["job_id"], event["state"], event["parent_id"]) == (job, "succeeded", None)
    ((request_api, path),) = {(r.api, r.path) for r in sim.requests}
    assert request_api == sim_api
    assert f"/graphs/{graph}/" in path


def test_a_partly_failed_import_succeeds_and_is_reported() -> None:
    with serve(done_sim()) as url:
        args = ["--api", "ges-v2", "--graph", "graph-1", "--endpoint", url, "--project-id", P]
        result = invoke(["watch", *args, "imp-1"])
    assert result.exit_code == 0  # GES says success: the state decides the exit status
    note = "1 import file(s) failed or partly failed"
    assert f"ges-v2:graph-1/imp-1: succeeded (success) ({note})" in result.stdout
    assert f"! ges-v2:graph-1/imp-1: succeeded, {note}" in result.stdout
    assert ["imports", "with", "failed", "files", "1"] in [
        line.split() for line in result.stdout.splitlines()
    ]


# -- usage and configuration errors: exit 2, one line, and not one request ----------------------


@pytest.fixture(scope="module")
def idle() -> Iterator[tuple[Simulator[ManualClock], str]]:
    """A served simulator that no usage error may reach."""
    sim = done_sim()
    with serve(sim) as url:
        yield sim, url
    assert sim.requests == []


WATCH = ["watch", "--api", "evs"]
USAGE_ERRORS: list[tuple[list[str], str]] = [
    ([*WATCH, "--bogus", "ok-1"], "No such option"),
    (["watch", "--api", "s3", "ok-1"], "Invalid value for '--api': 's3' is not one of"),
    (["watch", "ok-1"], "give --api and JOB_IDs, or --jobs FILE"),
    (WATCH, "no JOB_ID: name the jobs of --api evs"),
    ([*WATCH, "--project-id", "p/../x", "ok-1"], "invalid --project-id: project ID"),
    (["watch", "--api", "ges-v1", "ges-1"], "--api ges-v1 needs --graph (the graph ID)"),
    (["watch", "--api", "ges-v2", "ges-1"], "--api ges-v2 needs --graph (the graph ID)"),
    (["watch", "--api", "ges-engine", "e-1"], "--api ges-engine needs --graph (the graph name)"),
    (["watch", "--api", "ges-v2", "--graph", "g/1", "ges-1"], "invalid --graph: graph ID 'g/1'"),
    ([*WATCH, "--graph", "g", "ok-1"], "--graph is not used with --api evs"),
    ([*WATCH, "ok-1", "../etc"], "invalid JOB_ID: job_id '../etc'"),
    ([*WATCH, "--token", TOKEN, "a/b"], "invalid JOB_ID: job_id 'a/b' may contain only"),
    ([*WATCH, "x" * 257], "invalid JOB_ID: job_id is 257 characters long"),
    ([*WATCH, ""], "invalid JOB_ID: job_id must not be empty"),
    ([*WATCH, "--timeout", "soon", "ok-1"], "'soon' is not a valid float"),
    ([*WATCH, "--timeout", "0", "ok-1"], "0.0 is not a positive number of seconds"),
    ([*WATCH, "--timeout", "nan", "ok-1"], "nan is not a positive number of seconds"),
    ([*WATCH, "--interval", "-1", "ok-1"], "-1.0 is not a positive number of seconds"),
    ([*WATCH, "--max-interval", "inf", "ok-1"], "inf is not a positive number of seconds"),
    ([*WATCH, "--interval", "5", "--max-interval", "1", "ok-1"], "--interval (5) is longer"),
    (["list", "--api", "evs"], "evs has no job list"),
    (["list", "--api", "ges-engine"], "--api ges-engine needs --graph"),
    (["list", "--api", "ges-engine", "--graph", "../g"], "invalid --graph: graph name"),
    (["demo", "--jobs", "0"], "Invalid value for '--jobs'"),
    (["sim", "--port", "70000"], "Invalid value for '--port'"),
    (["sim", "--scenario", "/nonexistent/scenario.json"], "bad scenario"),
    (["nonsense"], "No such command 'nonsense'"),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS, ids=lambda v: str(v)[:50])
def test_usage_errors_exit_2_before_any_request(
    idle: tuple[Simulator[ManualClock], str], args: list[str], message: str
) -> None:
    sim, url = idle
    env = {
        "JOBWATCH_ENDPOINT": url,
        "HUAWEICLOUD_SDK_PROJECT_ID": P,
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
    }
    result = invoke(args, env)
    assert result.exit_code == 2, result.output
    assert message in one_error_line(result)
    assert result.stdout == ""
    assert sim.requests == []


@pytest.mark.parametrize(
    "job_id", ["/", "..", "%2e%2e", "a b", "a\nb", "a?b", "a#b", "é", "x" * 5000]
)
def test_hostile_job_ids_exit_2_in_one_line_before_any_request(
    idle: tuple[Simulator[ManualClock], str], job_id: str
) -> None:
    sim, url = idle
    for args in (["--api", "evs"], ["--api", "ges-engine", "--graph", "g"]):
        result = watch(url, *args, "ok-1", job_id)
        assert result.exit_code == 2
        assert "invalid JOB_ID" in one_error_line(result)
        assert len(one_error_line(result)) < 300  # a 5,000-character ID is not echoed whole
    assert sim.requests == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUAWEICLOUD_SDK_PROJECT_ID": P}, "no endpoint: pass --endpoint URL or set"),
        ({"JOBWATCH_ENDPOINT": "IDLE"}, "no project ID: pass --project-id ID or set"),
        ({"JOBWATCH_ENDPOINT": "ftp://example.com", "HUAWEICLOUD_SDK_PROJECT_ID": P}, "http://"),
        (
            {
                "JOBWATCH_ENDPOINT": "IDLE",
                "HUAWEICLOUD_SDK_PROJECT_ID": P,
                "HUAWEICLOUD_SDK_AK": AK,
            },
            "HUAWEICLOUD_SDK_AK is set but HUAWEICLOUD_SDK_SK is not",
        ),
        (
            {
                "JOBWATCH_ENDPOINT": "IDLE",
                "HUAWEICLOUD_SDK_PROJECT_ID": P,
                "HUAWEICLOUD_SDK_SK": SK,
            },
            "HUAWEICLOUD_SDK_SK is set but HUAWEICLOUD_SDK_AK is not",
        ),
        (
            {
                "JOBWATCH_ENDPOINT": "IDLE",
                "HUAWEICLOUD_SDK_PROJECT_ID": P,
                "HUAWEICLOUD_SDK_AK": "A K",
                "HUAWEICLOUD_SDK_SK": SK,
                "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
            },
            "HUAWEICLOUD_SDK_AK is not a valid access key",
        ),
    ],
)
def test_configuration_errors_exit_2_before_any_request(
    idle: tuple[Simulator[ManualClock], str], env: dict[str, str], message: str
) -> None:
    sim, url = idle
    env = {name: url if value == "IDLE" else value for name, value in env.items()}
    result = invoke(["watch", "--api", "evs", "ok-1"], env)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert sim.requests == []


def test_a_bad_scenario_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"evs_jobs": [{"project_id": "p"}]}', encoding="utf-8")
    result = invoke(["sim", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert "missing job_id, timeline" in one_error_line(result)
    bad.write_text("{not json", encoding="utf-8")
    result = invoke(["sim", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert f"bad scenario {bad}: Expecting property name" in one_error_line(result)


# -- credentials, environment fallbacks, secrets -------------------------------------------------


def test_token_endpoint_and_project_from_the_environment() -> None:
    sim = done_sim(SimAuth(tokens={TOKEN}))
    with serve(sim) as url:
        env = {"JOBWATCH_TOKEN": TOKEN, "JOBWATCH_ENDPOINT": url, "HUAWEICLOUD_SDK_PROJECT_ID": P}
        from_env = invoke(["watch", "--api", "evs", "--json", "ok-1"], env)
        flag_wins = invoke(
            ["watch", "--api", "evs", "--token", TOKEN, "ok-2"],
            {**env, "JOBWATCH_TOKEN": WRONG_TOKEN},
        )
    assert from_env.exit_code == flag_wins.exit_code == 0, from_env.output + flag_wins.output
    assert from_env.stderr == ""  # no note: there are credentials
    assert events_of(from_env.stdout)[0]["state"] == "succeeded"
    assert [r.headers["x-auth-token"] for r in sim.requests] == [TOKEN, TOKEN]
    assert [r.path for r in sim.requests] == [f"/v1/{P}/jobs/ok-1", f"/v1/{P}/jobs/ok-2"]


def test_ak_sk_signing_from_the_environment_with_a_security_token() -> None:
    sim = done_sim(SimAuth(credentials={AK: SK}))
    env = {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN,
    }
    with serve(sim) as url:
        as_json = watch(url, "--json", "bad-1", env=env)
        plain = watch(url, "ok-1", env=env)
        refused = watch(url, "--json", "ok-1", env={**env, "HUAWEICLOUD_SDK_SK": "sk-SECRET-other"})
    assert as_json.exit_code == 1  # signed requests got through; bad-1 failed
    assert as_json.stderr == ""
    assert plain.exit_code == 0
    assert refused.exit_code == 3
    assert events_of(refused.stdout)[0]["reason"] == "auth"
    assert "sk-SECRET-other" not in refused.stdout + refused.stderr
    signed = sim.requests[0].headers
    assert signed["authorization"].startswith(f"SDK-HMAC-SHA256 Access={AK}, ")
    assert signed["x-security-token"] == SECURITY_TOKEN
    assert "x-auth-token" not in signed


def test_an_unexpected_error_is_one_line_and_exit_4_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(self: jobwatch.Watcher, refs: object, **where: object) -> None:
        raise RuntimeError(f"boom with {TOKEN} and {SK}")

    monkeypatch.setattr(jobwatch.Watcher, "watch_many", boom)
    with serve(done_sim()) as url:
        result = watch(url, "--token", TOKEN, "ok-1", env={"HUAWEICLOUD_SDK_SK": SK})
    assert result.exit_code == 4
    assert "unexpected RuntimeError: boom with <redacted> and <redacted>" in one_error_line(result)


# -- list ----------------------------------------------------------------------------------------


def test_list_engine_jobs_as_json_lines_plain_lines_and_a_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = done_sim(SimAuth(tokens={TOKEN}))
    with serve(sim) as url:
        base = ["list", "--api", "ges-engine", "--endpoint", url, "--project-id", P]
        as_json = invoke([*base, "--graph", "movies", "--token", TOKEN, "--json"])
        plain = invoke([*base, "--graph", "movies"], {"JOBWATCH_TOKEN": TOKEN})
        unknown = invoke([*base, "--graph", "nope", "--token", TOKEN])
        refused = invoke([*base, "--graph", "movies", "--token", WRONG_TOKEN])
        monkeypatch.setattr(_display, "is_terminal", lambda: True)
        table = invoke([*base, "--graph", "movies", "--token", TOKEN], {"COLUMNS": "120"})
    assert as_json.exit_code == plain.exit_code == table.exit_code == 0
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {
            "job_id": f"eng-{i}",
            "status": "complete",
            "state": "succeeded",
            "command": "import_graph",
        }
        for i in range(5)
    ]
    assert [line.split() for line in plain.stdout.splitlines()] == [
        [f"eng-{i}", "complete", "succeeded", "import_graph"] for i in range(5)
    ]
    assert "jobs of graph movies" in table.stdout
    rows = [line.split("│") for line in table.stdout.splitlines() if "eng-" in line]
    assert [[cell.strip() for cell in row[1:-1]] for row in rows] == [
        [f"eng-{i}", "complete", "succeeded", "import_graph"] for i in range(5)
    ]
    assert unknown.exit_code == refused.exit_code == 3
    assert "graph : nope not exist" in one_error_line(unknown)
    assert "APIGW.0301" in one_error_line(refused)


def test_list_ges_management_jobs_of_the_project_and_of_a_graph(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = done_sim(SimAuth(tokens={TOKEN}))
    sim.add_ges_job(P, "graph-2", "other-1", [(0, "running")], job_name="CreateGraph")
    expected = [  # the job center lists the newest job first
        {"job_id": "other-1", "status": "running", "state": "running", "command": "CreateGraph"},
        {"job_id": "imp-1", "status": "success", "state": "succeeded", "command": "ImportGraph"},
        {"job_id": "ges-1", "status": "success", "state": "succeeded", "command": "ImportGraph"},
    ]
    with serve(sim) as url:
        for api in ("ges-v1", "ges-v2"):
            base = ["list", "--api", api, "--endpoint", url, "--project-id", P, "--token", TOKEN]
            as_json = invoke([*base, "--json"])
            assert as_json.exit_code == 0, as_json.stderr
            assert [json.loads(line) for line in as_json.stdout.splitlines()] == expected
            of_graph = invoke([*base, "--graph", "graph-1"])
            assert of_graph.exit_code == 0
            assert [line.split() for line in of_graph.stdout.splitlines()] == [
                list(row.values()) for row in expected[1:]
            ]
            none = invoke([*base, "--graph", "graph-9"])
            assert none.exit_code == 0
            assert none.stdout == ""
            assert f"{api} project (graph graph-9) has no jobs" in none.stderr
            bad = invoke([*base, "--graph", "g/1"])
            assert bad.exit_code == 2
            assert "invalid --graph: graph name 'g/1'" in bad.stderr
        refused = invoke([*base[:-1], WRONG_TOKEN])
        monkeypatch.setattr(_display, "is_terminal", lambda: True)
        table = invoke([*base], {"COLUMNS": "120"})
    assert refused.exit_code == 3
    assert "APIGW.0301" in one_error_line(refused)
    assert "jobs of ges-v2 project" in table.stdout
    rows = [line.split("│") for line in table.stdout.splitlines() if "-1 " in line]
    assert [[cell.strip() for cell in row[1:-1]] for row in rows] == [
        list(row.values()) for row in expected
    ]
    lists = [r for r in sim.requests if r.path == f"/v2/{P}/graphs/jobs"]
    assert lists
    assert all("limit=100" in r.query for r in lists)


# -- the live display ----------------------------------------------------------------------------


def test_on_a_terminal_a_live_table_nests_sub_jobs_and_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = Simulator(clock=ManualClock())
    leaves = [
        SubJob("leaf-ok", [(0, "RUNNING"), (2, "SUCCESS")]),
        SubJob("leaf-bad", [(0, "RUNNING"), (3, "FAIL")], fail_reason="quota"),
    ]
    group = SubJob("group-a", [(0, "RUNNING"), (4, "SUCCESS")], sub_jobs=leaves)
    sim.add_evs_job(P, "batch-1", [(0, "RUNNING"), (5, "SUCCESS")], sub_jobs=[group])
    sim.clock.set(6)
    monkeypatch.setattr(_display, "is_terminal", lambda: True)
    with serve(sim) as url:
        result = watch(url, "batch-1", env={"COLUMNS": "150", "LINES": "40"})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line.strip()}
    assert rows["evs"].split()[1:2] == ["·"]  # one API and no graph: said once, in the head
    assert rows["batch-1"].split()[1:2] == ["succeeded"]
    assert "3/3 done, 1 failed" in rows["batch-1"]
    assert "2/2 done, 1 failed" in rows["group-a"]
    assert rows["leaf-bad"].split()[1:2] == ["failed"]
    assert rows["leaf-bad"].rstrip().endswith("quota")
    indent = {name: len(rows[name]) - len(rows[name].lstrip()) for name in rows}
    assert indent["batch-1"] < indent["group-a"] < indent["leaf-bad"] == indent["leaf-ok"]
    assert ["batches", "with", "failed", "sub-jobs", "1"] in [line.split() for line in lines]
    assert not any("imports with failed files" in line for line in lines)  # EVS only


# -- python -m jobwatch, signals, the simulator, the demo ----------------------------------------


def test_python_m_jobwatch_watch_json() -> None:
    with serve(done_sim()) as url:
        args = ["--api", "evs", "--endpoint", url, "--project-id", P, "--json", "ok-1", "bad-1"]
        proc = run(jobwatch_argv("watch", *args))
    assert proc.returncode == 1, proc.stderr
    states = {e["job_id"]: e["state"] for e in events_of(proc.stdout)}
    assert states == {"ok-1": "succeeded", "bad-1": "failed"}
    assert proc.stderr.startswith("jobwatch: note: no credentials")


def test_python_m_jobwatch_usage_error() -> None:
    args = ["--api", "evs", "--endpoint", "http://127.0.0.1:9", "--project-id", P, "a/b"]
    proc = run(jobwatch_argv("watch", *args), {"JOBWATCH_TOKEN": TOKEN})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert one_error_line(proc) == (
        "jobwatch: error: invalid JOB_ID: "
        "job_id 'a/b' may contain only ASCII letters, digits, '-', '_' and '.'"
    )


def test_ctrl_c_during_a_watch_exits_130_after_lines_already_flushed() -> None:
    with serve(done_sim()) as url:
        args = ["--api", "evs", "--endpoint", url, "--project-id", P, "--json", "forever"]
        # As from a terminal: a child of a background job would inherit SIGINT ignored.
        with child([*INTERRUPTIBLE, "watch", *args]) as proc:
            first = json.loads(read_line(proc))  # flushed while the watch goes on
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
    assert (first["job_id"], first["state"], first["previous"]) == ("forever", "running", None)
    assert proc.returncode == 130
    assert err.decode().splitlines()[-1] == "jobwatch: interrupted"


def test_sim_serves_until_sigint_or_sigterm(tmp_path: Path) -> None:
    with child(jobwatch_argv("sim", "--host", "127.0.0.1", "--port", "0")) as proc:
        endpoint = read_line(proc)
        assert endpoint.startswith("endpoint: http://127.0.0.1:")
        assert read_line(proc) == "project-id: demo-project\n"
        url = endpoint.split()[1]
        response = httpx.get(f"{url}/ges/v1.0/demo-project/graphs/movies/jobs/status", timeout=10)
        assert response.status_code == 200
        assert response.json()["jobs"]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    assert proc.returncode == 0

    scenario = tmp_path / "scenario.json"
    job = {"project_id": "p", "job_id": "j1", "timeline": [[0, "SUCCESS"]]}
    scenario.write_text(json.dumps({"evs_jobs": [job]}), encoding="utf-8")
    port = free_port()
    with child(jobwatch_argv("sim", "--port", str(port), "--scenario", str(scenario))) as proc:
        assert read_line(proc) == f"endpoint: http://127.0.0.1:{port}\n"
        url = f"http://127.0.0.1:{port}"
        result = invoke(["watch", "--api", "evs", "--endpoint", url, "--project-id", "p", "j1"])
        assert result.exit_code == 0
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_version_help_and_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(["--version"]).stdout == f"jobwatch {jobwatch.__version__}\n"
    alone = invoke([])
    assert (alone.exit_code, alone.stdout) == (2, "")
    assert alone.stderr.startswith("Usage: jobwatch [OPTIONS] COMMAND [ARGS]...")
    for command in ("watch", "list", "sim", "demo"):
        result = invoke([command, "--help"])
        assert result.exit_code == 0
        assert result.stdout.startswith(f"Usage: jobwatch {command} [OPTIONS]")
    from jobwatch._cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"jobwatch {jobwatch.__version__}\n"


def test_the_library_does_not_import_the_cli() -> None:
    # httpx itself imports rich and click when installed: check jobwatch's own imports.
    package = Path(jobwatch.__file__).parent
    for path in package.rglob("*.py"):
        if "_cli" in path.parts or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"rich", "click"}, path
                assert not f"{name}.".startswith("jobwatch._cli."), path


def test_without_the_cli_extra_one_line_and_exit_2() -> None:
    code = "import sys; sys.modules['click'] = None; from jobwatch._cli import main; main([])"
    proc = run([sys.executable, "-c", code])
    assert proc.returncode == 2
    assert proc.stderr == (
        "jobwatch: error: the command line needs click: pip install 'jobwatch[cli]'\n"
    )


def test_the_demo_watches_every_job_and_ends_with_a_summary(
    demo_process: Popen[bytes],
) -> None:
    out, err = demo_process.communicate(timeout=90)
    assert demo_process.returncode == 1, err.decode()  # the scenario has failing jobs
    assert err == b""
    events = events_of(out.decode())
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["jobs"] == 40
    assert sum(summary["outcomes"].values()) == 40
    assert summary["outcomes"]["failed"] >= 1
    assert summary["imports_with_failed_files"] == 1
    assert summary["batches_with_failed_sub_jobs"] == 1
    assert summary["sub_job_outcomes"]["failed"] == 1
    assert 0 < summary["requests"] < summary["naive_requests"]
    assert summary["polls"] > 0
    assert summary["requests_saved"] == summary["naive_requests"] - summary["requests"]
    assert summary["elapsed"] < 60
    parents = {e["job_id"]: e["parent_id"] for e in events}
    assert parents["batch-leaf-2"] == "batch-group-b"
    assert parents["batch-group-b"] == "evs-batch"
    finals = {e["job_id"] for e in events if e["parent_id"] is None and e["event"] == "transition"}
    assert len(finals) == 40
    assert {e["state"] for e in events if e["job_id"] == "ges-0001"} >= {"failed"}


def test_a_wrong_endpoint_path_ends_with_error_at_once_and_a_hint() -> None:
    # APIGW.0101 (a route the gateway does not know) is a configuration error, not a
    # missing job: reason `error` within seconds, not `not_found` after the grace.
    with serve(done_sim()) as url:
        started = time.monotonic()
        result = watch(url + "/evs", "--json", "ok-1", "ok-2")
        took = time.monotonic() - started
    assert result.exit_code == 3
    finals = [jobs[-1] for jobs in by_job(events_of(result.stdout)).values()]
    assert {final["reason"] for final in finals} == {"error"}
    assert all("APIGW.0101" in final["message"] for final in finals)
    assert took < 10
    hints = [line for line in result.stderr.splitlines() if "hint:" in line]
    assert len(hints) == 1
    assert "endpoint or API is wrong" in hints[0]
    assert "GET /evs/v1/" in hints[0]


def test_an_endpoint_nobody_listens_on_is_warned_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = watch(url, "--json", "--timeout", "1", *FAST, "ok-1")
    assert result.exit_code == 3
    warned = [line for line in result.stderr.splitlines() if "cannot reach" in line]
    assert len(warned) == 1
    assert url in warned[0]
