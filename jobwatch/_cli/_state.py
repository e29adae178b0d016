"""``jobwatch watch --state FILE``: what was already written, kept so a restart goes on.

After each event line is written, the file is replaced (write to a temporary file in
the same directory, then ``os.replace``) by::

    {"version": 1,
     "token": {...},   # Watcher.export_state(): open jobs and their delivered states
     "done": [{"ref": {...}, "parent": {...} | null, "state": "failed" | null,
               "raw_status": "FAIL", "gave_up": "timeout" | null, "detail": "...",
               "failed_subs": false, "import_failures": 0}, ...]}

A run killed at any point (even with SIGKILL) and started again with the same
``--state FILE`` and job IDs does not watch again the jobs whose final outcome was
written, resumes the others from their last written state, and ends with the same exit
status a run without the kill would have.  The one event being written at the instant
of a kill may be written again by the restarted run.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobwatch._cli._errors import CliError
from jobwatch._cli._model import Node, Run
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict
from jobwatch._snapshot import JobState

__all__ = ["Saved", "StateFile"]

VERSION = 1


@dataclass
class Saved:
    """What a state file held."""

    token: dict[str, Any] = field(default_factory=lambda: {"version": 1, "jobs": []})
    done: list[dict[str, Any]] = field(default_factory=list)

    def done_roots(self) -> set[JobRef]:
        """Top-level jobs whose final outcome was written."""
        return {ref_from_dict(d["ref"]) for d in self.done if d.get("parent") is None}


class StateFile:
    """The ``--state`` file of a run."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def load(self) -> Saved:
        """What the file holds (nothing when it does not exist yet)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Saved()
        except OSError as exc:
            raise CliError(f"cannot read --state {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a jobwatch state file")
            saved = Saved(token=data["token"], done=list(data["done"]))
            saved.done_roots()  # every reference must read back
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"--state {self.path} is not a jobwatch state file ({exc})") from None
        return saved

    def save(self, token: dict[str, Any], run: Run) -> None:
        """Replace the file, atomically, with ``token`` and the finished nodes of ``run``."""
        data = {
            "version": VERSION,
            "token": token,
            "done": [_node(n) for n in run.walk() if n.done],
        }
        directory = self.path.parent
        fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, separators=(",", ":"))
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _node(node: Node) -> dict[str, Any]:
    return {
        "ref": ref_to_dict(node.ref),
        "parent": ref_to_dict(node.parent) if node.parent is not None else None,
        "state": node.state.value if node.state is not None else None,
        "raw_status": node.raw_status,
        "gave_up": node.gave_up,
        "detail": node.detail,
        "failed_subs": node.failed_subs,
        "import_failures": node.import_failures,
    }


def restore(run: Run, saved: Saved) -> None:
    """Put the finished nodes of an earlier run back into ``run`` (parents first)."""
    for entry in saved.done:
        ref = ref_from_dict(entry["ref"])
        parent = ref_from_dict(entry["parent"]) if entry.get("parent") else None
        state = entry.get("state")
        run.restore(
            ref,
            parent,
            state=JobState(state) if state else None,
            raw_status=entry.get("raw_status"),
            gave_up=entry.get("gave_up"),
            detail=entry.get("detail"),
            failed_subs=bool(entry.get("failed_subs")),
            import_failures=int(entry.get("import_failures") or 0),
        )
