"""jobwatch: watch the asynchronous jobs of Huawei Cloud services from async Python.

Start with ``Client`` and a job reference (``EvsJob``, ``GesJob``,
``GesEngineJob``), and wait for the job to end in one call (``wait_for``; in
synchronous code ``wait_for_sync``)::

    async with jobwatch.Client(endpoint, project_id, auth=jobwatch.AKSKAuth(ak, sk)) as client:
        snapshot = await jobwatch.wait_for(jobwatch.EvsJob("ff8080..."), client=client)

``Watcher`` watches many jobs at once and emits their state changes.

The simulator of the four APIs lives in ``jobwatch.sim`` (the ``sim`` extra
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
from jobwatch._refs import EvsJob, GesEngineJob, GesJob, GesVersion, JobRef
from jobwatch._retry import RetryDetails
from jobwatch._snapshot import ImportDetail, ImportFile, JobSnapshot, JobState
from jobwatch._version import __version__
from jobwatch._wait import wait_for, wait_for_sync
from jobwatch._watcher import Watcher, WatcherStatistics

__all__ = [
    "AKSKAuth",
    "APIStatusError",
    "AdaptiveRate",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "Client",
    "ClientStatistics",
    "ConnectError",
    "CredentialProvider",
    "Credentials",
    "CredentialsUnavailable",
    "EndpointUnreachable",
    "Event",
    "EvsJob",
    "FetchResult",
    "GaveUp",
    "GesEngineJob",
    "GesJob",
    "GesVersion",
    "GiveUpReason",
    "ImportDetail",
    "ImportFile",
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
    "RequestTimeout",
    "ResponseTooLarge",
    "ResponseValidationError",
    "RetryDetails",
    "RetryPolicy",
    "ServerError",
    "TokenAuth",
    "Transition",
    "TransportCause",
    "TransportError",
    "UnknownAPIError",
    "WatchGaveUp",
    "Watcher",
    "WatcherStatistics",
    "__version__",
    "wait_for",
    "wait_for_sync",
]
