"""``jobwatch watch --state FILE``: a run killed with SIGKILL and started again goes on.

Each test runs the real CLI as a child process against the simulator on a socket,
kills it at a random point, runs it again with the same ``--state`` file, and checks
the two outputs together: every job and sub-job ends with exactly one final outcome,
and nothing the first run wrote is written again (but, as documented, possibly the
one line being written at the instant of the kill).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from jobwatch.sim import Simulator, SubJob, serve

P = "proj"
JOBS = [f"vol-{i}" for i in range(6)]


def scenario() -> Simulator[Any]:
    sim = Simulator()
    for i, job in enumerate(JOBS):
        subs = []
        if i == 0:
            subs = [
                SubJob("vol-0-a", [(0, "RUNNING"), (2.4, "SUCCESS")], appear_at=1.5),
                SubJob("vol-0-b", [(0, "RUNNING"), (3.0, "FAIL")], appear_at=1.8),
            ]
        final = "FAIL" if i == 3 else "SUCCESS"
        # the child process takes a moment to start: the first change comes after 1.2 s
        end = 3.5 if i == 0 else 2.2 + 0.3 * i  # a batch ends after its sub-jobs
        timeline = [(0, "INIT"), (1.2 + 0.15 * i, "RUNNING"), (end, final)]
        sim.add_evs_job(P, job, timeline, sub_jobs=subs, job_type="batchCreateVolume")
    return sim


def start(url: str, state: Path, out: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "jobwatch", "watch", "--api", "evs", "--endpoint", url,
        "--project-id", P, "--json", "--interval", "0.05", "--max-interval", "0.2",
        "--state", str(state), *JOBS,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWATCH_", "HUAWEICLOUD_"))}
    with out.open("ab") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env=env)  # noqa: S603


def lines(out: Path) -> list[dict[str, Any]]:
    """The event lines written so far (not the summary line that ends a run)."""
    text = out.read_text(encoding="utf-8")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    every = [json.loads(line) for line in complete.splitlines() if line]
    return [line for line in every if line["event"] != "summary"]


def key(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event["event"], event["job_id"], event.get("previous"), event.get("state"))


@pytest.mark.parametrize("seed", range(4))
def test_killed_and_restarted_with_the_same_state_file(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    state, first_out, second_out = tmp_path / "state.json", tmp_path / "1.out", tmp_path / "2.out"
    with serve(scenario()) as url:
        first = start(url, state, first_out)
        deadline = time.monotonic() + 20
        kill_after = rng.randint(2, 16)  # events written before the kill
        while len(lines(first_out)) < kill_after and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        assert first.poll() is None, "the first run ended before the kill"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.stderr is not None
        first.stderr.close()
        assert state.exists()

        second = start(url, state, second_out)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1, err  # vol-3 and vol-0-b fail
        assert b"Traceback" not in err

        # once everything is written, a third run has nothing left to say
        third_out = tmp_path / "3.out"
        third = start(url, state, third_out)
        third.communicate(timeout=30)
        assert third.returncode == 1
        assert lines(third_out) == []

    before, after = lines(first_out), lines(second_out)
    repeated = {key(e) for e in before} & {key(e) for e in after}
    assert not repeated or repeated == {key(before[-1])}  # at most the line of the kill
    every = before + [e for e in after if key(e) not in repeated]
    finals = Counter(
        e["job_id"]
        for e in every
        if e["event"] == "gave_up" or e["state"] in ("succeeded", "failed")
    )
    assert set(finals) == {*JOBS, "vol-0-a", "vol-0-b"}
    assert set(finals.values()) == {1}
    failed = {e["job_id"] for e in every if e["event"] == "transition" and e["state"] == "failed"}
    assert failed == {"vol-3", "vol-0-b"}
    for job in JOBS:  # per job, transitions chain: each previous is the state before
        chain = [e for e in every if e["job_id"] == job and e["event"] == "transition"]
        assert chain[0]["previous"] is None
        for a, b in itertools.pairwise(chain):
            assert b["previous"] == a["state"]


def test_a_bad_state_file_is_a_usage_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    with serve(scenario()) as url:
        proc = start(url, state, tmp_path / "out")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert b"is not a jobwatch state file" in err
    assert len(err.strip().splitlines()) == 1
