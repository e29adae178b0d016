"""Credentials that expire: a provider called when needed, and again when the gateway
says the token expired.

IAM tokens live 24 hours, temporary AK/SK and security tokens less; a watch can
outlive both.  ``Client(auth=provider)`` takes a sync or async callable returning
a token (``str``), an ``(ak, sk)`` or ``(ak, sk, security_token)`` tuple, or
``Credentials`` (which may say when they expire).  The client calls it before its
first request, ahead of the expiry it was told, and once more after an answer
saying the token expired (``APIGW.0301``/``APIG.0301`` "token expires", or any
HTTP 401).  A sync provider runs in a worker thread: it may block (a call to IAM).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
import httpx

from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch._exceptions import AuthenticationError

__all__ = ["CredentialProvider", "Credentials", "CredentialsUnavailable", "ProvidedAuth"]

logger = logging.getLogger("jobwatch")

#: The official SDK refreshes temporary credentials this long before they expire.
REFRESH_AHEAD = timedelta(minutes=40)
#: After a provider failed, it is not asked again for this long (calls fail at once).
PROVIDER_BACKOFF = 30.0
#: Credentials are never refreshed ahead of time more often than this.
MIN_REFRESH = timedelta(seconds=30)


class CredentialsUnavailable(AuthenticationError):
    """The credential provider failed (``__cause__`` is its exception; the message
    names only its type): no request was sent (``status_code`` 0).  The provider is
    asked again ``PROVIDER_BACKOFF`` seconds later at the soonest; a failure while
    refreshing ahead of expiry keeps the current credentials.  The watcher gives
    the job up (``auth``); the client is not marked refused."""


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What a credential provider returns: a token, or an AK/SK pair, and their expiry.

    Give ``token``, or ``ak`` and ``sk`` (with ``security_token`` for temporary
    credentials).  ``expires_at`` (aware, or naive UTC) lets the client refresh
    ahead of time: 40 minutes before, as the official SDK does, or at half the
    remaining lifetime when that is shorter.  ``repr`` never shows a secret.
    """

    token: str | None = None
    ak: str | None = None
    sk: str | None = None
    security_token: str | None = None
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.token is None) == (self.ak is None and self.sk is None):
            raise ValueError("Credentials take a token, or an ak and sk, not both")
        self.auth()  # the same checks as TokenAuth and AKSKAuth, made now

    def auth(self) -> TokenAuth | AKSKAuth:
        """The authentication these credentials sign requests with."""
        if self.token is not None:
            return TokenAuth(self.token)
        return AKSKAuth(self.ak or "", self.sk or "", self.security_token)

    def __repr__(self) -> str:
        kind = "token" if self.token is not None else f"ak={(self.ak or '')[:4]}…"
        return f"Credentials({kind}, expires_at={self.expires_at!r})"


Provided = Credentials | str | tuple[str, str] | tuple[str, str, str | None]
#: A sync or async callable returning credentials (see ``jobwatch._credentials``).
CredentialProvider = Callable[[], Provided | Awaitable[Provided]]


def _as_credentials(value: object) -> Credentials:
    if isinstance(value, Credentials):
        return value
    if isinstance(value, str):
        return Credentials(token=value)
    if isinstance(value, tuple) and len(value) in (2, 3):
        ak, sk, token = (*value, None)[:3]
        if isinstance(ak, str) and isinstance(sk, str) and isinstance(token, str | None):
            return Credentials(ak=ak, sk=sk, security_token=token or None)
    raise TypeError(
        "a credential provider must return a token (str), an (ak, sk[, security_token]) "
        f"tuple or Credentials, not {type(value).__name__}"
    )


