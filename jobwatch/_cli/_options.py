"""Options shared by the commands: connection, credentials, numbers, job references.

Everything here runs before any request: a bad value is a usage error (status 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import httpx

from jobwatch import AKSKAuth, EvsJob, GesEngineJob, GesJob, GesVersion, JobRef, TokenAuth
from jobwatch._cli._errors import CliError, echo, keep_secret
from jobwatch._client import check_endpoint
from jobwatch._refs import validate_id

__all__ = [
    "APIS",
    "Connection",
    "api_option",
    "build_refs",
    "connection_options",
    "graph_for",
    "resolve_connection",
    "seconds",
]

APIS = ("evs", "ges-v1", "ges-v2", "ges-engine")
ENV_TOKEN = "JOBWATCH_TOKEN"  # noqa: S105 - a variable name
ENV_ENDPOINT = "JOBWATCH_ENDPOINT"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"

F = TypeVar("F", bound=Callable[..., Any])


def seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Callback of the ``--timeout``-like options: a positive, finite number of seconds."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value!r} is not a positive number of seconds")
    return value


def api_option(help_text: str) -> Callable[[F], F]:
    """``--api``, one of the four APIs."""
    return click.option(
        "--api",
        type=click.Choice(APIS),
        required=True,
        help=help_text,
    )


def connection_options(func: F) -> F:
    """``--endpoint``, ``--project-id``, ``--graph`` and ``--token``, with their variables."""
    decorators = [
        click.option(
            "--endpoint",
            metavar="URL",
            envvar=ENV_ENDPOINT,
            show_envvar=True,
            help="Base URL of the service (for ges-engine: the graph's access address).",
        ),
        click.option(
            "--project-id",
            metavar="ID",
            envvar=ENV_PROJECT_ID,
            show_envvar=True,
            help="Project ID.",
        ),
        click.option(
            "--graph",
            metavar="NAME",
            help="Graph ID (ges-v1, ges-v2) or graph name (ges-engine); required for those.",
        ),
        click.option(
            "--token",
            metavar="TOKEN",
            envvar=ENV_TOKEN,
            show_envvar=True,
            help=(
                f"IAM token, sent as X-Auth-Token.  Without one: AK/SK signing with {ENV_AK}, "
                f"{ENV_SK} (and HUAWEICLOUD_SDK_SECURITY_TOKEN) when set."
            ),
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@dataclass(frozen=True, slots=True)
class Connection:
    """Where to send requests, and how to authenticate them."""

    endpoint: str
    project_id: str
    auth: httpx.Auth | None


def resolve_connection(
    endpoint: str | None, project_id: str | None, token: str | None
) -> Connection:
    """Check endpoint and project ID and pick the credentials; ``CliError`` when unusable."""
    keep_secret(token)
    environ = os.environ
    if not endpoint:
        raise CliError(f"no endpoint: pass --endpoint URL or set {ENV_ENDPOINT}")
    try:
        check_endpoint(endpoint)  # what Client would refuse, refused before any request
    except ValueError as exc:
        raise CliError(f"--endpoint: {exc}") from None
    if not project_id:
        raise CliError(f"no project ID: pass --project-id ID or set {ENV_PROJECT_ID}")
    try:
        validate_id("project ID", project_id)
    except ValueError as exc:
        raise CliError(f"invalid --project-id: {exc}") from None
    return Connection(endpoint, project_id, _credentials(token, environ))


def _credentials(token: str | None, environ: Mapping[str, str]) -> httpx.Auth | None:
    if token:
        return TokenAuth(token)
    ak, sk = environ.get(ENV_AK), environ.get(ENV_SK)
    if ak and sk:
        try:
            return AKSKAuth.from_env(environ)
        except ValueError as exc:  # its messages name variables, never their values
            raise CliError(str(exc)) from None
    if ak or sk:
        present, missing = (ENV_AK, ENV_SK) if ak else (ENV_SK, ENV_AK)
        raise CliError(f"{present} is set but {missing} is not: set both for AK/SK signing")
    echo(
        f"jobwatch: note: no credentials (--token, {ENV_TOKEN}, or {ENV_AK} and {ENV_SK}); "
        "sending unauthenticated requests",
        err=True,
    )
    return None


def graph_for(api: str, graph: str | None) -> str:
    """The checked ``--graph`` of a GES API (``--api evs`` takes none: empty string)."""
    if api == "evs":
        if graph is not None:
            raise CliError("--graph is not used with --api evs")
        return ""
    field = "graph name" if api == "ges-engine" else "graph ID"
    if not graph:
        raise CliError(f"--api {api} needs --graph (the {field})")
    try:
        return validate_id(field, graph)
    except ValueError as exc:
        raise CliError(f"invalid --graph: {exc}") from None


def build_refs(api: str, graph: str | None, job_ids: Sequence[str]) -> list[JobRef]:
    """The job references to watch, in command-line order without repeats."""
    name = graph_for(api, graph)
    version: GesVersion = "v1.0" if api == "ges-v1" else "v2"

    def make(job_id: str) -> JobRef:
        if api == "evs":
            return EvsJob(job_id)
        if api == "ges-engine":
            return GesEngineJob(name, job_id)
        return GesJob(name, job_id, version)

    refs: dict[JobRef, None] = {}
    for job_id in job_ids:
        try:
            refs[make(job_id)] = None
        except ValueError as exc:
            raise CliError(f"invalid JOB_ID: {exc}") from None
    return list(refs)
