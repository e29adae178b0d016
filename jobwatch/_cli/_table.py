"""The live table: readable on an 80-column terminal, with hundreds of jobs.

The state column is always as wide as its longest word; job IDs too long for their
column are shortened in the middle, keeping both ends (``3f2a…9c1d``); when the
jobs do not fit the terminal's height, failed, given-up and running jobs are shown
first and the others counted in one line; a status line shows throttling and
connection failures as they happen.  Every cell is ``Text``: never markup.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from jobwatch import JobState
from jobwatch._cli._errors import redact
from jobwatch._cli._errors import shown as visible
from jobwatch._cli._model import Node, Run, api_of, graph_of, import_note, label

__all__ = ["live_view", "shorten_middle"]

_STYLES = {
    "pending": "dim",
    "running": "yellow",
    "succeeded": "green",
    "failed": "bold red",
    "unknown": "magenta",
    "gave up": "bold magenta",
}
_COLUMNS = ("job", "state", "elapsed", "sub-jobs", "detail")
_GAP = 2  # rich's padding between two columns (box=None, pad_edge=False)
_OTHER_LINES = 5  # head, status, header, "... and N more", and one to spare
_MIN_ROWS = 5
_MIN_JOB = 12  # narrowest job column
_MIN_DETAIL = 8  # a narrower detail column is left empty


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with ``…``.

    Both ends stay (``3f2a8c…e09c1d``): job IDs that differ at the start or the end
    stay apart.
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return f"{text[:head]}…{text[len(text) - (keep - head) :]}"


def _rank(node: Node) -> int:
    """Who is shown first when not all fit: trouble, running, open, then the rest."""
    if node.failed or node.gave_up is not None or node.failed_subs or node.import_failures:
        return 0
    if node.state is JobState.RUNNING:
        return 1
    if not node.done:
        return 2
    return 3


def _shown(nodes: list[Node], room: int) -> tuple[list[Node], list[Node]]:
    """The nodes to show (in tree order) and those left out."""
    if len(nodes) <= room:
        return nodes, []
    order = sorted(range(len(nodes)), key=lambda i: (_rank(nodes[i]), i))
    keep = set(order[: room - 1])  # one row for "... and N more"
    return (
        [n for i, n in enumerate(nodes) if i in keep],
        [n for i, n in enumerate(nodes) if i not in keep],
    )


def _counts(nodes: list[Node]) -> str:
    counts = Counter(label(node) for node in nodes)
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def live_view(run: Run, title: str, *, width: int, height: int) -> Group:
    """The run as the terminal shows it: a head line, a status line, then the table."""
    nodes = list(run.walk())
    roots = [run.nodes[ref] for ref in run.roots]
    places = {(api_of(n.ref), graph_of(n.ref)) for n in roots}
    # One API and graph: said once in the head line, not on every row.
    bare = len(places) == 1
    shown, hidden = _shown(nodes, max(height - _OTHER_LINES, _MIN_ROWS))

    head = Text(f"{title}  " if title else "", style="bold")
    if bare and roots:
        ((api, graph),) = places
        head.append(f"{api}{f' {graph}' if graph else ''} · ")
    head.append(f"{run.elapsed():.1f}s · ")
    head.append(_counts(nodes).replace(", ", " · "))
    parts: list[Text | Table] = [head]
    if trouble := run.trouble.line():
        parts.append(Text(visible(trouble), style="yellow"))

    rows = [
        (
            node.ref.job_id if bare or node.parent else str(node.ref),
            label(node),
            f"{run.elapsed(node):.1f}s",
            run.progress(node),
            redact(node.detail or import_note(node) or node.raw_status or ""),
        )
        for node in shown
    ]
    indents = ["  " * node.depth for node in shown]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
    widths[0] = max([widths[0], *(len(i) + len(r[0]) for i, r in zip(indents, rows, strict=True))])
    fixed = widths[1] + widths[2] + widths[3] + _GAP * (len(_COLUMNS) - 1)
    room = max(width - fixed, _MIN_JOB)
    job = min(widths[0], max(_MIN_JOB, room - min(widths[4], room // 2)))
    detail = room - job
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, size in zip(_COLUMNS, (job, widths[1], widths[2], widths[3], detail), strict=True):
        table.add_column(name, width=max(size, 0), no_wrap=True, overflow="ellipsis")
    for indent, (name, state, elapsed, progress, text) in zip(indents, rows, strict=True):
        style = _STYLES.get(state.split(" (")[0], "")
        table.add_row(
            Text(indent + shorten_middle(visible(name), max(job - len(indent), 4))),
            Text(state, style=style),
            Text(elapsed),
            Text(progress),
            Text(visible(text) if detail >= _MIN_DETAIL else ""),
        )
    parts.append(table)
    if hidden:
        parts.append(Text(f"… and {len(hidden)} more ({_counts(hidden)})", style="dim"))
    return Group(*parts)
