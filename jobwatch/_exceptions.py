"""The errors jobwatch raises.

Every error derives from ``JobwatchError``::

    JobwatchError
    ├── TransportError                  the request got no HTTP answer (``cause`` says why)
    │   ├── ConnectError                connecting failed, or the connection broke
    │   │   ├── EndpointUnreachable     no answer ever came, for ``unreachable_timeout``
    │   │   └── CertificateError        the server's TLS certificate failed verification
    │   └── RequestTimeout              no answer within the timeout
    ├── APIStatusError                  the API answered with an error
    │   ├── BadRequestError             HTTP 400
    │   ├── AuthenticationError         HTTP 401, or APIGW.0301 / APIG.0301
    │   ├── PermissionDeniedError       HTTP 403
    │   ├── NotFoundError               HTTP 404
    │   │   ├── JobNotFound             HTTP 404, or GES.8301 / Common.0011 (sent with 400)
    │   │   └── UnknownAPIError         APIGW.0101: wrong endpoint, path, version or service
    │   ├── RateLimitError              HTTP 429, or APIGW.0308 throttling
    │   └── ServerError                 HTTP 5xx
    ├── ResponseValidationError         the body is not JSON, not the API's shape, or cannot be read
    │   └── ResponseTooLarge            the body is larger than the configured cap
    ├── PollFailed                      one poll failed in an unexpected way (``__cause__``)
    ├── UnknownService (ValueError)     no regional endpoint for the service (``_regions``)
    ├── UnknownRegion (ValueError)      the service is not known in the region (``_regions``)
    ├── WatchGaveUp                     ``Watcher.wait``: the watcher gave up on the job
    └── JobFailed                       ``Watcher.wait(raise_on_failure=True)``: the job failed

``TransportError`` carries ``cause``, a ``TransportCause`` naming the failure the
same way whatever the HTTP stack.  ``APIStatusError`` carries ``status_code``,
``error_code``, ``message`` and ``request_id`` (from ``X-Request-Id``).  An error
body sent with HTTP 200 (``{"error": {...}}``) is an ``APIStatusError`` too, with
``status_code`` 200.
No error message ever contains a credential.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwatch._events import GaveUp
    from jobwatch._snapshot import JobSnapshot

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "CertificateError",
    "ConnectError",
    "EndpointUnreachable",
    "JobFailed",
    "JobNotFound",
    "JobwatchError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollFailed",
    "RateLimitError",
    "RequestTimeout",
    "ResponseTooLarge",
    "ResponseValidationError",
    "ServerError",
    "TransportCause",
    "TransportError",
    "UnknownAPIError",
    "WatchGaveUp",
]

#: Codes of a job the service cannot find: GES sends ``GES.8301`` with HTTP 400, and EVS
#: (ECS and the services of its job API alike) documents "400 Common.0011 query job
#: fail." (EVS API reference, "Querying Job Status", GET /v1/{project_id}/jobs/{job_id}).
#: RDS answers a job it does not have with HTTP 400 ``DBS.200543`` "The job does not
#: exist." (RDS API reference, "Error Codes"); CCE a missing resource with HTTP 404
#: ``CCE.01404001`` (CCE API reference, "Error Codes", cce_02_0250).
JOB_NOT_FOUND_CODES = frozenset({"GES.8301", "Common.0011", "DBS.200543", "CCE.01404001"})
#: The API gateway's throttling, in the shared (``APIGW``) and dedicated (``APIG``)
#: gateways' spellings (API Gateway error codes).
THROTTLING_CODES = frozenset({"APIGW.0308", "APIG.0308"})
#: The gateway knows no such API: a wrong host, path, version or service, not a
#: missing job (API Gateway error codes: 404 "The API does not exist or has not been
#: published in the environment").
UNKNOWN_API_CODES = frozenset({"APIGW.0101", "APIG.0101"})
#: IAM authentication failed at the gateway (token expired or undecryptable, AK/SK
#: signature refused, AK locked), whatever HTTP status carries it (Huawei Cloud FAQ
#: "How Do I Handle the Error APIG.0301?", API Gateway FAQ "Common Errors Related to
#: IAM Authentication Information").
AUTH_CODES = frozenset({"APIGW.0301", "APIG.0301"})
#: The longest error message kept from a body; the rest is cut (a hostile or broken
#: server may send megabytes).
MESSAGE_LIMIT = 500
EXCERPT_LENGTH = 200


class JobwatchError(Exception):
    """Base class of every error jobwatch raises."""


class TransportCause(enum.StrEnum):
    """Why a request got no HTTP answer: ``TransportError.cause``, alike on every HTTP stack.

    A ``str`` (``error.cause == "refused"`` holds).  An endpoint that never answers
    shows as ``REFUSED``, ``DNS`` or ``TIMEOUT``; ``PROXY`` when it is the proxy
    that cannot be reached.
    """

    #: Nothing listens at the host and port (TCP connection refused).
    REFUSED = "refused"
    #: The host name does not resolve.
    DNS = "dns"
    #: No answer within the client's timeout (connecting, or waiting for the answer).
    TIMEOUT = "timeout"
    #: The TLS handshake failed (e.g. ``https://`` to a plain-HTTP port).
    TLS = "tls"
    #: The server's TLS certificate failed verification (``CertificateError``).
    CERTIFICATE = "certificate"
    #: The connection was reset or closed before the whole answer arrived.
    RESET = "reset"
    #: The proxy (from ``HTTP(S)_PROXY``/``ALL_PROXY``) could not be reached or refused.
    PROXY = "proxy"
    #: Any other failure of the HTTP stack.
    OTHER = "other"


class TransportError(JobwatchError):
    """The request got no HTTP answer (after any retries); ``cause`` says why.

    The message names the host and port and the cause in jobwatch's words
    (``cannot connect to evs.example.com:443: connection refused``).
    """

    default_cause = TransportCause.OTHER

    def __init__(self, message: str, *, cause: TransportCause | None = None) -> None:
        self.cause = cause if cause is not None else self.default_cause
        super().__init__(message)


class ConnectError(TransportError):
    """Connecting failed, or the connection broke before the answer was read."""


class EndpointUnreachable(ConnectError):
    """The endpoint never answered: every attempt since the client's first failed to
    get an HTTP answer, for the client's ``unreachable_timeout``.

    A wrong host, a port nobody listens on, a name that does not resolve, a proxy or
    firewall in the way: a configuration error, so the watcher gives its jobs up at
    once (``error``).  ``__cause__`` is the last attempt's error, and ``cause`` its
    cause.
    """


class CertificateError(ConnectError):
    """The server's TLS certificate failed verification (``cause`` is ``CERTIFICATE``).

    Not retried: it ends a watch at once, as a configuration error.  Trust the
    server's CA with ``verify=ssl.SSLContext(...)``, or check the endpoint.
    """

    default_cause = TransportCause.CERTIFICATE


class RequestTimeout(TransportError):
    """No answer arrived within the timeout (``cause`` is ``TIMEOUT``)."""

    default_cause = TransportCause.TIMEOUT


class APIStatusError(JobwatchError):
    """The API answered with an error.

    ``status_code`` is the HTTP status (200 for an error body sent with 200),
    ``error_code`` the API's code (``GES.8301``, ``APIGW.0308``...),
    ``message`` its text, ``request_id`` the ``X-Request-Id`` of the answer and
    ``retry_after`` the seconds its ``Retry-After`` asked for (None without one).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.error_code:
            parts.append(self.error_code)
        text = " ".join(parts) + f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, "
            f"error_code={self.error_code!r}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class BadRequestError(APIStatusError):
    """HTTP 400: the API rejected the request."""


