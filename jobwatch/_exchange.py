"""One HTTP exchange: a GET and its body, read up to a cap, over httpx or natively over aiohttp.

The client decides what to do with the answer; an exchange only moves bytes and
turns the HTTP stack's own failures into ``JobwatchError``s: ``RequestTimeout``,
``ConnectError`` (or ``TransportError`` for any other failure of the stack),
``ResponseTooLarge``, and ``ResponseValidationError`` for an answer that cannot
be read (a body its ``Content-Encoding`` does not decode, endless redirects).
No exception of httpx or aiohttp leaves ``get``.  Two kinds:

- ``HttpxExchange``: httpx transports driven directly (a few of httpx's own, or
  the one the user gave), or an ``httpx.AsyncClient`` (the user's own, or one
  around an ``httpx.Auth`` of theirs).  Runs on asyncio and trio.
- ``AiohttpExchange``: an ``aiohttp.ClientSession`` driven directly, on
  asyncio only (the ``fast`` extra).  It skips httpx's request and response
  models, which cost about twice what aiohttp itself costs per request.
  Authentication still goes through the same ``httpx.Auth`` objects (their
  one-step flows), so a signature is computed by the same code either way.
"""

from __future__ import annotations

import importlib.util
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

import anyio
import httpx

from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch._clock import asyncio_time
from jobwatch._credentials import ProvidedAuth
from jobwatch._exceptions import TransportCause
from jobwatch._exchange_errors import (
    HTTPX_ERRORS,
    HTTPX_HINTS,
    Hints,
    httpx_error,
    too_large,
    transport_error,
    undecodable,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "AiohttpExchange",
    "Exchange",
    "HttpxExchange",
    "Reply",
    "aiohttp_available",
    "env_proxy",
    "http_transports",
    "native_auth",
    "signed",
]


class Reply(NamedTuple):
    """What came back: status, headers (case-insensitive lookups), the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Exchange(Protocol):
    """Sends one GET and reads its answer.

    The headers given when it is made go with every request; ``get`` adds its own.
    """

    name: str

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        """GET ``url`` (absolute, already encoded) with the exchange's headers, ``headers``
        and authentication."""
        ...

    async def aclose(self) -> None:
        """Close what the exchange opened."""
        ...

    def now(self) -> float:
        """``anyio.current_time()``, read the cheapest way this exchange's stack allows."""
        ...


def aiohttp_available() -> bool:
    """True when aiohttp (the ``fast`` extra) is installed."""
    return importlib.util.find_spec("aiohttp") is not None


def native_auth(auth: httpx.Auth | None) -> bool:
    """True for the authentications the aiohttp exchange applies itself (one-step flows)."""
    return auth is None or isinstance(auth, TokenAuth | AKSKAuth | httpx.BasicAuth | ProvidedAuth)


def signed(auth: httpx.Auth, request: httpx.Request) -> httpx.Request:
    """``request`` after a one-step authentication flow (the request it yields first)."""
    flow = auth.sync_auth_flow(request)
    try:
        return next(flow)
    finally:
        flow.close()


#: Connections per transport when the client spreads its requests over several.
CONNECTIONS_PER_TRANSPORT = 2


