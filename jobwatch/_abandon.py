"""A poll that ``unwatch`` can cut short while its request waits to be sent.

A request can wait, before it goes out, for the request budget's next token, a
``RateLimit``, a ``Retry-After`` pause or a retry's backoff: seconds, when a
quota binds.  The poller runs each poll inside a ``Poll``; the client runs those
waits inside ``waiting_to_send()``, and only when one of them may block (a
request that cannot wait has nothing to cut short, and pays for no cancel scope:
``abandoned_check()`` is all it needs).  When every job the poll serves is
unwatched, ``Poll.abandon`` cancels the waits under way in it, and a wait that
starts later ends at once; the wait then raises ``PollAbandoned``, which the
``Poll`` swallows: nothing is sent.  A request already sent is answered (its
events come before the job's end, as for any poll).  Outside a ``Poll`` (a plain
``Client.fetch``) the marks cost a context variable read.

Each wait has its own ``anyio.CancelScope``, in the task that waits, so a wait in
one of the client's task groups (``fetch_many``) is cut as well: the group then
raises ``PollAbandoned`` inside an exception group, which the ``Poll`` swallows
as well.  A poll with a deadline has one scope more, around it all, whose
cancellation cuts the request itself.

A poll may also carry a token of the request budget that the scheduler took for
it just before the hand-off (``prepaid``): the client's first wait for that
budget in the poll spends it (``prepaid_by``) instead of taking another.  A poll
ended before its request, or never started, simply drops it: a token not spent
at once is never spent later, so requests stay as far apart as the rate says.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

if TYPE_CHECKING:
    from jobwatch._budget import AdaptiveRate

__all__ = ["Poll", "PollAbandoned", "abandoned_check", "prepaid_by", "waiting_to_send"]

T = TypeVar("T")


class PollAbandoned(BaseException):
    """Raised out of a wait to send whose poll was abandoned; its ``Poll`` swallows it.

    A ``BaseException``: the per-poll guard, which turns any ``Exception`` into an
    error of the jobs, lets it through.
    """


class Poll(Generic[T]):
    """One poll of ``serves`` (its jobs): the request block ``unwatch`` may abandon.

    Past ``deadline`` (``anyio`` clock; None: none) the poll is cut short too.
    ``prepaid``: the budget whose token was taken for this poll, if any.
    """

    __slots__ = ("_token", "_waits", "abandoned", "prepaid", "scope", "serves")

    def __init__(
        self, serves: Sequence[T], deadline: float | None, prepaid: AdaptiveRate | None = None
    ) -> None:
        self.serves = serves
        self.prepaid = prepaid
        #: The deadline's scope (None without a deadline: no scope at all).
        self.scope = None if deadline is None else anyio.CancelScope(deadline=deadline)
        self.abandoned = False
        self._waits: list[anyio.CancelScope] | None = None  # waits to send under way
        self._token: Token[Poll[Any] | None] | None = None

    def __enter__(self) -> Poll[T]:
        if self.scope is not None:
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
        swallowed = self.scope is not None and bool(self.scope.__exit__(exc_type, exc, tb))
        return swallowed or (exc is not None and _only_abandoned(exc))

    def abandon(self) -> None:
        """Nobody wants this poll's answer: end it in its wait to send, now or next."""
        self.abandoned = True
        for scope in self._waits or ():
            scope.cancel()


def _only_abandoned(exc: BaseException) -> bool:
    """``exc`` says nothing but that the poll was abandoned (perhaps from a task group)."""
    if isinstance(exc, PollAbandoned):
        return True
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(PollAbandoned)[1]
        return rest is None
    return False


class _WaitingToSend:
    """``async with``: a wait before a request is sent, which abandoning a poll ends."""

    __slots__ = ("poll", "scope")

    def __init__(self) -> None:
        self.poll: Poll[Any] | None = None
        self.scope: anyio.CancelScope | None = None

    async def __aenter__(self) -> None:
        poll = _current.get()
        if poll is None:
            return
        if poll.abandoned:
            raise PollAbandoned
        self.poll = poll
        self.scope = scope = anyio.CancelScope()
        scope.__enter__()
        if poll._waits is None:
            poll._waits = []
        poll._waits.append(scope)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        poll, scope = self.poll, self.scope
        if poll is None or scope is None:
            return
        assert poll._waits is not None
        poll._waits.remove(scope)
        scope.__exit__(exc_type, exc, tb)  # (what it returns differs between backends)
        if scope.cancelled_caught or (exc_type is None and poll.abandoned):
            # Cut short, or abandoned as the wait ended (its wake-up already on its
            # way): nothing is sent.
            raise PollAbandoned from None


def waiting_to_send() -> _WaitingToSend:
    """Mark a wait before a request is sent: an abandoned poll ends there."""
    return _WaitingToSend()


def abandoned_check() -> None:
    """Raise ``PollAbandoned`` when the task's poll was abandoned (a request that does
    not wait: it is not sent)."""
    poll = _current.get()
    if poll is not None and poll.abandoned:
        raise PollAbandoned


def prepaid_by(budget: AdaptiveRate) -> bool:
    """True, once, when the task's poll holds a token of ``budget`` taken for it."""
    poll = _current.get()
    if poll is None or poll.prepaid is not budget:
        return False
    poll.prepaid = None
    return True


_current: ContextVar[Poll[Any] | None] = ContextVar("jobwatch_poll", default=None)