class AuthenticationError(APIStatusError):
    """HTTP 401, or APIGW.0301 / APIG.0301: the token or the AK/SK signature was refused.

    ``token_expired`` is True when the gateway says the token expired.
    """

    @property
    def token_expired(self) -> bool:
        """True when the answer says the token expired (``token expires``)."""
        return "token expire" in self.message.lower()


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the credentials may not read this job."""


class NotFoundError(APIStatusError):
    """HTTP 404: the resource does not exist."""


class JobNotFound(NotFoundError):
    """The job does not exist (HTTP 404, or GES.8301 / Common.0011, sent with HTTP 400)."""


class UnknownAPIError(NotFoundError):
    """APIGW.0101 / APIG.0101: the gateway knows no such API.

    A configuration error, not a missing job: the endpoint (host), the path, the
    API version or the service is wrong.  The message names the path asked for.
    """


class RateLimitError(APIStatusError):
    """HTTP 429 or APIGW.0308: the API gateway throttled the request.

    ``retry_after`` is the delay the answer asked for, in seconds, or None; without
    one, the window in an APIGW.0308 message (``limit:200,time:5 minute``) is used.
    """


class ServerError(APIStatusError):
    """HTTP 5xx: the service failed or is unavailable."""


class ResponseValidationError(JobwatchError):
    """The body is not JSON, or does not fit the API's shape, or cannot be read at all
    (its ``Content-Encoding`` does not decode it; endless redirects).

    ``excerpt`` holds the start of the body, for diagnosis.
    """

    def __init__(self, message: str, *, excerpt: str = "", status_code: int | None = None) -> None:
        self.message = message
        self.excerpt = excerpt
        self.status_code = status_code
        super().__init__(message)

    def __str__(self) -> str:
        if self.excerpt:
            return f"{self.message}; body starts {self.excerpt!r}"
        return self.message


class ResponseTooLarge(ResponseValidationError):
    """The body is larger than the client's ``max_body_bytes``; it was not read whole."""