class ProvidedAuth(httpx.Auth):
    """Signs with what a provider returned last, asking it again when that goes stale.

    ``ready()`` (awaited by the client before each request) loads or refreshes;
    ``refused(generation)`` after a 401 marks the credentials of that generation
    stale, so that the next ``ready()`` asks the provider again, once however many
    requests saw them refused.  Credentials handed out after a refusal that are
    refused before any answer accepted them are not refreshed again: the provider
    gives bad ones, and asking it in a loop would lock the AK.
    """

    requires_request_body = True

    def __init__(self, provider: CredentialProvider) -> None:
        if not callable(provider):
            raise TypeError("a credential provider must be callable")
        self._provider = provider
        self._current: TokenAuth | AKSKAuth | None = None
        self._refresh_at: datetime | None = None
        self._expires_at: datetime | None = None
        self._stale = False
        self._after_refusal = False  # the current ones replaced refused ones
        self._proven = False  # an answer accepted the current ones
        self._lock = anyio.Lock()
        self._failure: CredentialsUnavailable | None = None
        self._retry_at = 0.0  # event-loop time the provider may be asked again
        self.generation = 0
        self.description = "credentials from a provider (not yet asked)"

    async def ready(self) -> int:
        """Load the credentials if they are missing or stale; their generation."""
        if self._needs_refresh():
            async with self._lock:
                if self._needs_refresh():  # another task may have refreshed meanwhile
                    await self._refresh()
        return self.generation

    def refused(self, generation: int) -> bool:
        """The credentials of ``generation`` were refused; True when new ones are worth
        a try (they will be asked for at the next ``ready()``)."""
        if generation != self.generation:
            return True  # newer ones are there already
        if self._after_refusal and not self._proven:
            return False
        self._stale = True
        return True

    def accepted(self, generation: int) -> None:
        """An answer accepted the credentials of ``generation``."""
        if generation == self.generation:
            self._proven = True

    def _usable(self) -> bool:
        """True when the current credentials are there, not refused and not expired."""
        if self._current is None or self._stale:
            return False
        return self._expires_at is None or datetime.now(UTC) < self._expires_at

    def _needs_refresh(self) -> bool:
        if self._current is None or self._stale:
            return True
        return self._refresh_at is not None and datetime.now(UTC) >= self._refresh_at

    async def _refresh(self) -> None:
        now = anyio.current_time()
        failure = self._failure
        if failure is not None and now < self._retry_at:
            if self._usable():
                return
            raise _unavailable(failure.__cause__)
        provider = self._provider
        try:
            if inspect.iscoroutinefunction(provider):
                value = await provider()
            else:
                value = await anyio.to_thread.run_sync(provider, abandon_on_cancel=True)
                if inspect.isawaitable(value):
                    value = await value
            credentials = _as_credentials(value)
        except Exception as exc:
            self._failure = _unavailable(exc)
            self._retry_at = anyio.current_time() + PROVIDER_BACKOFF
            if self._usable():  # refreshing ahead of time: the current ones still hold
                logger.warning("the credential provider failed (%s); keeping the current ones", exc)
                return
            raise self._failure from exc
        self._failure = None
        self._current = credentials.auth()
        self._refresh_at = _refresh_time(credentials.expires_at)
        self._expires_at = _aware(credentials.expires_at)
        self._after_refusal = self._stale
        self._proven = False
        self._stale = False
        self.generation += 1
        self.description = repr(self._current)

    @property
    def current(self) -> TokenAuth | AKSKAuth | None:
        """The authentication signing requests now (None before the first ``ready()``)."""
        return self._current

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._current is None:
            raise RuntimeError("ProvidedAuth.ready() must be awaited before a request")
        yield from self._current.auth_flow(request)

    def __repr__(self) -> str:
        return f"ProvidedAuth({self.description})"


def _aware(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _refresh_time(expires_at: datetime | None) -> datetime | None:
    expires_at = _aware(expires_at)
    if expires_at is None:
        return None
    now = datetime.now(UTC)
    ahead = min(REFRESH_AHEAD, max(expires_at - now, timedelta(0)) / 2)
    # Never sooner than MIN_REFRESH: credentials handed out already expired (a skewed
    # clock) must not make every request ask the provider.
    return max(expires_at - ahead, now + MIN_REFRESH)


def _unavailable(cause: BaseException | None) -> CredentialsUnavailable:
    error = CredentialsUnavailable(
        f"the credential provider failed: {type(cause).__name__}", status_code=0
    )
    error.__cause__ = cause
    return error
