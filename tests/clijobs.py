"""Shared by the ``jobwatch watch --jobs`` tests (test_cli_jobs, test_review_cli_jobs).

Simulators stand for the services' endpoints, each served on a loopback socket;
``lines_for`` writes the ``--jobs`` lines naming their jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

import pytest
from click.testing import CliRunner, Result

from jobwatch._cli._app import cli
from jobwatch.sim import ManualClock, Simulator, SubJob, serve

FAST = ("--interval", "0.05", "--max-interval", "0.2", "--timeout", "60")
ENV_NAMES = (
    "JOBWATCH_TOKEN",
    "JOBWATCH_ENDPOINT",
    "JOBWATCH_REGION",
    "HUAWEICLOUD_SDK_PROJECT_ID",
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
)
SERVICES = ("evs", "ecs", "cce", "rds", "ges")


def _left_out(name: str) -> bool:
    return name in ENV_NAMES or name.startswith("HUAWEICLOUD_SDK_REGION")


def clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset what would choose a token, an endpoint, a region or a project for a run."""
    for name in list(os.environ):
        if _left_out(name):
            monkeypatch.delenv(name)


def child_env() -> dict[str, str]:
    """This process's environment without what ``clear_env`` unsets, for a child process."""
    return {name: value for name, value in os.environ.items() if not _left_out(name)}


def sims(project: str, services: Sequence[str] = SERVICES) -> dict[str, Simulator[ManualClock]]:
    """A simulator for each service, every timeline over (one poll a job)."""
    made = {name: Simulator(clock=ManualClock()) for name in services}
    if "evs" in made:
        made["evs"].add_evs_job(project, "vol-1", [(0, "RUNNING"), (1, "SUCCESS")])
    if "ecs" in made:
        made["ecs"].add_evs_job(
            project,
            "srv-1",
            [(0, "RUNNING"), (1, "SUCCESS")],
            service="ecs",
            sub_jobs=[SubJob("srv-1a", [(0, "SUCCESS")])],
        )
    if "cce" in made:
        made["cce"].add_cce_job(project, "cce-1", [(0, "Running"), (1, "Success")])
    if "rds" in made:
        timeline = [(0, "Running"), (1, "Failed")]
        made["rds"].add_rds_job(project, "rds-1", timeline, fail_reason="no quota")
    if "ges" in made:
        made["ges"].add_engine_job(project, "movies", "eng-1", [(0, "running"), (1, "complete")])
        made["ges"].add_ges_job(project, "graph-1", "ges-1", [(0, "running"), (1, "success")])
    for sim in made.values():
        sim.clock.set(10)
    return made


@contextmanager
def served(made: Mapping[str, Simulator[ManualClock]]) -> Iterator[dict[str, str]]:
    """Each simulator on a loopback socket: its URL by its name."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(serve(sim)) for name, sim in made.items()}


def lines_for(urls: Mapping[str, str]) -> list[dict[str, str]]:
    """The ``--jobs`` lines for the jobs ``sims`` made, of the services served at ``urls``."""
    lines = {
        "evs": [{"api": "evs", "job_id": "vol-1"}],
        "ecs": [{"api": "ecs", "job_id": "srv-1"}],
        "cce": [{"api": "cce", "job_id": "cce-1"}],
        "rds": [{"api": "rds", "job_id": "rds-1"}],
        "ges": [
            {"api": "ges-engine", "graph": "movies", "job_id": "eng-1"},
            {"api": "ges-v2", "graph": "graph-1", "job_id": "ges-1"},
        ],
    }
    return [{**line, "endpoint": url} for name, url in urls.items() for line in lines[name]]


def jsonl_text(lines: Sequence[Mapping[str, str]]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def invoke(args: Sequence[str], stdin: str | None = None, **env: str) -> Result:
    """Run the CLI in process; no run may show a traceback."""
    result = CliRunner().invoke(cli, list(args), input=stdin, env=env, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result
