"""``jobwatch watch --jobs FILE`` and ``--region``: mixed services, each on its endpoint.

Every simulator stands for one service's endpoint and is served on a loopback
socket; each checks that it was asked about its own jobs only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from subprocess import PIPE, Popen

import pytest
from clijobs import FAST, child_env, clear_env, invoke, jsonl_text, lines_for, served, sims
from schema_subset import validate

from jobwatch._apis import api_words
from jobwatch._cli import _jsonl as jsonl
from jobwatch.sim import ManualClock, Simulator

P = "proj-jobs"
SCHEMA = jsonl.schema()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def asked(made: Mapping[str, Simulator[ManualClock]]) -> dict[str, set[str | None]]:
    return {name: {request.job for request in sim.requests} for name, sim in made.items()}


def test_jobs_from_a_pipe_one_run_every_service_on_its_own_endpoint(tmp_path: Path) -> None:
    made = sims(P)
    with served(made) as urls:
        argv = [sys.executable, "-W", "error", "-m", "jobwatch", "watch", "--json"]
        argv += [*FAST, "--project-id", P, "--jobs", "-"]
        with Popen(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE, env=child_env()) as proc:  # noqa: S603
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
    made = sims(P)
    jobs = tmp_path / "jobs.jsonl"
    with served(made) as urls:
        jobs.write_text(jsonl_text(lines_for(urls)), encoding="utf-8")
        result = invoke(["watch", *FAST, "--project-id", P, "--jobs", str(jobs)])
    assert result.exit_code == 1, result.output
    for shown in ("evs:vol-1", "ecs:srv-1", "cce:cce-1", "rds:rds-1", "no quota"):
        assert shown in result.stdout


def test_a_bad_line_is_exit_2_naming_it_before_any_request(tmp_path: Path) -> None:
    made = sims(P)
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
    made = sims(P)
    with served(made) as urls:
        lines = [{"job_id": "vol-1"}, {"api": "ecs", "job_id": "srv-1", "endpoint": urls["ecs"]}]
        args = ["watch", *FAST, "--api", "evs", "--endpoint", urls["evs"], "--project-id", P]
        result = invoke([*args, "--json", "--jobs", "-"], jsonl_text(lines))
    assert result.exit_code == 0, result.output
    assert asked(made)["evs"] == {"vol-1"}
    assert asked(made)["ecs"] <= {"srv-1", "srv-1a"}


def test_region_builds_the_endpoint_with_the_sdks_override() -> None:
    made = sims(P)
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
        if not word.startswith("test-"):  # (test_kinds registers a kind of its own)
            assert word in result.stdout
    assert "--jobs" in result.stdout
    assert "--region" in result.stdout


def test_the_json_schema_names_every_api_word() -> None:
    enum: list[str] = SCHEMA["$defs"]["api"]["enum"]
    builtin = [word for word in api_words() if not word.startswith("test-")]
    assert enum == builtin
