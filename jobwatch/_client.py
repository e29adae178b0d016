"""The async client: status queries for one endpoint and project, with retries and limits."""

from __future__ import annotations

import importlib.util
import logging
import ssl
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self

import anyio
import httpx
import sniffio

from jobwatch import _dialects
from jobwatch._auth import AKSKAuth, project_id_from_env
from jobwatch._exceptions import (
    ConnectError,
    JobwatchError,
    RequestTimeout,
    ResponseTooLarge,
    missing_from_list,
    status_error,
)
from jobwatch._limits import RateLimit, SlidingWindowLimiter
from jobwatch._refs import GesEngineJob, JobRef, engine_list_path, validate_id
from jobwatch._retry import RetryDetails, RetryHook, RetryPolicy, parse_retry_after
from jobwatch._snapshot import JobSnapshot

__all__ = ["Client", "ClientStatistics", "FetchResult"]

logger = logging.getLogger("jobwatch")

#: Seconds one attempt (connect, send, read) may take.
DEFAULT_TIMEOUT = 10.0
#: Requests in flight at once.  httpx's pool gets expensive past a handful.
DEFAULT_MAX_IN_FLIGHT = 8
#: Bodies larger than this are refused without being read whole.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

FetchResult = JobSnapshot | JobwatchError


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A client's counters: HTTP requests sent, retries made, calls that failed for good."""

    requests: int
    retries: int
    errors: int


_USER_AGENT = "jobwatch/0.1"


