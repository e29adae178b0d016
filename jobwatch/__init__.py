"""jobwatch: watch the asynchronous jobs of Huawei Cloud services from async Python.

Start with ``Client`` and a job reference (``EvsJob``, ``GesJob``,
``GesEngineJob``, ``CceJob``, ``RdsJob``; the EVS-style family ``EcsJob``, ``BmsJob``, ``VpcJob``,
``ImsJob``, ``ImsCloudImagesJob``, ``DehJob``, ``SdrsJob``, ``EvsV2Job``,
``DcsJob``), and wait for the job to end in one call (``wait_for``; in
synchronous code ``wait_for_sync``)::

    async with jobwatch.Client(endpoint, project_id, auth=jobwatch.AKSKAuth(ak, sk)) as client:
        snapshot = await jobwatch.wait_for(jobwatch.EvsJob("ff8080..."), client=client)

``Watcher`` watches many jobs at once and emits their state changes; with a
``ClientPool``, on many endpoints and projects.

The simulator of every API lives in ``jobwatch.sim`` (the ``sim`` extra
adds uvicorn, to serve it on a socket); pytest fixtures over it in
``jobwatch.testing``, a pytest plugin the package registers.  Observability is
opt-in and never imported from here: ``jobwatch.otel`` (OpenTelemetry spans and
metrics, the ``otel`` extra) and ``jobwatch.prometheus`` (a collector, the
``prometheus`` extra).

PYTEST_DONT_REWRITE: pytest marks the package of an installed plugin for
assertion rewriting; the marker spares a run that imported jobwatch before
pytest started a ``PytestAssertRewriteWarning`` (an error under ``-W error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobwatch._version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs read; at run time see __getattr__
    from jobwatch._apis import api_of
    from jobwatch._auth import AKSKAuth, TokenAuth
    from jobwatch._budget import AdaptiveRate
    from jobwatch._client import Client, ClientStatistics, FetchResult
    from jobwatch._credentials import CredentialProvider, Credentials, CredentialsUnavailable
    from jobwatch._events import Event, GaveUp, GiveUpReason, PollDetails, Transition
    from jobwatch._exceptions import (
        APIStatusError,
        AuthenticationError,
        BadRequestError,
        CertificateError,
        ConnectError,
        EndpointUnreachable,
        JobFailed,
        JobNotFound,
        JobwatchError,
        NotFoundError,
        PermissionDeniedError,
        PollFailed,
        RateLimitError,
        RequestTimeout,
        ResponseTooLarge,
        ResponseValidationError,
        ServerError,
        TransportCause,
        TransportError,
        UnknownAPIError,
        WatchGaveUp,
    )
    from jobwatch._limits import RateLimit
    from jobwatch._policies import PollPolicy, RetryPolicy
    from jobwatch._pool import ClientOptions, ClientPool, EndpointNotInPool
    from jobwatch._refs import (
        BmsJob,
        CceJob,
        DcsJob,
        DehJob,
        EcsJob,
        EvsJob,
        EvsV2Job,
        GesEngineJob,
        GesJob,
        GesVersion,
        ImsCloudImagesJob,
        ImsJob,
        JobRef,
        RdsJob,
        SdrsJob,
        VpcJob,
    )
    from jobwatch._regions import UnknownRegion, UnknownService, endpoint_for
    from jobwatch._retry import RetryDetails
    from jobwatch._snapshot import ImportDetail, ImportFile, JobSnapshot, JobState
    from jobwatch._wait import wait_for, wait_for_sync
    from jobwatch._watcher import Watcher, WatcherStatistics

#: Where each public name lives.  ``import jobwatch`` imports none of them: the
#: first access to a name imports its module (PEP 562), so that a program (or
#: ``jobwatch --help``) pays for httpx, pydantic and the watcher only when it
#: uses them.  ``from jobwatch import X`` works as with eager imports.
_PUBLIC: dict[str, str] = {
    "AKSKAuth": "jobwatch._auth",
    "AdaptiveRate": "jobwatch._budget",
    "APIStatusError": "jobwatch._exceptions",
    "AuthenticationError": "jobwatch._exceptions",
    "BadRequestError": "jobwatch._exceptions",
    "BmsJob": "jobwatch._refs",
    "CceJob": "jobwatch._refs",
    "CertificateError": "jobwatch._exceptions",
    "Client": "jobwatch._client",
    "ClientOptions": "jobwatch._pool",
    "ClientPool": "jobwatch._pool",
    "ClientStatistics": "jobwatch._client",
    "ConnectError": "jobwatch._exceptions",
    "CredentialProvider": "jobwatch._credentials",
    "Credentials": "jobwatch._credentials",
    "CredentialsUnavailable": "jobwatch._credentials",
    "DcsJob": "jobwatch._refs",
    "DehJob": "jobwatch._refs",
    "EcsJob": "jobwatch._refs",
    "EndpointNotInPool": "jobwatch._pool",
    "EndpointUnreachable": "jobwatch._exceptions",
    "Event": "jobwatch._events",
    "EvsJob": "jobwatch._refs",
    "EvsV2Job": "jobwatch._refs",
    "FetchResult": "jobwatch._client",
    "GaveUp": "jobwatch._events",
    "GesEngineJob": "jobwatch._refs",
    "GesJob": "jobwatch._refs",
    "GesVersion": "jobwatch._refs",
    "GiveUpReason": "jobwatch._events",
    "ImportDetail": "jobwatch._snapshot",
    "ImportFile": "jobwatch._snapshot",
    "ImsCloudImagesJob": "jobwatch._refs",
    "ImsJob": "jobwatch._refs",
    "JobFailed": "jobwatch._exceptions",
    "JobNotFound": "jobwatch._exceptions",
    "JobRef": "jobwatch._refs",
    "JobSnapshot": "jobwatch._snapshot",
    "JobState": "jobwatch._snapshot",
    "JobwatchError": "jobwatch._exceptions",
    "NotFoundError": "jobwatch._exceptions",
    "PermissionDeniedError": "jobwatch._exceptions",
    "PollDetails": "jobwatch._events",
    "PollFailed": "jobwatch._exceptions",
    "PollPolicy": "jobwatch._policies",
    "RateLimit": "jobwatch._limits",
    "RateLimitError": "jobwatch._exceptions",
    "RdsJob": "jobwatch._refs",
    "RequestTimeout": "jobwatch._exceptions",
    "ResponseTooLarge": "jobwatch._exceptions",
    "ResponseValidationError": "jobwatch._exceptions",
    "RetryDetails": "jobwatch._retry",
    "RetryPolicy": "jobwatch._policies",
    "SdrsJob": "jobwatch._refs",
    "ServerError": "jobwatch._exceptions",
    "TokenAuth": "jobwatch._auth",
    "Transition": "jobwatch._events",
    "TransportCause": "jobwatch._exceptions",
    "TransportError": "jobwatch._exceptions",
    "UnknownAPIError": "jobwatch._exceptions",
    "UnknownRegion": "jobwatch._regions",
    "UnknownService": "jobwatch._regions",
    "VpcJob": "jobwatch._refs",
    "WatchGaveUp": "jobwatch._exceptions",
    "Watcher": "jobwatch._watcher",
    "WatcherStatistics": "jobwatch._watcher",
    "api_of": "jobwatch._apis",
    "endpoint_for": "jobwatch._regions",
    "wait_for": "jobwatch._wait",
    "wait_for_sync": "jobwatch._wait",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'jobwatch' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


__all__ = [
    "AKSKAuth",
    "APIStatusError",
    "AdaptiveRate",
    "AuthenticationError",
    "BadRequestError",
    "BmsJob",
    "CceJob",
    "CertificateError",
    "Client",
    "ClientOptions",
    "ClientPool",
    "ClientStatistics",
    "ConnectError",
    "CredentialProvider",
    "Credentials",
    "CredentialsUnavailable",
    "DcsJob",
    "DehJob",
    "EcsJob",
    "EndpointNotInPool",
    "EndpointUnreachable",
    "Event",
    "EvsJob",
    "EvsV2Job",
    "FetchResult",
    "GaveUp",
    "GesEngineJob",
    "GesJob",
    "GesVersion",
    "GiveUpReason",
    "ImportDetail",
    "ImportFile",
    "ImsCloudImagesJob",
    "ImsJob",
    "JobFailed",
    "JobNotFound",
    "JobRef",
    "JobSnapshot",
    "JobState",
    "JobwatchError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollDetails",
    "PollFailed",
    "PollPolicy",
    "RateLimit",
    "RateLimitError",
    "RdsJob",
    "RequestTimeout",
    "ResponseTooLarge",
    "ResponseValidationError",
    "RetryDetails",
    "RetryPolicy",
    "SdrsJob",
    "ServerError",
    "TokenAuth",
    "Transition",
    "TransportCause",
    "TransportError",
    "UnknownAPIError",
    "UnknownRegion",
    "UnknownService",
    "VpcJob",
    "WatchGaveUp",
    "Watcher",
    "WatcherStatistics",
    "__version__",
    "api_of",
    "endpoint_for",
    "wait_for",
    "wait_for_sync",
]
