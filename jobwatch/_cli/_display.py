"""How a run is shown: JSON Lines, plain lines, or a live rich table.

rich is imported by the display modules only, and only the CLI imports them; here
only when a live table or a printed table is made (a run with ``--json`` or off a
terminal never imports it: it is a tenth of a second of start-up).  What
the server sent (statuses, fail reasons, job IDs) is shown as ``rich.text.Text``,
never read as markup.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from jobwatch import Event, Transition
from jobwatch._cli._errors import echo, shown
from jobwatch._cli._jsonl import JsonReporter
from jobwatch._cli._model import Node, Run, import_note, reason_name
from jobwatch._cli._summary import Summary, summary_lines

if TYPE_CHECKING:
    from rich.console import Console, Group

__all__ = [
    "LiveReporter",
    "PlainReporter",
    "Reporter",
    "is_terminal",
    "print_table",
    "reporter",
]


class Reporter(Protocol):
    """Shows the events of a run as they come, then its summary."""

    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def event(self, event: Event, node: Node) -> None: ...
    def tick(self) -> None: ...
    def finish(self, summary: Summary) -> None: ...


def reporter(run: Run, *, json_lines: bool, title: str = "") -> Reporter:
    """JSON Lines with ``--json``; a live table on a terminal; plain lines otherwise."""
    if json_lines:
        return JsonReporter(run)
    if is_terminal():
        return LiveReporter(run, title)
    return PlainReporter(run, title)


def is_terminal() -> bool:
    """True when stdout is a terminal: live tables then, plain lines otherwise."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty is not None and isatty())


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
            files = f" ({import_note(node)})" if node.import_failures else ""
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
    """On a terminal: a table of every job and sub-job, redrawn in place (see ``_table``)."""

    def __init__(self, run: Run, title: str, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._run = run
        self._title = title
        self._console = console or Console(highlight=False, markup=False)
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
        from rich.text import Text

        self._console.print()
        for line in summary_lines(summary):
            self._console.print(Text(shown(line), style="red" if "!" in line[:4] else ""))

    def render(self) -> Group:
        """The run as the terminal shows it now: head line, trouble line, table."""
        from jobwatch._cli._table import live_view

        size = self._console.size
        return live_view(self._run, self._title, width=size.width, height=size.height)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Print a rich table on stdout (``jobwatch list`` on a terminal); cells are text,
    never markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(shown(title)), header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(shown(cell)) for cell in row))
    Console(highlight=False, markup=False).print(table)
