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
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
import httpx

from jobwatch._auth import AKSKAuth, TokenAuth

__all__ = ["CredentialProvider", "Credentials", "ProvidedAuth"]

#: The official SDK refreshes temporary credentials this long before they expire.
REFRESH_AHEAD = timedelta(minutes=40)


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
        self._stale = False
        self._after_refusal = False  # the current ones replaced refused ones
        self._proven = False  # an answer accepted the current ones
        self._lock = anyio.Lock()
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

    def _needs_refresh(self) -> bool:
        if self._current is None or self._stale:
            return True
        return self._refresh_at is not None and datetime.now(UTC) >= self._refresh_at

    async def _refresh(self) -> None:
        provider = self._provider
        if inspect.iscoroutinefunction(provider):
            value = await provider()
        else:
            value = await anyio.to_thread.run_sync(provider)
            if inspect.isawaitable(value):
                value = await value
        credentials = _as_credentials(value)
        self._current = credentials.auth()
        self._refresh_at = _refresh_time(credentials.expires_at)
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


def _refresh_time(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    ahead = min(REFRESH_AHEAD, max(expires_at - now, timedelta(0)) / 2)
    return expires_at - ahead
