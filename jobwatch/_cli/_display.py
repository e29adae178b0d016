"""How a run is shown: JSON Lines, plain lines, or a live rich table.

rich is imported here only, and only the CLI imports this module.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from jobwatch import Event, Transition
from jobwatch._cli._errors import echo, redact
from jobwatch._cli._model import Node, Run, reason_name
from jobwatch._cli._summary import Summary, summary_json, summary_lines

__all__ = [
    "JsonReporter",
    "LiveReporter",
    "PlainReporter",
    "Reporter",
    "event_json",
    "is_terminal",
    "print_table",
    "reporter",
]

_STYLES = {
    "pending": "dim",
    "running": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "unknown": "magenta",
    "gave up": "bold magenta",
}


class Reporter(Protocol):
    """Shows the events of a run as they come, then its summary."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def event(self, event: Event, node: Node) -> None: ...
    def tick(self) -> None: ...
    def finish(self, summary: Summary) -> None: ...


def reporter(
    run: Run, *, json_lines: bool, summary_json: bool = False, title: str = ""
) -> Reporter:
    """JSON Lines with ``--json``; a live table on a terminal; plain lines otherwise."""
    if json_lines:
        return JsonReporter(summary_json=summary_json)
    if is_terminal():
        return LiveReporter(run, title)
    return PlainReporter(run, title)


def is_terminal() -> bool:
    """True when stdout is a terminal: live tables then, plain lines otherwise."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty is not None and isatty())


def event_json(event: Event) -> dict[str, Any]:
    """The JSON Lines object of one event (the documented contract)."""
    parent = event.parent.job_id if event.parent is not None else None
    if isinstance(event, Transition):
        snapshot = event.snapshot
        return {
            "event": "transition",
            "job_id": event.ref.job_id,
            "parent_id": parent,
            "state": event.state.value,
            "previous": event.previous.value if event.previous is not None else None,
            "raw_status": snapshot.raw_status,
            "at": event.observed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "fail_reason": snapshot.fail_reason,
            "error_code": snapshot.error_code,
        }
    return {
        "event": "gave_up",
        "job_id": event.ref.job_id,
        "parent_id": parent,
        "reason": reason_name(event.reason),
        "message": event.message,
    }


class JsonReporter:
    """``--json``: one JSON object per event on stdout, flushed per line."""

    def __init__(self, *, summary_json: bool) -> None:
        self._summary = summary_json

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def event(self, event: Event, node: Node) -> None:
        echo(json.dumps(event_json(event), ensure_ascii=False))

    def tick(self) -> None:
        return None

    def finish(self, summary: Summary) -> None:
        if self._summary:
            echo(json.dumps(summary_json(summary)))


class PlainReporter:
    """Off a terminal: one readable line per event, then the summary."""

    def __init__(self, run: Run, title: str) -> None:
        self._run = run
        self._title = title

    def __enter__(self) -> Self:
        if self._title:
            echo(self._title)
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def event(self, event: Event, node: Node) -> None:
        where = f" (in {event.parent})" if event.parent is not None else ""
        head = f"[{self._run.elapsed():7.2f}s] {event.ref}{where}:"
        if isinstance(event, Transition):
            raw = f" ({event.snapshot.raw_status})" if event.snapshot.raw_status else ""
            move = event.state.value
            if event.previous is not None:
                move = f"{event.previous.value} -> {move}"
            reason = f": {event.snapshot.fail_reason}" if event.snapshot.fail_reason else ""
            files = f" ({_import_note(node)})" if node.import_failures else ""
            echo(f"{head} {move}{raw}{reason}{files}")
        else:
            echo(f"{head} gave up ({reason_name(event.reason)}): {event.message}")

    def tick(self) -> None:
        return None

    def finish(self, summary: Summary) -> None:
        echo("")
        for line in summary_lines(summary):
            echo(line)


class LiveReporter:
    """On a terminal: a table of every job and sub-job, redrawn in place."""

    def __init__(self, run: Run, title: str, console: Console | None = None) -> None:
        self._run = run
        self._title = title
        self._console = console or Console(highlight=False)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)

    def __enter__(self) -> Self:
        self._live.start()
        self.tick()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.tick()
        self._live.stop()

    def event(self, event: Event, node: Node) -> None:
        return None  # the next tick shows it

    def tick(self) -> None:
        self._live.update(self.render(), refresh=True)

    def finish(self, summary: Summary) -> None:
        self._console.print()
        for line in summary_lines(summary):
            self._console.print(Text(redact(line), style="red" if "!" in line[:4] else ""))

    def render(self) -> Group:
        """The table of the run (open and troubled jobs first when it is too tall)."""
        run = self._run
        nodes = list(run.walk())
        counts = Counter(_label(node) for node in nodes)
        caption = " · ".join(f"{count} {name}" for name, count in sorted(counts.items()))
        room = max(self._console.size.height - 8, 5)
        shown = nodes
        if len(nodes) > room:  # open and troubled jobs first, then the others, in tree order
            first = [i for i, n in enumerate(nodes) if not n.done or _troubled(n)]
            rest = [i for i, n in enumerate(nodes) if n.done and not _troubled(n)]
            shown = [nodes[i] for i in sorted((first + rest)[:room])]
        hidden = len(nodes) - len(shown[:room])
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("job", "state", "elapsed", "sub-jobs", "detail"):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for node in shown[:room]:
            label = _label(node)
            name = str(node.ref) if node.parent is None else node.ref.job_id
            table.add_row(
                "  " * node.depth + name,
                Text(label, style=_STYLES.get(label.split(" (")[0], "")),
                f"{run.elapsed(node):.1f}s",
                run.progress(node),
                redact(node.detail or _import_note(node) or node.raw_status or ""),
            )
        if hidden:
            table.add_row(f"... and {hidden} more", "", "", "", "")
        head = Text(f"{self._title}  " if self._title else "", style="bold")
        head.append(f"{run.elapsed():.1f}s · {caption}")
        return Group(head, table)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a rich table on stdout (``jobwatch list`` on a terminal)."""
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(redact(cell) for cell in row))
    Console(highlight=False).print(table)


def _troubled(node: Node) -> bool:
    return node.failed or node.gave_up is not None or node.failed_subs or node.import_failures > 0


def _import_note(node: Node) -> str:
    count = node.import_failures
    return f"{count} import file(s) failed or partly failed" if count else ""


def _label(node: Node) -> str:
    if node.gave_up is not None:
        return f"gave up ({node.gave_up})"
    return node.state.value if node.state is not None else "not seen"
