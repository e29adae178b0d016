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


def _real_errors(
    group: BaseExceptionGroup[BaseException], own: BaseException | None
) -> list[BaseException]:
    """The exceptions of ``group`` (flattened) that are neither ``own`` nor cancellations."""
    cancelled = anyio.get_cancelled_exc_class()
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(_real_errors(exc, own))
        elif exc is not own and not isinstance(exc, cancelled):
            found.append(exc)
    return found


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
        errors = _real_errors(group, exc)
        cancelled = anyio.get_cancelled_exc_class()
        body_failed = exc is not None and not isinstance(exc, cancelled)
        if not errors:
            if exc is not None:
                return False  # the body's own exception (or cancellation) goes on as it is
            raise
        if not body_failed and len(errors) == 1:
            raise errors[0] from None
        own = [exc] if body_failed and exc is not None else []
        raise BaseExceptionGroup("errors in a jobwatch watcher", [*own, *errors]) from None
