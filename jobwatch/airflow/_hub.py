"""One client, and one watcher per polling policy, shared by every trigger of a process.

Airflow's triggerer runs the trigger of every deferred task as a task of one
asyncio loop.  Each trigger asks ``wait_for_job`` for its job's outcome.  The
first trigger of a ``Target`` (endpoint, project and credentials) starts a hub:
an asyncio task that holds the ``Client`` and its ``Watcher`` objects inside its
own task group.  Triggers register their jobs with a watcher and wait for the
outcome in their own tasks, so nothing of theirs (their ``yield`` above all)
runs inside the hub's task group.  The last trigger out stops the hub, and the
client is closed before that trigger's wait returns.

Several triggers may wait for one job: it is watched once, and unwatched when
the last of them leaves before it ended.  A hub that fails (a bug) wakes its
waiting triggers with the error and is replaced by a new one for the next
trigger.  The hub is asyncio-only, as the triggerer is.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup

from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch._client import Client
from jobwatch._events import Event, PollDetails
from jobwatch._exceptions import NotFoundError
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef
from jobwatch._snapshot import JobSnapshot
from jobwatch._watcher import Watcher

__all__ = ["HubStatistics", "Target", "fetch_once", "hub_statistics", "wait_for_job"]

logger = logging.getLogger("jobwatch.airflow")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the jobs are and as whom to ask: what a hub is shared by.

    ``ak``/``sk`` (and ``security_token``) sign requests, or ``token`` is sent
    as ``X-Auth-Token``.  Secrets are compared, never shown: ``repr`` and
    ``str`` leave them out.  ``client_options`` are passed to ``Client``
    (a tuple of pairs, so that the target stays hashable).
    """

    endpoint: str
    project_id: str
    ak: str | None = field(default=None, repr=False)
    sk: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    client_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.token is None and (self.ak is None or self.sk is None):
            raise ValueError("a target needs an AK and an SK, or a token")
        if self.token is not None and self.ak is not None:
            raise ValueError("a target has an AK/SK or a token, not both")

    def __str__(self) -> str:
        return f"{self.endpoint} (project {self.project_id}, {self.credential_name})"

    @property
    def credential_name(self) -> str:
        """The credentials as they may be shown: the AK, or a digest of the token."""
        if self.ak is not None:
            return f"AK {self.ak}"
        digest = hashlib.sha256((self.token or "").encode()).hexdigest()[:8]
        return f"token {digest}…"

    def new_client(self) -> Client:
        """A client for this target (closed by its hub)."""
        if self.token is not None:
            auth: AKSKAuth | TokenAuth = TokenAuth(self.token)
        else:
            assert self.ak is not None
            assert self.sk is not None
            auth = AKSKAuth(self.ak, self.sk, self.security_token)
        return CLIENT_FACTORY(self, auth, dict(self.client_options))


def _default_client(target: Target, auth: AKSKAuth | TokenAuth, options: dict[str, Any]) -> Client:
    return Client(target.endpoint, target.project_id, auth=auth, **options)


#: How hubs build their client; tests replace it (say, to reach an in-process simulator).
CLIENT_FACTORY: Callable[[Target, AKSKAuth | TokenAuth, dict[str, Any]], Client] = _default_client


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """One hub's figures: the triggers sharing it, the jobs they wait for, its watchers."""

    target: str
    triggers: int
    jobs: int
    watchers: int
    requests: int
    polls: int


