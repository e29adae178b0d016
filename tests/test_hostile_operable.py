"""Hostile review of the new operable surface: wait_for, --state, --json, logs, metrics.

Each test tries to break one documented promise (README: Quickstart, CLI reference,
JSON Lines output, Observability) with a hostile server, kills, concurrent runs or
many jobs.  A raw HTTP server stands in for EVS where the simulator cannot send what
a hostile server may (control characters, reflected secrets).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from loopclock import LoopClock, virtual_backend

import jobwatch
from jobwatch import Client, EvsJob, GaveUp, JobFailed, PollPolicy, RetryPolicy, wait_for
from jobwatch.sim import ManualClock, Simulator, serve

P = "proj"
TOKEN = "tok-SECRET-hostile-0123456789abcdef"
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWATCH_", "HUAWEICLOUD_"))}
for _name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES"):
    ENV.pop(_name, None)
FAST = ("--interval", "0.05", "--max-interval", "0.2")


# -- helpers -----------------------------------------------------------------------------------


def evs_body(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "entities": {},
        "job_id": job_id,
        "job_type": "createVolume",
        "begin_time": "2024-01-01T00:00:00.000Z",
        "end_time": "2024-01-01T00:00:01.000Z" if status in ("SUCCESS", "FAIL") else None,
        "error_code": None,
        "fail_reason": None,
        **extra,
    }


@contextmanager
def raw_evs(
    answer: Callable[[str, Mapping[str, str]], tuple[int, bytes]],
) -> Iterator[tuple[str, list[str]]]:
    """A bare EVS: ``answer(job_id, headers)`` gives status and body; yields (url, paths asked)."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            job = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            status, data = answer(job, dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def argv(url: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "jobwatch", "watch", "--api", "evs", "--endpoint", url,
        "--project-id", P, "--token", TOKEN, *FAST, *args,
    ]  # fmt: skip


def run_cli(url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        argv(url, *args), capture_output=True, text=True, env=ENV, timeout=timeout, check=False
    )


def no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text


# -- hostile strings from the server ------------------------------------------------------------

HOSTILE_REASON = (
    "quota [red]exceeded[/] [/x] [reverse]bad \x1b]0;pwned\x07\x1b[2J"
    "\r\n[   0.10s] evs:vol-9: running -> succeeded (SUCCESS)"
)


def test_plain_output_is_one_line_per_event_whatever_the_fail_reason(tmp_path: Path) -> None:
    """Off a terminal: 'one line per event'.  A fail reason with CR/LF must not forge lines,
    nor carry terminal escape sequences (OSC: set the window title) to the terminal."""
    body = json.dumps(evs_body("bad-1", "FAIL", fail_reason=HOSTILE_REASON)).encode()
    with raw_evs(lambda job, headers: (200, body)) as (url, _):
        result = run_cli(url, "bad-1")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    events = out.split("\n\n", 1)[0].splitlines()
    assert len(events) == 1, events  # forged: '[   0.10s] evs:vol-9: running -> succeeded'
    assert "\x1b" not in out, repr(out)
    assert "\x07" not in out, repr(out)


def test_json_lines_carry_hostile_strings_exactly(tmp_path: Path) -> None:
    body = json.dumps(
        evs_body("bad-1", "FAIL", fail_reason=HOSTILE_REASON, error_code="[b]E\u2028\x00")
    ).encode()
    with raw_evs(lambda job, headers: (200, body)) as (url, _):
        result = run_cli(url, "--json", "bad-1")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == ""
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["event"] for r in records] == ["transition", "summary"]
    assert records[0]["fail_reason"] == HOSTILE_REASON
    assert records[0]["error_code"] == "[b]E\u2028\x00"
    from schema_subset import validate

    from jobwatch._cli import _jsonl

    for record in records:
        validate(record, _jsonl.schema())


