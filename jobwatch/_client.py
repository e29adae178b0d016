"""The async client: status queries for one endpoint and project, with retries and limits."""

from __future__ import annotations

import importlib
import logging
import random
import re
import ssl
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import anyio
import httpx
import sniffio

from jobwatch import _dialects
from jobwatch._abandon import PollAbandoned, abandoned_check, prepaid_by, waiting_to_send
from jobwatch._auth import AKSKAuth, project_id_from_env, secrets_of
from jobwatch._budget import AdaptiveRate
from jobwatch._credentials import CredentialProvider, CredentialsUnavailable, ProvidedAuth
from jobwatch._dialects._engine import list_jobs
from jobwatch._exceptions import (
    APIStatusError,
    AuthenticationError,
    EndpointUnreachable,
    JobwatchError,
    PermissionDeniedError,
    RateLimitError,
    TransportError,
    status_error,
    throttle_window,
)
from jobwatch._exchange import (
    AiohttpExchange,
    Exchange,
    HttpxExchange,
    aiohttp_available,
    env_proxy,
    http_transports,
    native_auth,
)
from jobwatch._kinds import ApiKind, kind_of
from jobwatch._limits import RateLimit, SlidingWindowLimiter, ThrottleGate
from jobwatch._policies import RetryPolicy
from jobwatch._refs import JobRef, validate_id
from jobwatch._regions import check_service, endpoint_for
from jobwatch._retry import RetryDetails, RetryHook, parse_retry_after
from jobwatch._slots import Slots
from jobwatch._snapshot import JobSnapshot
from jobwatch._version import __version__

__all__ = ["Client", "ClientStatistics", "FetchResult", "RequestLedger", "counting"]

logger = logging.getLogger("jobwatch")

#: Seconds one attempt (connect, send, read) may take.
DEFAULT_TIMEOUT = 10.0
#: Requests in flight at once.  httpx's pool gets expensive past a handful.
DEFAULT_MAX_IN_FLIGHT = 8
#: A server's asked-for pause is waited out with up to this fraction more.
THROTTLE_JITTER = 0.1
#: Seconds a client that never had an answer keeps trying before it gives up.
DEFAULT_UNREACHABLE_TIMEOUT = 120.0
#: Bodies larger than this are refused without being read whole.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

