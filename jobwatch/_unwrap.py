"""Leaving a task group the way the users of a context manager expect.

anyio (on asyncio and trio alike) wraps what leaves a task group in an
``ExceptionGroup``, the exception of the ``async with`` body included.  For a
context manager whose tasks are its own business, that turns the caller's own
``JobFailed`` or ``TimeoutError`` into a group no ``except JobFailed`` catches.
``exit_task_group`` lets the body's exception leave as itself when the group
holds only it and cancellations, and a single error of the tasks as itself;
only several real errors leave as a group.
"""

from __future__ import annotations

from types import TracebackType

import anyio
from anyio.abc import TaskGroup

__all__ = ["exit_task_group"]


async def exit_task_group(
    tg: TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    """``tg.__aexit__``, with the body's and a lone task's exception left unwrapped."""
    try:
        return await tg.__aexit__(exc_type, exc, tb)
    except BaseExceptionGroup as group:
        cancelled = anyio.get_cancelled_exc_class()
        # The body's own exception (a group of its own, too) is kept whole, as it was
        # raised; what else the group holds, cancellations aside, is the tasks' errors.
        # (trio may hand the body's group back as a copy: its leaves are the same.)
        own = set(map(id, _leaves(exc))) if exc is not None else set()
        _, rest = group.split(lambda e: id(e) in own or e is exc or isinstance(e, cancelled))
        if rest is None:
            if exc is not None:
                return False  # the body's own exception (or cancellation) goes on as it is
            raise
        body_failed = exc is not None and not isinstance(exc, cancelled)
        errors = list(rest.exceptions)
        if not body_failed and len(errors) == 1:
            raise errors[0] from None
        mine = [exc] if body_failed and exc is not None else []
        raise BaseExceptionGroup("errors in a jobwatch watcher", [*mine, *errors]) from None


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]