def test_a_reflected_token_is_not_written_to_the_state_file(tmp_path: Path) -> None:
    """A server that echoes the token it got (X-Auth-Token) in its fail reason: stdout and
    stderr redact it, but the --state journal stores it in clear (detail, raw lines)."""

    def answer(job: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        seen = headers.get("X-Auth-Token", "")
        return 200, json.dumps(evs_body(job, "FAIL", fail_reason=f"token {seen} refused")).encode()

    state = tmp_path / "s.jsonl"
    with raw_evs(answer) as (url, _):
        result = run_cli(url, "--json", "--state", str(state), "bad-1")
    assert result.returncode == 1, result.stderr
    no_secret(result.stdout, result.stderr)
    no_secret(state.read_text(encoding="utf-8"))


# -- the --state journal ---------------------------------------------------------------------------


def state_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_two_runs_on_one_state_file_lose_nothing_or_the_second_is_refused(
    tmp_path: Path,
) -> None:
    """Two overlapping runs (cron) on one FILE.  The second compacts FILE with os.replace at
    start: the first keeps appending to the old, unlinked inode, so every event it shows
    afterwards is lost from FILE.  Either FILE is locked (the second run a usage error) or
    nothing shown is lost."""
    sim = Simulator()
    sim.add_evs_job(P, "a", [(0, "RUNNING"), (1.5, "SUCCESS")])
    sim.add_evs_job(P, "b", [(0, "RUNNING"), (2.0, "SUCCESS")])
    state = tmp_path / "state.jsonl"
    base = [*FAST, "--json", "--state", str(state), "a", "b"]
    with serve(sim) as url:
        first = subprocess.Popen(  # noqa: S603
            argv(url, *base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
        )
        time.sleep(0.8)
        second = subprocess.Popen(  # noqa: S603
            argv(url, *base), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
        )
        time.sleep(0.6)
        if second.poll() is None:
            second.kill()  # killed before a or b ended: it journaled no final
        second.communicate(timeout=10)
        out, err = first.communicate(timeout=20)
        assert first.returncode == 0, err
        if second.returncode == 2:
            return  # refused: fine
        shown = [json.loads(line) for line in out.splitlines()]
        finals = {e["job_id"] for e in shown if e.get("final")}
        assert finals == {"a", "b"}
        journaled = {r["ref"]["job_id"] for r in state_lines(state)[1:] if r.get("final")}
        assert journaled == {"a", "b"}, "the first run's finals were shown and lost from FILE"


def test_a_last_line_cut_inside_a_multibyte_character_is_a_torn_line(tmp_path: Path) -> None:
    """Lines are appended with ensure_ascii=False: a line cut short by a kill/power cut can end
    in the middle of a UTF-8 sequence.  That is the documented torn last line (a warning),
    not 'cannot read --state: not UTF-8' (a usage error)."""
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    sim.clock.set(5)
    state = tmp_path / "state.jsonl"
    header = {"jobwatch_state": 2, "jobs": [{"api": "evs", "job_id": "a"}]}
    line = json.dumps(
        {"ref": {"api": "evs", "job_id": "a"}, "state": "running", "raw_status": "配额"},
        ensure_ascii=False,
    ).encode()
    cut = line[: line.index("配".encode()) + 1]
    state.write_bytes(json.dumps(header).encode() + b"\n" + cut)
    with serve(sim) as url:
        result = run_cli(url, "--json", "--state", str(state), "a")
    assert result.returncode == 0, result.stderr
    assert "cut short" in result.stderr


def test_a_job_named_twice_is_bound_once(tmp_path: Path) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    sim.clock.set(5)
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        first = run_cli(url, "--json", "--state", str(state), "a", "a")
        assert first.returncode == 0, first.stderr
        header = state_lines(state)[0]
        assert header["jobs"] == [{"api": "evs", "job_id": "a"}]
        second = run_cli(url, "--json", "--state", str(state), "a")
        assert second.returncode == 0, second.stderr
        assert "resumed 1 jobs (1 done)" in second.stderr


def test_sigterm_right_after_start_flushes_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM at random early points, also while compaction or the first requests run."""
    sim = Simulator()
    for i in range(50):
        sim.add_evs_job(P, f"v{i}", [(0, "RUNNING"), (0.3 + i * 0.01, "SUCCESS")])
    jobs = [f"v{i}" for i in range(50)]
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        for delay in (0.6, 0.9, 1.2):
            proc = subprocess.Popen(  # noqa: S603
                argv(url, "--json", "--state", str(state), *jobs),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
            )  # fmt: skip
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
            assert "Traceback" not in err
            assert proc.returncode in (0, 143, -signal.SIGTERM), err
            for line in out.splitlines():
                json.loads(line)
            if proc.returncode == 143:
                assert json.loads(out.splitlines()[-1])["event"] == "summary"
        final = run_cli(url, "--json", "--state", str(state), *jobs)
        assert final.returncode == 0, final.stderr


def test_a_reflected_token_is_not_in_stdout_stderr_or_logs(tmp_path: Path) -> None:
    """The same, without --state: stdout, stderr, debug logs (this part holds)."""

    def answer(job: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        seen = headers.get("X-Auth-Token", "")
        reason = f'token {seen} refused\\{seen}"{seen}'
        return 200, json.dumps(evs_body(job, "FAIL", fail_reason=reason, error_code=seen)).encode()

    with raw_evs(answer) as (url, _):
        for extra in (["--json"], [], ["--log-level", "debug"], ["--json", "-v"]):
            result = run_cli(url, *extra, "bad-1")
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr
            no_secret(result.stdout, result.stderr)
            if "--json" in extra:
                for line in result.stdout.splitlines():
                    json.loads(line)


def test_the_live_table_on_a_terminal_carries_no_escape_from_the_server() -> None:
    """On a (pseudo) terminal: the live table.  The server's OSC sequence (window title)
    and BEL must not reach the terminal; markup is shown as text."""
    import pty

    body = json.dumps(evs_body("bad-1", "FAIL", fail_reason=HOSTILE_REASON)).encode()
    with raw_evs(lambda job, headers: (200, body)) as (url, _):
        master, slave = pty.openpty()
        env = {**ENV, "COLUMNS": "120", "LINES": "30"}
        proc = subprocess.Popen(  # noqa: S603
            argv(url, "bad-1"), stdout=slave, stderr=subprocess.DEVNULL, env=env
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(20)
        os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 1
    assert "[red]exceeded[/]" in out  # as text
    assert "\x1b]0;pwned" not in out, repr(out[-400:])
    assert "\x07" not in out, repr(out[-400:])


def test_metrics_are_served_while_the_run_lasts_and_hold_no_secret(tmp_path: Path) -> None:
    sim = Simulator()
    for i in range(20):
        sim.add_evs_job(P, f"v{i}", [(0, "RUNNING"), (2.0, "SUCCESS")])
    with serve(sim) as url:
        proc = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--metrics-port", "0", *[f"v{i}" for i in range(20)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("jobwatch: metrics on http://127.0.0.1:"), line
        metrics_url = line.split(" on ", 1)[1].strip()
        scrapes: list[str] = []
        deadline = time.monotonic() + 1.5
        while len(scrapes) < 5 and time.monotonic() < deadline:
            with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310
                text = response.read().decode()
            if 'watcher="watch"' in text:  # the watcher is there (not yet at the very start)
                scrapes.append(text)
            time.sleep(0.1)
        assert len(scrapes) == 5
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    for text in scrapes:
        no_secret(text)
        assert 'watcher="watch"' in text
        assert 'client="watch"' in text

    def value(text: str, name: str) -> float:
        for row in text.splitlines():
            if row.startswith(name + "{"):
                return float(row.rsplit(" ", 1)[1])
        raise AssertionError(name)

    polls = [value(t, "jobwatch_polls_total") for t in scrapes]
    assert polls == sorted(polls)
    assert value(scrapes[0], "jobwatch_jobs_watched_total") == 20


def test_a_metrics_port_in_use_is_a_usage_error_before_any_request_or_write(
    tmp_path: Path,
) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    state = tmp_path / "state.jsonl"
    try:
        with raw_evs(lambda job, headers: (200, json.dumps(evs_body(job, "SUCCESS")).encode())) as (
            url,
            asked,
        ):
            result = run_cli(url, "--metrics-port", str(port), "--state", str(state), "a")
    finally:
        holder.close()
    assert result.returncode == 2, result.stderr
    assert asked == []
    assert result.stderr.startswith("jobwatch: error: --metrics-port"), result.stderr
    assert not state.exists(), "a usage error left a --state FILE behind"


HEADER_A = '{"jobwatch_state": 2, "jobs": [{"api": "evs", "job_id": "a"}]}\n'


@pytest.mark.parametrize(
    "text",
    [
        HEADER_A + '{"ref": {"api": "evs", "job_id": 5}}\n',
        HEADER_A + '{"ref": {"api": "evs"}}\n',
        HEADER_A + '{"ref": {"api": "evs", "job_id": "a"}, "state": "bogus"}\n',
        HEADER_A + '{"ref": {"api": "evs", "job_id": "a"}, "state": 3}\n',
        HEADER_A + '{"ref": {"api": "evs", "job_id": "a"}, "parent": 7}\n',
        HEADER_A
        + '{"ref": {"api": "evs", "job_id": "a"}, "parent": {"api": "evs", "job_id": "a"}}\n',
        HEADER_A + '{"ref": {"api": "evs", "job_id": "a"}, "final": true, "detail": 7}\n',
        HEADER_A + '{"ref": {"api": "ges-v2", "job_id": "a"}}\n',
        HEADER_A + "[]\n",
        HEADER_A + "1e999999\n",
        '{"jobwatch_state": 2, "jobs": [{"api": "evs", "job_id": "a/../b"}]}\n',
        '{"jobwatch_state": 2, "jobs": [5]}\n',
        '{"jobwatch_state": 2, "jobs": {"api": "evs"}}\n',
        '{"version": 1, "token": {"jobs": [{"ref": 1}]}, "done": []}',
        '{"version": 1, "token": {"jobs": []}, '
        '"done": [{"ref": {"api": "evs", "job_id": "a"}, "parent": 3}]}',
        '{"version": 1, "token": 5, "done": 5}',
        '{"version": 1, "token": {"jobs": [{"ref": {"api": "evs", "job_id": "a"}}]}, "done": []}',
        "[" * 100_000 + "\n",
    ],
)
def test_a_hostile_state_file_is_a_usage_error_or_read(tmp_path: Path, text: str) -> None:
    """Any FILE that does not read is a usage error (2) before any request; never a bug (4)."""
    from click.testing import CliRunner

    from jobwatch._cli._app import cli

    state = tmp_path / "state.jsonl"
    state.write_text(text, encoding="utf-8")
    with raw_evs(lambda job, headers: (200, json.dumps(evs_body(job, "SUCCESS")).encode())) as (
        url,
        asked,
    ):
        result = CliRunner().invoke(
            cli, argv(url, "--json", "--state", str(state), "a")[3:], catch_exceptions=False
        )
    assert "Traceback" not in result.stderr
    assert result.exit_code in (0, 2), result.stderr
    if result.exit_code == 2:
        assert asked == []
        assert result.stderr.startswith("jobwatch: error: "), result.stderr


# -- wait_for / wait_for_sync ----------------------------------------------------------

QUICK = PollPolicy(wait_initial=0.01, wait_max=0.05, wait_jitter=0.0, not_found_grace=0.3)
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return virtual_backend(request.param)


@pytest.mark.anyio
async def test_wait_for_thousands_of_jobs_with_duplicates_and_failures(anyio_backend: Any) -> None:
    sim = Simulator(clock=LoopClock())
    n = 3000
    for i in range(n):
        final = "FAIL" if i % 997 == 5 else "SUCCESS"
        sim.add_evs_job(P, f"j{i}", [(0, "RUNNING"), (0.05 + (i % 7) * 0.01, final)])
    refs = [EvsJob(f"j{i}") for i in range(n)] + [EvsJob("j0"), EvsJob("j1")]
    async with Client("http://sim.test", P, transport=sim.transport(), retry=QUICK_RETRY) as c:
        started = time.monotonic()
        results = await wait_for(refs, client=c, policy=QUICK, raise_on_failure=False)
        assert time.monotonic() - started < 20
        assert len(results) == n + 2
        assert [r.ref for r in results] == refs
        failed = [r.ref.job_id for r in results if r.state.value == "failed"]  # type: ignore[union-attr]
        assert failed == ["j5", "j1002", "j1999", "j2996"]
        with pytest.raises(JobFailed):
            await wait_for(refs, client=c, policy=QUICK)


@pytest.mark.anyio
async def test_wait_for_timeout_message_is_bounded_for_many_open_jobs(anyio_backend: Any) -> None:
    sim = Simulator(clock=LoopClock())
    for i in range(600):
        sim.add_evs_job(P, f"f{i}", [(0, "RUNNING")])
    async with Client("http://sim.test", P, transport=sim.transport(), retry=QUICK_RETRY) as c:
        with pytest.raises(TimeoutError) as caught:
            await wait_for(
                [EvsJob(f"f{i}") for i in range(600)], client=c, timeout=0.5, policy=QUICK
            )
    message = str(caught.value)
    assert message.startswith("600 job(s) did not end within 0.5 s")
    assert "and 595 more" in message
    assert len(message) < 300


def test_wait_for_sync_after_a_timeout_and_a_give_up_serves_again() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "forever", [(0, "RUNNING")])
    sim.add_evs_job(P, "ok", [(0, "RUNNING"), (0.1, "SUCCESS")])
    with serve(sim) as url:
        client = Client(url, P, retry=QUICK_RETRY)
        with pytest.raises(TimeoutError):
            jobwatch.wait_for_sync(EvsJob("forever"), client=client, timeout=0.3, policy=QUICK)
        gave = jobwatch.wait_for_sync(
            EvsJob("missing"), client=client, policy=QUICK, raise_on_failure=False
        )
        assert isinstance(gave, GaveUp)
        snapshot = jobwatch.wait_for_sync(EvsJob("ok"), client=client, timeout=10, policy=QUICK)
        assert snapshot.state.value == "succeeded"
        assert jobwatch.wait_for_sync([], client=client) == []


def test_wait_for_sync_inside_trio_refuses() -> None:
    import trio

    client = Client("http://sim.test", P)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="running event loop"):
            jobwatch.wait_for_sync(EvsJob("x"), client=client)

    trio.run(main)


def test_state_with_thousands_of_jobs_is_complete_and_compacted(tmp_path: Path) -> None:
    sim = Simulator(clock=ManualClock())
    n = 3000
    for i in range(n):
        sim.add_evs_job(P, f"v{i}", [(0, "SUCCESS" if i % 500 else "FAIL")])
    sim.clock.set(5)
    jobs = [f"v{i}" for i in range(n)]
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        started = time.monotonic()
        first = run_cli(url, "--json", "--state", str(state), *jobs, timeout=60)
        assert first.returncode == 1, first.stderr[-500:]
        assert time.monotonic() - started < 30
        assert len(first.stdout.splitlines()) == n + 1
        journal = state_lines(state)
        assert len(journal[0]["jobs"]) == n
        assert {r["ref"]["job_id"] for r in journal[1:] if r.get("final")} == set(jobs)
        second = run_cli(url, "--json", "--state", str(state), *jobs, timeout=60)
        assert second.returncode == 1
        assert len(second.stdout.splitlines()) == 1  # the summary only
        assert f"resumed {n} jobs ({n} done)" in second.stderr


def _events(out: str) -> list[dict[str, Any]]:
    complete = out if out.endswith("\n") else out[: out.rfind("\n") + 1]
    return [e for e in map(json.loads, complete.splitlines()) if e["event"] != "summary"]


@pytest.mark.parametrize("how", ["sigint", "sigkill-then-add"])
def test_stopped_and_resumed_with_state_add_shows_each_final_once(tmp_path: Path, how: str) -> None:
    from jobwatch.sim import SubJob

    sim = Simulator()
    subs = [SubJob(f"b-{k}", [(0, "RUNNING"), (1.0 + 0.2 * k, "SUCCESS")]) for k in range(3)]
    sim.add_evs_job(P, "b", [(0, "RUNNING"), (2.0, "SUCCESS")], sub_jobs=subs,
                    job_type="batchCreateVolume")  # fmt: skip
    for i in range(4):
        end = "FAIL" if i == 2 else "SUCCESS"
        sim.add_evs_job(P, f"j{i}", [(0, "INIT"), (0.8 + 0.3 * i, "RUNNING"), (1.6 + 0.3 * i, end)])
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        first = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--state", str(state), "b", "j0", "j1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
        )  # fmt: skip
        time.sleep(1.5)
        first.send_signal(signal.SIGINT if how == "sigint" else signal.SIGKILL)
        out1, err1 = first.communicate(timeout=20)
        if how == "sigint":
            assert first.returncode == 130, err1
            assert "jobs ended; run again with --state" in err1
            assert json.loads(out1.splitlines()[-1])["event"] == "summary"
        else:
            assert first.returncode == -signal.SIGKILL
        extra = ["b", "j0", "j1", "j2", "j3"]
        second = run_cli(url, "--json", "--state", str(state), "--state-add", *extra)
        assert second.returncode == 1, second.stderr  # j2 failed
        assert "resumed 3 jobs" in second.stderr
        assert "added 2" in second.stderr
    every = _events(out1) + _events(second.stdout)
    finals = [e["job_id"] for e in every if e.get("final") or e["event"] == "gave_up"]
    expected = {"b", "b-0", "b-1", "b-2", "j0", "j1", "j2", "j3"}
    assert set(finals) == expected
    repeated = [j for j in set(finals) if finals.count(j) > 1]
    assert len(repeated) <= (1 if how != "sigint" else 0), repeated


def test_a_batch_and_its_sub_job_both_named_resume_cleanly(tmp_path: Path) -> None:
    from jobwatch.sim import SubJob

    def scenario() -> Simulator[Any]:
        sim = Simulator()
        subs = [
            SubJob("b-0", [(0, "RUNNING"), (1.0, "SUCCESS")]),
            SubJob("b-1", [(0, "RUNNING"), (2.5, "FAIL")]),
        ]
        sim.add_evs_job(P, "b", [(0, "RUNNING"), (2.6, "SUCCESS")], sub_jobs=subs,
                        job_type="batchCreateVolume")  # fmt: skip
        return sim

    jobs = ("b", "b-0", "b-1")
    with serve(scenario()) as url:
        plain = run_cli(url, "--json", *jobs)
    state = tmp_path / "state.jsonl"
    with serve(scenario()) as url:
        first = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--state", str(state), *jobs),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
        )  # fmt: skip
        time.sleep(1.6)
        first.send_signal(signal.SIGTERM)
        _out1, err1 = first.communicate(timeout=20)
        assert first.returncode == 143, err1
        second = run_cli(url, "--json", "--state", str(state), *jobs)
        assert "Traceback" not in second.stderr
        assert second.returncode == plain.returncode == 1, second.stderr
        third = run_cli(url, "--json", "--state", str(state), *jobs)
        assert third.returncode == 1
        assert _events(third.stdout) == []
    summary_plain = json.loads(plain.stdout.splitlines()[-1])
    summary_third = json.loads(third.stdout.splitlines()[-1])
    for key in ("jobs", "sub_jobs", "outcomes", "sub_job_outcomes"):
        assert summary_third[key] == summary_plain[key], key


def test_log_records_stay_one_line_without_escapes_for_a_hostile_status() -> None:
    """'Each record is one line, jobwatch: LEVEL: message': an unknown status from the server
    carrying CR/LF and an OSC sequence must not split a record nor reach the terminal."""
    status = "WEIRD\x1b]0;pwned\x07\r\njobwatch: error: forged"
    calls = {"n": 0}

    def answer(job: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        calls["n"] += 1
        final = calls["n"] > 3
        return 200, json.dumps(evs_body(job, "SUCCESS" if final else status)).encode()

    with raw_evs(answer) as (url, _):
        result = run_cli(url, "--json", "--log-level", "debug", "a")
    assert result.returncode == 0, result.stderr
    for line in result.stderr.splitlines():
        assert line.startswith(("jobwatch: debug: ", "jobwatch: info: ", "jobwatch: warning: ")), (
            line
        )
    assert "\x1b" not in result.stderr
    assert "\x07" not in result.stderr


def test_a_state_file_that_is_a_symlink_stays_one(tmp_path: Path) -> None:
    """FILE as a symlink (kept on another volume): compaction's os.replace replaces the link
    by a regular file, so the target is left stale and the link is gone."""
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    sim.clock.set(5)
    (tmp_path / "volume").mkdir()
    target = tmp_path / "volume" / "journal.jsonl"
    link = tmp_path / "state.jsonl"
    link.symlink_to(target)
    with serve(sim) as url:
        result = run_cli(url, "--json", "--state", str(link), "a")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink(), "the --state symlink was replaced by a regular file"
    assert target.exists()
    assert any(r.get("final") for r in state_lines(target)[1:])


@pytest.mark.parametrize("width", [40, 80])
def test_the_live_table_fits_the_terminal_with_wide_and_hostile_text(width: int) -> None:
    from datetime import UTC, datetime

    from rich.cells import cell_len
    from rich.console import Console

    from jobwatch import GesJob, JobSnapshot, JobState, Transition
    from jobwatch._cli._model import Run
    from jobwatch._cli._table import live_view

    reasons = [
        "配额不足" * 40,
        "😀" * 100,
        "e\u0301" * 200,
        "\u200b" * 300 + "x",
        "\t" * 50 + "tabbed",
        "[bold]" * 60,
        "a" * 5000,
    ]
    refs: list[Any] = [EvsJob(f"ff8080818d3a4b5c018d3a4b5c6d{i:04d}") for i in range(len(reasons))]
    refs += [GesJob("g" * 60, f"job-{i}", "v2") for i in range(3)]
    run = Run(refs)
    for i, ref in enumerate(refs):
        reason = reasons[i % len(reasons)]
        snapshot = JobSnapshot(ref, JobState.FAILED, "失败" * 30, fail_reason=reason)
        run.apply(Transition(ref, None, None, JobState.FAILED, snapshot, datetime.now(UTC)))
    console = Console(width=width, height=30, record=True, color_system=None)
    console.print(live_view(run, "", width=width, height=30))
    lines = console.export_text().splitlines()
    assert len(lines) <= 30
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, too_wide[:2]


def test_a_reader_that_goes_away_stops_a_journaled_run_quietly(tmp_path: Path) -> None:
    """`jobwatch watch --json --state F ... | head -1`: EPIPE in the writer thread."""
    sim = Simulator()
    jobs = [f"v{i}" for i in range(300)]
    for i, job in enumerate(jobs):
        sim.add_evs_job(P, job, [(0, "RUNNING"), (0.5 + (i % 10) * 0.05, "SUCCESS")])
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        proc = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--state", str(state), *jobs),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        proc.wait(20)
        assert "Traceback" not in err, err
        assert "bug in jobwatch" not in err, err
        assert proc.returncode in (1, 0), (proc.returncode, err)
        again = run_cli(url, "--json", "--state", str(state), *jobs)
        assert again.returncode == 0, again.stderr


def test_the_metrics_url_said_on_stderr_can_be_scraped_for_an_ipv6_host() -> None:
    """`--metrics-host ::1 --metrics-port 0`: stderr says 'http://::1:PORT/metrics', which is
    no URL (an IPv6 literal needs brackets: http://[::1]:PORT/metrics)."""
    sim = Simulator()
    sim.add_evs_job(P, "a", [(0, "RUNNING"), (1.5, "SUCCESS")])
    with serve(sim) as url:
        proc = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--metrics-host", "::1", "--metrics-port", "0", "a"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        line = proc.stderr.readline()
        said = line.split(" on ", 1)[1].strip()
        try:
            with urllib.request.urlopen(said, timeout=5) as response:  # noqa: S310
                scraped = response.read().decode()
        finally:
            proc.communicate(timeout=20)
    assert "jobwatch_jobs_watched_total" in scraped  # urllib is lenient; a URL parser is not:
    from urllib.parse import urlsplit

    parts = urlsplit(said)
    assert parts.hostname == "::1", said
    assert isinstance(parts.port, int)


def test_the_hint_line_is_one_line_whatever_the_gateway_message() -> None:
    """'jobwatch: hint: the endpoint or API is wrong (APIGW.0101: ...)' quotes the gateway's
    error_msg: with CR/LF in it, stderr gets a forged 'jobwatch: error: ...' line (and the OSC
    sequence), even with --json."""
    body = json.dumps(
        {
            "error_code": "APIGW.0101",
            "error_msg": "The API does not exist\r\njobwatch: error: forged \x1b]0;t\x07",
            "request_id": "r",
        }
    ).encode()
    with raw_evs(lambda job, headers: (404, body)) as (url, _):
        result = run_cli(url, "--json", "a")
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("jobwatch: hint: "), lines
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize("seed", range(2))
def test_nested_sub_jobs_killed_at_random_and_resumed_end_once_each(
    tmp_path: Path, seed: int
) -> None:
    import random

    from jobwatch.sim import SubJob

    rng = random.Random(seed)
    sim = Simulator()
    leaves = [
        SubJob(f"n-{k}", [(0, "RUNNING"), (1.0 + 0.25 * k, "FAIL" if k == 1 else "SUCCESS")])
        for k in range(3)
    ]
    mid = SubJob("m", [(0, "RUNNING"), (2.0, "SUCCESS")], sub_jobs=leaves,
                 job_type="batchCreateVolume")  # fmt: skip
    sim.add_evs_job(P, "top", [(0, "RUNNING"), (2.2, "SUCCESS")], sub_jobs=[mid],
                    job_type="batchCreateVolume")  # fmt: skip
    state = tmp_path / "state.jsonl"
    with serve(sim) as url:
        first = subprocess.Popen(  # noqa: S603
            argv(url, "--json", "--state", str(state), "top"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, text=True,
        )  # fmt: skip
        time.sleep(rng.uniform(0.9, 1.9))
        first.kill()
        out1, _ = first.communicate(timeout=10)
        second = run_cli(url, "--json", "--state", str(state), "top")
        assert second.returncode == 1, second.stderr  # n-1 failed
        third = run_cli(url, "--json", "--state", str(state), "top")
        assert third.returncode == 1
        assert _events(third.stdout) == []
    every = _events(out1) + _events(second.stdout)
    finals = [e["job_id"] for e in every if e.get("final") or e["event"] == "gave_up"]
    assert set(finals) == {"top", "m", "n-0", "n-1", "n-2"}
    assert len(finals) - len(set(finals)) <= 1, finals
    parents = {e["job_id"]: e["parent_id"] for e in every}
    assert parents["n-0"] == "m"
    assert parents["m"] == "top"
