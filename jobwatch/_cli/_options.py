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

from jobwatch import AKSKAuth, JobRef, TokenAuth
from jobwatch._apis import ApiWord, api_words
from jobwatch._cli._errors import CliError, echo, keep_secret
from jobwatch._client import check_endpoint
from jobwatch._refs import validate_id
from jobwatch._regions import endpoint_for

__all__ = [
    "APIS",
    "Connection",
    "api_option",
    "build_refs",
    "connection_options",
    "endpoint_or_region",
    "graph_for",
    "locate",
    "resolve_connection",
    "resolve_credentials",
    "seconds",
]

APIS = tuple(api_words())
ENV_TOKEN = "JOBWATCH_TOKEN"  # noqa: S105 - a variable name
ENV_ENDPOINT = "JOBWATCH_ENDPOINT"
ENV_REGION = "JOBWATCH_REGION"
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"

F = TypeVar("F", bound=Callable[..., Any])


def seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Callback of the ``--timeout``-like options: a positive, finite number of seconds."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value!r} is not a positive number of seconds")
    return value


def api_option(help_text: str, *, required: bool = True) -> Callable[[F], F]:
    """``--api``, one word per service (``jobwatch._apis``)."""
    return click.option(
        "--api",
        type=click.Choice(APIS),
        required=required,
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
            help=(
                "Base URL of the service (for ges-engine: the graph's access address); "
                "wins over --region."
            ),
        ),
        click.option(
            "--region",
            metavar="REGION",
            envvar=ENV_REGION,
            show_envvar=True,
            help=(
                "Region ID (cn-north-4, ap-southeast-1...): the endpoint of --api there, "
                "from jobwatch's region table (HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION} "
                "overrides it, as in the official SDK)."
            ),
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


def endpoint_or_region(endpoint: str | None, region: str | None) -> tuple[str | None, str | None]:
    """``--endpoint`` or ``--region``, whichever wins (the other None).

    ``--endpoint`` wins, unless it came from its variable and ``--region`` from the
    command line: what is typed beats what is set.
    """
    if endpoint is None or region is None:
        return endpoint, region
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        typed = click.core.ParameterSource.COMMANDLINE
        if ctx.get_parameter_source("region") == typed != ctx.get_parameter_source("endpoint"):
            return None, region
    return endpoint, None


def locate(api: str, region: str) -> str:
    """The endpoint of ``api`` in ``region`` (``ValueError`` for an unknown one)."""
    return endpoint_for(api, region)


def resolve_connection(
    endpoint: str | None,
    project_id: str | None,
    token: str | None,
    *,
    api: str | None = None,
    region: str | None = None,
) -> Connection:
    """Check endpoint (or region) and project ID and pick the credentials; ``CliError``
    when unusable."""
    keep_secret(token)
    endpoint, region = endpoint_or_region(endpoint, region)
    if region is not None and api is not None:
        try:
            endpoint = locate(api, region)
        except ValueError as exc:
            raise CliError(f"--region: {exc}") from None
    if not endpoint:
        raise CliError(
            f"no endpoint: pass --endpoint URL or set {ENV_ENDPOINT} (or give --region REGION)"
        )
    try:
        check_endpoint(endpoint)  # what Client would refuse, refused before any request
    except ValueError as exc:
        raise CliError(f"--endpoint: {exc}") from None
    if not project_id:
        raise CliError(f"no project ID: pass --project-id ID or set {ENV_PROJECT_ID}")
    auth, project = resolve_credentials(project_id, token)
    assert project is not None
    return Connection(endpoint, project, auth)


def resolve_credentials(
    project_id: str | None, token: str | None
) -> tuple[httpx.Auth | None, str | None]:
    """The credentials, and the checked ``--project-id`` (None when not given)."""
    keep_secret(token)
    if project_id:  # checked before the credentials' note
        try:
            validate_id("project ID", project_id)
        except ValueError as exc:
            raise CliError(f"invalid --project-id: {exc}") from None
    return _credentials(token, os.environ), project_id or None


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
    """The checked ``--graph`` of an API in a graph (empty string for the others)."""
    word = _word(api)
    if word.graph_key is None:
        if graph is not None:
            raise CliError(f"--graph is not used with --api {api}")
        return ""
    if not graph:
        raise CliError(f"--api {api} needs --graph (the {word.graph_label})")
    try:
        return validate_id(word.graph_label, graph)
    except ValueError as exc:
        raise CliError(f"invalid --graph: {exc}") from None


def _word(api: str) -> ApiWord:
    word = api_words().get(api)
    if word is None:  # (click's Choice lets none through)
        raise CliError(f"unknown --api {api}")
    return word


def build_refs(api: str, graph: str | None, job_ids: Sequence[str]) -> list[JobRef]:
    """The job references to watch, in command-line order without repeats."""
    name = graph_for(api, graph) or None
    word = _word(api)
    refs: dict[JobRef, None] = {}
    for job_id in job_ids:
        try:
            refs[word.ref(job_id, name)] = None
        except ValueError as exc:
            raise CliError(f"invalid JOB_ID: {exc}") from None
    return list(refs)
