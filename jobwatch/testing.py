"""Helpers for testing your own code against the jobwatch simulator (as moto does for AWS).

The core is :func:`simulated_cloud`, an async context manager that starts a
:class:`~jobwatch.sim.Simulator` (in process by default, or on a real loopback
socket with ``socket=True``) and yields a :class:`SimulatedCloud`: the
simulator, a ready :class:`~jobwatch.Client` bound to it, the base URL and the
project ID.  Everything is closed when the block ends::

    from jobwatch.testing import FAST_POLL, simulated_cloud

    async with simulated_cloud({"evs_jobs": [...]}) as cloud:
        async with jobwatch.Watcher(cloud.client, policy=FAST_POLL, events=False) as watcher:
            snapshot = await watcher.wait(jobwatch.EvsJob("job-1"))

:data:`FAST_POLL` and :data:`FAST_RETRY` are policies that keep tests quick;
:func:`wait_for_requests` and :func:`wait_until` wait (with a timeout) for the
simulator's request log, or any condition, to reach a given point.

pytest fixtures
---------------
With pytest installed, this module is also a pytest plugin, registered by the
package (a ``pytest11`` entry point named ``jobwatch.testing``, as the module):
pytest loads it in every run, and a test gets a fixture only by naming it.  It
defines no autouse fixture, no option and no hook.  ``-p no:jobwatch.testing``
turns it off; where plugins are not autoloaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``)
enable it in your top-level ``conftest.py`` (harmless when it is loaded already)::

    pytest_plugins = ["jobwatch.testing"]

and use, with anyio's pytest plugin (``@pytest.mark.anyio``; asyncio, trio or both):

* ``jobwatch_project_id``: the project ID the other fixtures use
  (:data:`DEFAULT_PROJECT_ID`); override it in your conftest to change it;
* ``jobwatch_sim``: a fresh :class:`~jobwatch.sim.Simulator` with a
  :class:`~jobwatch.sim.ManualClock` at 0;
* ``jobwatch_cloud`` (async): a :class:`SimulatedCloud` over ``jobwatch_sim``, in process;
* ``jobwatch_client`` (async): its :class:`~jobwatch.Client`, bound to ``jobwatch_sim``;
* ``jobwatch_server``: ``jobwatch_sim`` served on a loopback socket; its base URL
  (needs uvicorn, the ``sim`` extra).

The async fixtures need the test to run under anyio's plugin (they are set up in
the test's event loop).  Importing this module without pytest installed works:
only the fixtures are missing then.  The fixtures are reached through the
plugin, not imported, so they are not in ``__all__``.

PYTEST_DONT_REWRITE: the plugin has no ``assert`` for pytest to rewrite, and the
marker spares a conftest or test module that imports from this module before
registering it a ``PytestAssertRewriteWarning`` (an error under ``-W error``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, overload

import anyio
import httpx

from jobwatch._auth import AKSKAuth, TokenAuth
from jobwatch._client import Client
from jobwatch._policies import PollPolicy, RetryPolicy
from jobwatch._watcher import Watcher
from jobwatch.sim import ApiName, Clock, ManualClock, RecordedRequest, Simulator, serve
from jobwatch.sim._simulator import ClockT

__all__ = [
    "DEFAULT_PROJECT_ID",
    "FAST_POLL",
    "FAST_RETRY",
    "IN_PROCESS_URL",
    "ScenarioSource",
    "SimulatedCloud",
    "simulated_cloud",
    "wait_for_requests",
    "wait_until",
]

DEFAULT_PROJECT_ID = "test-project"
"""The project ID used when neither the caller nor the scenario names one."""

IN_PROCESS_URL = "http://jobwatch-sim.invalid"
"""The base URL of an in-process simulator (no request ever leaves the process)."""

FAST_POLL = PollPolicy(
    wait_initial=0.01, wait_exp_base=2.0, wait_max=0.05, wait_jitter=0.0, not_found_grace=1.0
)
"""A poll policy for tests: every 10 ms, backing off to 50 ms, no jitter, 1 s not-found grace."""

FAST_RETRY = RetryPolicy(
    attempts=3, timeout=5.0, wait_initial=0.001, wait_max=0.01, retry_after_max=0.05
)
"""A retry policy for tests: 3 attempts with millisecond waits; ``Retry-After`` clamped to 50 ms."""

ScenarioSource: TypeAlias = Simulator[Any] | Mapping[str, Any] | str | PathLike[str]
"""What :func:`simulated_cloud` accepts: a simulator, a scenario mapping, or a JSON file path."""


@dataclass(frozen=True, slots=True)
class SimulatedCloud(Generic[ClockT]):
    """A running simulator and a client bound to it (what :func:`simulated_cloud` yields).

    ``client`` is open until the ``async with`` block ends; ``base_url`` is the
    socket's URL (``http://127.0.0.1:PORT``) when ``socket`` is True, else
    :data:`IN_PROCESS_URL`; ``project_id`` is the client's project.
    """

    simulator: Simulator[ClockT]
    client: Client
    base_url: str
    project_id: str
    socket: bool

    @property
    def clock(self) -> ClockT:
        """The simulator's clock."""
        return self.simulator.clock

    @property
    def manual_clock(self) -> ManualClock:
        """The simulator's clock as a :class:`~jobwatch.sim.ManualClock`.

        ``TypeError`` when the simulator runs on another clock (a scenario's
        default ``"monotonic"``, for instance).
        """
        clock = self.simulator.clock
        if not isinstance(clock, ManualClock):
            raise TypeError(f"the simulator's clock is {clock!r}, not a ManualClock")
        return clock

    def new_client(self, **options: Any) -> Client:
        """Another client bound to the same simulator; close it yourself (``async with``).

        ``options`` are :class:`~jobwatch.Client` keyword arguments, plus
        ``project_id`` (default: this cloud's).  As for :attr:`client`, ``auth``
        defaults to credentials the simulator accepts and ``retry`` to
        :data:`FAST_RETRY`; pass ``auth=TokenAuth("wrong")`` to test refusals.
        """
        project_id = options.pop("project_id", self.project_id)
        options.setdefault("retry", FAST_RETRY)
        if options.get("auth") is None:
            options["auth"] = _auth_for(self.simulator)
        if not self.socket and "http_client" not in options:
            options.setdefault("transport", self.simulator.transport())
        return Client(self.base_url, project_id, **options)

    def watcher(self, **options: Any) -> Watcher:
        """A :class:`~jobwatch.Watcher` over :attr:`client`, polling with :data:`FAST_POLL`.

        ``options`` are :class:`~jobwatch.Watcher` keyword arguments.  Enter it
        with ``async with``.
        """
        options.setdefault("policy", FAST_POLL)
        return Watcher(self.client, **options)

    async def wait_for_requests(
        self,
        where: Callable[[RecordedRequest], bool] | None = None,
        *,
        job: str | None = None,
        api: ApiName | None = None,
        since: float | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a default bound, so a test never hangs
    ) -> list[RecordedRequest]:
        """:func:`wait_for_requests` on this cloud's simulator."""
        return await wait_for_requests(
            self.simulator,
            where,
            job=job,
            api=api,
            since=since,
            count=count,
            timeout=timeout,
        )


