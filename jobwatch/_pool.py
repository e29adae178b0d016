"""A pool of clients: one per endpoint, project and credentials, made when first asked for.

Every client the pool makes gets the same options (credentials, retry policy,
rate limit, timeouts, HTTP stack...).  A client keeps its own rate limit,
in-flight limit and throttle pauses, so one client per (endpoint, project,
credentials) gives one rate limit per endpoint and tenant: a throttled
endpoint holds back its own requests, not the others'.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Self, TypedDict, Unpack

import httpx

from jobwatch import _regions as regions
from jobwatch._client import DEFAULT_MAX_IN_FLIGHT, Client, check_endpoint
from jobwatch._credentials import CredentialProvider, ProvidedAuth
from jobwatch._limits import RateLimit
from jobwatch._policies import RetryPolicy
from jobwatch._refs import validate_id
from jobwatch._retry import RetryHook

__all__ = ["ClientOptions", "ClientPool", "EndpointNotInPool", "endpoint_key"]

Auth = httpx.Auth | CredentialProvider
EndpointFor = Callable[[str, str], str]
TransportFor = Callable[[str], httpx.AsyncBaseTransport] | Mapping[str, httpx.AsyncBaseTransport]
#: Which credentials a client sends: an AK (the public half of AK/SK), or the
#: identity of the auth object (a token, a provider); None for no credentials.
_Identity = tuple[str, object] | None
_Key = tuple[str, str, _Identity]


class ClientOptions(TypedDict, total=False):
    """The ``Client`` options a pool gives every client it makes (see ``Client``)."""

    timeout: float
    retry: RetryPolicy | None
    max_in_flight: int
    rate_limit: RateLimit | None
    max_body_bytes: int
    verify: bool | ssl.SSLContext
    on_retry: RetryHook | None
    fast: bool | None
    unreachable_timeout: float | None


class EndpointNotInPool(ValueError):
    """The pool may not reach this endpoint: not among its ``endpoints``, no
    credentials for it, or no transport for it."""


def endpoint_key(endpoint: str) -> str:
    """``endpoint`` as a ``Client`` spells it (``ValueError`` when it is no endpoint)."""
    return str(check_endpoint(endpoint)).rstrip("/")


def _shared(auth: Auth | None) -> httpx.Auth | None:
    """``auth`` as every client made gets it: a provider wrapped once, so that the
    clients share its refreshes (and one refusal marks it stale for all)."""
    if auth is None or isinstance(auth, httpx.Auth):
        return auth
    return ProvidedAuth(auth)


def _identity(auth: object) -> _Identity:
    if auth is None:
        return None
    if isinstance(auth, ProvidedAuth):
        auth = auth._provider
    ak = getattr(auth, "_ak", None)
    if isinstance(ak, str):
        return ("ak", ak)
    return ("object", id(auth))


class ClientPool:
    """Clients for many endpoints and projects, made on demand, cached and closed together.

    ``pool.client(endpoint, project_id)`` returns the pool's client for that
    endpoint and project (``project_id`` defaults to the pool's), making it the
    first time with ``auth`` and the ``Client`` options given here (``timeout``,
    ``retry``, ``rate_limit``, ``max_in_flight``, ``fast``...).  One client per
    endpoint, project and credentials: each keeps its own rate limit, so
    ``rate_limit`` holds per endpoint and tenant.

    Which endpoints the pool reaches:

    - ``endpoints``: when given, only these (any project); None: any.
    - ``credentials``: per-endpoint credentials (endpoint -> auth), used instead
      of ``auth`` there.  When ``credentials`` is given and ``auth`` is None,
      an endpoint without an entry has no credentials and is not reached (an
      IAM token is scoped to one region and project: a token for another
      endpoint would only be refused).  Neither given: requests go unsigned
      (a simulator, a gateway that signs them).
    - ``clients``: clients you made, served for their own endpoint and project
      (whatever ``endpoints`` says).  The pool never closes them.
    - ``transport_for``: for tests, the httpx transport of each endpoint, a
      callable (``lambda endpoint: sims[endpoint].transport()``) or a mapping;
      with a mapping, endpoints it lacks are not reached.  Each client made
      owns its transport and closes it.

    Other endpoints raise ``EndpointNotInPool`` (a ``ValueError``) naming them.

    ``pool.client_for(service, region=...)`` finds the endpoint with
    ``endpoint_for(service, region)``: by default ``jobwatch.endpoint_for`` (the region
    table, with the official SDK's overrides).

    Use it as an async context manager, or call ``aclose()``: it closes every
    client it made (not those given in ``clients``)::

        async with ClientPool(project_id=project, auth=AKSKAuth(ak, sk)) as pool:
            async with Watcher(pool) as watcher:
                watcher.watch(EvsJob(job_id), endpoint="https://evs.cn-north-4.myhuaweicloud.com")
    """

    def __init__(
        self,
        *,
        project_id: str | None = None,
        auth: Auth | None = None,
        credentials: Mapping[str, Auth] | None = None,
        endpoints: Iterable[str] | None = None,
        clients: Iterable[Client] = (),
        transport_for: TransportFor | None = None,
        endpoint_for: EndpointFor | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        if "http_client" in options or "transport" in options:
            raise TypeError("a pool makes its clients' HTTP stacks: use transport_for")
        self.project_id = None if project_id is None else validate_id("project_id", project_id)
        # A provider is wrapped once, so that the pool's clients share its refreshes.
        self._auth = _shared(auth)
        self._credentials = (
            None
            if credentials is None
            else {endpoint_key(endpoint): _shared(given) for endpoint, given in credentials.items()}
        )
        self._endpoints = None if endpoints is None else {endpoint_key(e) for e in endpoints}
        self._transports: Callable[[str], httpx.AsyncBaseTransport] | None = None
        self._routed: set[str] | None = None
        if isinstance(transport_for, Mapping):
            routes = {endpoint_key(endpoint): t for endpoint, t in transport_for.items()}
            self._transports, self._routed = routes.__getitem__, set(routes)
        else:
            self._transports = transport_for
        self._endpoint_for = endpoint_for or regions.endpoint_for
        self._options = options
        self._given: dict[tuple[str, str], Client] = {}
        for client in clients:
            self._given.setdefault((client.endpoint, client.project_id), client)
        self._made: dict[_Key, Client] = {}
        self._closed = False

    @property
    def max_in_flight(self) -> int:
        """The ``max_in_flight`` of each client the pool makes."""
        return self._options.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)

    def __repr__(self) -> str:
        endpoints = sorted({key[0] for key in self._made} | {key[0] for key in self._given})
        return (
            f"ClientPool(project_id={self.project_id!r}, auth={self._auth!r}, "
            f"clients={len(self._made) + len(self._given)}, endpoints={endpoints!r})"
        )

    def clients(self) -> list[Client]:
        """The clients it holds now: those given, then those it made."""
        return [*self._given.values(), *self._made.values()]

    def check(self, endpoint: str, project_id: str | None = None) -> None:
        """``EndpointNotInPool`` (or ``ValueError``) unless ``client()`` would serve these."""
        self._resolve(endpoint, project_id)

    def client(self, endpoint: str, project_id: str | None = None) -> Client:
        """The client of ``endpoint`` and ``project_id`` (default: the pool's), made
        the first time.  ``EndpointNotInPool`` when the pool may not reach it."""
        url, project, given, auth = self._resolve(endpoint, project_id)
        if given is not None:
            return given
        key = (url, project, _identity(auth))
        client = self._made.get(key)
        if client is None:
            transport = None if self._transports is None else self._transports(url)
            client = Client(url, project, auth=auth, transport=transport, **self._options)
            self._made[key] = client
        return client

    def client_for(
        self,
        service: str,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        project_id: str | None = None,
    ) -> Client:
        """The client of ``service`` (``"evs"``, ``"ges"``...) in ``region``, or at ``endpoint``.

        The endpoint of a region comes from the pool's ``endpoint_for``, which
        raises ``ValueError`` for a service or region it does not know.
        """
        if (region is None) == (endpoint is None):
            raise ValueError("give region or endpoint (one of them)")
        if endpoint is None:
            assert region is not None
            endpoint = self._endpoint_for(service, region)
        return self.client(endpoint, project_id)

    def _resolve(
        self, endpoint: str, project_id: str | None
    ) -> tuple[str, str, Client | None, httpx.Auth | None]:
        if self._closed:
            raise RuntimeError("this client pool was closed")
        url = endpoint_key(endpoint)
        project = project_id if project_id is not None else self.project_id
        if project is None:
            raise ValueError(f"no project ID for {url}: pass project_id (or give the pool one)")
        validate_id("project_id", project)
        given = self._given.get((url, project))
        if given is not None:
            return url, project, given, None
        if self._endpoints is not None and url not in self._endpoints:
            known = ", ".join(sorted(self._endpoints)) or "none"
            raise EndpointNotInPool(f"{url} is not among this pool's endpoints ({known})")
        auth = self._auth
        if self._credentials is not None:
            if url in self._credentials:
                auth = self._credentials[url]
            elif auth is None:
                raise EndpointNotInPool(f"this pool has no credentials for {url}")
        if self._routed is not None and url not in self._routed:
            raise EndpointNotInPool(f"this pool has no transport for {url}")
        return url, project, None, auth

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
        """Close every client the pool made (not the clients it was given); then no
        more clients are made.  Idempotent."""
        self._closed = True
        made, self._made = list(self._made.values()), {}
        failed: BaseException | None = None
        for client in made:
            try:
                await client.aclose()
            except Exception as exc:  # noqa: BLE001 - close the others, then raise the first
                failed = failed or exc
        if failed is not None:
            raise failed
