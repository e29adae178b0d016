"""``jobwatch watch --state FILE``: what was shown, kept so a restart goes on.

FILE is a journal (``_journal``): one JSON line per event, appended as the event is
shown.  One writer thread, fed by a queue, does both in order for each event: it
writes the event's output line, then appends the event's journal line with one
``write`` (no user-space buffer).  The event loop only puts the event on the queue;
the thread, once it has caught up, waits ``LINGER`` seconds before it goes on, so
lines are shown up to that much later.
So at any instant at most one line was shown and not journaled: a run killed at any
point (even with SIGKILL) and started again with the same FILE and job IDs does not
watch again the jobs whose final outcome was journaled, resumes the others from
their last journaled state, and shows again at most the one line of the kill.

Compaction: when the file is opened, and when the journal grows past
``COMPACT_FACTOR`` times its live size (one line per job and sub-job), the file is
replaced by its compacted form: written to a temporary file in the same directory,
fsynced, ``os.replace``\\ d, and the directory fsynced.  A temporary file left by a
run killed while compacting is removed by the next run.  Durability: every line
reaches the operating system before the next event is shown (a killed process loses
nothing); the file is fsynced at compaction and when the run ends (normally or by
Ctrl-C or SIGTERM), not per line, so a power cut can lose the lines since then
(shown again by the next run, never lost).
"""

from __future__ import annotations

import glob
import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio

from jobwatch import Event
from jobwatch._cli._display import Reporter
from jobwatch._cli._errors import CliError, echo, redact
from jobwatch._cli._journal import Book, Loaded, event_record, parse
from jobwatch._cli._model import Node, Run
from jobwatch._cli._summary import Summary
from jobwatch._refs import JobRef

__all__ = ["COMPACT_FACTOR", "StateFile", "restore"]

#: Compact when the journal has more lines than this many times the live entries ...
COMPACT_FACTOR = 4
#: ... and more than this many lines.
COMPACT_MIN_LINES = 1000
#: Events queued for the writer thread at most: past them, the event loop waits for it
#: (as it waits for a slow reader of stdout without ``--state``).
MAX_QUEUED = 10_000
#: Seconds the writer thread waits once it has caught up, before it takes the next event:
#: woken once per event, the thread's hand-offs of the GIL cost more CPU than its work
#: (10,000 EVS jobs: 1.2x the CPU of a run without --state, 0.97-1.15x waiting 5 ms).
LINGER = 0.005

#: The end of the name of a compaction's temporary file (``.FILE.XXXXXXXX.jobwatch-tmp``).
_TEMPORARY = ".jobwatch-tmp"

_Item = tuple[Callable[[], None], dict[str, Any]]