@overload
def simulated_cloud(
    scenario: Simulator[ClockT],
    *,
    project_id: str | None = None,
    socket: bool = False,
    clock: None = None,
    auth: httpx.Auth | None = None,
    **client_options: Any,
) -> AbstractAsyncContextManager[SimulatedCloud[ClockT]]: ...
@overload
def simulated_cloud(
    scenario: Mapping[str, Any] | str | PathLike[str] | None = None,
    *,
    project_id: str | None = None,
    socket: bool = False,
    clock: Clock | None = None,
    auth: httpx.Auth | None = None,
    **client_options: Any,
) -> AbstractAsyncContextManager[SimulatedCloud[Clock]]: ...
def simulated_cloud(
    scenario: ScenarioSource | None = None,
    *,
    project_id: str | None = None,
    socket: bool = False,
    clock: Clock | None = None,
    auth: httpx.Auth | None = None,
    **client_options: Any,
) -> AbstractAsyncContextManager[SimulatedCloud[Any]]:
    """Run a simulator and yield a :class:`SimulatedCloud` with a client bound to it.

    ``scenario`` is a :class:`~jobwatch.sim.Simulator` (used as it is), a scenario
    mapping or the path of a JSON scenario file (see :mod:`jobwatch.sim` for the
    form), or None for an empty simulator.  ``clock`` replaces the scenario's
    clock (for an empty simulator: default a real-time clock); it cannot be
    given with a simulator.

    ``project_id`` defaults to the one project the scenario's jobs and graphs
    belong to, or :data:`DEFAULT_PROJECT_ID` when they name none (``ValueError``
    when they name several: pass one).  ``auth`` defaults to what the
    simulator accepts, if it checks: one of its tokens (``TokenAuth``), else one
    of its key pairs (``AKSKAuth``).  ``client_options`` go to
    :class:`~jobwatch.Client`; ``retry`` defaults to :data:`FAST_RETRY`.

    With ``socket=True`` the simulator is served over HTTP on a free loopback
    port with :func:`jobwatch.sim.serve` (needs uvicorn, the ``sim`` extra);
    ``base_url`` is then its address, for code that builds its own HTTP client.
    Otherwise requests go to the simulator in process (``sim.transport()``).

    On exit the client is closed and the server stopped, even when the block is
    cancelled or fails.
    """
    if isinstance(scenario, Simulator):
        if clock is not None:
            raise ValueError("clock cannot be given with a Simulator: make it with that clock")
        sim: Simulator[Any] = scenario
    elif scenario is None:
        sim = Simulator() if clock is None else Simulator(clock=clock)
    elif isinstance(scenario, str | PathLike):
        sim = Simulator.from_scenario_file(scenario, clock=clock)
    elif isinstance(scenario, Mapping):
        sim = Simulator.from_scenario(scenario, clock=clock)
    else:
        raise TypeError(
            "scenario must be a Simulator, a mapping, a path or None, "
            f"not {type(scenario).__name__}"
        )
    project = project_id if project_id is not None else _project_of(sim)
    if auth is None:
        auth = _auth_for(sim)
    client_options.setdefault("retry", FAST_RETRY)
    return _run(sim, project, socket, auth, client_options)