class _Hub:
    """A target's client and watchers, held by one asyncio task."""

    def __init__(self, target: Target, loop: asyncio.AbstractEventLoop) -> None:
        self.target = target
        self.loop = loop
        # Made here, in the first trigger's task: a client option it refuses is that
        # trigger's error, not a failure of the hub.
        self._new_client = target.new_client()
        self.users = 0
        self.jobs: Counter[tuple[PollPolicy, JobRef]] = Counter()
        self.refs: Counter[JobRef] = Counter()
        self.last: dict[JobRef, JobSnapshot] = {}
        self.watchers: dict[PollPolicy, Watcher] = {}
        self._starting: dict[PollPolicy, asyncio.Future[Watcher]] = {}
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = anyio.Event()
        self._tg: TaskGroup | None = None
        self.client: Client | None = None
        # A context of its own: the hub outlives the trigger that started it, and
        # must not log with that trigger's bound context (Airflow binds its ids).
        self.task = asyncio.get_running_loop().create_task(
            self._serve(), name=f"jobwatch hub {target}", context=contextvars.Context()
        )

    async def _serve(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                self.client = await stack.enter_async_context(self._new_client)
                self._tg = await stack.enter_async_context(anyio.create_task_group())
                self._ready.set_result(None)
                await self._stop.wait()
                self._tg.cancel_scope.cancel()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if isinstance(exc, Exception):
                logger.exception("the jobwatch hub of %s failed", self.target)
            raise
        finally:
            if _HUBS.get(self.key) is self:
                del _HUBS[self.key]

    @property
    def key(self) -> tuple[asyncio.AbstractEventLoop, Target]:
        """Where the registry keeps it: hubs belong to one event loop."""
        return (self.loop, self.target)

    async def ready(self) -> None:
        await asyncio.shield(self._ready)

    def _polled(self, details: PollDetails) -> None:
        if details.snapshot is not None and details.ref in self.refs:
            self.last[details.ref] = details.snapshot

    async def watcher(self, policy: PollPolicy) -> Watcher:
        """The watcher of ``policy``, started in the hub's task group if new."""
        found = self.watchers.get(policy)
        if found is not None:
            return found
        starting = self._starting.get(policy)
        if starting is None:
            assert self._tg is not None  # ready() came first
            starting = asyncio.get_running_loop().create_future()
            self._starting[policy] = starting
            self._tg.start_soon(self._run_watcher, policy, starting)
        return await asyncio.shield(starting)

    async def _run_watcher(self, policy: PollPolicy, started: asyncio.Future[Watcher]) -> None:
        assert self.client is not None  # set before the task group
        watcher = Watcher(
            self.client, policy=policy, events=False, keep_outcomes=False, on_poll=self._polled
        )
        try:
            async with watcher:
                self.watchers[policy] = watcher
                started.set_result(watcher)
                await anyio.sleep_forever()
        except BaseException as exc:
            if not started.done():
                started.set_exception(RuntimeError(f"the watcher could not start: {exc!r}"))
            raise
        finally:
            self.watchers.pop(policy, None)
            self._starting.pop(policy, None)

    def stop(self) -> None:
        self._stop.set()

    def statistics(self) -> HubStatistics:
        stats = [w.statistics() for w in self.watchers.values()]
        return HubStatistics(
            target=str(self.target),
            triggers=self.users,
            jobs=len(self.refs),
            watchers=len(self.watchers),
            requests=self.client.statistics().requests if self.client else 0,
            polls=sum(s.polls for s in stats),
        )


#: The hubs of every event loop of the process, by loop and target.
_HUBS: dict[tuple[asyncio.AbstractEventLoop, Target], _Hub] = {}


def hub_statistics() -> list[HubStatistics]:
    """The figures of every hub of this process (one per event loop and target in use)."""
    return [hub.statistics() for hub in list(_HUBS.values())]


def _forget_closed_loops() -> None:
    """Drop the hubs of loops closed without ending their tasks: they will never run again."""
    for key in [key for key in _HUBS if key[0].is_closed()]:
        del _HUBS[key]


async def _acquire(target: Target) -> _Hub:
    loop = asyncio.get_running_loop()
    _forget_closed_loops()
    hub = _HUBS.get((loop, target))
    if hub is None or hub.task.done():
        hub = _Hub(target, loop)
        _HUBS[hub.key] = hub
    hub.users += 1
    try:
        await hub.ready()
    except BaseException:
        await _release(hub)
        raise
    return hub


async def _release(hub: _Hub) -> None:
    """Leave ``hub``; the last one out stops it and waits until its client is closed.

    A cancel that comes meanwhile neither cuts the close short nor is lost: it is
    raised once the hub is done.
    """
    hub.users -= 1
    if hub.users > 0:
        return
    if _HUBS.get(hub.key) is hub:
        del _HUBS[hub.key]  # a trigger arriving now gets a new hub
    hub.stop()
    cancelled: asyncio.CancelledError | None = None
    while not hub.task.done():
        try:
            await asyncio.shield(hub.task)
        except asyncio.CancelledError as exc:
            if hub.task.done():
                break
            cancelled = exc  # ours, not the hub's: go on waiting for the close
        except Exception:  # noqa: BLE001 (_serve logged it; its waiters were told)
            break
    if not hub.task.cancelled():
        hub.task.exception()  # a failure was logged by _serve, and its waiters were told
    if cancelled is not None:
        raise cancelled


async def fetch_once(target: Target, ref: JobRef) -> JobSnapshot | None:
    """One status query of ``ref`` through ``target``'s shared client (None: not found)."""
    hub = await _acquire(target)
    try:
        assert hub.client is not None  # ready() came first
        try:
            return await hub.client.fetch(ref)
        except NotFoundError:
            return None
    finally:
        await _release(hub)


async def wait_for_job(
    target: Target, ref: JobRef, policy: PollPolicy, within: float | None
) -> tuple[Event | None, JobSnapshot | None]:
    """Watch ``ref`` on ``target``'s shared watcher until it ends, for at most ``within`` seconds.

    Returns the final event (None when the time ran out first) and the last
    snapshot seen.  ``RuntimeError`` when the hub failed.  Cancelling the wait
    unwatches the job unless another trigger waits for it too.
    """
    hub = await _acquire(target)
    try:
        watcher = await hub.watcher(policy)
        key = (policy, ref)
        hub.jobs[key] += 1
        hub.refs[ref] += 1
        try:
            with anyio.move_on_after(within):
                # watch() first: a watch of ref being removed (another trigger left it
                # while a poll was in flight) is followed by a new one, not its give-up.
                watcher.watch(ref)
                (final,) = await watcher.wait_all([ref])
                return final, hub.last.get(ref)
            return None, hub.last.get(ref)
        finally:
            hub.refs[ref] -= 1
            if hub.refs[ref] <= 0:
                del hub.refs[ref]
                hub.last.pop(ref, None)
            hub.jobs[key] -= 1
            if hub.jobs[key] <= 0:
                del hub.jobs[key]
                if policy in hub.watchers:
                    watcher.unwatch(ref)  # no-op when it ended
    finally:
        await _release(hub)
