"""The endpoint of a service in a region: Huawei Cloud's regions, per service.

Huawei's endpoint pattern is ``https://{service}.{region}.myhuaweicloud.com``
("Regions and Endpoints"; each service's API reference, "Endpoints").  Which
regions each service is in, and the hosts that break the pattern, are those of
the official Python SDK's region lists (``huaweicloudsdkXXX/vN/region/``, the
``XXXRegion.static_fields``) at the version named by ``SDK_VERSION``;
``tests/test_regions.py`` checks every entry against them.

The exceptions to the pattern, all from those lists:

- ``eu-west-101`` (EU-Dublin) is served on ``myhuaweicloud.eu`` by CCE, RDS and
  GES (``cce.eu-west-101.myhuaweicloud.eu``), and on ``myhuaweicloud.com`` by
  the others here (EVS, ECS, VPC, IMS, DCS);
- SDRS in ``ap-southeast-2`` (AP-Bangkok) is ``sdrs.ap-southeast-3.myhuaweicloud.com``
  in every language's SDK, while SDRS's "BRS Endpoints" page (sdrs_ad_0003)
  lists ``sdrs.ap-southeast-2.myhuaweicloud.com``: the SDK's host is kept, since
  it is where the SDK sent the requests that made the jobs.

Overrides, as the official SDK reads them (``huaweicloudsdkcore/region/provider.py``,
``EnvRegionProvider``): the environment variable
``HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}``, with the SDK's service name
upper-cased (``EVS``, ``GES``, ``DEH``...) and the region's ``-`` written ``_``
and upper-cased (``HUAWEICLOUD_SDK_REGION_ECS_CN_NORTH_4``), holds the endpoint
(a comma-separated list for the SDK's fail-over: jobwatch uses the first).  As
in the SDK it wins over the table and names a region the table may lack.  The
SDK's profile file (``ProfileRegionProvider``: ``~/.huaweicloud/regions.yaml``,
or the file ``HUAWEICLOUD_SDK_REGIONS_FILE`` names) comes next, read as the SDK
reads it; reading it takes PyYAML (a dependency of the SDK, not of jobwatch):
when the file is there and PyYAML is not, ``endpoint_for`` says so rather than
ignore the file.  It is read at each call (the SDK reads it once per process).
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobwatch._exceptions import JobwatchError

__all__ = [
    "SDK_VERSION",
    "UnknownRegion",
    "UnknownService",
    "check_service",
    "endpoint_for",
    "env_variable",
    "regions_of",
    "services",
]

#: The version of the official SDK (``huaweicloudsdk*``) whose region lists the table matches.
SDK_VERSION = "3.1.219"

#: The prefix of the SDK's override variables (``EnvRegionProvider._REGION_ENV_PREFIX``).
ENV_PREFIX = "HUAWEICLOUD_SDK_REGION"
#: The variable naming the SDK's profile file (``ProfileRegionCache._REGIONS_FILE_ENV_NAME``).
REGIONS_FILE_ENV = "HUAWEICLOUD_SDK_REGIONS_FILE"

_COM = "myhuaweicloud.com"
_EU = "myhuaweicloud.eu"
_DUBLIN = "eu-west-101"


def _ids(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: The regions of the widest lists (EVS, VPC, DCS, RDS).
_ALL = _ids(
    """
    ae-ad-1 af-north-1 af-south-1 ap-southeast-1 ap-southeast-2 ap-southeast-3
    ap-southeast-4 ap-southeast-5 cn-east-2 cn-east-3 cn-east-4 cn-east-5 cn-north-1
    cn-north-11 cn-north-12 cn-north-2 cn-north-4 cn-north-9 cn-south-1 cn-south-2
    cn-south-4 cn-southwest-2 cn-southwest-3 eu-west-0 eu-west-101 la-north-2
    la-south-2 me-east-1 my-kualalumpur-1 na-mexico-1 ru-moscow-1 ru-northwest-2
    sa-brazil-1 tr-west-1
    """
)
_GES = _ids(
    """
    ap-southeast-1 ap-southeast-3 cn-east-3 cn-north-1 cn-north-2 cn-north-4
    cn-south-1 eu-west-101 ru-moscow-1
    """
)

#: What a region id looks like (``cn-north-4``, ``my-kualalumpur-1``, ``eu-west-101``).
_REGION_ID = re.compile(r"[a-z]{2}(-[a-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class _Service:
    """Where one service is served: its host label, regions and exceptions."""

    host: str  # the first label of its hosts: evs.{region}.myhuaweicloud.com
    sdk_name: str  # the SDK's name of it, in its override variables
    regions: frozenset[str]
    eu: bool = False  # eu-west-101 on myhuaweicloud.eu
    hosts: Mapping[str, str] = field(default_factory=dict)  # region -> host, off the pattern

    def host_in(self, region: str) -> str:
        odd = self.hosts.get(region)
        if odd is not None:
            return odd
        domain = _EU if self.eu and region == _DUBLIN else _COM
        return f"{self.host}.{region}.{domain}"


def _service(
    name: str, regions: frozenset[str], *, eu: bool = False, hosts: Mapping[str, str] | None = None
) -> _Service:
    return _Service(name, name.upper(), regions, eu, hosts or {})


_EVS = _service("evs", _ALL)
_IMS = _service("ims", _ALL - {"ru-northwest-2"})
_GES_HOSTS = _service("ges", _GES, eu=True)

#: jobwatch's API names -> where the API is served (``ges`` is the GesJob kind's name).
_SERVICES: Mapping[str, _Service] = {
    "evs": _EVS,
    "evs-v2": _EVS,
    "ecs": _service("ecs", _ALL - {"ru-northwest-2"}),
    "bms": _service(
        "bms",
        _ALL - {"ae-ad-1", "af-north-1", "ap-southeast-5", "cn-north-12", "eu-west-0", _DUBLIN},
    ),
    "vpc": _service("vpc", _ALL),
    "ims": _IMS,
    "ims-cloudimages": _IMS,  # (IMS's /v1/cloudimages/job/{job_id}, on the IMS endpoint)
    "deh": _service(
        "deh",
        _ids(
            """
            ap-southeast-1 ap-southeast-2 ap-southeast-3 cn-east-2 cn-east-3 cn-north-1
            cn-north-2 cn-north-4 cn-south-1 cn-southwest-2 my-kualalumpur-1 sa-brazil-1
            """
        ),
    ),
    "sdrs": _service(
        "sdrs",
        _ids("af-south-1 ap-southeast-2 ap-southeast-3 cn-east-2 cn-east-3 cn-north-4 cn-south-1"),
        hosts={"ap-southeast-2": f"sdrs.ap-southeast-3.{_COM}"},
    ),
    "dcs": _service("dcs", _ALL),
    "cce": _service("cce", _ALL - {"cn-southwest-3"}, eu=True),
    "rds": _service("rds", _ALL, eu=True),
    "ges": _GES_HOSTS,
    "ges-v1": _GES_HOSTS,
    "ges-v2": _GES_HOSTS,
}

#: APIs served at an address of their own, not at a regional endpoint.
_NO_REGIONAL_ENDPOINT = {
    "ges-engine": "ges-engine jobs are served at the graph's own access address "
    "(the graph's details in the GES console): give that endpoint, not a region",
}


class UnknownService(JobwatchError, ValueError):
    """No regional endpoint is known for this service name (``service``; ``suggestions``:
    close names).  Raised before any request."""

    def __init__(self, message: str, *, service: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.service = service
        self.suggestions = suggestions


class UnknownRegion(JobwatchError, ValueError):
    """The service is not known in this region (``service``, ``region``; ``suggestions``:
    close region ids).  Raised before any request."""

    def __init__(
        self, message: str, *, service: str, region: str, suggestions: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.service = service
        self.region = region
        self.suggestions = suggestions


def services() -> tuple[str, ...]:
    """The service names ``endpoint_for`` knows, sorted."""
    return tuple(sorted(_SERVICES))


def check_service(service: str) -> str:
    """``service`` when it names one of jobwatch's APIs, with or without a regional
    endpoint (``ges-engine``); else ``UnknownService``."""
    if isinstance(service, str) and service in _NO_REGIONAL_ENDPOINT:
        return service
    _lookup(service)
    return service


def regions_of(service: str) -> frozenset[str]:
    """The region ids of ``service`` in the table (``UnknownService`` for another name)."""
    return _lookup(service).regions


def env_variable(service: str, region: str) -> str:
    """The variable the official SDK reads for ``service``'s endpoint in ``region``.

    ``HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}``: the SDK's service name
    upper-cased, the region's ``-`` replaced by ``_`` and upper-cased.
    """
    spec = _lookup(service)
    return f"{ENV_PREFIX}_{spec.sdk_name.upper()}_{region.replace('-', '_').upper()}"


def endpoint_for(service: str, region: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The endpoint (``https://host``) of jobwatch's API ``service`` in ``region``.

    ``service`` is an API name (``evs``, ``ecs``, ``cce``, ``ges-v2``...; see
    ``services()``).  The SDK's override variable (``env_variable``) wins, as
    in the SDK, then the SDK's profile file, then the table.  ``environ``
    replaces ``os.environ``.  ``UnknownService`` for a name not in the table
    (and for ``ges-engine``, whose jobs are served at the graph's address),
    ``UnknownRegion`` for a region the service is not known in; both name the
    close matches.
    """
    spec = _lookup(service)
    if not isinstance(region, str) or not _REGION_ID.fullmatch(region):
        raise _unknown_region(service, spec, region)
    env = os.environ if environ is None else environ
    override = _override(env, env_variable(service, region))
    if override is not None:
        return override
    profiled = _profile_endpoint(spec.sdk_name, region, env)
    if profiled is not None:
        return profiled
    if region not in spec.regions:
        raise _unknown_region(service, spec, region)
    return f"https://{spec.host_in(region)}"


