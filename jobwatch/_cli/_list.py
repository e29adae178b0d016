"""``jobwatch list``: the jobs an API lists (how lost job IDs are found again).

``--api ges-engine``: the jobs a GES graph engine keeps (``--graph``: the graph
name, required).  ``--api ges-v1`` / ``ges-v2``: the management plane's job
list of the project (``--graph``: optional, the related graph's *name*, which
the API filters on).  EVS has no job list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import click

from jobwatch import Client, GesVersion, JobSnapshot, JobwatchError
from jobwatch._cli import _display
from jobwatch._cli._errors import EXIT_OK, ApiError, CliError, echo
from jobwatch._cli._logs import log_options
from jobwatch._cli._options import api_option, connection_options, graph_for, resolve_connection
from jobwatch._dialects import _ges
from jobwatch._refs import validate_id

__all__ = ["job_json", "list_jobs"]

_KEYS = ("job_id", "status", "state", "command")
LISTED_APIS = ("ges-engine", "ges-v1", "ges-v2")


def job_json(snapshot: JobSnapshot) -> dict[str, Any]:
    """The JSON Lines object of one listed engine job."""
    return {
        "job_id": snapshot.ref.job_id,
        "status": snapshot.raw_status,
        "state": snapshot.state.value,
        "command": _command(snapshot),
    }


def _command(snapshot: JobSnapshot) -> str | None:
    command = snapshot.request.get("command") if snapshot.request else None
    return command if isinstance(command, str) else snapshot.job_type


async def _engine_rows(client: Client, graph_name: str) -> AsyncIterator[dict[str, Any]]:
    async with aclosing(client.list_engine_jobs(graph_name)) as snapshots:
        async for snapshot in snapshots:
            yield job_json(snapshot)


async def _ges_rows(
    client: Client, version: GesVersion, graph_name: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The management job list: ``command`` is the job's name (``ImportGraph``...)."""
    async with aclosing(_ges.list_jobs(client, version, graph_name=graph_name)) as entries:
        async for job_id, entry in entries:
            status, state, name = _ges.summary(entry)
            yield {"job_id": job_id, "status": status, "state": state.value, "command": name}


def _graph_filter(graph: str | None) -> str | None:
    if graph is None:
        return None
    try:
        return validate_id("graph name", graph)
    except ValueError as exc:
        raise CliError(f"invalid --graph: {exc}") from None


@click.command("list")
@api_option(
    "Which job API: ges-engine (the jobs of --graph), ges-v1 or ges-v2 (the project's "
    "management jobs, --graph filtering on the graph's name); evs has no job list."
)
@connection_options
@click.option("--json", "json_lines", is_flag=True, help="Write JSON Lines: one object per job.")
@log_options
def list_jobs(
    api: str,
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    graph: str | None,
    token: str | None,
    json_lines: bool,
) -> int:
    """List the jobs an API keeps, every page of them.

    Exit status: 0 when listed (even if empty), 3 when the API refused or could
    not be reached, 2 for usage errors.
    """
    if api not in LISTED_APIS:
        raise CliError(f"list works with --api {', '.join(LISTED_APIS)}; {api} has no job list")
    if api == "ges-engine":
        graph_name: str | None = graph_for(api, graph)
        what = f"graph {graph_name}"
    else:
        graph_name = _graph_filter(graph)
        what = f"{api} project" + (f" (graph {graph_name})" if graph_name else "")
    conn = resolve_connection(endpoint, project_id, token, api=api, region=region)
    version: GesVersion = "v1.0" if api == "ges-v1" else "v2"

    async def main() -> list[dict[str, Any]]:
        async with Client(conn.endpoint, conn.project_id, auth=conn.auth) as client:
            rows = (
                _engine_rows(client, graph_name or "")
                if api == "ges-engine"
                else _ges_rows(client, version, graph_name)
            )
            return [row async for row in rows]

    try:
        jobs = anyio.run(main, backend="asyncio")
    except JobwatchError as exc:
        raise ApiError(f"listing the jobs of {what} failed: {exc}") from None
    rows = [[str(job[key] or "-") for key in _KEYS] for job in jobs]
    if json_lines:
        for job in jobs:
            echo(json.dumps(job, ensure_ascii=False), exact=True)
    elif not jobs:
        echo(f"jobwatch: {what} has no jobs", err=True)
    elif _display.is_terminal():
        _display.print_table(f"jobs of {what}", _KEYS, rows)
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(len(_KEYS) - 1)]
        for row in rows:
            echo(
                "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
            )
    return EXIT_OK
