"""Hostile tests of the triggers' hub (``jobwatch.airflow._hub``): asyncio only, no Airflow."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobwatch import AKSKAuth, Client, EvsJob, PollPolicy, TokenAuth, Transition
from jobwatch.airflow import _hub
from jobwatch.airflow._connection import BadConnection, target_from_connection
from jobwatch.airflow._hub import Target, hub_statistics, wait_for_job
from jobwatch.airflow._payload import payload_of
from jobwatch.sim import Fault, ManualClock, SimAuth, Simulator
from jobwatch.testing import FAST_POLL, FAST_RETRY, wait_for_requests, wait_until

P = "proj-1"
AK, SK = "AK-hostile", "SK-hostile-very-secret"
STS = "STS-very-secret-security-token"
TARGET = Target("http://jobwatch-sim.invalid", P, ak=AK, sk=SK)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Gate(httpx.AsyncBaseTransport):
    """The simulator in process, with requests of some jobs held, and a slow close."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gate: Gates) -> None:
        self.inner = inner
        self.gate = gate

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        job = request.url.path.rsplit("/", 1)[-1]
        if job in self.gate.held:
            self.gate.waiting[job] = self.gate.waiting.get(job, 0) + 1
            await self.gate.held[job].wait()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        self.gate.closing += 1
        if self.gate.close_delay:
            await asyncio.sleep(self.gate.close_delay)
        await self.inner.aclose()
        self.gate.closed += 1


class Gates:
    def __init__(self) -> None:
        self.held: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, int] = {}
        self.close_delay = 0.0
        self.closing = 0
        self.closed = 0

    def hold(self, job: str) -> None:
        self.held[job] = asyncio.Event()

    def release(self, job: str) -> None:
        self.held.pop(job).set()


@pytest.fixture
def sim() -> Simulator[ManualClock]:
    return Simulator(clock=ManualClock(), auth=SimAuth(credentials={AK: SK}, tokens={"tok-1"}))


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def made(
    sim: Simulator[ManualClock], gates: Gates, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Client]]:
    clients: list[Client] = []

    def factory(target: Target, auth: AKSKAuth | TokenAuth, options: dict[str, Any]) -> Client:
        client = Client(
            target.endpoint,
            target.project_id,
            auth=auth,
            transport=Gate(sim.transport(), gates),
            retry=FAST_RETRY,
            **options,
        )
        clients.append(client)
        return client

    monkeypatch.setattr(_hub, "CLIENT_FACTORY", factory)
    yield clients
    assert _hub._HUBS == {}, "a hub outlived its triggers"


def closed(client: Client) -> bool:
    return bool(client._closed)


def other_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t not in before and not t.done()}


# --- cancellation at every point -----------------------------------------------------------


@pytest.mark.parametrize("steps", range(0, 40, 1))
async def test_cancel_after_n_loop_steps_leaves_nothing_and_a_bystander_goes_on(
    sim: Simulator[ManualClock], made: list[Client], steps: int
) -> None:
    """A trigger is cancelled after ``steps`` turns of the loop (hub, watcher starting, ...)."""
    sim.add_evs_job(P, "victim", [(0, "RUNNING")])
    sim.add_evs_job(P, "bystander", [(0, "RUNNING"), (5, "SUCCESS")])
    before = asyncio.all_tasks()
    loop = asyncio.get_running_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        # The victim comes first, so that it is the one starting the hub and its watcher.
        victim = loop.create_task(wait_for_job(TARGET, EvsJob("victim"), FAST_POLL, None))
        bystander = loop.create_task(wait_for_job(TARGET, EvsJob("bystander"), FAST_POLL, None))
        for _ in range(steps):
            await asyncio.sleep(0)
        victim.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await victim
        assert victim.cancelled() or victim.done()
        await wait_for_requests(sim, job="bystander", timeout=3)
        sim.clock.advance(10)
        final, _ = await asyncio.wait_for(bystander, 3)
        assert isinstance(final, Transition)
        assert final.state.value == "succeeded"
        gc.collect()
    assert other_tasks(before) == set()
    assert all(map(closed, made))