class Client:
    """Queries job status on one endpoint for one project.

    ``endpoint`` is the service's base URL (``https://evs.{region}.myhuaweicloud.com``,
    ``https://ges.{region}.myhuaweicloud.com``, or a graph's access address for
    engine jobs).  ``auth`` is a ``TokenAuth``, an ``AKSKAuth`` or any ``httpx.Auth``.

    Pass ``http_client`` to use your own ``httpx.AsyncClient`` (it is not closed
    by ``aclose``), or ``transport`` to give the client's own one a transport
    (``httpx.ASGITransport(app=simulator.app)`` runs against the simulator
    in-process).  ``verify`` turns TLS certificate checks off when False: do that
    only on purpose.

    ``fast`` chooses the HTTP transport of the client's own ``httpx.AsyncClient``:
    with the ``fast`` extra installed (httpx-aiohttp) and on asyncio, the aiohttp
    transport costs about half the CPU per request of httpx's own; ``None`` (the
    default) uses it when it can, ``True`` requires it to be installed (and still
    falls back to httpx's transport on trio, where aiohttp cannot run), ``False``
    never uses it.  ``client.transport_name`` says which one is in use.

    Use it as an async context manager, or call ``aclose()`` when done::

        async with Client(endpoint, project_id, auth=AKSKAuth(ak, sk)) as client:
            snapshot = await client.fetch(EvsJob("ff8080..."))
    """

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        *,
        auth: httpx.Auth | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit: RateLimit | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        verify: bool | ssl.SSLContext = True,
        on_retry: RetryHook | None = None,
        fast: bool | None = None,
    ) -> None:
        url = httpx.URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"endpoint must be an http(s) URL, not {endpoint!r}")
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.endpoint = str(url).rstrip("/")
        self.project_id = validate_id("project_id", project_id)
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        self._auth = auth
        self._on_retry = on_retry
        if verify is False:
            logger.warning(
                "TLS certificate verification is OFF for %s (verify=False)", self.endpoint
            )
        if fast and http_client is None and transport is None and not fast_available():
            raise RuntimeError("fast=True needs httpx-aiohttp: pip install 'jobwatch[fast]'")
        self._owns_http = http_client is None
        self._http_given = http_client
        self._transport = transport
        self._fast = fast
        self._verify = verify
        self._lazy_http: httpx.AsyncClient | None = None
        self._closed = False
        self._transport_errors: tuple[type[BaseException], ...] = (httpx.TransportError,)
        self._in_flight = anyio.CapacityLimiter(max_in_flight)
        self._rate = SlidingWindowLimiter(rate_limit) if rate_limit else None
        self._throttled_until = 0.0
        self._requests = 0
        self._retries = 0
        self._errors = 0

    @classmethod
    def from_env(cls, endpoint: str, project_id: str | None = None, **kwargs: Any) -> Self:
        """A client with AK/SK credentials and project ID from the official SDK's variables.

        Reads ``HUAWEICLOUD_SDK_AK``, ``HUAWEICLOUD_SDK_SK``,
        ``HUAWEICLOUD_SDK_SECURITY_TOKEN`` and ``HUAWEICLOUD_SDK_PROJECT_ID``.
        """
        project = project_id or project_id_from_env()
        if not project:
            raise ValueError("no project ID: pass project_id or set HUAWEICLOUD_SDK_PROJECT_ID")
        kwargs.setdefault("auth", AKSKAuth.from_env())
        return cls(endpoint, project, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Client(endpoint={self.endpoint!r}, project_id={self.project_id!r}, "
            f"auth={self._auth!r})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections (not those of a client you passed in)."""
        self._closed = True
        if self._owns_http and self._lazy_http is not None:
            await self._lazy_http.aclose()

    @property
    def _http(self) -> httpx.AsyncClient:
        """The httpx client, made on first use (inside the event loop, to pick a transport)."""
        if self._http_given is not None:
            return self._http_given
        if self._lazy_http is None:
            if self._closed:
                raise RuntimeError("this client was closed")
            transport = self._transport
            if transport is None and self._fast is not False and _on_asyncio() and fast_available():
                from aiohttp import ClientError
                from httpx_aiohttp import AiohttpTransport

                transport = AiohttpTransport(verify=self._verify)
                self._transport_errors = (httpx.TransportError, ClientError)
            self._lazy_http = httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(self.timeout), verify=self._verify
            )
        return self._lazy_http

    @property
    def transport_name(self) -> str:
        """The HTTP transport in use (or to be used): ``aiohttp``, ``httpx`` or ``custom``."""
        http = self._http
        kind = type(http._transport).__name__
        if kind == "AiohttpTransport":
            return "aiohttp"
        return "httpx" if kind == "AsyncHTTPTransport" else "custom"

    def statistics(self) -> ClientStatistics:
        """Counters since the client was made: requests sent, retries, failed calls."""
        return ClientStatistics(requests=self._requests, retries=self._retries, errors=self._errors)

    # -- public queries -------------------------------------------------------

    async def fetch(self, ref: JobRef) -> JobSnapshot:
        """Query one job once (with retries) and return its snapshot.

        An engine job is looked up in its graph's job list; ``JobNotFound`` when
        it is not there.
        """
        if isinstance(ref, GesEngineJob):
            # Leaving the loop early must close the generator (trio warns otherwise).
            async with aclosing(self.list_engine_jobs(ref.graph_name)) as snapshots:
                async for snapshot in snapshots:
                    if snapshot.ref == ref:
                        return snapshot
            raise missing_from_list(ref.job_id, ref.graph_name)
        data = await self._get(ref.path(self.project_id), None, what=str(ref))
        return _dialects.parse_snapshot(ref, data)

    async def fetch_many(self, refs: Iterable[JobRef]) -> list[FetchResult]:
        """Query many jobs concurrently; one result per reference, in order.

        A result is the job's snapshot, or the ``JobwatchError`` that ended its
        query: one failing job does not lose the others.  Engine jobs of one
        graph share a single job-list query.
        """
        refs = list(refs)
        results: list[FetchResult | None] = [None] * len(refs)
        engine: dict[str, list[int]] = {}
        direct: list[int] = []
        for index, ref in enumerate(refs):
            if isinstance(ref, GesEngineJob):
                engine.setdefault(ref.graph_name, []).append(index)
            else:
                direct.append(index)

        async def one(index: int) -> None:
            try:
                results[index] = await self.fetch(refs[index])
            except JobwatchError as exc:
                results[index] = exc

        async def graph(name: str, indexes: Sequence[int]) -> None:
            try:
                found = {s.ref: s async for s in self.list_engine_jobs(name)}
            except JobwatchError as exc:
                for index in indexes:
                    results[index] = exc
                return
            for index in indexes:
                ref = refs[index]
                results[index] = found.get(ref) or missing_from_list(ref.job_id, name)

        work: Iterator[Callable[[], Awaitable[None]]] = iter(
            [partial(one, i) for i in direct] + [partial(graph, n, ix) for n, ix in engine.items()]
        )

        async def worker() -> None:
            for job in work:
                await job()

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.max_in_flight, len(direct) + len(engine))):
                tg.start_soon(worker)
        return [r for r in results if r is not None]

    async def list_engine_jobs(
        self, graph_name: str, *, page_size: int = _dialects.MAX_LIMIT, offset: int = 0
    ) -> AsyncGenerator[JobSnapshot, None]:
        """Every job a GES graph engine keeps, page by page (``limit``/``offset``).

        ``page_size`` is at most 100000, the API's maximum.  To stop before the
        end, close the generator (``async with contextlib.aclosing(...)``): trio
        warns about async generators left unfinished.
        """
        if not 1 <= page_size <= _dialects.MAX_LIMIT:
            raise ValueError(f"page_size must be between 1 and {_dialects.MAX_LIMIT}")
        if offset < 0:
            raise ValueError("offset must not be negative")
        path = engine_list_path(self.project_id, graph_name)
        first_of_previous: JobSnapshot | None = None
        while True:
            params = {"limit": str(page_size), "offset": str(offset)}
            data = await self._get(path, params, what=f"ges-engine:{graph_name}")
            page = _dialects.parse_engine_page(graph_name, data)
            if page.jobs and first_of_previous is not None and page.jobs[0] == first_of_previous:
                # Hundred-billion-edge graphs ignore limit/offset: the same page again.
                logger.warning("graph %s ignores paging; stopping after one page", graph_name)
                return
            for snapshot in page.jobs:
                yield snapshot
            offset += page.received
            full = page.received >= page_size
            if not full or (page.total_count is not None and offset >= page.total_count):
                return
            first_of_previous = page.jobs[0] if page.jobs else None

    # -- the request path -----------------------------------------------------

    async def _get(self, path: str, params: dict[str, str] | None, *, what: str) -> Any:
        """GET ``path`` with retries; return the parsed JSON of a successful answer."""
        policy = self.retry
        delays = policy.backoff_delays()
        started = anyio.current_time()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(path, params)
            except JobwatchError as exc:
                asked = policy.server_delay(exc)
                delay = asked if asked is not None else next(delays)
                waited = anyio.current_time() - started
                if (
                    attempt >= policy.attempts
                    or not policy.is_transient(exc)
                    or waited + delay > policy.timeout
                ):
                    self._errors += 1
                    raise
                self._retries += 1
                if asked is not None:
                    self._throttled_until = max(self._throttled_until, anyio.current_time() + asked)
                logger.info(
                    "%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, exc, delay
                )
                if self._on_retry is not None:
                    self._on_retry(RetryDetails(what, attempt, delay, waited, exc))
                await anyio.sleep(delay)

    async def _attempt(self, path: str, params: dict[str, str] | None) -> Any:
        request = self._http.build_request(
            "GET",
            self.endpoint + path,
            params=params,
            headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
        )
        async with self._in_flight:
            pause = self._throttled_until - anyio.current_time()
            if pause > 0:
                await anyio.sleep(pause)
            if self._rate is not None:
                await self._rate.acquire()
            self._requests += 1
            status, headers, body = await self._send(request)
        request_id = headers.get("x-request-id")
        logger.debug(
            "GET %s -> %d (%d bytes, request id %s)",
            request.url.path,
            status,
            len(body),
            request_id,
        )
        if not 200 <= status < 300:
            try:
                data = _dialects.decode_json(body, status_code=status)
            except JobwatchError:
                data = None
            raise status_error(
                status,
                data,
                body=body,
                request_id=request_id,
                retry_after=parse_retry_after(headers),
            )
        data = _dialects.decode_json(body, status_code=status)
        _dialects.raise_for_error_body(data, body=body, request_id=request_id)
        return data

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP exchange, bounded by ``timeout``; the body is read up to the cap."""
        try:
            with anyio.fail_after(self.timeout):
                response = await self._http.send(request, auth=self._auth, stream=True)
                try:
                    body = await self._read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise RequestTimeout(
                f"no answer within {self.timeout}s from {request.url.host}"
            ) from None
        except self._transport_errors as exc:
            where, detail = request.url.host, _describe(exc)
            # aiohttp's transport reports some connection failures (a refused
            # certificate among them) as timeouts: trust the cause, not the label.
            if isinstance(exc, httpx.TimeoutException) and not _causes(exc, ssl.SSLError):
                raise RequestTimeout(f"{type(exc).__name__} talking to {where}: {detail}") from None
            raise ConnectError(f"{type(exc).__name__} talking to {where}: {detail}") from None
        return response.status_code, response.headers, body

    async def _read_capped(self, response: httpx.Response) -> bytes:
        cap = self.max_body_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise _too_large(response, cap)
        chunks: list[bytes] = []
        size = 0
        stream = response.aiter_bytes()
        async for chunk in stream:
            size += len(chunk)
            if size > cap:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
        # Over the cap: close the connection, then let httpx's chain of stream
        # iterators end on the closed stream rather than abandon them half-way
        # (trio warns about async generators collected before they finish).
        await response.aclose()
        await _finish(stream, budget=cap)
        raise _too_large(response, cap)


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


def fast_available() -> bool:
    """True when the ``fast`` extra (httpx-aiohttp) is installed."""
    return importlib.util.find_spec("httpx_aiohttp") is not None


def _on_asyncio() -> bool:
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def _causes(exc: BaseException, kind: type[BaseException]) -> bool:
    """True when ``exc`` or one of its causes is a ``kind``."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    """The first non-empty message along an exception's causes (trio's are often empty)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if str(seen):
            return str(seen)
        seen = seen.__cause__ or seen.__context__
    return "no detail"


def _too_large(response: httpx.Response, cap: int) -> ResponseTooLarge:
    return ResponseTooLarge(
        f"the body is larger than max_body_bytes ({cap} bytes)", status_code=response.status_code
    )
