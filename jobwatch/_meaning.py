"""What an answer means: the one table the client's retries and the watcher both read.

=============  ==========================================================  =====================
meaning        answers                                                     what happens
=============  ==========================================================  =====================
TRANSIENT      no HTTP answer (``TransportError``), HTTP 408, 429, 5xx,    the client retries;
               ``RateLimitError`` (429, ``APIGW.0308``), an HTTP 200        the watcher counts a
               error body whose code is a transient one                    failed poll
NOT_FOUND      ``JobNotFound`` (404, ``GES.8301``, an engine job absent     the watcher waits out
               from its graph's list)                                      the grace, or gives up
AUTH           HTTP 401, 403, ``APIGW.0301``/``APIG.0301`` at any status    the watcher gives up
PERMANENT      any other HTTP 400: the request will not get better         the watcher gives up
CONFIGURATION  ``UnknownAPIError`` (APIGW.0101): wrong endpoint, path,     the watcher gives up
               API version or service; ``EndpointUnreachable``: no         at once (``error``)
               answer ever came; ``CertificateError``: the server's TLS
               certificate failed verification
INVALID        a body that is not JSON or not the API's shape, any other   the watcher counts a
               error status, an unexpected failure of one poll             failed poll
=============  ==========================================================  =====================
"""

from __future__ import annotations

import enum
from collections.abc import Set

from jobwatch._exceptions import (
    THROTTLING_CODES,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    CertificateError,
    EndpointUnreachable,
    JobNotFound,
    JobwatchError,
    PermissionDeniedError,
    RateLimitError,
    TransportError,
    UnknownAPIError,
)

__all__ = ["Meaning", "meaning_of"]


class Meaning(enum.Enum):
    """What an error says about the request, and so what to do next."""

    TRANSIENT = "transient"
    NOT_FOUND = "not_found"
    AUTH = "auth"
    PERMANENT = "permanent"
    CONFIGURATION = "configuration"
    INVALID = "invalid"

    @property
    def ends_watch(self) -> bool:
        """True when one such answer ends the watch of the job at once."""
        return self in (Meaning.AUTH, Meaning.PERMANENT, Meaning.CONFIGURATION)


def meaning_of(error: JobwatchError, transient_codes: Set[str] = THROTTLING_CODES) -> Meaning:
    """The meaning of ``error`` (``transient_codes``: HTTP 200 error codes worth a retry)."""
    if isinstance(error, UnknownAPIError | EndpointUnreachable | CertificateError):
        return Meaning.CONFIGURATION
    if isinstance(error, TransportError | RateLimitError):
        return Meaning.TRANSIENT
    if isinstance(error, JobNotFound):
        return Meaning.NOT_FOUND
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return Meaning.AUTH
    if isinstance(error, BadRequestError):
        return Meaning.PERMANENT
    if isinstance(error, APIStatusError):
        status = error.status_code
        if status in (408, 429) or status >= 500:
            return Meaning.TRANSIENT
        if status == 200 and error.error_code in transient_codes:
            return Meaning.TRANSIENT
    return Meaning.INVALID