@asynccontextmanager
async def _run(
    sim: Simulator[Any],
    project_id: str,
    socket: bool,
    auth: httpx.Auth | None,
    client_options: dict[str, Any],
) -> AsyncIterator[SimulatedCloud[Any]]:
    async with AsyncExitStack() as stack:
        if socket:
            base_url = await _enter_server(stack, sim)
            client = Client(base_url, project_id, auth=auth, **client_options)
        else:
            base_url = IN_PROCESS_URL
            if "http_client" not in client_options:
                client_options.setdefault("transport", sim.transport())
            client = Client(base_url, project_id, auth=auth, **client_options)
        stack.push_async_callback(_shielded_close, client)
        yield SimulatedCloud(sim, client, base_url, project_id, socket)


async def _enter_server(stack: AsyncExitStack, sim: Simulator[Any]) -> str:
    """Start ``serve(sim)`` in a worker thread (its startup blocks); stop it on exit."""
    server = serve(sim)
    base_url = await anyio.to_thread.run_sync(server.__enter__)

    async def stop() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(server.__exit__, None, None, None)

    stack.push_async_callback(stop)
    return base_url


async def _shielded_close(client: Client) -> None:
    with anyio.CancelScope(shield=True):
        await client.aclose()


def _project_of(sim: Simulator[Any]) -> str:
    """The one project ``sim``'s jobs and graphs belong to (a default when none)."""
    projects = sim.project_ids()
    if not projects:
        return DEFAULT_PROJECT_ID
    if len(projects) > 1:
        raise ValueError(
            f"the scenario has jobs in several projects {sorted(projects)}: pass project_id"
        )
    return projects.pop()


def _auth_for(sim: Simulator[Any]) -> httpx.Auth | None:
    """Credentials the simulator accepts (None when it checks nothing)."""
    sim_auth = sim.auth
    if sim_auth is None:
        return None
    if sim_auth.tokens:
        return TokenAuth(min(sim_auth.tokens))
    if sim_auth.credentials:
        ak = min(sim_auth.credentials)
        return AKSKAuth(ak, sim_auth.credentials[ak])
    return None


