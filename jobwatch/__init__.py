"""jobwatch: watch the asynchronous jobs of Huawei Cloud services from async Python.

Start with ``Client`` and a job reference (``EvsJob``, ``GesJob``,
``GesEngineJob``)::

    async with jobwatch.Client(endpoint, project_id, auth=jobwatch.AKSKAuth(ak, sk)) as client:
        snapshot = await client.fetch(jobwatch.EvsJob("ff8080..."))

The simulator of the four APIs lives in ``jobwatch.sim`` (the ``sim`` extra
adds uvicorn, to serve it on a socket).
"""

from __future__ import annotations

from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch._client import Client, ClientStatistics, FetchResult
from jobwatch._events import (
    Event,
    GaveUp,
    GiveUpReason,
    JobFailed,
    PollDetails,
    PollPolicy,
    Transition,
    WatchGaveUp,
)
from jobwatch._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    JobNotFound,
    JobwatchError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ResponseTooLarge,
    ResponseValidationError,
    ServerError,
    TransportError,
)
from jobwatch._limits import RateLimit
from jobwatch._refs import EvsJob, GesEngineJob, GesJob, GesVersion, JobRef
from jobwatch._retry import RetryDetails, RetryPolicy
from jobwatch._snapshot import ImportDetail, ImportFile, JobSnapshot, JobState
from jobwatch._watcher import Watcher, WatcherStatistics

__version__ = "0.1.0.dev0"

__all__ = [
    "AKSKAuth",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientStatistics",
    "ConnectError",
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
    "TransportError",
    "WatchGaveUp",
    "Watcher",
    "WatcherStatistics",
    "__version__",
]
