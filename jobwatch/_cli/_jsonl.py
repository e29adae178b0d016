"""``--json``: the JSON Lines a run writes, one object per event and a summary at the end.

The contract is ``events.schema.json`` next to this module (JSON Schema 2020-12,
shipped in the package): read it with ``schema()``.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib import resources
from types import TracebackType
from typing import Any, Self

from jobwatch import Event, Transition
from jobwatch._cli._errors import echo
from jobwatch._cli._model import Node, Run, api_of, graph_of, reason_name
from jobwatch._cli._summary import Summary, summary_json

__all__ = ["JsonReporter", "event_json", "schema"]


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of every line ``--json`` writes (``events.schema.json``)."""
    text = resources.files(__package__ or "jobwatch._cli").joinpath("events.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(event: Event, run: Run) -> dict[str, Any]:
    """The JSON Lines object of one event (the documented contract)."""
    head = {
        "api": api_of(event.ref),
        "graph": graph_of(event.ref),
        "job_id": event.ref.job_id,
        "parent_id": event.parent.job_id if event.parent is not None else None,
    }
    if isinstance(event, Transition):
        snapshot = event.snapshot
        detail = snapshot.import_detail
        return {
            "event": "transition",
            **head,
            "state": event.state.value,
            "previous": event.previous.value if event.previous is not None else None,
            "final": event.final,
            "raw_status": snapshot.raw_status,
            "at": _at(event.observed_at),
            "fail_reason": snapshot.fail_reason,
            "error_code": snapshot.error_code,
            "import_failures": len(detail.problems) if detail is not None else 0,
            "failed_sub_jobs": [sub.ref.job_id for sub in event.failed_sub_jobs],
        }
    cause = run.trouble.last_error(event.ref, event.error)
    return {
        "event": "gave_up",
        **head,
        "reason": reason_name(event.reason),
        "message": event.message,
        "at": _at(event.observed_at),
        "error": cause.error if cause is not None else None,
        "cause": cause.cause if cause is not None else None,
    }


class JsonReporter:
    """``--json``: one JSON object per event on stdout, flushed per line, then the summary."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def event(self, event: Event, node: Node) -> None:
        """Write the event's line."""
        echo(json.dumps(event_json(event, self._run), ensure_ascii=False), exact=True)

    def tick(self) -> None:
        """Nothing: JSON Lines are written per event."""
        return None

    def finish(self, summary: Summary) -> None:
        """Write the ``{"event": "summary", ...}`` line."""
        echo(json.dumps(summary_json(summary), ensure_ascii=False), exact=True)
