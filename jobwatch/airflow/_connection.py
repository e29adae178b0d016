"""Reading a Huawei Cloud connection of Airflow into a hub ``Target``.

The field layout is the one of the existing third-party Huawei Cloud provider
(connection type ``huaweicloud``): login = Access Key ID, password = Secret
Access Key, and in the extra JSON ``project_id`` and ``region``.  A connection
made for that provider works here unchanged.  We add, in the extra:
``endpoint`` (an explicit endpoint, needed for GES engine jobs, which are
served at the graph's own address), ``security_token`` (temporary AK/SK), and
``token`` (an IAM token instead of AK/SK).

This module reads any object with ``login``, ``password`` and ``extra_dejson``
(an Airflow ``Connection``), so it does not import Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from jobwatch._client import Client, check_endpoint
from jobwatch._kinds import kind_of, validate_id
from jobwatch._refs import JobRef
from jobwatch._regions import UnknownRegion, UnknownService
from jobwatch._regions import endpoint_for as regional_endpoint
from jobwatch.airflow._hub import Target

__all__ = [
    "CLIENT_OPTIONS",
    "BadConnection",
    "ConnectionLike",
    "check_client_options",
    "endpoint_for",
    "target_from_connection",
]

#: The ``Client`` options a trigger may set (JSON numbers).
CLIENT_OPTIONS = frozenset({"timeout", "max_in_flight", "max_body_bytes", "unreachable_timeout"})


def check_client_options(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` checked as ``Client`` would check it, now rather than in the triggerer."""
    options = dict(data or {})
    unknown = set(options) - CLIENT_OPTIONS
    if unknown:
        raise ValueError(f"unknown client options: {', '.join(sorted(unknown))}")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise ValueError(f"client option {name} must be a number, not {value!r}")
    try:
        Client("https://options.invalid", "check", **options)  # makes no connection
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad client options: {exc}") from None
    return options


class BadConnection(ValueError):
    """The Airflow connection lacks what the job needs (raised before any request)."""


class ConnectionLike(Protocol):
    """What is read of an Airflow ``Connection``."""

    conn_id: str
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> Any: ...


def endpoint_for(ref: JobRef, region: str) -> str:
    """The endpoint of ``ref``'s service in ``region`` (``BadConnection`` when there is none).

    From jobwatch's region table, with the official SDK's overrides
    (``jobwatch.endpoint_for``).
    """
    try:
        return regional_endpoint(kind_of(ref).name, region)
    except (UnknownService, UnknownRegion) as exc:
        raise BadConnection(str(exc)) from None


def _text(extra: Mapping[str, Any], key: str, conn_id: str) -> str | None:
    # Fields saved by the connection form of older Airflow versions carry a prefix.
    value = extra.get(key, extra.get(f"extra__jobwatch_huaweicloud__{key}"))
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadConnection(f"connection {conn_id!r}: extra {key!r} must be a string")
    return value


def target_from_connection(
    conn: ConnectionLike,
    ref: JobRef,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    project_id: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    extra: object = None,
) -> Target:
    """The hub target for ``ref`` from ``conn``; arguments given here win over its extra.

    The endpoint is ``endpoint``, else the extra's ``endpoint``, else built from
    the region (the argument's, else the extra's).  ``extra``: the connection's
    extra already read (``await conn.aextra_dejson()`` in the triggerer's loop).
    What ``Client`` would refuse (endpoint, project ID) is refused here.
    """
    cid = conn.conn_id
    extra = conn.extra_dejson if extra is None else extra
    if not isinstance(extra, Mapping):
        raise BadConnection(f"connection {cid!r}: its extra must be a JSON object")
    endpoint = endpoint or _text(extra, "endpoint", cid)
    if endpoint is None:
        region = region or _text(extra, "region", cid)
        if region is None:
            raise BadConnection(f"connection {cid!r}: no endpoint and no region in its extra")
        endpoint = endpoint_for(ref, region)
    try:
        endpoint = str(check_endpoint(endpoint)).rstrip("/")  # as Client would read it
    except ValueError as exc:
        raise BadConnection(f"connection {cid!r}: {exc}") from None
    project_id = project_id or _text(extra, "project_id", cid)
    if project_id is None:
        raise BadConnection(f"connection {cid!r}: no project_id in its extra")
    try:
        validate_id("project_id", project_id)
    except ValueError as exc:
        raise BadConnection(f"connection {cid!r}: {exc}") from None
    token = _text(extra, "token", cid)
    if token is not None and (conn.login or conn.password):
        raise BadConnection(f"connection {cid!r}: give login/password (AK/SK) or a token")
    if token is None and not (conn.login and conn.password):
        raise BadConnection(
            f"connection {cid!r}: login (Access Key ID) and password (Secret Access Key) "
            "are needed, or a token in the extra"
        )
    options = tuple(sorted(check_client_options(client_options).items()))
    if token is not None:
        return Target(endpoint, project_id, token=token, client_options=options)
    return Target(
        endpoint,
        project_id,
        ak=conn.login,
        sk=conn.password,
        security_token=_text(extra, "security_token", cid),
        client_options=options,
    )