@pytest.mark.parametrize("steps", range(0, 30, 1))
async def test_cancel_the_only_trigger_after_n_steps_closes_everything(
    sim: Simulator[ManualClock], made: list[Client], steps: int
) -> None:
    sim.add_evs_job(P, "victim", [(0, "RUNNING")])
    before = asyncio.all_tasks()
    victim = asyncio.get_running_loop().create_task(
        wait_for_job(TARGET, EvsJob("victim"), FAST_POLL, None)
    )
    for _ in range(steps):
        await asyncio.sleep(0)
    victim.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await victim
    assert other_tasks(before) == set()
    assert all(map(closed, made))
    assert hub_statistics() == []


async def test_cancel_during_release_neither_swallows_the_cancel_nor_cuts_the_close(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates
) -> None:
    """The last trigger's wait ended; while it closes the hub (a slow close), it is cancelled.

    The docstring promises the client is closed before that trigger's wait returns.
    """
    sim.add_evs_job(P, "done", [(0, "SUCCESS")])
    gates.close_delay = 0.3
    task = asyncio.get_running_loop().create_task(
        wait_for_job(TARGET, EvsJob("done"), FAST_POLL, None)
    )
    await wait_until(lambda: gates.closing == 1, timeout=3)
    task.cancel()
    outcome: str
    try:
        await task
        outcome = "returned"
    except asyncio.CancelledError:
        outcome = "cancelled"
    closed_when_returned = gates.closed
    await asyncio.sleep(0.5)
    # What should hold: the close went through, and the cancel was not lost.
    assert closed_when_returned == 1, f"the client's close was cut short ({outcome})"
    assert outcome == "cancelled", "the task's cancel() was swallowed"


async def test_cancel_during_release_of_a_cancelled_trigger_closes_the_client(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates
) -> None:
    """Cancelled twice (Airflow cancels, then the loop shuts down): the client is still closed."""
    sim.add_evs_job(P, "never", [(0, "RUNNING")])
    gates.close_delay = 0.3
    task = asyncio.get_running_loop().create_task(
        wait_for_job(TARGET, EvsJob("never"), FAST_POLL, None)
    )
    await wait_for_requests(sim, job="never")
    task.cancel()
    await wait_until(lambda: gates.closing == 1, timeout=3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert gates.closed == 1, "the second cancel cut the client's close short"


# --- the same job, many triggers ------------------------------------------------------------


async def test_a_trigger_arriving_while_another_unwatches_the_same_job_is_not_given_up_on(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates
) -> None:
    """A leaves job J while J's poll is in flight (J is being removed); C comes for J then."""
    sim.add_evs_job(P, "J", [(0, "RUNNING"), (5, "SUCCESS")])
    sim.add_evs_job(P, "K", [(0, "RUNNING"), (5, "SUCCESS")])
    loop = asyncio.get_running_loop()
    keeper = loop.create_task(wait_for_job(TARGET, EvsJob("K"), FAST_POLL, None))
    await wait_for_requests(sim, job="K")
    gates.hold("J")
    a = loop.create_task(wait_for_job(TARGET, EvsJob("J"), FAST_POLL, None))
    await wait_until(lambda: gates.waiting.get("J", 0) >= 1, timeout=3)
    a.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await a
    c = loop.create_task(wait_for_job(TARGET, EvsJob("J"), FAST_POLL, None))
    await asyncio.sleep(0.05)
    gates.release("J")
    await asyncio.sleep(0.05)
    sim.clock.advance(10)
    final_c, _ = await asyncio.wait_for(c, 3)
    await asyncio.wait_for(keeper, 3)
    assert isinstance(final_c, Transition), f"C got {final_c!r}"


async def test_a_trigger_arriving_after_another_hit_its_deadline_on_the_same_job(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates
) -> None:
    """As above, with A leaving at its deadline rather than cancelled."""
    sim.add_evs_job(P, "J", [(0, "RUNNING"), (5, "SUCCESS")])
    sim.add_evs_job(P, "K", [(0, "RUNNING"), (5, "SUCCESS")])
    loop = asyncio.get_running_loop()
    keeper = loop.create_task(wait_for_job(TARGET, EvsJob("K"), FAST_POLL, None))
    await wait_for_requests(sim, job="K")
    gates.hold("J")
    a = loop.create_task(wait_for_job(TARGET, EvsJob("J"), FAST_POLL, 0.1))
    assert (await asyncio.wait_for(a, 3))[0] is None
    c = loop.create_task(wait_for_job(TARGET, EvsJob("J"), FAST_POLL, None))
    await asyncio.sleep(0.05)
    gates.release("J")
    await asyncio.sleep(0.05)
    sim.clock.advance(10)
    final_c, _ = await asyncio.wait_for(c, 3)
    await asyncio.wait_for(keeper, 3)
    assert isinstance(final_c, Transition), f"C got {final_c!r}"


@pytest.mark.parametrize("seed", range(8))
async def test_many_triggers_of_one_job_with_mixed_policies_deadlines_and_cancels(
    sim: Simulator[ManualClock], made: list[Client], seed: int
) -> None:
    rng = random.Random(seed)
    sim.add_evs_job(P, "J", [(0, "RUNNING"), (5, "SUCCESS")])
    policies = [
        FAST_POLL,
        PollPolicy(wait_initial=0.02, wait_max=0.04, wait_jitter=0.0),
        PollPolicy(wait_initial=0.01, wait_max=0.03, wait_jitter=0.0, settle_successes=2),
    ]
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    plan = []
    tasks = []
    for _i in range(30):
        kind = rng.choice(["wait", "wait", "deadline", "cancel"])
        within = rng.uniform(0.01, 0.15) if kind == "deadline" else None
        plan.append(kind)
        tasks.append(
            loop.create_task(wait_for_job(TARGET, EvsJob("J"), rng.choice(policies), within))
        )
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 0.02))
    for _ in range(5):
        await asyncio.sleep(rng.uniform(0, 0.03))
        for kind, task in zip(plan, tasks, strict=True):
            if kind == "cancel" and rng.random() < 0.5:
                task.cancel()
    for kind, task in zip(plan, tasks, strict=True):
        if kind == "cancel":
            task.cancel()
    await asyncio.sleep(0.2)
    sim.clock.advance(10)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    for kind, result in zip(plan, results, strict=True):
        if kind == "cancel":
            assert isinstance(result, (asyncio.CancelledError, tuple))
            continue
        assert isinstance(result, tuple), result
        final, _last = result
        if kind == "wait":
            assert isinstance(final, Transition), final
            assert final.state.value == "succeeded"
        else:
            assert final is None or isinstance(final, Transition), final
    assert other_tasks(before) == set()
    assert all(map(closed, made))