class PollFailed(JobwatchError):
    """One poll of a job failed in a way no other error describes.

    An exception the HTTP stack raised that jobwatch does not map, or a bug: the
    watcher counts it as one failed poll of that job (``__cause__`` is the
    original exception) and goes on watching every other job.
    """


class JobFailed(JobwatchError):
    """``Watcher.wait(..., raise_on_failure=True)``: the job (or a sub-job) failed."""

    def __init__(self, snapshot: JobSnapshot) -> None:
        self.snapshot = snapshot
        subs = len(snapshot.failed_sub_jobs)
        detail = f" ({subs} failed sub-jobs)" if subs else ""
        reason = f": {snapshot.fail_reason}" if snapshot.fail_reason else ""
        super().__init__(f"job {snapshot.ref} ended {snapshot.state.value}{detail}{reason}")


class WatchGaveUp(JobwatchError):
    """``Watcher.wait``: the watcher gave up on the job (``outcome`` says why)."""

    def __init__(self, outcome: GaveUp) -> None:
        self.outcome = outcome
        super().__init__(f"gave up on job {outcome.ref}: {outcome.reason.value}: {outcome.message}")


def missing_from_list(job_id: str, graph_name: str) -> JobNotFound:
    """The error for an engine job absent from its graph's job list (HTTP 200)."""
    return JobNotFound(
        f"job {job_id} is not in the job list of graph {graph_name}", status_code=200
    )