def first_endpoint(value: str, source: str) -> str:
    """The first of a comma-separated list of endpoints, checked as ``Client`` checks
    one (``ValueError`` naming ``source``; a user or password in it is never shown)."""
    from jobwatch._client import check_endpoint  # the client imports this module

    first = value.split(",", 1)[0].strip()
    try:
        return str(check_endpoint(first)).rstrip("/")
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


def _override(env: Mapping[str, str], variable: str) -> str | None:
    value = env.get(variable)
    if not value:  # as the SDK: unset and empty alike
        return None
    return first_endpoint(value, f"environment variable {variable}")


def _lookup(service: str) -> _Service:
    if not isinstance(service, str):
        raise UnknownService(
            f"a service name is a string, not {type(service).__name__}", service=repr(service)
        )
    spec = _SERVICES.get(service)
    if spec is not None:
        return spec
    reason = _NO_REGIONAL_ENDPOINT.get(service)
    if reason is not None:
        raise UnknownService(reason, service=service)
    known = sorted(_SERVICES)
    close = _close(service, known)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownService(
        f"no regional endpoint is known for service {_shown(service)}{hint} "
        f"(known: {', '.join(known)})",
        service=service,
        suggestions=close,
    )


def _unknown_region(service: str, spec: _Service, region: object) -> UnknownRegion:
    known = sorted(spec.regions)
    text = region if isinstance(region, str) else ""
    close = _close(text, known)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if text and len(text) <= 64 and _REGION_ID.fullmatch(text):
        where = f"set {env_variable(service, text)} to its endpoint if it is there"
    else:
        where = "a region id is lower-case words and digits joined by '-', like cn-north-4"
    return UnknownRegion(
        f"{service} is not known in region {_shown(region)}{hint} ({where}; "
        f"known regions of {service}: {', '.join(known)})",
        service=service,
        region=text if isinstance(region, str) else repr(region),
        suggestions=close,
    )


