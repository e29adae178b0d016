"""``jobwatch watch --jobs FILE`` and ``--region``: mixed services, each on its endpoint.

Every simulator stands for one service's endpoint and is served on a loopback
socket; each checks that it was asked about its own jobs only.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from subprocess import PIPE, Popen

import pytest
from click.testing import CliRunner, Result
from schema_subset import validate

from jobwatch._apis import api_words
from jobwatch._cli import _jsonl as jsonl
from jobwatch._cli._app import cli
from jobwatch.sim import ManualClock, Simulator, SubJob, serve

P = "proj-jobs"
FAST = ("--interval", "0.05", "--max-interval", "0.2", "--timeout", "60")
SCHEMA = jsonl.schema()
ENV_NAMES = (
    "JOBWATCH_TOKEN",
    "JOBWATCH_ENDPOINT",
    "JOBWATCH_REGION",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
)
CHILD_ENV = {name: value for name, value in os.environ.items() if name not in ENV_NAMES}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("HUAWEICLOUD_SDK_REGION"):
            monkeypatch.delenv(name)


def sims() -> dict[str, Simulator[ManualClock]]:
    """Five services, each its own simulator, every timeline over (one poll a job)."""
    made = {name: Simulator(clock=ManualClock()) for name in ("evs", "ecs", "cce", "rds", "ges")}
    made["evs"].add_evs_job(P, "vol-1", [(0, "RUNNING"), (1, "SUCCESS")])
    made["ecs"].add_evs_job(
        P,
        "srv-1",
        [(0, "RUNNING"), (1, "SUCCESS")],
        service="ecs",
        sub_jobs=[SubJob("srv-1a", [(0, "SUCCESS")])],
    )
    made["cce"].add_cce_job(P, "cce-1", [(0, "Running"), (1, "Success")])
    made["rds"].add_rds_job(P, "rds-1", [(0, "Running"), (1, "Failed")], fail_reason="no quota")
    made["ges"].add_engine_job(P, "movies", "eng-1", [(0, "running"), (1, "complete")])
    made["ges"].add_ges_job(P, "graph-1", "ges-1", [(0, "running"), (1, "success")])
    for sim in made.values():
        sim.clock.set(10)
    return made


@contextmanager
def served(made: Mapping[str, Simulator[ManualClock]]) -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(serve(sim)) for name, sim in made.items()}


def lines_for(urls: Mapping[str, str]) -> list[dict[str, str]]:
    return [
        {"api": "evs", "job_id": "vol-1", "endpoint": urls["evs"]},
        {"api": "ecs", "job_id": "srv-1", "endpoint": urls["ecs"]},
        {"api": "cce", "job_id": "cce-1", "endpoint": urls["cce"]},
        {"api": "rds", "job_id": "rds-1", "endpoint": urls["rds"]},
        {"api": "ges-engine", "graph": "movies", "job_id": "eng-1", "endpoint": urls["ges"]},
        {"api": "ges-v2", "graph": "graph-1", "job_id": "ges-1", "endpoint": urls["ges"]},
    ]


def jsonl_text(lines: Sequence[Mapping[str, str]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def invoke(args: Sequence[str], stdin: str | None = None, **env: str) -> Result:
    result = CliRunner().invoke(cli, list(args), input=stdin, env=env, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


def asked(made: Mapping[str, Simulator[ManualClock]]) -> dict[str, set[str | None]]:
    return {name: {request.job for request in sim.requests} for name, sim in made.items()}


def test_jobs_from_a_pipe_one_run_every_service_on_its_own_endpoint(tmp_path: Path) -> None:
    made = sims()
    with served(made) as urls:
        argv = [sys.executable, "-W", "error", "-m", "jobwatch", "watch", "--json"]
        argv += [*FAST, "--project-id", P, "--jobs", "-"]
        with Popen(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=CHILD_ENV) as proc:  # noqa: S603
            out, err = proc.communicate(jsonl_text(lines_for(urls)).encode(), timeout=120)
    assert proc.returncode == 1, err.decode()  # the RDS job failed
    lines = [json.loads(line) for line in out.decode().splitlines()]
    for line in lines:
        validate(line, SCHEMA)
    *events, summary = lines
    assert summary["event"] == "summary"
    finals = {(e["api"], e["job_id"]): e["state"] for e in events if e["final"]}
    assert finals == {
        ("evs", "vol-1"): "succeeded",
        ("ecs", "srv-1"): "succeeded",
        ("ecs", "srv-1a"): "succeeded",  # a sub-job is of its parent's service
        ("cce", "cce-1"): "succeeded",
        ("rds", "rds-1"): "failed",
        ("ges-engine", "eng-1"): "succeeded",
        ("ges-v2", "ges-1"): "succeeded",
    }
    by_graph = {e["job_id"]: e["graph"] for e in events}
    assert (by_graph["eng-1"], by_graph["ges-1"], by_graph["vol-1"]) == ("movies", "graph-1", None)
    # Each simulator was asked about its own jobs only.
    seen = asked(made)
    assert seen["evs"] == {"vol-1"}
    assert seen["ecs"] <= {"srv-1", "srv-1a"}
    assert seen["cce"] == {"cce-1"}
    assert seen["rds"] == {"rds-1"}
    assert seen["ges"] <= {"movies", "eng-1", "ges-1", None}  # (a list names no job)


def test_plain_lines_name_each_job_by_its_service(tmp_path: Path) -> None:
    made = sims()
    jobs = tmp_path / "jobs.jsonl"
    with served(made) as urls:
        jobs.write_text(jsonl_text(lines_for(urls)), encoding="utf-8")
        result = invoke(["watch", *FAST, "--project-id", P, "--jobs", str(jobs)])
    assert result.exit_code == 1, result.output
    for shown in ("evs:vol-1", "ecs:srv-1", "cce:cce-1", "rds:rds-1", "no quota"):
        assert shown in result.stdout


def test_a_bad_line_is_exit_2_naming_it_before_any_request(tmp_path: Path) -> None:
    made = sims()
    with served(made) as urls:
        good = lines_for(urls)
        bad = [*good[:2], {"api": "ecs", "job_id": "x", "region": "mars-1"}, *good[2:]]
        from_pipe = invoke(["watch", "--project-id", P, "--jobs", "-"], jsonl_text(bad))
        missing = invoke(["watch", "--project-id", P, "--jobs", str(tmp_path / "nope.jsonl")])
        both = invoke(["watch", "--api", "evs", "--jobs", "-", "vol-1"], jsonl_text(good))
        graph = invoke(["watch", "--graph", "g", "--jobs", "-"], jsonl_text(good))
    assert from_pipe.exit_code == 2
    assert from_pipe.stderr.startswith("jobwatch: error: <stdin>:3: ")
    assert "mars-1" in from_pipe.stderr
    assert missing.exit_code == 2
    assert "cannot read it" in missing.stderr
    assert (both.exit_code, graph.exit_code) == (2, 2)
    assert "not both" in both.stderr
    assert all(not sim.requests for sim in made.values())  # nothing was sent


def test_the_options_fill_in_what_lines_leave_out(tmp_path: Path) -> None:
    made = sims()
    with served(made) as urls:
        lines = [{"job_id": "vol-1"}, {"api": "ecs", "job_id": "srv-1", "endpoint": urls["ecs"]}]
        args = ["watch", *FAST, "--api", "evs", "--endpoint", urls["evs"], "--project-id", P]
        result = invoke([*args, "--json", "--jobs", "-"], jsonl_text(lines))
    assert result.exit_code == 0, result.output
    assert asked(made)["evs"] == {"vol-1"}
    assert asked(made)["ecs"] <= {"srv-1", "srv-1a"}


def test_region_builds_the_endpoint_with_the_sdks_override() -> None:
    made = sims()
    with served(made) as urls:
        env = {"HUAWEICLOUD_SDK_REGION_ECS_CN_NORTH_4": urls["ecs"]}
        args = ["watch", *FAST, "--api", "ecs", "--project-id", P, "--json", "srv-1"]
        by_region = invoke([*args, "--region", "cn-north-4"], **env)
        # --region typed wins over an endpoint from the environment
        over_env = invoke([*args, "--region", "cn-north-4"], JOBWATCH_ENDPOINT=urls["evs"], **env)
        # --endpoint typed wins over a region (typed or from the environment)
        typed = invoke([*args, "--region", "mars-1", "--endpoint", urls["ecs"]])
        from_env = invoke([*args, "--endpoint", urls["ecs"]], JOBWATCH_REGION="mars-1")
        unknown = invoke([*args, "--region", "mars-1"])
        engine_args = ["--api", "ges-engine", "--graph", "g", "--region", "cn-north-4"]
        engine = invoke(["watch", *engine_args, "--project-id", P, "j"])
    for result in (by_region, over_env, typed, from_env):
        assert result.exit_code == 0, result.output
    assert not made["evs"].requests
    assert asked(made)["ecs"] <= {"srv-1", "srv-1a"}
    assert unknown.exit_code == 2
    assert "--region" in unknown.stderr
    assert "mars-1" in unknown.stderr
    assert engine.exit_code == 2
    assert "access address" in engine.stderr


def test_help_lists_every_service() -> None:
    result = invoke(["watch", "--help"])
    assert result.exit_code == 0
    for word in api_words():
        if not word.startswith("test-"):  # (test_kinds registers one at import)
            assert word in result.stdout
    assert "--jobs" in result.stdout
    assert "--region" in result.stdout


def test_the_json_schema_names_every_api_word() -> None:
    enum: list[str] = SCHEMA["$defs"]["api"]["enum"]
    builtin = [word for word in api_words() if not word.startswith("test-")]
    assert enum == builtin