async def test_a_trigger_arriving_while_the_last_one_closes_the_hub(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates
) -> None:
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    sim.add_evs_job(P, "b", [(0, "RUNNING"), (1, "SUCCESS")])
    gates.close_delay = 0.2
    loop = asyncio.get_running_loop()
    first = loop.create_task(wait_for_job(TARGET, EvsJob("a"), FAST_POLL, None))
    await wait_until(lambda: gates.closing == 1, timeout=3)
    second = loop.create_task(wait_for_job(TARGET, EvsJob("b"), FAST_POLL, None))
    await wait_for_requests(sim, job="b", timeout=3)
    sim.clock.advance(2)
    (f1, _), (f2, _) = await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert isinstance(f1, Transition)
    assert isinstance(f2, Transition)
    assert len(made) == 2
    assert all(map(closed, made))


# --- the hub failing --------------------------------------------------------------------------


async def test_a_hub_failing_after_it_started_wakes_every_trigger_and_is_replaced(
    sim: Simulator[ManualClock], made: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.add_evs_job(P, "boom", [(0, "RUNNING")])
    sim.add_evs_job(P, "other", [(0, "RUNNING")])
    slow = PollPolicy(wait_initial=0.02, wait_max=0.04, wait_jitter=0.0)
    original = _hub._Hub._polled
    armed = False

    def polled(self: Any, details: Any) -> None:
        if armed and details.ref == EvsJob("boom"):
            raise KeyError("a bug in the hub")
        original(self, details)

    monkeypatch.setattr(_hub._Hub, "_polled", polled)
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()
    a = loop.create_task(wait_for_job(TARGET, EvsJob("boom"), FAST_POLL, None))
    b = loop.create_task(wait_for_job(TARGET, EvsJob("other"), slow, None))
    await wait_for_requests(sim, job="other", count=2)
    armed = True
    results = await asyncio.wait_for(asyncio.gather(a, b, return_exceptions=True), 3)
    assert all(isinstance(r, RuntimeError | Exception) for r in results), results
    assert _hub._HUBS == {}
    armed = False
    sim.add_evs_job(P, "after", [(0, "SUCCESS")])
    final, _ = await asyncio.wait_for(wait_for_job(TARGET, EvsJob("after"), FAST_POLL, None), 3)
    assert isinstance(final, Transition)
    assert other_tasks(before) == set()
    assert all(map(closed, made))


@pytest.mark.parametrize("delay_steps", range(0, 6))
async def test_a_new_policy_asked_for_as_the_hub_fails_does_not_hang(
    sim: Simulator[ManualClock],
    made: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    delay_steps: int,
) -> None:
    """A trigger acquires the hub just as it fails, and asks for a policy with no watcher yet."""
    sim.add_evs_job(P, "boom", [(0, "RUNNING")])
    sim.add_evs_job(P, "late", [(0, "SUCCESS")])
    original = _hub._Hub._polled
    armed = False
    late: list[asyncio.Task[Any]] = []
    loop = asyncio.get_running_loop()

    async def late_trigger() -> Any:
        for _ in range(delay_steps):
            await asyncio.sleep(0)
        return await wait_for_job(
            TARGET, EvsJob("late"), PollPolicy(wait_initial=0.5, wait_max=1.0), None
        )

    def polled(self: Any, details: Any) -> None:
        nonlocal armed
        if armed and details.ref == EvsJob("boom"):
            armed = False
            late.append(loop.create_task(late_trigger()))
            raise KeyError("a bug in the hub")
        original(self, details)

    monkeypatch.setattr(_hub._Hub, "_polled", polled)
    a = loop.create_task(wait_for_job(TARGET, EvsJob("boom"), FAST_POLL, None))
    await wait_for_requests(sim, job="boom", count=2)
    armed = True
    await wait_until(lambda: bool(late), timeout=3)
    results = await asyncio.wait_for(asyncio.gather(a, late[0], return_exceptions=True), 3)
    assert isinstance(results[0], Exception)
    assert isinstance(results[1], Exception | tuple), results[1]


async def test_a_hub_whose_client_cannot_close_does_not_break_the_next_trigger(
    sim: Simulator[ManualClock], made: list[Client], gates: Gates, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])

    async def bad_close(self: Gate) -> None:
        raise OSError("close failed")

    monkeypatch.setattr(Gate, "aclose", bad_close)
    final, _ = await wait_for_job(TARGET, EvsJob("a"), FAST_POLL, None)
    assert isinstance(final, Transition)
    monkeypatch.undo()


