"""The failures of both HTTP stacks, in jobwatch's words: one reading for httpx and aiohttp.

``transport_error`` walks an exception and its causes (``__cause__``,
``__context__``, the members of an exception group) and names the failure with a
``TransportCause``: the OS and ``ssl`` errors under a stack's own classes say the
same thing on every stack; a stack's own classes (``hints``) decide only where
those say nothing (a connection closed early, a proxy's refusal).  The message
names the host, port and cause, never a class of the stack.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator, Sequence

import httpx

from jobwatch._exceptions import (
    CertificateError,
    ConnectError,
    RequestTimeout,
    ResponseTooLarge,
    ResponseValidationError,
    TransportCause,
    TransportError,
)

__all__ = [
    "HTTPX_ERRORS",
    "HTTPX_HINTS",
    "Hints",
    "cause_of",
    "describe",
    "httpx_error",
    "too_large",
    "transport_error",
    "undecodable",
]

Hints = Sequence[tuple[type[BaseException], TransportCause]]

#: httpx's classes that say what the OS and ssl errors under them do not.
HTTPX_HINTS: Hints = (
    (httpx.ProxyError, TransportCause.PROXY),
    (httpx.TimeoutException, TransportCause.TIMEOUT),
    (httpx.RemoteProtocolError, TransportCause.RESET),
    (httpx.ReadError, TransportCause.RESET),
    (httpx.WriteError, TransportCause.RESET),
)

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})
_REFUSED_ERRNOS = frozenset({errno.ECONNREFUSED})


def _chain(exc: BaseException, limit: int = 16) -> Iterator[BaseException]:
    """``exc`` and its causes, breadth first, exception groups opened."""
    queue: list[BaseException] = [exc]
    seen: set[int] = set()
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        following = current.__cause__ or current.__context__
        if following is not None:
            queue.append(following)


def _os_cause(exc: BaseException) -> TransportCause | None:
    """What an OS or ssl error says, or None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportCause.CERTIFICATE
    if isinstance(exc, ssl.SSLError):
        return TransportCause.TLS
    if isinstance(exc, socket.gaierror):
        return TransportCause.DNS
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno in _REFUSED_ERRNOS
    ):
        return TransportCause.REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError) or (
        isinstance(exc, OSError) and exc.errno in _RESET_ERRNOS
    ):
        return TransportCause.RESET
    if isinstance(exc, TimeoutError):
        return TransportCause.TIMEOUT
    return None


#: The order in which causes found along one chain win: a refused certificate
#: reported as a timeout (some stacks do) is a certificate failure.
_PRIORITY = (
    TransportCause.CERTIFICATE,
    TransportCause.TLS,
    TransportCause.DNS,
    TransportCause.REFUSED,
    TransportCause.RESET,
    TransportCause.TIMEOUT,
)


def cause_of(exc: BaseException, hints: Hints, *, proxied: bool) -> TransportCause:
    """The ``TransportCause`` of a failure of an HTTP stack (``proxied``: through a proxy)."""
    chain = list(_chain(exc))
    found = {cause for cause in map(_os_cause, chain) if cause is not None}
    cause = next((cause for cause in _PRIORITY if cause in found), None)
    if cause is None:
        cause = next(
            (hint for kind, hint in hints for seen in chain if isinstance(seen, kind)),
            TransportCause.OTHER,
        )
    # Through a proxy, the only connection made is to the proxy, which resolves
    # the endpoint's name itself.
    if proxied and cause in (TransportCause.REFUSED, TransportCause.DNS):
        return TransportCause.PROXY
    return cause


def _where(url: httpx.URL) -> str:
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


def _ssl_detail(exc: BaseException) -> str:
    """What the ``ssl`` module said (aiohttp's subclasses of its errors say nothing)."""
    for seen in _chain(exc):
        said = getattr(seen, "verify_message", None) or getattr(seen, "reason", None)
        if isinstance(seen, ssl.SSLError) and said:
            return str(said)
    return "no detail"


def transport_error(
    exc: BaseException, url: str, *, timeout: float, proxy: str | None, hints: Hints
) -> TransportError:
    """The ``TransportError`` for a failure of an HTTP stack talking to ``url``."""
    target = httpx.URL(url)
    where = _where(target)
    cause = cause_of(exc, hints, proxied=proxy is not None)
    if cause is TransportCause.TIMEOUT:
        return RequestTimeout(f"no answer within {timeout}s from {where}", cause=cause)
    if cause is TransportCause.CERTIFICATE:
        return CertificateError(
            f"cannot connect to {where}: its TLS certificate failed verification "
            f"({_ssl_detail(exc)})",
            cause=cause,
        )
    if cause is TransportCause.PROXY:
        via = _where(httpx.URL(proxy)) if proxy else "the proxy"
        reason = cause_of(exc, hints, proxied=False)
        said = {
            TransportCause.REFUSED: "connection refused",
            TransportCause.DNS: "the proxy's name was not found",
        }.get(reason, f"the proxy refused ({describe(exc)})")
        return ConnectError(f"cannot reach {where} through the proxy {via}: {said}", cause=cause)
    message = {
        TransportCause.REFUSED: f"cannot connect to {where}: connection refused",
        TransportCause.DNS: f"cannot connect to {where}: the name {target.host} was not found"
        " (DNS)",
        TransportCause.TLS: f"cannot connect to {where}: the TLS handshake failed"
        f" ({_ssl_detail(exc)})",
        TransportCause.RESET: f"the connection to {where} was reset or closed before the"
        " whole answer arrived",
    }.get(cause, f"the request to {where} failed: {describe(exc)}")
    return ConnectError(message, cause=cause)


def too_large(status: int, cap: int) -> ResponseTooLarge:
    """The error for a body over the cap."""
    return ResponseTooLarge(
        f"the body is larger than max_body_bytes ({cap} bytes)", status_code=status
    )


def describe(exc: BaseException) -> str:
    """The first non-empty message along an exception's causes (trio's are often empty)."""
    for seen in _chain(exc, limit=5):
        if str(seen):
            return str(seen)
    return "no detail"


def undecodable(
    exc: BaseException | str, host: str, status: int | None, encoding: str | None
) -> ResponseValidationError:
    """The error for a body that its ``Content-Encoding`` does not decode."""
    if isinstance(exc, str):
        detail = exc
    else:
        root = list(_chain(exc))[-1]
        detail = getattr(root, "message", None) or str(root) or describe(exc)
    coding = f" (Content-Encoding: {encoding})" if encoding else ""
    return ResponseValidationError(
        f"the body from {host} cannot be decoded{coding}: {detail}", status_code=status
    )


#: What httpx may raise besides a ``TransportError``: ``DecodingError`` and
#: ``TooManyRedirects`` (``HTTPError``s), ``InvalidURL``, ``StreamError``.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


def httpx_error(exc: Exception, host: str) -> Exception:
    """The ``JobwatchError`` for an httpx failure other than a transport one."""
    if isinstance(exc, httpx.TooManyRedirects):
        return ResponseValidationError(f"too many redirects from {host}: {describe(exc)}")
    if isinstance(exc, httpx.DecodingError):
        return undecodable(exc, host, None, None)
    return TransportError(f"the request to {host} failed: {describe(exc)}")
