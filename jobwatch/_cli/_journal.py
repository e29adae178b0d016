"""The ``--state`` journal: its lines, reading one back, and its compacted form.

A journal is JSON Lines.  The first line binds it to the top-level jobs it is about::

    {"jobwatch_state": 2, "jobs": [{"api": "evs", "job_id": "..."}, ...]}

then one line per event shown, in the order shown::

    {"ref": {...}, "parent": {...},          # parent: sub-jobs only
     "state": "running",                     # transitions only
     "gave_up": "timeout",                   # give-ups only
     "raw_status": "RUNNING",
     "final": true, "detail": "...",         # the job's final outcome, and what it said
     "failed_subs": true, "import_failures": 2}

(keys at their default value, null/false/0, are left out).  ``Book`` replays the lines:
the last delivered state of every job and sub-job, and which ones ended.  A compacted
journal is the header and one line per job or sub-job that replays to the same book.

Files of version 1 (one JSON object: a resume token and the ended jobs) are read too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobwatch import Event, Transition
from jobwatch._cli._model import Node
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict
from jobwatch._snapshot import JobState

__all__ = ["VERSION", "Book", "Entry", "Loaded", "event_record", "parse"]

VERSION = 2
_HEADER = "jobwatch_state"


@dataclass(slots=True)
class Entry:
    """One job or sub-job of a journal: what was shown of it."""

    ref: JobRef
    parent: JobRef | None
    root: JobRef
    state: JobState | None = None
    gave_up: str | None = None
    raw_status: str | None = None
    final: bool = False
    detail: str | None = None
    failed_subs: bool = False
    import_failures: int = 0

    def record(self) -> dict[str, Any]:
        """The one journal line that replays to this entry."""
        record: dict[str, Any] = {"ref": ref_to_dict(self.ref)}
        if self.parent is not None:
            record["parent"] = ref_to_dict(self.parent)
        optional = {
            "state": self.state.value if self.state is not None else None,
            "gave_up": self.gave_up,
            "raw_status": self.raw_status,
            "final": self.final,
            "detail": self.detail,
            "failed_subs": self.failed_subs,
            "import_failures": self.import_failures,
        }
        record.update((key, value) for key, value in optional.items() if value)
        return record


def event_record(event: Event, node: Node) -> dict[str, Any]:
    """The journal line of ``event``, once the run's ``node`` of it was updated."""
    record: dict[str, Any] = {"ref": ref_to_dict(event.ref)}
    if event.parent is not None:
        record["parent"] = ref_to_dict(event.parent)
    if isinstance(event, Transition):
        record["state"] = event.state.value
        if node.raw_status:
            record["raw_status"] = node.raw_status
    else:
        record["gave_up"] = node.gave_up
    if event.final:
        record["final"] = True
        extra = {
            "detail": node.detail,
            "failed_subs": node.failed_subs,
            "import_failures": node.import_failures,
        }
        record.update((key, value) for key, value in extra.items() if value)
    return record