def _close(text: str, known: list[str]) -> tuple[str, ...]:
    """The known names closest to ``text``: only the one it is in another case, if so."""
    folded = text.strip().lower()[:64]  # difflib is slow on long strings
    if folded in known:
        return (folded,)
    return tuple(difflib.get_close_matches(folded, known, n=3, cutoff=0.6))


def _shown(value: object) -> str:
    """``value`` for a message: quoted, control characters escaped, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def regions_file(environ: Mapping[str, str]) -> Path | None:
    """The SDK's profile file: ``HUAWEICLOUD_SDK_REGIONS_FILE``, else
    ``~/.huaweicloud/regions.yaml`` under ``HOME`` (``USERPROFILE`` on Windows)."""
    named = environ.get(REGIONS_FILE_ENV)
    if named:
        return Path(named)
    home = environ.get("USERPROFILE" if os.name == "nt" else "HOME")
    return Path(home, ".huaweicloud", "regions.yaml") if home else None


def _profile_endpoint(sdk_name: str, region: str, environ: Mapping[str, str]) -> str | None:
    """The endpoint the SDK's profile file gives ``sdk_name`` in ``region``, if any.

    Read as ``ProfileRegionCache._resolve_profile`` reads it: a mapping of
    service names (any case) to lists of ``{id, endpoint}`` or ``{id, endpoints}``
    (both: ``endpoints`` first); a region without an id or an endpoint is skipped.
    """
    path = regions_file(environ)
    if path is None or not path.exists():
        return None
    where = f"the regions file {str(path)[:200]!r} ({REGIONS_FILE_ENV})"
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise ValueError(
            f"{where} needs PyYAML to be read: pip install pyyaml, or give the endpoint "
            f"in {ENV_PREFIX}_... instead"
        ) from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{where} cannot be read: {type(exc).__name__}") from None
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must map service names to lists of regions")
    chosen: str | None = None
    for name, entries in data.items():
        if not isinstance(name, str) or name.upper() != sdk_name.upper():
            continue
        if not isinstance(entries, list):
            raise ValueError(f"{where}: {name!r} must be a list of regions")
        for entry in entries:
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: each region of {name!r} must be a mapping")
            if entry.get("id") != region:
                continue
            endpoints = entry.get("endpoints") or []
            if not isinstance(endpoints, list):
                raise ValueError(f"{where}: the endpoints of {name}/{region} must be a list")
            found = [*endpoints, *([entry["endpoint"]] if entry.get("endpoint") else [])]
            if found:  # as the SDK: a later entry for the same region replaces an earlier
                if not isinstance(found[0], str):
                    raise ValueError(f"{where}: the endpoints of {name}/{region} must be text")
                chosen = found[0]
    return None if chosen is None else first_endpoint(chosen, f"{where}, {sdk_name}/{region}")
