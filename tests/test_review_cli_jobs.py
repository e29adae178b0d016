"""A review of ``jobwatch watch --jobs FILE|-``, ``--region`` and ``--api``, as a
demanding user would test them: files saved on Windows (CRLF, a byte order mark),
repeated lines, a huge line, an empty pipe, secrets in lines, ``--state`` across
two runs on two endpoints, and ``--region`` with every api word.

Simulators stand for the endpoints, each on a loopback socket.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from subprocess import PIPE, Popen

import pytest
from click.testing import Result
from clijobs import FAST, child_env, clear_env, invoke, jsonl_text, lines_for, served, sims

from jobwatch._apis import api_words
from jobwatch._cli._jobsfile import MAX_LINE
from jobwatch._regions import endpoint_for
from jobwatch.sim import ManualClock, Simulator

P = "proj-review"
SECRET = "S3cr3tT0kenValue"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch)


def two_sims() -> dict[str, Simulator[ManualClock]]:
    return sims(P, ("evs", "cce"))


def finals(result: Result) -> dict[tuple[str, str], str]:
    events = [json.loads(line) for line in result.stdout.splitlines()]
    ends = [(e["api"], e["job_id"], e["state"]) for e in events if e.get("final")]
    assert len(ends) == len({(api, job) for api, job, _ in ends}), ends  # one final each
    return {(api, job): state for api, job, state in ends}


WATCH = ["watch", *FAST, "--json", "--project-id", P, "--jobs"]


# -- files as editors save them -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "newline"),
    [("utf-8", "\r\n"), ("utf-8-sig", "\n"), ("utf-8-sig", "\r\n"), ("utf-8", "\r")],
    ids=["crlf", "bom", "bom-crlf", "cr"],
)
def test_files_saved_by_any_editor_are_read(tmp_path: Path, encoding: str, newline: str) -> None:
    made = two_sims()
    jobs = tmp_path / "jobs.jsonl"
    with served(made) as urls:
        text = newline.join(json.dumps(line) for line in lines_for(urls)) + newline
        jobs.write_bytes(text.encode(encoding))
        result = invoke([*WATCH, str(jobs)])
        piped = invoke([*WATCH, "-"], stdin=text.encode(encoding).decode("utf-8"))
    for run in (result, piped):
        assert run.exit_code == 0, run.stderr
        assert finals(run) == {("evs", "vol-1"): "succeeded", ("cce", "cce-1"): "succeeded"}


def test_line_numbers_count_newlines_only(tmp_path: Path) -> None:
    # A line separator or a NEL inside a line is no line end for an editor.
    jobs = tmp_path / "jobs.jsonl"
    good = {"api": "evs", "job_id": "vol-1", "endpoint": "https://evs.example"}
    raw = json.dumps({"api": "evs", "job_id": "a_b_c", "endpoint": "https://evs.example"})
    bad = raw.replace("a_b_c", "a\u2028b\x85c")  # the characters as such, not escaped
    jobs.write_text(f"{json.dumps(good)}\n{bad}\n{{oops\n", encoding="utf-8")
    result = invoke([*WATCH, str(jobs)])
    assert result.exit_code == 2
    assert f"{jobs}:2: " in result.stderr
    assert "job_id" in result.stderr  # the line's real problem, not a JSON error


def test_repeated_lines_are_one_job_with_one_outcome(tmp_path: Path) -> None:
    made = two_sims()
    with served(made) as urls:
        lines = lines_for(urls)
        slash = {**lines[0], "endpoint": urls["evs"] + "/"}  # the same place
        text = jsonl_text([*lines, *lines, slash, lines[0]])
        result = invoke([*WATCH, "-"], stdin=text)
        moved = {**lines[0], "endpoint": urls["cce"]}
        clash = invoke([*WATCH, "-"], stdin=text + json.dumps(moved) + "\n")
    assert result.exit_code == 0, result.stderr
    assert finals(result) == {("evs", "vol-1"): "succeeded", ("cce", "cce-1"): "succeeded"}
    assert clash.exit_code == 2
    assert "<stdin>:7: job evs:vol-1 is on line 1" in clash.stderr


def test_a_huge_line_is_refused_naming_it_before_any_request(tmp_path: Path) -> None:
    made = two_sims()
    jobs = tmp_path / "jobs.jsonl"
    with served(made) as urls:
        good = jsonl_text(lines_for(urls))
        with jobs.open("w", encoding="utf-8") as file:
            file.write(good)
            file.write('{"api": "evs", "job_id": "' + "x" * (8 * MAX_LINE) + '"}\n')
        result = invoke([*WATCH, str(jobs)])
        assert all(not sim.requests for sim in made.values())  # nothing was sent
        exactly = tmp_path / "exactly.jsonl"
        pad = MAX_LINE - len(json.dumps(lines_for(urls)[0]))
        exactly.write_text(good + json.dumps(lines_for(urls)[0]) + " " * pad, encoding="utf-8")
        at_limit = invoke([*WATCH, str(exactly)])
    assert result.exit_code == 2
    assert f"{jobs}:3: the line is longer than {MAX_LINE} characters" in result.stderr
    assert at_limit.exit_code == 0, at_limit.stderr  # a line of MAX_LINE characters is read


@pytest.mark.parametrize("stdin", ["", "\n\n", "\ufeff", "   \r\n"])
def test_an_empty_pipe_is_a_usage_error(stdin: str) -> None:
    result = invoke([*WATCH, "-"], stdin=stdin)
    assert result.exit_code == 2
    assert "<stdin>: no jobs" in result.stderr


# -- secrets in lines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        f"https://ak:{SECRET}@evs.example",
        f"https://{SECRET}@evs.example",
        f"ftp://ak:{SECRET}@evs.example",
        f"https://ak:{SECRET}@",
        f"evs.example:{SECRET}@x",
    ],
)
def test_a_line_with_a_secret_in_its_endpoint_is_refused_and_not_shown(endpoint: str) -> None:
    line = json.dumps({"api": "evs", "job_id": "vol-1", "endpoint": endpoint})
    from_line = invoke([*WATCH, "-"], stdin=line + "\n")
    on_command_line = invoke(
        ["watch", "--project-id", P, "--endpoint", endpoint, "--jobs", "-"],
        stdin=json.dumps({"api": "evs", "job_id": "vol-1"}) + "\n",
    )
    direct = invoke(["watch", "--project-id", P, "--endpoint", endpoint, "--api", "evs", "v"])
    for result in (from_line, on_command_line, direct):
        assert result.exit_code == 2, result.output
        assert SECRET not in result.stdout
        assert SECRET not in result.stderr


# -- --state across two runs, jobs on two endpoints ----------------------------------------------


def test_state_resumes_jobs_of_two_endpoints_in_a_second_run(tmp_path: Path) -> None:
    made = {"evs": Simulator(clock=ManualClock()), "cce": Simulator(clock=ManualClock())}
    made["evs"].add_evs_job(P, "vol-1", [(0, "RUNNING"), (1, "SUCCESS")])
    made["evs"].add_evs_job(P, "vol-2", [(0, "RUNNING"), (20, "SUCCESS")])
    made["cce"].add_cce_job(P, "cce-1", [(0, "Running"), (20, "Success")])
    made["evs"].clock.set(10)  # vol-1 ends in the first run; vol-2 and cce-1 run on
    state, out1 = tmp_path / "state.jsonl", tmp_path / "1.out"
    with served(made) as urls:
        lines = [*lines_for(urls), {"api": "evs", "job_id": "vol-2", "endpoint": urls["evs"]}]
        text = jsonl_text(lines)
        args = [sys.executable, "-m", "jobwatch", *WATCH[:-1], "--state", str(state), "--jobs", "-"]
        with (
            out1.open("wb") as sink,
            Popen(  # noqa: S603
                args, stdin=PIPE, stdout=sink, stderr=PIPE, env=child_env()
            ) as first,
        ):
            assert first.stdin is not None
            first.stdin.write(text.encode())
            first.stdin.close()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                shown = [json.loads(x) for x in out1.read_text().splitlines() if x.strip()]
                if len(shown) >= 3:  # vol-1 succeeded; vol-2 and cce-1 running
                    break
                time.sleep(0.05)
            first.send_signal(signal.SIGTERM)
            first.wait(60)
        assert first.returncode == 143
        shown = [json.loads(x) for x in out1.read_text().splitlines() if x.strip()]
        assert {(e["job_id"], e["state"]) for e in shown if e.get("event") == "transition"} == {
            ("vol-1", "succeeded"),
            ("vol-2", "running"),
            ("cce-1", "running"),
        }
        before = {name: len(sim.requests) for name, sim in made.items()}
        for sim in made.values():
            sim.clock.set(30)
        second = invoke([*WATCH[:-1], "--state", str(state), "--jobs", "-"], stdin=text)
    assert second.exit_code == 0, second.stderr
    events = [json.loads(x) for x in second.stdout.splitlines()]
    moves = [(e["job_id"], e["previous"], e["state"]) for e in events if e["event"] == "transition"]
    assert sorted(moves) == [("cce-1", "running", "succeeded"), ("vol-2", "running", "succeeded")]
    # Each job asked on its own endpoint only; the ended one not again.
    asked = {name: {r.job for r in sim.requests[before[name] :]} for name, sim in made.items()}
    assert asked == {"evs": {"vol-2"}, "cce": {"cce-1"}}


# -- --region with every api word ----------------------------------------------------------------


@pytest.mark.parametrize("word", [w for w in api_words() if not w.startswith("test-")])
def test_region_with_every_api_word(word: str) -> None:
    graph = ["--graph", "g"] if word.startswith("ges") else []
    args = ["watch", "--project-id", P, "--api", word, *graph, "--region", "mars-7", "j"]
    unknown = invoke(args)
    assert unknown.exit_code == 2
    # (an engine job is at its graph's address: no region has it)
    assert ("access address" if word == "ges-engine" else "mars-7") in unknown.stderr
    line = {"api": word, "job_id": "j", "region": "mars-7", **({"graph": "g"} if graph else {})}
    from_file = invoke([*WATCH, "-"], stdin=json.dumps(line) + "\n")
    assert from_file.exit_code == 2
    assert from_file.stderr.startswith("jobwatch: error: <stdin>:1: ")
    assert "Traceback" not in from_file.stderr


@pytest.mark.parametrize(
    "junk",
    [
        " ",
        "evs.example",
        f"https://ak:{SECRET}@evs.example",
        f"ak:{SECRET}@evs.example",
        "https://evs.example/v1",
        "https://evs.example?x=1",
        "ftp://evs.example",
        f"ftp://ak:{SECRET}@evs.example,https://evs.example",
    ],
)
def test_a_junk_region_override_is_a_clear_error_before_any_request(
    monkeypatch: pytest.MonkeyPatch, junk: str
) -> None:
    variable = "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4"
    monkeypatch.setenv(variable, junk)
    with pytest.raises(ValueError, match=variable) as caught:
        endpoint_for("evs", "cn-north-4")
    assert SECRET not in str(caught.value)
    assert len(str(caught.value)) < 600
    result = invoke(["watch", "--project-id", P, "--api", "evs", "--region", "cn-north-4", "v"])
    assert result.exit_code == 2
    assert variable in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_region_overrides_the_sdk_takes_as_it_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = "HUAWEICLOUD_SDK_REGION_EVS_CN_NORTH_4"
    monkeypatch.setenv(variable, "")  # empty: as unset
    assert endpoint_for("evs", "cn-north-4") == "https://evs.cn-north-4.myhuaweicloud.com"
    monkeypatch.setenv(variable, " https://a.example/ , https://b.example")  # the first
    assert endpoint_for("evs", "cn-north-4") == "https://a.example"
    assert endpoint_for("ims-cloudimages", "cn-north-4") == endpoint_for("ims", "cn-north-4")
