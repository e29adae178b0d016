"""The examples in examples/ run as scripts, finish quickly and print what they say.

All of them are started at once (each in its own interpreter, with ``-W error``),
then each test waits for its own and checks its exit status, its output and that
it wrote nothing to stderr (an ignored exception or warning shows up there even
when the exit status is 0).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
NEW_EXAMPLES = [
    "wait_many_evs",
    "stream_events",
    "ges_import",
    "asyncio_orchestrator",
    "trio_program",
]
TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    """How an example's process ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


class Runs:
    """The examples' processes, started together; ``get`` waits for one."""

    def __init__(self) -> None:
        self._procs = {
            name: subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
                [sys.executable, "-W", "error", str(EXAMPLES / f"{name}.py")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in NEW_EXAMPLES
        }
        self._done: dict[str, Run] = {}

    def get(self, name: str) -> Run:
        if name not in self._done:
            proc = self._procs[name]
            try:
                stdout, stderr = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                pytest.fail(f"{name}.py did not finish within {TIMEOUT} s:\n{stdout}\n{stderr}")
            self._done[name] = Run(proc.returncode, stdout, stderr)
        return self._done[name]

    def close(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    started = Runs()
    yield started
    started.close()


def finished(runs: Runs, name: str) -> Run:
    """The run of ``name``, checked for a clean exit."""
    run = runs.get(name)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    return run


def test_wait_many_evs(runs: Runs) -> None:
    run = finished(runs, "wait_many_evs")
    lines = run.lines
    assert lines[0] == "created 400 EVS jobs, plus 2 job IDs that do not exist"
    assert [line for line in lines if line.endswith("finished")] == [
        f"  {n}/402 finished" for n in (100, 200, 300, 400)
    ]
    failures = [
        line for line in lines if re.fullmatch(r"  evs:vol-job-\d{4}  EVS\.\d{4}  .+", line)
    ]
    assert len(failures) == 22
    assert "  evs:vol-job-0027  EVS.2024  insufficient capacity" in failures
    assert "failed (22):" in lines
    gave_up = lines.index("gave up (2):")
    assert lines[gave_up + 1 : gave_up + 3] == [
        "  evs:lost-job-1  not_found",
        "  evs:lost-job-2  not_found",
    ]
    assert "402 jobs: 378 succeeded, 22 failed, 2 gave up" in lines
    stats = re.fullmatch(r"(\d+) polls, (\d+) requests, at most 8 in flight, [\d.]+ s", lines[-1])
    assert stats is not None
    assert int(stats[1]) >= 402  # every job polled at least once
    assert stats[1] == stats[2]  # one request per poll: nothing failed or was retried


def test_stream_events(runs: Runs) -> None:
    run = finished(runs, "stream_events")
    stored = [line for line in run.lines if line.startswith("[stored] ")]
    summary = re.fullmatch(
        r"consumer stored (\d+) events; jobs: 10 succeeded, 1 failed; "
        r"sub-jobs: 2 succeeded, 1 failed",
        run.lines[-2],
    )
    assert summary is not None, run.stdout
    assert int(summary[1]) == len(stored)
    for n in range(10):
        mine = [line for line in stored if line.startswith(f"[stored] evs:vol-{n:02d}: ")]
        assert mine[0].endswith(": - -> pending")
        assert mine[-1].endswith("-> failed" if n == 7 else "-> succeeded")
    assert stored.count("[stored] evs:batch-1-c (in evs:batch-1): running -> failed") == 1
    assert "[stored] evs:batch-1: running -> succeeded  (failed sub-jobs: evs:batch-1-c)" in stored
    backpressure = re.fullmatch(
        r"the stream held at most (\d+) events \(its buffer: 4\); "
        r"the producer waited for room (\d+) times; the watcher polled (\d+) times",
        run.lines[-1],
    )
    assert backpressure is not None, run.stdout
    assert int(backpressure[1]) <= 4
    assert int(backpressure[2]) >= 1  # the slow consumer made the producer wait


def test_ges_import(runs: Runs) -> None:
    run = finished(runs, "ges_import")
    bucket = "obs://example/movies"
    assert run.lines[:9] == [
        "ges-v2:movies/import-0001: succeeded (GES status 'success'), "
        "2024-01-01 00:00:00 to 00:00:01",
        "  kind      status          total     failed  succeeded  path",
        f"  schema    success             -          -          -  {bucket}/schema.xml",
        f"  edges     success         80000          0      80000  {bucket}/friends.csv",
        f"  edges     partFailed      50000         37      49963  {bucket}/ratings.csv",
        f"  vertices  success        120000          0     120000  {bucket}/users.csv",
        f"  vertices  success          9742          0       9742  {bucket}/movies.csv",
        "GES says success, but 1 of 5 files did not import completely:",
        f"  {bucket}/ratings.csv: 37 lines with an unknown label (log: {bucket}/logs/ratings.log)",
    ]
    assert run.lines[9] == (
        "ges-v2:movies/import-0002: JobFailed: job ges-v2:movies/import-0002 ended failed: "
        "schema file not found"
    )
    assert run.lines[-2:] == [
        "1 of 1 files did not import completely:",
        f"  {bucket}/schema-v2.xml: file not found",
    ]


def test_asyncio_orchestrator(runs: Runs) -> None:
    run = finished(runs, "asyncio_orchestrator")
    lines = run.lines
    assert re.fullmatch(r"simulator listening on http://127\.0\.0\.1:\d+", lines[0])
    assert lines[1].startswith("the watcher runs 9 asyncio tasks: jobwatch scheduler, ")
    assert [line for line in lines if line.startswith("[submit]")] == [
        f"[submit] wave {n}: 20 jobs" for n in (1, 2, 3)
    ]
    assert sorted(line for line in lines if line.startswith("[record]")) == [
        f"[record] evs:wave{n}-job07 failed: insufficient capacity" for n in (1, 2, 3)
    ]
    assert any(line.startswith("[heartbeat] ") for line in lines)
    assert lines[-1] == "60 jobs: 57 succeeded, 3 failed; 60 rows written"


def test_trio_program(runs: Runs) -> None:
    run = finished(runs, "trio_program")
    lines = run.lines
    assert re.fullmatch(r"simulator listening on http://127\.0\.0\.1:\d+", lines[0])
    assert re.fullmatch(r"\[progress\] \d+ open", lines[1])
    assert [line for line in lines if line.startswith("[done]")] == [
        "[done] evs:vol-3 failed: insufficient capacity"
    ]
    assert lines[-2] == "50 jobs: 49 succeeded, 1 failed"
    engine = re.fullmatch(
        r"engine jobs: (\d+) polls, (\d+) list requests \((\d+) saved by coalescing\); "
        r"EVS jobs: (\d+) polls",
        lines[-1],
    )
    assert engine is not None, run.stdout
    polls, lists, saved = int(engine[1]), int(engine[2]), int(engine[3])
    assert polls >= 40  # every engine job polled at least once
    assert lists < 40  # fewer list requests than jobs: one per tick, not one per job
    assert saved == polls - lists


@pytest.mark.parametrize("name", NEW_EXAMPLES)
def test_docstring_says_what_it_shows_and_how_to_reach_the_cloud(name: str) -> None:
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    assert doc is not None
    assert f"python examples/{name}.py" in doc
    assert "myhuaweicloud.com" in doc
    assert "AKSKAuth.from_env()" in doc
    assert "TokenAuth(" in doc