FetchResult = JobSnapshot | JobwatchError


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A client's counters: HTTP requests sent, retries made, calls that failed for good.

    ``rate`` is the request rate its budget allows now (requests/s; None while no
    throttle has come: unlimited), ``throttles`` the throttling answers it got,
    ``paused`` the seconds its requests were held back for the budget or for a
    ``Retry-After`` (see ``AdaptiveRate``; a shared budget's figures are those of
    every client sharing it).
    """

    requests: int
    retries: int
    errors: int
    rate: float | None = None
    throttles: int = 0
    paused: float = 0.0


@dataclass(slots=True)
class RequestLedger:
    """Counters of one caller's requests, whatever client sends them (see ``counting``).

    ``requests``: HTTP requests sent; ``retries``: retries made; ``errors``:
    calls that failed for good; ``throttles``: throttling answers received.  The
    same counters a client keeps for itself.
    """

    requests: int = 0
    retries: int = 0
    errors: int = 0
    throttles: int = 0


#: The ledgers of the blocks of ``counting`` the current context is in, outermost first.
_ledgers: ContextVar[tuple[RequestLedger, ...]] = ContextVar("jobwatch_ledgers", default=())


@contextmanager
def counting(ledger: RequestLedger) -> Iterator[RequestLedger]:
    """Count in ``ledger`` the requests of every client call made inside the block.

    The ledger is held in a context variable: tasks started inside the block
    (``fetch_many``'s among them) count in it too, and calls outside it, in
    other tasks, do not.  Blocks nest: a request counts in the ledger of every
    block it is in (once, should one ledger be entered twice), so a watcher can
    keep its totals in an outer ledger and one poll's in an inner one.
    """
    outer = _ledgers.get()
    token = _ledgers.set(outer if any(known is ledger for known in outer) else (*outer, ledger))
    try:
        yield ledger
    finally:
        _ledgers.reset(token)


#: Sent alike by both stacks; both decode gzip and deflate, and refuse any other encoding.
_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": f"jobwatch/{__version__}",
}


class Client:
    """Queries job status on one endpoint for one project.

    ``endpoint`` is the service's base URL (``https://evs.{region}.myhuaweicloud.com``,
    ``https://ges.{region}.myhuaweicloud.com``, or a graph's access address for
    engine jobs; ``Client.for_region`` builds it from a region id).  ``auth`` is a
    ``TokenAuth``, an ``AKSKAuth``, any ``httpx.Auth``, or a credential provider: a
    sync or async callable returning a token, an ``(ak, sk)`` or
    ``(ak, sk, security_token)`` tuple, or ``Credentials`` with an expiry.  A
    provider is asked before the first request, ahead of the expiry, and once more
    after an HTTP 401 (a token that expired); if the new credentials are refused too,
    the call fails with ``AuthenticationError``.

    An endpoint that has never answered is reported at its first failure (a
    warning on the ``jobwatch`` logger, naming the cause); when still no answer
    has come ``unreachable_timeout`` seconds later (120 by default; None: never),
    calls fail with ``EndpointUnreachable`` and the watcher gives their jobs up
    (``error``).  Once the endpoint has answered, outages are retried as usual.

    Credentials refused once (HTTP 401 or 403, ``APIGW.0301``) are never sent again:
    five bad signatures in a row lock an AK for five minutes, so after the first
    refusal every later call of this client fails at once with the same error, which
    names the credentials (never a secret); only requests already in flight were
    sent.  Make a new client with other credentials.

    Pass ``http_client`` to use your own ``httpx.AsyncClient`` (it is not closed
    by ``aclose``), or ``transport`` for an httpx transport the client sends to
    directly (``httpx.ASGITransport(app=simulator.app)`` runs against the
    simulator in-process; it is closed by ``aclose``).  ``verify`` turns TLS
    certificate checks off when False: do that only on purpose.

    ``fast`` chooses the HTTP stack when you pass neither: with the ``fast`` extra
    installed (aiohttp) and on asyncio, an ``aiohttp.ClientSession`` driven
    directly, about a quarter of the CPU per request of httpx's stack; otherwise
    httpx's own transport.  ``None`` (the default) uses aiohttp when it can,
    ``True`` requires it to be installed (and still falls back to httpx on trio,
    where aiohttp cannot run), ``False`` never uses it.  An ``auth`` other than
    ``TokenAuth``, ``AKSKAuth``, ``httpx.BasicAuth`` or None runs through an
    ``httpx.AsyncClient``.  ``client.transport_name`` says which stack is in use.

    Use it as an async context manager, or call ``aclose()`` when done::

        async with Client(endpoint, project_id, auth=AKSKAuth(ak, sk)) as client:
            snapshot = await client.fetch(EvsJob("ff8080..."))
    """

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        *,
        auth: httpx.Auth | CredentialProvider | None = None,
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
        unreachable_timeout: float | None = DEFAULT_UNREACHABLE_TIMEOUT,
        adaptive: AdaptiveRate | bool = True,
    ) -> None:
        url = check_endpoint(endpoint)
        if http_client is not None and transport is not None:
            raise ValueError("pass http_client or transport, not both")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if unreachable_timeout is not None and not unreachable_timeout >= 0:
            raise ValueError("unreachable_timeout must be None or not negative")
        self.endpoint = str(url).rstrip("/")
        self.project_id = validate_id("project_id", project_id)
        # As the official SDK does: the project in a header too, signed with AK/SK
        # (resources in sub-projects need it).
        self._headers = {**_HEADERS, "X-Project-Id": self.project_id}
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        if auth is not None and not isinstance(auth, httpx.Auth):
            auth = ProvidedAuth(auth)
        self._auth: httpx.Auth | None = auth
        self._provided = auth if isinstance(auth, ProvidedAuth) else None
        self._refused: APIStatusError | None = None
        self._on_retry = on_retry
        if verify is False:
            logger.warning(
                "TLS certificate verification is OFF for %s (verify=False)", self.endpoint
            )
        if fast and http_client is None and transport is None:
            if not fast_available():
                raise RuntimeError("fast=True needs aiohttp: pip install 'jobwatch[fast]'")
            if not native_auth(auth):
                raise ValueError(
                    "fast=True works with TokenAuth, AKSKAuth, httpx.BasicAuth or no auth, "
                    f"not {type(auth).__name__}"
                )
        own_stack = http_client is None and transport is None
        # Read once, here: a SOCKS proxy is refused now, not at the first request.
        self._proxy = env_proxy(url) if own_stack else None
        self._http_given = http_client
        self._transport = transport
        self._fast = fast
        self._verify = verify
        self._lazy_exchange: Exchange | None = None
        if fast is not False and http_client is None and transport is None:
            preload_fast()  # importing aiohttp takes ~0.2 s: not at the first request
        self._closed = False
        self._in_flight = Slots(max_in_flight)
        self._rate = SlidingWindowLimiter(rate_limit) if rate_limit else None
        self._gate = ThrottleGate()
        if isinstance(adaptive, AdaptiveRate):
            self._budget: AdaptiveRate | None = adaptive
        elif adaptive is True:
            self._budget = AdaptiveRate()
        elif adaptive is False:
            self._budget = None
        else:
            raise TypeError(f"adaptive must be an AdaptiveRate or a bool, not {adaptive!r}")
        if self._budget is not None and rate_limit is not None:
            self._budget.limit_to(rate_limit.requests / rate_limit.per)
        self._throttles = 0
        self._gate_paused = 0.0
        self.unreachable_timeout = unreachable_timeout
        self._answered = False  # an HTTP answer came, once
        self._unreachable_since: float | None = None
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
        if "auth" not in kwargs:  # not setdefault: an auth given needs no AK/SK in the env
            kwargs["auth"] = AKSKAuth.from_env()
        return cls(endpoint, project, **kwargs)

    @classmethod
    def for_region(
        cls,
        service: str,
        region: str,
        project_id: str | None = None,
        *,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """A client for jobwatch's API ``service`` in ``region``, its endpoint from the
        region table.

        ``service`` is an API name (``evs``, ``ecs``, ``cce``, ``ges-v2``...), ``region``
        a region id (``cn-north-4``).  The endpoint is, first to last: ``endpoint``
        when given (the service name is still checked; ``ges-engine``, served at a
        graph's own address, needs it); the official SDK's variable
        ``HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION}``; its profile file
        ``~/.huaweicloud/regions.yaml``; the region table (see ``jobwatch.endpoint_for``).
        ``UnknownService`` or ``UnknownRegion`` before any request, and before any
        credentials are read, when there is none.  The project and credentials
        are those of ``from_env``: ``project_id`` or ``HUAWEICLOUD_SDK_PROJECT_ID``;
        ``auth`` from ``kwargs`` or ``HUAWEICLOUD_SDK_AK``/``_SK``/``_SECURITY_TOKEN``.
        Other ``kwargs`` go to ``Client``::

            async with Client.for_region("ecs", "ap-southeast-1") as client:
                snapshot = await client.fetch(job)
        """
        if endpoint is None:
            endpoint = endpoint_for(service, region)
        else:
            check_service(service)  # a misspelt service is an error even so
        return cls.from_env(endpoint, project_id, **kwargs)

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
        if self._lazy_exchange is not None:
            await self._lazy_exchange.aclose()

    async def _release_exchange(self) -> None:
        """Close the connections without closing the client: the next request, in this
        event loop or another one, opens new ones (``wait_for_sync``, one loop per call)."""
        exchange, self._lazy_exchange = self._lazy_exchange, None
        if exchange is not None:
            await exchange.aclose()

    @property
    def _exchange(self) -> Exchange:
        """The HTTP exchange, made on first use (inside the event loop, to pick a stack)."""
        if self._closed:
            raise RuntimeError("this client was closed")
        exchange = self._lazy_exchange
        if exchange is not None:
            return exchange
        common: dict[str, Any] = {
            "auth": self._auth,
            "timeout": self.timeout,
            "max_body_bytes": self.max_body_bytes,
            "headers": self._headers,
        }
        direct = native_auth(self._auth)
        if self._http_given is not None:
            exchange = HttpxExchange(client=self._http_given, owned=False, name="custom", **common)
        elif self._transport is not None:
            given = self._transport
            if direct:
                exchange = HttpxExchange(transports=[given], owned=True, name="custom", **common)
            else:
                http = httpx.AsyncClient(transport=given, timeout=self.timeout)
                exchange = HttpxExchange(client=http, owned=True, name="custom", **common)
        elif direct and self._fast is not False and _on_asyncio() and fast_available():
            exchange = AiohttpExchange(
                verify=self._verify, connections=self.max_in_flight, proxy=self._proxy, **common
            )
        else:
            count = self.max_in_flight if direct else 1
            transports = http_transports(self._verify, count, self._proxy)
            if direct:
                exchange = HttpxExchange(
                    transports=transports, owned=True, name="httpx", proxy=self._proxy, **common
                )
            else:
                http = httpx.AsyncClient(transport=transports[0], timeout=self.timeout)
                exchange = HttpxExchange(
                    client=http, owned=True, name="httpx", proxy=self._proxy, **common
                )
        self._lazy_exchange = exchange
        return exchange

    @property
    def transport_name(self) -> str:
        """The HTTP stack in use (or to be used): ``aiohttp``, ``httpx`` or ``custom``.

        ``custom`` is a client or transport you passed in.  Outside an event loop,
        before the first request, it is ``aiohttp`` when the client would use it
        on asyncio (the stack is chosen at the first request, inside the loop).
        """
        exchange = self._lazy_exchange
        if exchange is not None:
            return exchange.name
        if not _in_a_loop():
            if self._http_given is not None or self._transport is not None:
                return "custom"
            fast = self._fast is not False and native_auth(self._auth) and fast_available()
            return "aiohttp" if fast else "httpx"
        return self._exchange.name

    @property
    def free_slots(self) -> int:
        """Requests that could start now without waiting for ``max_in_flight``."""
        return self._in_flight.free

    @property
    def budget(self) -> AdaptiveRate | None:
        """The request budget this client spends (None with ``adaptive=False``)."""
        return self._budget

    def statistics(self) -> ClientStatistics:
        """Counters since the client was made: requests sent, retries, failed calls,
        and what its budget learned (``rate``, ``throttles``, ``paused``)."""
        budget = self._budget
        return ClientStatistics(
            requests=self._requests,
            retries=self._retries,
            errors=self._errors,
            rate=None if budget is None else budget.rate,
            throttles=self._throttles if budget is None else budget.throttles,
            paused=self._gate_paused + (0.0 if budget is None else budget.paused),
        )

    # -- public queries -------------------------------------------------------

    async def fetch(self, ref: JobRef) -> JobSnapshot:
        """Query one job once (with retries) and return its snapshot.

        An engine job is looked up in its graph's job list; ``JobNotFound`` when
        it is not there.
        """
        return await kind_of(ref).fetch(self, ref)

    async def fetch_many(self, refs: Iterable[JobRef]) -> list[FetchResult]:
        """Query many jobs concurrently; one result per reference, in order.

        A result is the job's snapshot, or the ``JobwatchError`` that ended its
        query: one failing job does not lose the others.  Jobs that share a
        request (engine jobs of one graph: one job-list query) share it.
        """
        refs = list(refs)
        results: list[FetchResult | None] = [None] * len(refs)
        batches: dict[tuple[str, Hashable], tuple[ApiKind[Any], list[int]]] = {}
        direct: list[int] = []
        for index, ref in enumerate(refs):
            kind: ApiKind[Any] = kind_of(ref)
            key = kind.batch_key(ref)
            if key is None:
                direct.append(index)
            else:
                batches.setdefault((kind.name, key), (kind, []))[1].append(index)

        async def one(index: int) -> None:
            try:
                results[index] = await self.fetch(refs[index])
            except JobwatchError as exc:
                results[index] = exc

        async def batch(kind: ApiKind[Any], indexes: Sequence[int]) -> None:
            members = [refs[index] for index in indexes]
            found: Mapping[Any, FetchResult]
            try:
                found = await kind.fetch_batch(self, members)
            except JobwatchError as exc:
                found = dict.fromkeys(members, exc)
            for index in indexes:
                results[index] = found[refs[index]]

        work: Iterator[Callable[[], Awaitable[None]]] = iter(
            [partial(one, i) for i in direct] + [partial(batch, *b) for b in batches.values()]
        )

        async def worker() -> None:
            for job in work:
                await job()

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.max_in_flight, len(direct) + len(batches))):
                tg.start_soon(worker)
        return [r for r in results if r is not None]

    def list_engine_jobs(
        self, graph_name: str, *, page_size: int | None = None, offset: int = 0
    ) -> AsyncGenerator[JobSnapshot, None]:
        """Every job a GES graph engine keeps, page by page (``limit``/``offset``).

        ``page_size`` is at most 100000, the API's maximum; None (the default)
        chooses it so that a page fits ``max_body_bytes``.  A page that is still
        too large is asked again with half the size.  To stop before the
        end, close the generator (``async with contextlib.aclosing(...)``): trio
        warns about async generators left unfinished.
        """
        return list_jobs(self, graph_name, page_size=page_size, offset=offset)

    # -- the request path -----------------------------------------------------

    async def get_json(self, path: str, params: Mapping[str, str] | None, *, what: str) -> Any:
        """GET ``path`` (``params`` as its query) with retries; the parsed JSON of the answer.

        The request every API kind sends (``jobwatch._kinds.Requester``):
        ``what`` names it in logs and retry reports.  Raises the
        ``JobwatchError`` of the last attempt when it fails for good.
        """
        ledgers = _ledgers.get()
        policy = self.retry
        delays = policy.backoff_delays()
        started = self._now()
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            generation = 0
            try:
                provided = self._provided
                if provided is None:
                    data = await self._attempt(path, params, ledgers)
                else:
                    generation = await provided.ready()
                    data = await self._attempt(path, params, ledgers)
                    provided.accepted(generation)
                if self._budget is not None:
                    self._budget._passed_at(self._now())
                return data
            except JobwatchError as exc:
                learned = self._learn(exc, ledgers)
                if isinstance(exc, TransportError) and not self._answered:
                    unreachable = self._never_answered(exc)
                    if unreachable is not None:
                        self._count_error(ledgers)
                        raise unreachable from exc
                if self._provided is not None and _past_the_gateway(exc):
                    self._provided.accepted(generation)
                if isinstance(exc, AuthenticationError | PermissionDeniedError) and not isinstance(
                    exc, CredentialsUnavailable
                ):
                    if (
                        self._refused is None
                        and not reauthenticated
                        and self._reauthenticate(exc, generation)
                    ):
                        reauthenticated = True
                        self._count_retry(ledgers)
                        logger.info("%s: credentials refused (%s); asking the provider", what, exc)
                        continue
                    self._refuse(exc)
                asked = 0.0 if learned else policy.server_delay(exc)
                if asked is not None and not learned:
                    asked = self._pause(exc, asked)
                delay = asked if asked is not None else next(delays)
                waited = self._now() - started
                # (The retry also waits for the budget: a wait past the timeout is not made.)
                held = 0.0 if self._budget is None else self._budget.expected_wait()
                if (
                    attempt >= policy.attempts
                    or not policy.is_transient(exc)
                    or waited + delay + held > policy.timeout
                ):
                    self._count_error(ledgers)
                    raise
                self._count_retry(ledgers)
                logger.info(
                    "%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, exc, delay
                )
                if self._on_retry is not None:
                    self._on_retry(RetryDetails(what, attempt, delay, waited, exc))
                async with waiting_to_send():
                    await anyio.sleep(delay)

    def _now(self) -> float:
        """``anyio.current_time()``, read through the exchange once there is one (cheaper)."""
        exchange = self._lazy_exchange
        return anyio.current_time() if exchange is None else exchange.now()

    def _learn(self, error: JobwatchError, ledgers: tuple[RequestLedger, ...]) -> bool:
        """Tell the budget what an error answer says of the quota; True when the budget
        paces the retry of a throttled request (the gateway asked for no wait)."""
        budget = self._budget
        if not isinstance(error, RateLimitError):
            if budget is not None and isinstance(error, APIStatusError):
                budget.passed()
            return False
        self._throttles += 1
        for ledger in ledgers:
            ledger.throttles += 1
        if budget is None:
            return False
        budget.throttled(error.message)
        return error.retry_after is None

    def _pause(self, error: JobwatchError, seconds: float) -> float:
        """Hold every request of this client for the wait the server asked, with jitter.

        The pause is waited out in full, plus up to a tenth (so that clients paused
        together do not come back together); then the waiting requests go one per
        ``window / limit`` of an APIGW.0308 window (the gateway's own rate), or
        spread over a twentieth of the pause.  Returns the jittered pause.
        """
        window = throttle_window(error.message) if isinstance(error, RateLimitError) else None
        spacing = window[1] / window[0] if window and window[0] > 0 else min(0.1, seconds / 20)
        seconds *= 1.0 + random.uniform(0.0, THROTTLE_JITTER)
        until = self._gate.until
        self._gate.close(seconds, spacing)
        now = anyio.current_time()
        self._gate_paused += max(self._gate.until - max(until, now), 0.0)
        return seconds

    def _count_error(self, ledgers: tuple[RequestLedger, ...]) -> None:
        self._errors += 1
        for ledger in ledgers:
            ledger.errors += 1

    def _never_answered(self, error: TransportError) -> EndpointUnreachable | None:
        """The endpoint has not answered once: say so at the first failure; the error
        to raise instead once that has lasted ``unreachable_timeout``."""
        now = anyio.current_time()
        since = self._unreachable_since
        if since is None:
            self._unreachable_since = since = now
            bound = self.unreachable_timeout
            logger.warning(
                "cannot reach %s: %s; %s",
                self.endpoint,
                error,
                "still trying"
                if bound is None
                else f"giving up if no answer comes within {bound:g}s",
            )
        if self.unreachable_timeout is None or now - since < self.unreachable_timeout:
            return None
        return EndpointUnreachable(
            f"{self.endpoint} never answered in {now - since:.0f}s: {error}", cause=error.cause
        )

    def _count_retry(self, ledgers: tuple[RequestLedger, ...]) -> None:
        self._retries += 1
        for ledger in ledgers:
            ledger.retries += 1

    def _reauthenticate(self, error: APIStatusError, generation: int) -> bool:
        """Mark a provider's credentials stale after a 401; True when worth one more try."""
        if self._provided is None or not isinstance(error, AuthenticationError):
            return False
        return self._provided.refused(generation)

    def _refuse(self, error: APIStatusError) -> None:
        """The credentials were refused: no request is sent with them again."""
        if self._refused is not None:
            return
        self._refused = error
        # INFO, not WARNING: every call that follows fails with an error that says it.
        logger.info(
            "%s refused %r (%s): no more requests are sent with these credentials",
            self.endpoint,
            self._auth,
            error,
        )

    def _refused_again(self) -> APIStatusError:
        refused = self._refused
        assert refused is not None
        again = type(refused)(
            f"not sent: the credentials {self._auth!r} were refused earlier ({refused.message})",
            status_code=refused.status_code,
            error_code=refused.error_code,
            request_id=refused.request_id,
        )
        return again

    async def _attempt(
        self, path: str, params: Mapping[str, str] | None, ledgers: tuple[RequestLedger, ...]
    ) -> Any:
        url = self.endpoint + path
        if params:
            url += "?" + urlencode(params)
        budget = self._budget
        # A token the scheduler took for this poll goes only if the request can go at
        # once: behind a slot to wait for (or a pause, below) it would go late.
        prepaid = (
            budget is not None
            and budget.limited  # (no token is taken for a poll before: no context read)
            and prepaid_by(budget)
            and self._in_flight.free > 0
        )
        slots = self._in_flight
        if not slots.take():
            await _wait_for_slot(slots)  # an unwatched job's poll ends here too
        try:
            limited = budget is not None and budget.limited
            if limited or self._rate is not None or self._gate.may_hold:
                async with waiting_to_send():  # an unwatched job's poll ends here
                    held = await self._gate.wait()
                    if budget is not None and (held or not prepaid):
                        await budget.acquire()
                    if self._rate is not None:
                        await self._rate.acquire()
            else:
                abandoned_check()  # nothing to wait for: an abandoned poll sends nothing
            if self._refused is not None:
                raise self._refused_again()
            self._requests += 1
            for ledger in ledgers:
                ledger.requests += 1
            status, headers, body = await self._exchange.get(url)
        finally:
            slots.release()
        self._answered = True
        request_id = headers.get("x-request-id")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "GET %s -> %d (%d bytes, request id %s)", path, status, len(body), request_id
            )
        if not 200 <= status < 300:
            body = self._scrubbed(body)  # before any message is cut from it
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
                path=urlsplit(url).path,
                location=headers.get("location"),
            )
        try:
            data = _dialects.decode_json(body, status_code=status)
            _dialects.raise_for_error_body(data, body=body, request_id=request_id, url=url)
        except JobwatchError:
            scrubbed = self._scrubbed(body)
            if scrubbed is body:
                raise
            # The error again, from a body without the secrets (its text is cut
            # to a length, so redacting the message afterwards could miss a part).
            data = _dialects.decode_json(scrubbed, status_code=status)
            _dialects.raise_for_error_body(data, body=scrubbed, request_id=request_id, url=url)
            raise
        return data

    def _scrubbed(self, body: bytes) -> bytes:
        """``body`` with the credentials' secrets replaced (``body`` itself if none is in it)."""
        auth = self._auth
        for secret in secrets_of(auth.current if isinstance(auth, ProvidedAuth) else auth):
            raw = secret.encode()
            if raw in body:
                body = body.replace(raw, b"<redacted>")
        return body


