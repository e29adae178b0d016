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

import re
from collections.abc import Mapping
from typing import Any, Protocol

from jobwatch._kinds import kind_of
from jobwatch._refs import JobRef
from jobwatch.airflow._hub import Target

__all__ = ["BadConnection", "ConnectionLike", "endpoint_for", "target_from_connection"]

_REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-[0-9]+")

# The host of each API's service in a region: Huawei's endpoint pattern,
# https://{service}.{region}.myhuaweicloud.com (the official SDK's region lists).
_SERVICE_OF_API = {"evs": "evs", "ges": "ges"}


class BadConnection(ValueError):
    """The Airflow connection lacks what the job needs (raised before any request)."""


class ConnectionLike(Protocol):
    """What is read of an Airflow ``Connection``."""

    conn_id: str
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def endpoint_for(ref: JobRef, region: str) -> str:
    """The endpoint of ``ref``'s service in ``region`` (``BadConnection`` when there is none)."""
    api = kind_of(ref).name
    service = _SERVICE_OF_API.get(api)
    if service is None:
        raise BadConnection(
            f"{api} jobs are served at the graph's own address: give an endpoint, not a region"
        )
    if not _REGION.fullmatch(region):
        raise BadConnection(f"{region!r} is not a region name (like cn-north-4)")
    return f"https://{service}.{region}.myhuaweicloud.com"


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
) -> Target:
    """The hub target for ``ref`` from ``conn``; arguments given here win over its extra.

    The endpoint is ``endpoint``, else the extra's ``endpoint``, else built from
    the region (the argument's, else the extra's).
    """
    cid = conn.conn_id
    extra = conn.extra_dejson
    endpoint = endpoint or _text(extra, "endpoint", cid)
    if endpoint is None:
        region = region or _text(extra, "region", cid)
        if region is None:
            raise BadConnection(f"connection {cid!r}: no endpoint and no region in its extra")
        endpoint = endpoint_for(ref, region)
    if not re.fullmatch(r"https?://[^/?#@\s]+", endpoint.rstrip("/")):
        raise BadConnection(
            f"connection {cid!r}: {endpoint!r} is not an endpoint (https://host[:port])"
        )
    project_id = project_id or _text(extra, "project_id", cid)
    if project_id is None:
        raise BadConnection(f"connection {cid!r}: no project_id in its extra")
    token = _text(extra, "token", cid)
    if token is not None and (conn.login or conn.password):
        raise BadConnection(f"connection {cid!r}: give login/password (AK/SK) or a token")
    if token is None and not (conn.login and conn.password):
        raise BadConnection(
            f"connection {cid!r}: login (Access Key ID) and password (Secret Access Key) "
            "are needed, or a token in the extra"
        )
    options = tuple(sorted((client_options or {}).items()))
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