def http_transports(
    verify: bool | ssl.SSLContext, in_flight: int, proxy: str | None = None
) -> list[httpx.AsyncBaseTransport]:
    """httpx's own transports for ``in_flight`` requests (through ``proxy`` if any), a
    couple of connections each, sharing one TLS context."""
    context = (
        verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
    )
    count = -(-in_flight // CONNECTIONS_PER_TRANSPORT)
    return [httpx.AsyncHTTPTransport(verify=context, proxy=proxy) for _ in range(count)]


# -- httpx --------------------------------------------------------------------------------------


class HttpxExchange:
    """GETs through httpx; the timeout is an anyio scope around the whole exchange.

    With ``transports`` a request goes straight to the least busy of them: no
    cookies, redirects, event hooks or auth flows, which an ``AsyncClient`` spends
    about a fifth of a request's CPU on and which a status query does not need
    (one-step authentications are applied here).  Several transports of a couple
    of connections each cost less than one pool holding them all: httpcore polls
    the socket of every idle connection of a pool on each request.  With
    ``client`` a request goes through that ``httpx.AsyncClient`` and everything
    it was configured with.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transports: Sequence[httpx.AsyncBaseTransport] = (),
        auth: httpx.Auth | None,
        timeout: float,
        max_body_bytes: int,
        owned: bool,
        name: str,
        proxy: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if (client is None) == (not transports):
            raise ValueError("pass client or transports")
        if transports and not native_auth(auth):
            raise ValueError(f"a bare transport cannot apply {type(auth).__name__}")
        self.name = name
        self._client = client
        self._transports = list(transports)
        self._busy = [0] * len(self._transports)
        self._auth = auth
        self._timeout = timeout
        self._cap = max_body_bytes
        self._owned = owned
        self._proxy = proxy
        self._headers = dict(headers or {})

    def now(self) -> float:
        """The event loop's clock (asyncio or trio)."""
        return anyio.current_time()

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        headers = {**self._headers, **headers} if headers else self._headers
        client = self._client
        if client is not None:
            request = client.build_request("GET", url, headers=headers)
            return await self._exchange(request, client, None)
        request = httpx.Request("GET", url, headers=headers)
        if self._auth is not None:
            request = signed(self._auth, request)
        busy = self._busy
        shard = busy.index(min(busy))
        busy[shard] += 1
        try:
            return await self._exchange(request, None, self._transports[shard])
        finally:
            busy[shard] -= 1

    async def _exchange(
        self,
        request: httpx.Request,
        client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Reply:
        try:
            with anyio.fail_after(self._timeout):
                if transport is not None:
                    response = await transport.handle_async_request(request)
                else:
                    assert client is not None
                    # No auth of ours: the client's own, not none.
                    auth = httpx.USE_CLIENT_DEFAULT if self._auth is None else self._auth
                    response = await client.send(request, auth=auth, stream=True)
                try:
                    body = await self._read_capped(response, request.url.host)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TransportError) as exc:
            url = str(request.url)
            raise transport_error(
                exc, url, timeout=self._timeout, proxy=self._proxy, hints=HTTPX_HINTS
            ) from None
        except HTTPX_ERRORS as exc:
            raise httpx_error(exc, request.url.host) from None
        return Reply(response.status_code, response.headers, body)

    async def _read_capped(self, response: httpx.Response, host: str) -> bytes:
        cap = self._cap
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise too_large(response.status_code, cap)
        if response.is_stream_consumed:  # a response made in memory: read and decoded
            if len(response.content) > cap:
                raise too_large(response.status_code, cap)
            return response.content
        chunks: list[bytes] = []
        size = 0
        # The raw bytes, decoded afterwards: a decoder failing inside httpx's
        # ``aiter_bytes`` would abandon the raw stream iterators under it.
        stream = response.aiter_raw()
        async for chunk in stream:
            size += len(chunk)
            if size > cap:
                break
            chunks.append(chunk)
        else:
            return decoded(response.status_code, response.headers, chunks, cap, host)
        # Over the cap: close the connection, then let httpx's chain of stream
        # iterators end on the closed stream rather than abandon them half-way
        # (trio warns about async generators collected before they finish).
        await response.aclose()
        await _finish(stream, budget=_DRAIN_BUDGET)
        raise too_large(response.status_code, cap)

    async def aclose(self) -> None:
        if not self._owned:
            return
        if self._client is not None:
            await self._client.aclose()
        for transport in self._transports:
            await transport.aclose()


class _Chunks(httpx.SyncByteStream):
    """Bytes already read, as the stream of a response."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


#: The encodings both stacks ask for (``Accept-Encoding``) and decode; no other.
DECODED = frozenset({"gzip", "deflate", "identity"})


def decoded(
    status: int, headers: Mapping[str, str], chunks: list[bytes], cap: int, host: str
) -> bytes:
    """``chunks`` decoded as their ``Content-Encoding`` says, up to ``cap`` bytes.

    httpx's own decoders, chunk by chunk, for either stack, so that a small body
    that decodes to a huge one is refused without being decoded whole.  An
    encoding other than gzip and deflate is refused.
    """
    encoding = headers.get("content-encoding")
    if not encoding:
        return b"".join(chunks)
    unknown = [c for c in (c.strip().lower() for c in encoding.split(",")) if c not in DECODED]
    if unknown:
        detail = f"jobwatch decodes only gzip and deflate, not {', '.join(unknown)}"
        raise undecodable(detail, host, status, encoding)
    encoded = httpx.Response(status, headers=dict(headers.items()), stream=_Chunks(chunks))
    parts: list[bytes] = []
    size = 0
    try:
        for part in encoded.iter_bytes():
            size += len(part)
            if size > cap:
                raise too_large(status, cap)
            parts.append(part)
    except httpx.DecodingError as exc:
        raise undecodable(exc, host, status, encoding) from None
    return b"".join(parts)


#: What a closed connection may still yield from its buffers before it stops.
_DRAIN_BUDGET = 1 << 20


async def _finish(stream: AsyncIterator[bytes], budget: int) -> None:
    """Run a stream iterator to its end after its connection was closed.

    Reading a closed connection fails at once; that failure is the expected way
    out here and is not reported (the caller raises ``ResponseTooLarge``).  A
    stream that still yields is left after ``budget`` more bytes.
    """
    drained = 0
    try:
        async for chunk in stream:
            drained += len(chunk)
            if drained > budget:
                return
    except Exception:  # noqa: BLE001, S110 - the closed stream's own error
        pass


# -- aiohttp ------------------------------------------------------------------------------------


class AiohttpExchange:
    """GETs through one ``aiohttp.ClientSession`` (asyncio only; make it inside the loop).

    What httpx would do by default is kept: TLS checked against httpx's CA
    bundle, no redirects followed, proxies from ``HTTP(S)_PROXY``/``NO_PROXY``.
    Cookies are not kept (the APIs use none).
    """

    name = "aiohttp"

    def __init__(
        self,
        *,
        auth: httpx.Auth | None,
        timeout: float,
        max_body_bytes: int,
        verify: bool | ssl.SSLContext,
        connections: int,
        proxy: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:

        import aiohttp
        import yarl

        if not native_auth(auth):
            raise ValueError(f"the aiohttp exchange cannot apply {type(auth).__name__}")
        tls: ssl.SSLContext | bool
        if verify is False:
            tls = False
        elif isinstance(verify, ssl.SSLContext):
            tls = verify
        else:
            tls = httpx.create_ssl_context(verify=True)
        self._headers = dict(headers or {})
        self._session = aiohttp.ClientSession(
            # Sent with every request: aiohttp copies its defaults faster than it
            # merges the same headers given per request.
            headers=self._headers,
            connector=aiohttp.TCPConnector(ssl=tls, limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            # Not trust_env: aiohttp would then read ~/.netrc in a thread on every
            # request.  The proxy is looked up once, by the caller, as httpx would.
            trust_env=False,
            # The raw bytes, decoded by the code that decodes httpx's (``decoded``).
            auto_decompress=False,
        )
        self._auth = auth
        self._timeout = timeout
        self._cap = max_body_bytes
        self._errors = aiohttp.ClientError
        self._hints: Hints = (
            (aiohttp.ClientHttpProxyError, TransportCause.PROXY),
            (aiohttp.ClientProxyConnectionError, TransportCause.PROXY),
            (aiohttp.ServerTimeoutError, TransportCause.TIMEOUT),
            (aiohttp.ServerDisconnectedError, TransportCause.RESET),
            (aiohttp.ClientPayloadError, TransportCause.RESET),
        )
        self._url = yarl.URL
        self._proxy = proxy

    def now(self) -> float:
        """The asyncio loop's clock: what ``anyio.current_time()`` reads there, without
        its asking sniffio which library runs (about 2 µs a read)."""
        return asyncio_time()

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Reply:
        auth = self._auth
        if isinstance(auth, TokenAuth):
            headers = {**headers, **auth.headers()} if headers else auth.headers()
        elif auth is not None:
            # One-step flows (AK/SK signing, basic): sign what will be sent, then
            # send exactly that URL, byte for byte.
            every = {**self._headers, **headers} if headers else self._headers
            request = signed(auth, httpx.Request("GET", url, headers=every))
            url = str(request.url)
            headers = dict(request.headers.items())
        target = self._url(url, encoded=True)
        try:
            async with self._session.get(
                target, headers=headers, allow_redirects=False, proxy=self._proxy
            ) as response:
                body = await self._read_capped(response, target.host or "")
                return Reply(response.status, response.headers, body)
        except (TimeoutError, self._errors) as exc:
            raise transport_error(
                exc, url, timeout=self._timeout, proxy=self._proxy, hints=self._hints
            ) from None

    async def _read_capped(self, response: aiohttp.ClientResponse, host: str) -> bytes:
        cap = self._cap
        declared = response.content_length
        if declared is not None:
            if declared > cap:
                response.close()
                raise too_large(response.status, cap)
            # aiohttp reads no byte past the declared length: read it in one go.
            return decoded(response.status, response.headers, [await response.read()], cap, host)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > cap:
                response.close()  # drops the connection: the rest is never read
                raise too_large(response.status, cap)
            chunks.append(chunk)
        return decoded(response.status, response.headers, chunks, cap, host)

    async def aclose(self) -> None:
        await self._session.close()


def env_proxy(endpoint: httpx.URL) -> str | None:
    """The proxy URL the environment names for ``endpoint`` (None when none or bypassed).

    Refuses a SOCKS proxy (``ValueError``): neither stack speaks SOCKS without a
    further library (httpx: socksio, aiohttp: aiohttp-socks), and aiohttp would
    speak plain HTTP to it.
    """
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass(endpoint.host):
        return None
    proxy = proxies.get(endpoint.scheme) or proxies.get("all")
    if proxy is None:
        return None
    url = httpx.URL(proxy)
    if url.scheme not in ("http", "https"):
        shown = f"{url.scheme}://{url.host}:{url.port}" if url.host else url.scheme
        raise ValueError(
            f"the proxy {shown} named in the environment for {endpoint.host} is not an "
            "HTTP proxy; jobwatch speaks HTTP proxies only: set NO_PROXY, or pass "
            "http_client=httpx.AsyncClient(proxy=...) (with httpx[socks] for SOCKS)"
        )
    return proxy