# --- event loops --------------------------------------------------------------------------------


def test_two_asyncio_loops_one_after_the_other(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    for _ in range(3):
        final, _ = asyncio.run(wait_for_job(TARGET, EvsJob("a"), FAST_POLL, None))
        assert isinstance(final, Transition)
    assert all(map(closed, made))


def test_a_loop_shut_down_by_asyncio_run_with_triggers_left_running(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    """asyncio.run cancels the tasks left: the hub must go, and the next loop start afresh."""
    sim.add_evs_job(P, "never", [(0, "RUNNING")])
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])

    async def leave_running() -> None:
        for i in range(3):
            asyncio.get_running_loop().create_task(
                wait_for_job(TARGET, EvsJob("never"), FAST_POLL, None), name=f"left {i}"
            )
        await wait_for_requests(sim, job="never")

    asyncio.run(leave_running())
    assert _hub._HUBS == {}, "a hub of a closed loop was kept"
    final, _ = asyncio.run(asyncio.wait_for(wait_for_job(TARGET, EvsJob("a"), FAST_POLL, None), 3))
    assert isinstance(final, Transition)


def test_a_loop_closed_without_cancelling_its_tasks_does_not_poison_the_next(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    """A loop stopped abruptly (its tasks never finished): the next loop must get a new hub."""
    sim.add_evs_job(P, "never", [(0, "RUNNING")])
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    loop = asyncio.new_event_loop()

    async def start() -> None:
        asyncio.get_running_loop().create_task(
            wait_for_job(TARGET, EvsJob("never"), FAST_POLL, None)
        )
        await wait_for_requests(sim, job="never")

    loop.run_until_complete(start())
    loop.close()
    try:
        final, _ = asyncio.run(
            asyncio.wait_for(wait_for_job(TARGET, EvsJob("a"), FAST_POLL, None), 3)
        )
        assert isinstance(final, Transition)
    finally:
        _hub._HUBS.clear()  # the abandoned hub, so the fixture reports the defect above only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()


# --- secrets, logs, payloads --------------------------------------------------------------------


async def test_secrets_never_show_in_reprs_stats_task_names_or_logs(
    sim: Simulator[ManualClock],
    made: list[Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = Target(TARGET.endpoint, P, ak=AK, sk=SK, security_token=STS)
    token_target = Target(TARGET.endpoint, P, token="tok-very-secret")
    shown = [repr(target), str(target), repr(token_target), str(token_target)]

    def broken(t: Target, auth: Any, options: dict[str, Any]) -> Client:
        shown.append(repr(auth))
        raise ValueError(f"cannot build a client with {auth!r}")

    monkeypatch.setattr(_hub, "CLIENT_FACTORY", broken)
    caplog.set_level(logging.DEBUG)
    for t in (target, token_target):
        with pytest.raises(ValueError, match="cannot build a client") as caught:
            await wait_for_job(t, EvsJob("x"), FAST_POLL, None)
        shown.append(repr(caught.value))
    shown.append(caplog.text)
    text = "\n".join(shown)
    for secret in (SK, STS, "tok-very-secret"):
        assert secret not in text


async def _run_twice(
    sim: Simulator[ManualClock], target: Target, ref: EvsJob, policy: PollPolicy
) -> list[dict[str, Any]]:
    payloads = []
    for _ in range(2):
        task = asyncio.get_running_loop().create_task(wait_for_job(target, ref, policy, None))
        with contextlib.suppress(TimeoutError):
            await wait_for_requests(sim, job=ref.job_id, since=sim.clock.now(), timeout=0.5)
        sim.clock.advance(30)
        final, _ = await asyncio.wait_for(task, 5)
        assert final is not None
        payloads.append(payload_of(final))
        sim.clock.advance(1)
    return payloads


async def test_a_refused_trigger_run_twice_gives_equal_payloads(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    bad = Target(TARGET.endpoint, P, ak=AK, sk="wrong-secret")
    first, second = await _run_twice(sim, bad, EvsJob("j"), FAST_POLL)
    assert first["reason"] == "auth"
    assert first == second
    assert "wrong-secret" not in repr(first)


async def test_an_erroring_job_run_twice_gives_equal_payloads(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "j", [(0, "RUNNING")], faults=[Fault("http_500")])
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, max_consecutive_errors=1)
    first, second = await _run_twice(sim, TARGET, EvsJob("j"), policy)
    assert first["reason"] == "error"
    assert first == second, (first["message"], second["message"])


async def test_an_expired_job_run_twice_gives_equal_payloads(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    sim.add_evs_job(P, "j", [(0, "RUNNING"), (1, "SUCCESS")])
    first, second = await _run_twice(sim, TARGET, EvsJob("j"), FAST_POLL)
    assert first == second


async def test_a_not_found_job_run_twice_gives_equal_payloads(
    sim: Simulator[ManualClock], made: list[Client]
) -> None:
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0.05)
    payloads = []
    for _ in range(2):
        final, _ = await wait_for_job(TARGET, EvsJob("nope"), policy, None)
        payloads.append(payload_of(final))  # type: ignore[arg-type]
    assert payloads[0] == payloads[1]


# --- the connection ---------------------------------------------------------------------------


class Conn:
    def __init__(
        self, login: Any = AK, password: Any = SK, extra: Any = None, conn_id: str = "hw"
    ) -> None:
        self.conn_id = conn_id
        self.login = login
        self.password = password
        self._extra = (
            {"project_id": P, "endpoint": "https://evs.example.com"} if extra is None else extra
        )

    @property
    def extra_dejson(self) -> Any:
        return self._extra


@pytest.mark.parametrize(
    "extra",
    [
        {"project_id": P, "endpoint": "https://evs.example.com:notaport"},
        {"project_id": "../../etc", "endpoint": "https://evs.example.com"},
        {"project_id": "a b", "endpoint": "https://evs.example.com"},
        {"project_id": P, "endpoint": "https://evs.example.com", "security_token": 5},
        {"project_id": P, "region": ["cn-north-4"]},
        {"project_id": 1234, "endpoint": "https://evs.example.com"},
        ["not", "a", "dict"],
        "a string",
    ],
)
def test_a_bad_connection_is_refused_as_bad_connection(extra: Any) -> None:
    """Whatever is wrong with it, the check before deferral says BadConnection."""
    # The check before deferral refuses it, rather than the hub when the trigger runs.
    with pytest.raises(BadConnection):
        target_from_connection(Conn(extra=extra), EvsJob("j"))


def test_an_endpoint_with_and_without_a_trailing_slash_is_one_target() -> None:
    a = target_from_connection(
        Conn(extra={"project_id": P, "endpoint": "https://evs.example.com"}), EvsJob("j")
    )
    b = target_from_connection(
        Conn(extra={"project_id": P, "endpoint": "https://evs.example.com/"}), EvsJob("j")
    )
    assert a == b, "two hubs and two clients for one endpoint"


def test_client_option_values_of_wrong_types_are_refused_before_the_hub() -> None:
    for options in ({"timeout": "20"}, {"max_in_flight": 0}, {"timeout": [1]}):
        with pytest.raises(ValueError, match="client option"):
            target_from_connection(Conn(), EvsJob("j"), client_options=options)


async def test_a_bad_client_option_does_not_log_a_hub_failure_traceback(
    sim: Simulator[ManualClock], made: list[Client], caplog: pytest.LogCaptureFixture
) -> None:
    """A configuration mistake is not a bug of the hub: no 'hub failed' traceback in the log."""
    target = Target(TARGET.endpoint, P, ak=AK, sk=SK, client_options=(("max_in_flight", 0),))
    caplog.set_level(logging.ERROR, logger="jobwatch.airflow")
    with pytest.raises(ValueError, match="max_in_flight"):
        await wait_for_job(target, EvsJob("j"), FAST_POLL, None)
    assert "failed" not in caplog.text, caplog.text


def test_two_loops_in_two_threads_at_once(sim: Simulator[ManualClock], made: list[Client]) -> None:
    """Two event loops of one process (two threads) watch at the same time, one target."""
    import threading
    import time

    sim.add_evs_job(P, "t0", [(0, "RUNNING"), (1, "SUCCESS")])
    sim.add_evs_job(P, "t1", [(0, "RUNNING"), (1, "SUCCESS")])
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        async def main() -> Any:
            return await asyncio.wait_for(wait_for_job(TARGET, EvsJob(f"t{i}"), FAST_POLL, None), 2)

        try:
            results[i] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    def wait_polled(job: str) -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not sim.requests_for(job) and len(results) < 2:
            time.sleep(0.005)

    first = threading.Thread(target=run, args=(0,))
    first.start()
    wait_polled("t0")  # the first loop's hub runs
    second = threading.Thread(target=run, args=(1,))
    second.start()
    wait_polled("t1")
    time.sleep(0.05)
    sim.clock.advance(5)
    first.join(5)
    second.join(5)
    try:
        for i in range(2):
            assert isinstance(results[i], tuple), f"loop {i}: {results[i]!r}"
            assert isinstance(results[i][0], Transition)
    finally:
        _hub._HUBS.clear()


def test_a_refused_endpoint_is_not_echoed_with_its_userinfo() -> None:
    """An endpoint pasted with credentials in it: the error must not print them."""
    conn = Conn(extra={"project_id": P, "endpoint": "https://AKX:pasted-secret@evs.example.com"})
    with pytest.raises(BadConnection) as caught:
        target_from_connection(conn, EvsJob("j"))
    assert "pasted-secret" not in str(caught.value)


def test_a_ges_engine_job_with_only_a_region_is_refused() -> None:
    from jobwatch import GesEngineJob

    conn = Conn(extra={"project_id": P, "region": "cn-north-4"})
    with pytest.raises(BadConnection, match="endpoint"):
        target_from_connection(conn, GesEngineJob("graph", "job-1"))