def excerpt(body: bytes | str, limit: int = EXCERPT_LENGTH) -> str:
    """The first ``limit`` characters of a body, decoded leniently."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text[:limit] + ("…" if len(text) > limit else "")


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > MESSAGE_LIMIT:
        text = text[:MESSAGE_LIMIT] + "…"
    return text or None


def read_error_body(data: object) -> tuple[str | None, str | None] | None:
    """Read ``(error_code, message)`` from any of the error body shapes Huawei sends.

    The shapes are ``{errorCode, errorMessage}`` (GES v1.0 and the engine; also
    ``errorMsg``), ``{error_code, error_msg}`` (GES v2, the API gateway),
    ``{"error": {code, message}}`` (EVS), the flat ``{code, message}`` (ECS), and
    any single nested object holding one of them (``{"itemNotFound": {...}}``), as
    the official SDK's exception handler reads them.  Returns None when ``data``
    carries no error (empty codes count as none: GES sends them on success).
    """
    if not isinstance(data, Mapping):
        return None
    nested = data.get("error")
    if isinstance(nested, Mapping):
        # The nested object is the whole word on the error: an empty one is no error,
        # whatever flat keys stand beside it.
        code = _text(nested.get("code"))
        message = _text(nested.get("message"))
        return (code, message) if code or message else None
    found = _flat_error(data)
    if found is None and len(data) == 1:
        (only,) = data.values()
        if isinstance(only, Mapping):
            found = _flat_error(only)
    return found


_ERROR_KEYS = (
    ("errorCode", ("errorMessage", "errorMsg")),
    ("error_code", ("error_msg",)),
    ("code", ("message",)),
)


def _flat_error(data: Mapping[Any, Any]) -> tuple[str | None, str | None] | None:
    for code_key, message_keys in _ERROR_KEYS:
        code = _text(data.get(code_key))
        if code:
            messages = (_text(data.get(key)) for key in message_keys)
            return code, next((text for text in messages if text), None)
    return None


_WINDOW_RE = re.compile(r"limit\s*:\s*(\d+)\s*,\s*time\s*:\s*(\d+)\s*([a-z]+)", re.IGNORECASE)
_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def throttle_window(message: str | None) -> tuple[int, float] | None:
    """Read ``(limit, window seconds)`` from an APIGW.0308 message, if it has them.

    The gateway writes e.g. ``... policy user over ratelimit,limit:200,time:5 minute``.
    """
    if not message:
        return None
    match = _WINDOW_RE.search(message)
    if match is None:
        return None
    unit = match.group(3).lower().rstrip("s")
    if unit not in _UNITS:
        return None
    return int(match.group(1)), int(match.group(2)) * _UNITS[unit]


def status_error(
    status_code: int,
    data: object,
    *,
    body: bytes = b"",
    request_id: str | None = None,
    retry_after: float | None = None,
    path: str | None = None,
    location: str | None = None,
) -> APIStatusError:
    """Build the right ``APIStatusError`` for an error answer.

    ``data`` is the parsed body (or None when it was not JSON); ``body`` the raw bytes,
    used for the message when the body says nothing readable; ``path`` the URL path
    asked for (named in the message of an unknown API); ``location`` the
    ``Location`` of a redirect, which is not followed (named without its query).
    """
    read = read_error_body(data)
    code, message = read if read is not None else (None, None)
    if not message:
        message = excerpt(body, 120).strip() if body else None
    message = message or f"HTTP {status_code}"
    if 300 <= status_code < 400:
        where = location.split("?", 1)[0] if location else "nowhere"
        message = f"redirected to {where}, and redirects are not followed: check the endpoint"
    kwargs: dict[str, Any] = {
        "status_code": status_code,
        "error_code": code,
        "request_id": request_id,
        "retry_after": retry_after,
    }
    cls: type[APIStatusError]
    if code in UNKNOWN_API_CODES:
        cls = UnknownAPIError
        where = f" for GET {path}" if path else ""
        message = f"{message}{where}: the endpoint, path, API version or service is wrong"
    elif code in AUTH_CODES:
        cls = AuthenticationError
    elif code in JOB_NOT_FOUND_CODES or status_code == 404:
        cls = JobNotFound
    elif code in THROTTLING_CODES or status_code == 429:
        cls = RateLimitError
    elif status_code == 400:
        cls = BadRequestError
    elif status_code == 401:
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code >= 500:
        cls = ServerError
    else:
        cls = APIStatusError
    return cls(message, **kwargs)