class StateFile:
    """The ``--state`` journal of a run: opened, bound and compacted before any request."""

    def __init__(self, path: Path, book: Book, resumed: bool) -> None:
        self.path = path
        self.book = book
        #: The file held jobs already (the run resumes it).
        self.resumed = resumed
        self.compact_factor = COMPACT_FACTOR
        self.compact_min_lines = COMPACT_MIN_LINES
        self._fd = -1
        self._added: list[JobRef] = []
        self._lines = 0
        self._queue: queue.Queue[_Item | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @classmethod
    def open(cls, path: str, refs: Sequence[JobRef], *, add: bool) -> StateFile:
        """Read FILE, check it is about ``refs`` (or, with ``add``, about some of them).

        ``CliError`` (a usage error) when FILE's directory does not exist, FILE cannot
        be read, is not a journal, or holds other jobs.  Nothing is written yet.
        """
        # Through a symbolic link to its target: compaction replaces the target, not the link.
        file = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
        if not file.parent.is_dir():
            raise CliError(f"--state {path}: directory {file.parent} does not exist")
        _lock(file, path)
        loaded = _load(file)
        book = loaded.book
        _check_jobs(path, book, refs, add=add)
        state = cls(file, book, resumed=loaded.existed and bool(book.jobs))
        state._added = book.bind(refs)
        return state

    def prepare(self) -> None:
        """Say what was resumed, and compact FILE; ``CliError`` when it cannot be written."""
        book = self.book
        if self.resumed:
            done = len(book.done_roots())
            more = f"; added {len(self._added)}" if self._added else ""
            count = len(book.jobs) - len(self._added)
            echo(f"jobwatch: resumed {count} jobs ({done} done) from {self.path}{more}", err=True)
        try:
            for stale in self.path.parent.glob(f".{glob.escape(self.path.name)}.*{_TEMPORARY}"):
                stale.unlink(missing_ok=True)  # a run killed while compacting left it
            self._compact()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise CliError(f"cannot write --state {self.path}: {exc.strerror}") from None

    # -- the writer thread ----------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (once the run's reporter is entered)."""
        self._thread = threading.Thread(target=self._write, name="jobwatch-state", daemon=True)
        self._thread.start()

    def put(self, show: Callable[[], None], record: dict[str, Any]) -> None:
        """Have the writer thread call ``show``, then journal ``record``."""
        self._raise()
        self._enqueue((show, record))

    async def close(self) -> None:
        """Let the writer thread finish the queue, fsync and close FILE; raise its error."""
        thread = self._thread
        if thread is not None:
            self._enqueue(None)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join)
            self._thread = None
        elif self._fd >= 0:  # never started
            os.close(self._fd)
        self._fd = -1
        self._raise()

    def _enqueue(self, item: _Item | None) -> None:
        """Queue ``item``, waiting while the queue is full; the writer's error if it died."""
        while True:
            try:
                self._queue.put(item, timeout=0.2)
            except queue.Full:
                self._raise()
            else:
                return

    def _raise(self) -> None:
        error = self._error
        if error is None:
            return
        if isinstance(error, OSError) and error.filename == str(self.path):
            raise CliError(f"cannot write --state {self.path}: {error.strerror}") from error
        raise error

    def _write(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                show, record = item
                show()
                self.book.apply(record)
                self._append(record)
                if self._queue.empty():
                    time.sleep(LINGER)  # the events that come meanwhile are one wake-up
            os.fsync(self._fd)
        except BaseException as exc:  # noqa: BLE001 - raised again on the event loop
            self._error = exc
        finally:
            if self._fd >= 0:
                os.close(self._fd)

    def _append(self, record: dict[str, Any]) -> None:
        text = redact(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        line = (text + "\n").encode()
        try:
            while line:  # one write; the loop only for a partial write
                line = line[os.write(self._fd, line) :]
            self._lines += 1
            if self._lines > self.compact_factor * max(
                len(self.book.entries), self.compact_min_lines
            ):
                os.close(self._fd)
                self._fd = -1
                self._compact()
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            exc.filename = str(self.path)
            raise

    def _compact(self) -> None:
        """Replace FILE, atomically and durably, by the compacted journal of the book."""
        directory = self.path.parent
        fd, temporary = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=_TEMPORARY, dir=directory
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                lines = self.book.lines()
                out.writelines(
                    redact(json.dumps(line, separators=(",", ":"))) + "\n" for line in lines
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_directory(directory)
        self._lines = len(self.book.entries) + 1


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The state-file locks this process holds, by lock file: kept until the process ends.
_HELD: dict[str, int] = {}


def _lock(file: Path, path: str) -> None:
    """Lock FILE for this run (a lock file beside it); ``CliError`` when another run has it.

    Two runs on one FILE would each replace it when compacting, and lose the other's
    lines.  Held until the process ends (a run is one process).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    name = file.parent / f".{file.name}.jobwatch-lock"
    if str(name) in _HELD:  # this process has it already (a run is one process)
        return
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CliError(f"cannot write --state {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CliError(f"--state {path} is in use by another jobwatch run") from None
    _HELD[str(name)] = fd


def _read(file: Path) -> str:
    """FILE's text; a last line cut inside a character (a kill) is kept, as torn."""
    data = file.read_bytes()
    complete, newline, rest = data.rpartition(b"\n")
    text = (complete + newline).decode("utf-8")
    try:
        return text + rest.decode("utf-8")
    except UnicodeDecodeError:
        if not newline:
            raise
        return text + rest.decode("utf-8", errors="replace")


def _load(file: Path) -> Loaded:
    try:
        text = _read(file)
    except FileNotFoundError:
        return Loaded(Book(), existed=False)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise CliError(f"cannot read --state {file}: {why}") from None
    try:
        loaded = parse(text)
    except RecursionError:
        raise CliError(f"--state {file} is not a jobwatch state file (nested too deep)") from None
    except ValueError as exc:
        raise CliError(f"--state {file} is not a jobwatch state file ({exc})") from None
    if loaded.torn:
        echo(
            f"jobwatch: warning: --state {file}: its last line was cut short (a run killed "
            "while writing it) and is ignored",
            err=True,
        )
    return loaded


def _check_jobs(path: str, book: Book, refs: Sequence[JobRef], *, add: bool) -> None:
    """``CliError`` unless ``refs`` are the jobs of ``book`` (with ``add``: at least those)."""
    if not book.jobs:
        return
    held, wanted = set(book.jobs), set(refs)
    missing = [ref for ref in book.jobs if ref not in wanted]
    new = [ref for ref in refs if ref not in held]
    if missing:
        raise CliError(
            f"--state {path} is about {len(held)} jobs and this run leaves out "
            f"{_some(missing)}: name every job it holds (or use another FILE)"
        )
    if new and not add:
        raise CliError(
            f"--state {path} is about {len(held)} other jobs, not {_some(new)}: pass "
            "--state-add to add them to it (or use another FILE)"
        )


def _some(refs: Sequence[JobRef], most: int = 3) -> str:
    names = ", ".join(ref.job_id for ref in refs[:most])
    return names + (f" and {len(refs) - most} more" if len(refs) > most else "")


def restore(run: Run, book: Book) -> None:
    """Put the jobs and sub-jobs that ended in an earlier run back into ``run``."""
    for entry in book.done():
        run.restore(
            entry.ref,
            entry.parent,
            state=entry.state,
            raw_status=entry.raw_status,
            gave_up=entry.gave_up,
            detail=entry.detail,
            failed_subs=entry.failed_subs,
            import_failures=entry.import_failures,
        )


class Journaled:
    """A reporter whose event lines the state file's writer thread shows, each then journaled."""

    def __init__(self, inner: Reporter, state: StateFile) -> None:
        self._inner = inner
        self._state = state

    def __enter__(self) -> Self:
        self._inner.__enter__()
        self._state.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._inner.__exit__(kind, exc, tb)

    def event(self, event: Event, node: Node) -> None:
        inner = self._inner
        self._state.put(lambda: inner.event(event, node), event_record(event, node))

    def tick(self) -> None:
        self._inner.tick()

    def finish(self, summary: Summary) -> None:
        self._inner.finish(summary)


def journaled(report: Reporter, state: StateFile | None) -> Reporter:
    """``report``, its event lines shown by ``state``'s writer thread when there is one."""
    return report if state is None else Journaled(report, state)


def refs_left(book: Book, refs: Iterable[JobRef]) -> list[JobRef]:
    """The jobs of ``refs`` whose final outcome ``book`` does not hold."""
    done = book.done_roots()
    return [ref for ref in refs if ref not in done]
