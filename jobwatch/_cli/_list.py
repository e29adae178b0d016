"""``jobwatch list``: the jobs a GES graph engine keeps (how lost job IDs are found again)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import click

from jobwatch import Client, JobSnapshot, JobwatchError
from jobwatch._cli import _display
from jobwatch._cli._errors import EXIT_OK, ApiError, CliError, echo
from jobwatch._cli._logs import log_options
from jobwatch._cli._options import api_option, connection_options, graph_for, resolve_connection

__all__ = ["job_json", "list_jobs"]

_KEYS = ("job_id", "status", "state", "command")


def job_json(snapshot: JobSnapshot) -> dict[str, Any]:
    """The JSON Lines object of one listed job."""
    return {
        "job_id": snapshot.ref.job_id,
        "status": snapshot.raw_status,
        "state": snapshot.state.value,
        "command": _command(snapshot),
    }


def _command(snapshot: JobSnapshot) -> str | None:
    command = snapshot.request.get("command") if snapshot.request else None
    return command if isinstance(command, str) else snapshot.job_type


@click.command("list")
@api_option("Which job API; only ges-engine can list its jobs for now.")
@connection_options
@click.option("--json", "json_lines", is_flag=True, help="Write JSON Lines: one object per job.")
@log_options
def list_jobs(
    api: str,
    endpoint: str | None,
    project_id: str | None,
    graph: str | None,
    token: str | None,
    json_lines: bool,
) -> int:
    """List the jobs of a GES graph engine, every page of them.

    Exit status: 0 when listed (even if empty), 3 when the API refused or could
    not be reached, 2 for usage errors.
    """
    if api != "ges-engine":
        raise CliError(f"list works only with --api ges-engine for now, not {api}")
    graph_name = graph_for(api, graph)
    conn = resolve_connection(endpoint, project_id, token)

    async def main() -> list[JobSnapshot]:
        async with Client(conn.endpoint, conn.project_id, auth=conn.auth) as client:
            return [snapshot async for snapshot in client.list_engine_jobs(graph_name)]

    try:
        jobs = anyio.run(main, backend="asyncio")
    except JobwatchError as exc:
        raise ApiError(f"listing the jobs of graph {graph_name} failed: {exc}") from None
    rows = [[str(job_json(snapshot)[key] or "-") for key in _KEYS] for snapshot in jobs]
    if json_lines:
        for snapshot in jobs:
            echo(json.dumps(job_json(snapshot), ensure_ascii=False), exact=True)
    elif not jobs:
        echo(f"jobwatch: graph {graph_name} has no jobs", err=True)
    elif _display.is_terminal():
        _display.print_table(f"jobs of graph {graph_name}", _KEYS, rows)
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(len(_KEYS) - 1)]
        for row in rows:
            echo(
                "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
            )
    return EXIT_OK
