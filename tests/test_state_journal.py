"""The ``--state`` journal in-process: its lines, replay, compaction, binding, the writer.

The CLI over a socket, killed and restarted, is in ``test_crash_resume.py``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import EvsJob, GaveUp, GiveUpReason, JobRef, JobSnapshot, JobState, Transition
from jobwatch._cli import _state
from jobwatch._cli._app import cli
from jobwatch._cli._errors import CliError
from jobwatch._cli._journal import Book, event_record, parse
from jobwatch._cli._model import Run
from jobwatch._cli._state import StateFile

AT = datetime(2024, 1, 1, tzinfo=UTC)
ROOTS = [EvsJob(f"vol-{i}") for i in range(3)]


def transition(ref: JobRef, parent: JobRef | None, state: JobState, raw: str) -> Transition:
    snapshot = JobSnapshot(ref=ref, state=state, raw_status=raw)
    return Transition(ref, parent, None, state, snapshot, AT)


@st.composite
def event_lists(draw: st.DrawFn) -> list[Transition | GaveUp]:
    """Events as a watcher delivers them: per job a chain of states, subs after parents."""
    events: list[Transition | GaveUp] = []
    for index, root in enumerate(ROOTS):
        subs = [EvsJob(f"vol-{index}-{k}") for k in range(draw(st.integers(0, 3)))]
        for ref, parent in [(root, None), *((sub, root) for sub in subs)]:
            states = draw(
                st.lists(st.sampled_from([JobState.PENDING, JobState.RUNNING]), max_size=3)
            )
            for state in states:
                events.append(transition(ref, parent, state, state.value.upper()))
            end = draw(st.sampled_from(["open", "succeeded", "failed", "gave up"]))
            if end == "gave up":
                events.append(GaveUp(ref, parent, GiveUpReason.TIMED_OUT, "too long", AT))
            elif end != "open":
                events.append(transition(ref, parent, JobState(end), end.upper()))
    return events


def replayed(events: list[Transition | GaveUp]) -> tuple[Book, Run]:
    run, book = Run(ROOTS), Book()
    book.bind(ROOTS)
    for event in events:
        book.apply(json.loads(json.dumps(event_record(event, run.apply(event)))))
    return book, run


def text_of(book: Book) -> str:
    return "".join(json.dumps(line) + "\n" for line in book.lines())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(event_lists())
def test_a_compacted_journal_reads_back_as_the_same_book(events: list[Transition | GaveUp]) -> None:
    book, run = replayed(events)
    again = parse(text_of(book)).book
    assert again.jobs == book.jobs
    assert again.token(ROOTS) == book.token(ROOTS)
    assert list(again.done()) == list(book.done())
    # what ended is exactly what the run saw end
    assert {e.ref for e in book.done()} == {n.ref for n in run.walk() if n.done}
    for entry in book.done():
        node = run.nodes[entry.ref]
        assert (entry.state, entry.gave_up, entry.raw_status) == (
            node.state,
            node.gave_up,
            node.raw_status,
        )


@settings(max_examples=100, deadline=None)
@given(event_lists(), st.data())
def test_a_torn_last_line_is_left_out_and_any_other_bad_line_is_an_error(
    events: list[Transition | GaveUp], data: st.DataObject
) -> None:
    book, _ = replayed(events)
    lines = [json.dumps(line) + "\n" for line in book.lines()]
    text = "".join(lines)
    cut = data.draw(st.integers(len(lines[0]), len(text)))
    loaded = parse(text[:cut])
    assert loaded.torn == (cut < len(text) and text[cut - 1] != "\n")
    kept = text[:cut].count("\n")
    assert len(loaded.book.entries) == kept - 1
    if kept > 1:
        broken = lines[:]
        broken[1] = broken[1][:5] + "\n"
        with pytest.raises(ValueError, match="line 2"):
            parse("".join(broken))


def test_the_token_holds_open_jobs_and_their_subs_not_ended_jobs() -> None:
    a, b = ROOTS[0], ROOTS[1]
    sub = EvsJob("vol-0-a")
    book, _ = replayed(
        [
            transition(a, None, JobState.RUNNING, "RUNNING"),
            transition(sub, a, JobState.RUNNING, "RUNNING"),
            GaveUp(sub, a, GiveUpReason.TIMED_OUT, "late", AT),
            transition(b, None, JobState.RUNNING, "RUNNING"),
            transition(b, None, JobState.SUCCEEDED, "SUCCESS"),
        ]
    )
    assert book.token(ROOTS) == {
        "version": 1,
        "jobs": [
            {
                "ref": {"api": "evs", "job_id": "vol-0"},
                "state": "running",
                "seen": True,
                "subs": [
                    {
                        "ref": {"api": "evs", "job_id": "vol-0-a"},
                        "parent": {"api": "evs", "job_id": "vol-0"},
                        "state": "running",
                        "final": True,
                    }
                ],
            }
        ],
    }
    assert book.done_roots() == {b}


def test_a_version_1_file_reads_as_a_book() -> None:
    old = {
        "version": 1,
        "token": {
            "version": 1,
            "jobs": [
                {
                    "ref": {"api": "evs", "job_id": "vol-0"},
                    "state": "running",
                    "seen": True,
                    "subs": [
                        {
                            "ref": {"api": "evs", "job_id": "vol-0-a"},
                            "parent": {"api": "evs", "job_id": "vol-0"},
                            "state": "running",
                        }
                    ],
                }
            ],
        },
        "done": [
            {
                "ref": {"api": "evs", "job_id": "vol-1"},
                "parent": None,
                "state": "failed",
                "raw_status": "FAIL",
                "gave_up": None,
                "detail": "disk full",
                "failed_subs": False,
                "import_failures": 0,
            }
        ],
    }
    book = parse(json.dumps(old)).book
    assert book.jobs == [ROOTS[0], ROOTS[1]]
    assert book.done_roots() == {ROOTS[1]}
    assert book.token(ROOTS)["jobs"] == old["token"]["jobs"]  # type: ignore[index]
    (done,) = book.done()
    assert (done.state, done.detail) == (JobState.FAILED, "disk full")


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"version": 3}', '{"jobwatch_state": 2, "jobs": [{"api": "nope"}]}\n', "[1]"],
)
def test_what_is_not_a_journal_is_a_usage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CliError, match="is not a jobwatch state file"):
        StateFile.open(str(path), ROOTS, add=False)


def test_a_file_is_bound_to_its_jobs(tmp_path: Path) -> None:
    path = str(tmp_path / "state")
    StateFile.open(path, ROOTS[:2], add=False).prepare()
    with pytest.raises(CliError, match="other jobs, not vol-2: pass --state-add"):
        StateFile.open(path, ROOTS, add=False)
    with pytest.raises(CliError, match="leaves out vol-1: name every job"):
        StateFile.open(path, ROOTS[:1], add=True)
    added = StateFile.open(path, ROOTS, add=True)
    added.prepare()
    assert StateFile.open(path, ROOTS, add=False).book.jobs == ROOTS


def test_a_missing_directory_or_a_directory_as_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="does not exist"):
        StateFile.open(str(tmp_path / "nowhere" / "state"), ROOTS, add=False)
    with pytest.raises(CliError, match="cannot read --state"):
        StateFile.open(str(tmp_path), ROOTS, add=False)


def _run_writer(
    path: Path, events: Sequence[Transition | GaveUp], factor: int, backend: str
) -> list[str]:
    shown: list[str] = []

    async def main() -> None:
        state = StateFile.open(str(path), ROOTS, add=False)
        state.prepare()
        state.compact_factor, state.compact_min_lines = factor, 1
        state.start()
        run = Run(ROOTS)
        for event in events:
            node = run.apply(event)
            state.put(functools.partial(shown.append, event.ref.job_id), event_record(event, node))
        await state.close()

    anyio.run(main, backend=backend)
    return shown


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("factor", [1, 1000])
def test_the_writer_thread_shows_and_journals_every_event_in_order(
    tmp_path: Path, backend: str, factor: int
) -> None:
    events = [
        transition(ref, None, state, state.value.upper())
        for state in (JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED)
        for ref in ROOTS
    ]
    path = tmp_path / "state"
    shown = _run_writer(path, events, factor, backend)
    assert shown == [e.ref.job_id for e in events]
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    # compacted at every line (factor 1): one line per job; else every event is a line
    assert len(lines) == 1 + (len(ROOTS) if factor == 1 else len(events))
    assert parse(text).book.done_roots() == set(ROOTS)
    # no temporary file left (the lock file beside FILE stays, by design)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".jobwatch-lock")] == [path]


def test_an_error_in_the_writer_thread_is_raised_on_the_event_loop(tmp_path: Path) -> None:
    async def main() -> None:
        state = StateFile.open(str(tmp_path / "state"), ROOTS, add=False)
        state.prepare()
        state.start()

        def broken() -> None:
            raise BrokenPipeError(32, "Broken pipe")

        state.put(broken, {"ref": {"api": "evs", "job_id": "vol-0"}})
        with pytest.raises(BrokenPipeError):
            await state.close()

    anyio.run(main)


def test_state_add_without_state_is_a_usage_error() -> None:
    args = ["watch", "--api", "evs", "--endpoint", "http://127.0.0.1:9", "--project-id", "p"]
    result = CliRunner().invoke(cli, [*args, "--state-add", "vol-0"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.strip() == "jobwatch: error: --state-add needs --state FILE"


def test_a_full_queue_makes_the_event_loop_wait_for_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_state, "MAX_QUEUED", 2)
    events = [transition(ref, None, JobState.SUCCEEDED, "SUCCESS") for ref in ROOTS]
    shown = _run_writer(tmp_path / "state", events * 10, 1000, "asyncio")
    assert len(shown) == 30


def test_a_writer_that_died_with_a_full_queue_does_not_hang_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_state, "MAX_QUEUED", 1)

    async def main() -> None:
        state = StateFile.open(str(tmp_path / "state"), ROOTS, add=False)
        state.prepare()
        state.start()
        record = {"ref": {"api": "evs", "job_id": "vol-0"}}

        def broken() -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fill() -> None:  # hung in put() forever if a dead writer were waited for
            for _ in range(100):
                state.put(broken, record)

        with pytest.raises(BrokenPipeError):
            fill()
        with pytest.raises(BrokenPipeError):
            await state.close()

    anyio.run(main)