@dataclass
class Book:
    """What a journal says: the jobs it is bound to, and each job's and sub-job's entry."""

    jobs: list[JobRef] = field(default_factory=list)
    entries: dict[JobRef, Entry] = field(default_factory=dict)
    _subs: dict[JobRef, list[Entry]] = field(default_factory=dict)

    def bind(self, refs: Iterable[JobRef]) -> list[JobRef]:
        """Add the top-level jobs of ``refs`` the book is not bound to yet; those added."""
        known = set(self.jobs)
        added = [ref for ref in refs if ref not in known]
        self.jobs.extend(added)
        return added

    def apply(self, record: object, root: JobRef | None = None) -> None:
        """Replay one journal line; ``ValueError`` naming what is wrong with it."""
        if not isinstance(record, dict):
            raise ValueError("a journal line must be a JSON object")
        ref = ref_from_dict(record.get("ref"))
        parent = ref_from_dict(record["parent"]) if record.get("parent") is not None else None
        entry = self.entries.get(ref)
        if entry is None:
            if root is None:
                above = self.entries.get(parent) if parent is not None else None
                root = ref if parent is None else above.root if above is not None else parent
            entry = self.entries[ref] = Entry(ref, parent, root)
            if parent is not None:
                self._subs.setdefault(root, []).append(entry)
        state = _text(record, "state")
        if state is not None:
            entry.state = JobState(state)
        entry.raw_status = _text(record, "raw_status") or entry.raw_status
        entry.gave_up = _text(record, "gave_up") or entry.gave_up
        if record.get("final") is True:
            entry.final = True
            entry.detail = _text(record, "detail")
            entry.failed_subs = record.get("failed_subs") is True
            count = record.get("import_failures", 0)
            if type(count) is not int or count < 0:
                raise ValueError("'import_failures' must be a count")
            entry.import_failures = count

    def done_roots(self) -> set[JobRef]:
        """Top-level jobs whose final outcome was shown."""
        return {ref for ref in self.jobs if (e := self.entries.get(ref)) is not None and e.final}

    def done(self) -> Iterator[Entry]:
        """Jobs and sub-jobs whose final outcome was shown, parents first."""
        return (entry for entry in self.entries.values() if entry.final)

    def token(self, refs: Iterable[JobRef]) -> dict[str, Any]:
        """The resume token (``Watcher.resume``) of the jobs of ``refs`` not ended yet."""
        jobs = []
        for ref in refs:
            entry = self.entries.get(ref)
            if entry is None or entry.final:
                continue
            subs = [
                {
                    "ref": ref_to_dict(sub.ref),
                    "parent": ref_to_dict(sub.parent or ref),
                    "state": sub.state.value,
                    **({"final": True} if sub.final else {}),
                }
                for sub in self._subs.get(ref, ())
                if sub.state is not None
            ]
            state = entry.state.value if entry.state is not None else None
            job = {"ref": ref_to_dict(ref), "state": state, "seen": state is not None}
            jobs.append({**job, "subs": subs})
        return {"version": 1, "jobs": jobs}

    def lines(self) -> Iterator[dict[str, Any]]:
        """The compacted journal of this book: its header, then one line per entry."""
        yield {_HEADER: VERSION, "jobs": [ref_to_dict(ref) for ref in self.jobs]}
        for entry in self.entries.values():
            yield entry.record()


def _text(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class Loaded:
    """A journal read back: its book, and whether its last line was torn (and ignored)."""

    book: Book
    torn: bool = False
    existed: bool = True


def parse(text: str) -> Loaded:
    """Read a journal (or a version 1 file); ``ValueError`` naming the line that is wrong.

    A last line without its newline was being written when the run was killed: it is
    left out (``Loaded.torn``).  Any other line that does not read is an error.
    """
    if not text.strip():
        return Loaded(Book(), existed=False)
    if not text.startswith(f'{{"{_HEADER}"'):
        return Loaded(_version_1(text))
    complete, newline, rest = text.rpartition("\n")
    if not newline:
        raise ValueError("line 1: incomplete")
    book = Book()
    for number, line in enumerate(complete.split("\n"), start=1):
        try:
            data = json.loads(line)
            if number == 1:
                _header(book, data)
            else:
                book.apply(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return Loaded(book, torn=bool(rest))


def _header(book: Book, data: object) -> None:
    if not isinstance(data, dict) or data.get(_HEADER) != VERSION:
        raise ValueError(f"not a version {VERSION} journal header")
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        raise ValueError("'jobs' must be a list")
    book.bind(ref_from_dict(job) for job in jobs)


def _version_1(text: str) -> Book:
    """The book of a version 1 file: a resume token, and the jobs that ended."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a jobwatch state file")
        book = Book()
        for job in data["token"]["jobs"]:
            root = ref_from_dict(job["ref"])
            book.bind([root])
            book.apply({"ref": job["ref"], **({"state": job["state"]} if job["state"] else {})})
            for sub in job.get("subs") or []:
                book.apply(sub, root=root)
        for node in data["done"]:
            book.apply({**node, "final": True})
            if node.get("parent") is None:
                book.bind([ref_from_dict(node["ref"])])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"version 1: {exc}" if text.startswith('{"version"') else exc) from None
    return book