async def _wait_for_slot(slots: Slots) -> None:
    """Wait for a slot and take it: a wait to send, which ``unwatch`` cuts short like
    the others (then ``PollAbandoned``, holding no slot)."""
    taken = False
    try:
        async with waiting_to_send():
            await slots.wait()
            taken = True
    except PollAbandoned:
        if taken:  # abandoned as the slot came: nothing is sent
            slots.release()
        raise


def _past_the_gateway(error: JobwatchError) -> bool:
    """True for an error answer the service gave, so after the credentials were
    accepted (not the gateway's own APIGW/APIG codes, 429 or 5xx, which a gateway or
    load balancer may send before checking them)."""
    if not isinstance(error, APIStatusError) or isinstance(
        error, AuthenticationError | PermissionDeniedError
    ):
        return False
    code = error.error_code or ""
    return error.status_code < 429 and not code.startswith(("APIGW.", "APIG."))


def preload_fast() -> None:
    """Import aiohttp now if it could be used (not on trio), so that no request pays for it."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library != "trio" and fast_available():
        importlib.import_module("aiohttp")


def fast_available() -> bool:
    """True when the ``fast`` extra (aiohttp) is installed."""
    return aiohttp_available()


def _in_a_loop() -> bool:
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


def _on_asyncio() -> bool:
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


# A last path segment that is an API version: the endpoint then repeats it in every URL.
_VERSION_SEGMENT = re.compile(r"v[0-9]+(\.[0-9]+)?")


def check_endpoint(endpoint: str) -> httpx.URL:
    """``endpoint`` as a URL, refused (``ValueError``) where requests would go wrong.

    A path is kept as a prefix (a gateway in front of the service), but one that
    ends in an API version (``https://evs.example/v1``) would give ``/v1/v1/...``
    URLs.  Userinfo would put credentials where logs show endpoints; a query or a
    fragment would be dropped or misplaced by every path appended.
    """
    try:
        url = httpx.URL(endpoint)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"endpoint must be an http:// or https:// URL: {exc}") from None
    if url.userinfo:  # checked first: no message may show it
        raise ValueError(
            "the endpoint must not carry a user or password (give credentials as auth)"
        )
    if url.scheme not in ("http", "https") or not url.host:
        shown = "one with '@' in it (not shown)" if "@" in endpoint else repr(endpoint)
        raise ValueError(f"endpoint must be an http:// or https:// URL with a host, not {shown}")
    if url.query or url.fragment:
        plain = url.copy_with(query=None, fragment=None)
        raise ValueError(f"the endpoint must not carry a query or a fragment (give {plain})")
    last = url.path.rstrip("/").rsplit("/", 1)[-1]
    if _VERSION_SEGMENT.fullmatch(last):
        bare = str(url.copy_with(path="/")).rstrip("/")
        raise ValueError(
            f"the endpoint {bare}{url.path.rstrip('/')} ends in an API version ({last}): "
            f"jobwatch adds each API's path itself; give {bare}"
        )
    return url
