"""A poll that ``unwatch`` can cut short while its request waits to be sent.

A request can wait, before it goes out, for the request budget's next token, a
``RateLimit``, a ``Retry-After`` pause or a retry's backoff: seconds, when a
quota binds.  The poller runs each poll inside a ``Poll``; the client marks
those waits with ``waiting_to_send()``.  When every job the poll serves is
unwatched, ``Poll.abandon`` cancels the poll's scope if it is in such a wait
now, or at its next one; a request already sent is answered (its events come
before the job's end, as for any poll).  Outside a ``Poll`` (a plain
``Client.fetch``) the marks cost a context variable read.

Cancellation runs through the poll's own ``anyio.CancelScope``, so it crosses the
client's task groups as anyio cancellation does, on asyncio and trio alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["Poll", "waiting_to_send"]

T = TypeVar("T")


class Poll(Generic[T]):
    """One poll of ``serves`` (its jobs): the request block ``unwatch`` may abandon.

    Past ``deadline`` (``anyio`` clock; None: none) the poll is cut short too.
    """

    __slots__ = ("_token", "_waits", "abandoned", "scope", "serves")

    def __init__(self, serves: Sequence[T], deadline: float | None) -> None:
        self.serves = serves
        self.scope = anyio.CancelScope(deadline=float("inf") if deadline is None else deadline)
        self.abandoned = False
        self._waits = 0  # waits to send under way in this poll now
        self._token: Token[Poll[Any] | None] | None = None

    def __enter__(self) -> Poll[T]:
        self.scope.__enter__()
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        return bool(self.scope.__exit__(exc_type, exc, tb))

    def abandon(self) -> None:
        """Nobody wants this poll's answer: end it in its wait to send, now or next."""
        self.abandoned = True
        if self._waits:
            self.scope.cancel()


class _WaitingToSend:
    """``async with``: a wait before a request is sent, which abandoning a poll ends.

    Holds no state (both ends read the task's poll), so one serves every wait.
    """

    __slots__ = ()

    async def __aenter__(self) -> None:
        poll = _current.get()
        if poll is None:
            return
        if poll.abandoned:
            poll.scope.cancel()
            await anyio.lowlevel.checkpoint()  # raises the cancellation: nothing is sent
        poll._waits += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        poll = _current.get()
        if poll is None:
            return
        poll._waits -= 1
        if exc_type is None and poll.abandoned:
            # Abandoned as the wait ended (its wake-up already on its way): the
            # cancellation lands here, before the request goes out.
            poll.scope.cancel()
            await anyio.lowlevel.checkpoint()


def waiting_to_send() -> _WaitingToSend:
    """Mark a wait before a request is sent: an abandoned poll ends there."""
    return _WAITING_TO_SEND


_WAITING_TO_SEND = _WaitingToSend()


_current: ContextVar[Poll[Any] | None] = ContextVar("jobwatch_poll", default=None)
