"""The one-call wait: ``wait_for`` (async) and ``wait_for_sync`` (its own event loop).

Both are thin layers over a ``Watcher`` opened for the call and closed before it
returns: no ``async with`` for the caller, nothing left running afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import aclosing
from typing import Literal, TypeGuard, overload

import anyio
import anyio.lowlevel
import sniffio

from jobwatch._client import Client
from jobwatch._events import Event, GaveUp
from jobwatch._exceptions import JobFailed, WatchGaveUp
from jobwatch._kinds import kind_of
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobSnapshot, JobState
from jobwatch._watcher import Watcher

__all__ = ["wait_for", "wait_for_sync"]

#: Jobs named in the message of a wait that timed out (the rest are counted).
_NAMED_IN_TIMEOUT = 5


@overload
async def wait_for(
    refs: JobRef,
    *,
    client: Client,
    timeout: float | None = None,  # noqa: ASYNC109 - the one-call wait's deadline
    policy: PollPolicy | None = None,
    raise_on_failure: Literal[True] = True,
) -> JobSnapshot: ...
@overload
async def wait_for(
    refs: JobRef,
    *,
    client: Client,
    timeout: float | None = None,  # noqa: ASYNC109
    policy: PollPolicy | None = None,
    raise_on_failure: bool,
) -> JobSnapshot | GaveUp: ...
@overload
async def wait_for(
    refs: Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,  # noqa: ASYNC109
    policy: PollPolicy | None = None,
    raise_on_failure: Literal[True] = True,
) -> list[JobSnapshot]: ...
@overload
async def wait_for(
    refs: Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,  # noqa: ASYNC109
    policy: PollPolicy | None = None,
    raise_on_failure: bool,
) -> list[JobSnapshot | GaveUp]: ...
async def wait_for(
    refs: JobRef | Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,  # noqa: ASYNC109
    policy: PollPolicy | None = None,
    raise_on_failure: bool = True,
) -> JobSnapshot | GaveUp | list[JobSnapshot] | list[JobSnapshot | GaveUp]:
    """Wait for one job, or many, to end; no ``Watcher`` to open.

    ``refs`` is one job reference (the call returns its final ``JobSnapshot``) or
    an iterable of them (a list of final snapshots, in the order given; a
    reference given twice is watched once and its snapshot appears twice; an
    empty iterable returns ``[]`` without a request)::

        snapshot = await jobwatch.wait_for(jobwatch.EvsJob(job_id), client=client, timeout=600)

    With ``raise_on_failure`` (the default) a job that failed, or that says it
    succeeded while a sub-job failed, raises ``JobFailed`` (its ``snapshot``
    tells what failed), and a job the watch gave up on raises ``WatchGaveUp``
    (its ``outcome``: not found, expired, auth, too many errors, the policy's
    per-job ``timeout``...).  With many jobs the first one to end so raises at
    once, and the others are no longer watched (the jobs themselves go on).
    With ``raise_on_failure=False`` nothing is raised for how a job ended: a
    failed job's snapshot is returned as it is (``state`` is ``failed``, or see
    ``failed_sub_jobs``), and a give-up is returned as its ``GaveUp``.

    ``timeout`` bounds the whole call, in seconds (None: no bound): when it runs
    out, polling stops and ``TimeoutError`` names the jobs still open.  It is
    not ``PollPolicy.timeout``, the per-job deadline that ends in a give-up.
    ``policy`` paces the polls (default ``PollPolicy()``).  ``client`` stays
    open: close it yourself.  Cancelling the caller stops everything this call
    started.  For events as jobs change, or thousands of jobs coming and going,
    use a ``Watcher``.
    """
    single = _is_ref(refs)
    wanted = _refs_of(refs)
    _check_timeout(timeout)
    if client._closed:
        raise RuntimeError("this client was closed")
    if not wanted:
        await anyio.lowlevel.checkpoint()
        return []
    found: dict[JobRef, Event] = {}
    deadline = anyio.move_on_after(timeout)
    with deadline:
        watcher = Watcher(client, policy=policy, events=False, keep_outcomes=False)
        async with watcher, aclosing(watcher.as_completed(wanted)) as outcomes:
            async for outcome in outcomes:
                if raise_on_failure:
                    _raise_for(outcome)
                found[outcome.ref] = outcome
    left = [ref for ref in dict.fromkeys(wanted) if ref not in found]
    if left:  # the deadline came first (it may also come after the last outcome: no matter)
        raise TimeoutError(_timed_out(timeout, left))
    results = [_result(found[ref]) for ref in wanted]
    return results[0] if single else results


@overload
def wait_for_sync(
    refs: JobRef,
    *,
    client: Client,
    timeout: float | None = None,
    policy: PollPolicy | None = None,
    raise_on_failure: Literal[True] = True,
) -> JobSnapshot: ...
@overload
def wait_for_sync(
    refs: JobRef,
    *,
    client: Client,
    timeout: float | None = None,
    policy: PollPolicy | None = None,
    raise_on_failure: bool,
) -> JobSnapshot | GaveUp: ...
@overload
def wait_for_sync(
    refs: Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,
    policy: PollPolicy | None = None,
    raise_on_failure: Literal[True] = True,
) -> list[JobSnapshot]: ...
@overload
def wait_for_sync(
    refs: Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,
    policy: PollPolicy | None = None,
    raise_on_failure: bool,
) -> list[JobSnapshot | GaveUp]: ...
def wait_for_sync(
    refs: JobRef | Iterable[JobRef],
    *,
    client: Client,
    timeout: float | None = None,
    policy: PollPolicy | None = None,
    raise_on_failure: bool = True,
) -> JobSnapshot | GaveUp | list[JobSnapshot] | list[JobSnapshot | GaveUp]:
    """``wait_for`` for synchronous code (scripts): runs an asyncio event loop of its own.

    Takes the same arguments and returns and raises the same::

        client = jobwatch.Client(endpoint, project_id, auth=jobwatch.AKSKAuth(ak, sk))
        snapshot = jobwatch.wait_for_sync(jobwatch.EvsJob(job_id), client=client, timeout=600)

    ``client`` must be one not used in async code yet (connections belong to an
    event loop): make it outside any loop, as above.  The connections this call
    opens are closed before it returns, so the same client serves the next
    ``wait_for_sync`` call too.

    Inside a running event loop (async code; a Jupyter or IPython notebook runs
    its cells in one) it raises ``RuntimeError`` without doing anything: use
    ``await jobwatch.wait_for(...)`` there, with the same arguments (notebooks
    accept a top-level ``await``).
    """
    running = _running_loop()
    if running is not None:
        raise RuntimeError(
            f"wait_for_sync() cannot run inside a running event loop ({running}): it would "
            "block that loop. In async code, and in a Jupyter/IPython notebook cell, write "
            "'await jobwatch.wait_for(...)' instead, with the same arguments"
        )
    wanted = _refs_of(refs)  # a bad argument fails before any event loop starts
    given: JobRef | list[JobRef] = refs if _is_ref(refs) else wanted
    _check_timeout(timeout)
    if client._closed:
        raise RuntimeError("this client was closed")
    if client._lazy_exchange is not None:
        raise RuntimeError(
            "this client was already used in an event loop, and its connections belong to "
            "it: give wait_for_sync() a client made for it (not used in async code)"
        )

    async def run() -> JobSnapshot | GaveUp | list[JobSnapshot] | list[JobSnapshot | GaveUp]:
        try:
            return await wait_for(
                given,
                client=client,
                timeout=timeout,
                policy=policy,
                raise_on_failure=raise_on_failure,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await client._release_exchange()

    return anyio.run(run, backend="asyncio")


def _refs_of(refs: JobRef | Iterable[JobRef]) -> list[JobRef]:
    """``refs`` as a list, every item checked to be a job reference."""
    if _is_ref(refs):
        return [refs]
    if isinstance(refs, str | bytes) or not isinstance(refs, Iterable):
        raise TypeError(
            "refs must be a job reference (EvsJob, GesJob, CceJob, ...) or an iterable "
            f"of them, not {type(refs).__name__}"
        )
    wanted = list(refs)
    for ref in wanted:
        if not _is_ref(ref):
            raise TypeError(f"not a job reference: {ref!r}")
    return wanted


def _is_ref(value: object) -> TypeGuard[JobRef]:
    """True for a reference of any registered API kind (``jobwatch._kinds``)."""
    try:
        kind_of(value)
    except TypeError:
        return False
    return True


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be None or positive, not {timeout!r}")


def _raise_for(outcome: Event) -> None:
    """Raise what ``raise_on_failure`` raises for ``outcome`` (nothing for a success)."""
    if isinstance(outcome, GaveUp):
        raise WatchGaveUp(outcome)
    snapshot = outcome.snapshot
    if snapshot.state is JobState.FAILED or snapshot.failed_sub_jobs:
        raise JobFailed(snapshot)


def _result(outcome: Event) -> JobSnapshot | GaveUp:
    return outcome if isinstance(outcome, GaveUp) else outcome.snapshot


def _timed_out(timeout: float | None, left: list[JobRef]) -> str:
    named = ", ".join(map(str, left[:_NAMED_IN_TIMEOUT]))
    more = f" and {len(left) - _NAMED_IN_TIMEOUT} more" if len(left) > _NAMED_IN_TIMEOUT else ""
    return f"{len(left)} job(s) did not end within {timeout} s: {named}{more}"


def _running_loop() -> str | None:
    """The event loop running in this thread, by name (None when there is none).

    asyncio is asked directly too: a notebook runs its cells in a loop's callback,
    not in a task, where sniffio sees nothing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