async def wait_until(
    condition: Callable[[], object],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - a default bound, so a test never hangs
    interval: float = 0.005,
    what: str = "the condition",
) -> None:
    """Check ``condition()`` every ``interval`` seconds until it is true.

    For state that nothing signals (a simulator's request log, a watcher's
    counters).  Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
    """
    with anyio.move_on_after(timeout):
        while True:
            if condition():
                return
            await anyio.sleep(interval)
    raise TimeoutError(f"{what} did not hold within {timeout} s")


async def wait_for_requests(
    simulator: Simulator[Any],
    where: Callable[[RecordedRequest], bool] | None = None,
    *,
    job: str | None = None,
    api: ApiName | None = None,
    since: float | None = None,
    count: int = 1,
    timeout: float = 5.0,  # noqa: ASYNC109 - a default bound, so a test never hangs
    interval: float = 0.005,
) -> list[RecordedRequest]:
    """Wait until ``simulator`` has recorded ``count`` matching requests; return all that match.

    A request matches when it is for ``job`` (a job ID, or a graph name for
    engine lists), of ``api``, arrived at sim time ``since`` or later, and
    ``where(request)`` is true; None matches anything.  ``since`` is handy with
    a :class:`~jobwatch.sim.ManualClock`: after ``clock.set(t)``, wait for a
    request with ``since=t`` to know that the code under test has seen time ``t``.
    Raises ``TimeoutError`` (saying how many matched) after ``timeout`` seconds.

    Over a socket the server records a request from its own thread, and the
    client may read the answer a moment before the request is in the log: wait
    for it with this rather than reading ``simulator.requests`` at once.
    """
    if count < 1:
        raise ValueError("count must be at least 1")

    def matching() -> list[RecordedRequest]:
        return [
            request
            for request in simulator.requests
            if (job is None or request.job == job)
            and (api is None or request.api == api)
            and (since is None or request.t >= since)
            and (where is None or where(request))
        ]

    found: list[RecordedRequest] = []
    with anyio.move_on_after(timeout):
        while True:
            found = matching()
            if len(found) >= count:
                return found
            await anyio.sleep(interval)
    wanted = {"job": job, "api": api, "since": since}
    described = json.dumps({k: v for k, v in wanted.items() if v is not None})
    raise TimeoutError(
        f"{len(found)} of {count} requests matching {described}"
        f"{' and where()' if where else ''} within {timeout} s"
    )


# --- pytest fixtures ---------------------------------------------------------------------------

if TYPE_CHECKING:
    import pytest

    _have_pytest = True
else:
    try:
        import pytest
    except ImportError:  # pytest is optional: the fixtures need it, nothing else does
        _have_pytest = False
    else:
        _have_pytest = True

if _have_pytest:

    @pytest.fixture
    def jobwatch_project_id() -> str:
        """The project ID of ``jobwatch_cloud`` and ``jobwatch_client``; override to change it."""
        return DEFAULT_PROJECT_ID

    @pytest.fixture
    def jobwatch_sim() -> Simulator[ManualClock]:
        """A fresh simulator on a :class:`~jobwatch.sim.ManualClock` at 0; add jobs to it."""
        return Simulator(clock=ManualClock())

    @pytest.fixture
    async def jobwatch_cloud(
        jobwatch_sim: Simulator[ManualClock], jobwatch_project_id: str
    ) -> AsyncIterator[SimulatedCloud[ManualClock]]:
        """A :class:`SimulatedCloud` over ``jobwatch_sim``, in process (an anyio test's fixture)."""
        async with simulated_cloud(jobwatch_sim, project_id=jobwatch_project_id) as cloud:
            yield cloud

    @pytest.fixture
    def jobwatch_client(jobwatch_cloud: SimulatedCloud[ManualClock]) -> Client:
        """A :class:`~jobwatch.Client` bound to ``jobwatch_sim`` in process, closed afterwards.

        Its project is ``jobwatch_project_id`` and its retry policy :data:`FAST_RETRY`.
        """
        return jobwatch_cloud.client

    @pytest.fixture
    def jobwatch_server(jobwatch_sim: Simulator[ManualClock]) -> Iterator[str]:
        """``jobwatch_sim`` served on a free loopback port: its base URL (needs uvicorn)."""
        with serve(jobwatch_sim) as base_url:
            yield base_url
