"""A token the scheduler took for a poll is spent at once or not at all, whatever holds
the poll between the hand-off and its request: more workers than the client has slots
(``concurrency``, a ``ClientPool``'s default of 4 workers per slot), or the user's own
``Client.fetch`` calls taking the slots.  Against a gateway whose bucket holds one
request, a token spent late is a throttle; so after the rate is learned, none may come.
Virtual time (trio's ``MockClock``, the simulator's clock following it)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import trio
from loopclock import LoopClock, virtual

from jobwatch import Client, EvsJob, JobRef, PollPolicy, Watcher
from jobwatch.sim import Fault, Quota, Simulator

P = "proj-1"
URL = "http://sim.test"
RATE = 20
JOBS = 40
END = 12.0


def assert_no_throttle_after_learning(requests: list[Any]) -> None:
    """No 429 more than a second after the first (when the budget learned the rate)."""
    learned = min(r.t for r in requests if r.status_code == 429)
    throttled = [round(r.t, 3) for r in requests if r.t > learned + 1.0 and r.status_code == 429]
    assert throttled == [], (
        f"{len(throttled)} throttled after learning at {learned:.2f}: {throttled[:10]}"
    )


def quota_sim(seed: int, latency_p: float) -> tuple[Simulator[LoopClock], list[JobRef], PollPolicy]:
    """A simulator enforcing the quota (a bucket of one request), ``JOBS`` jobs that
    never end, answers 0.3 s late with probability ``latency_p``; and a 50 ms policy."""
    sim = Simulator(clock=LoopClock(), seed=seed)
    sim.set_quota(Quota(RATE, burst=1))
    if latency_p:
        sim.add_fault(Fault("latency", probability=latency_p, latency=0.3))
    refs: list[JobRef] = [EvsJob(f"j{i}") for i in range(JOBS)]
    for ref in refs:
        sim.add_evs_job(P, ref.job_id, [(0, "RUNNING")])
    return sim, refs, PollPolicy(wait_initial=0.05, wait_max=0.05, wait_jitter=0.0)


async def run_watcher(
    concurrency: int | None, max_in_flight: int, latency_p: float, seed: int
) -> list[Any]:
    sim, refs, policy = quota_sim(seed, latency_p)
    async with (
        Client(URL, P, transport=sim.transport(), max_in_flight=max_in_flight) as client,
        Watcher(client, policy=policy, concurrency=concurrency) as watcher,
    ):
        watcher.watch_many(refs)
        await trio.sleep(END)
    return list(sim.requests)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("concurrency", "max_in_flight"), [(None, 2), (8, 2)], ids=["workers=slots", "workers>slots"]
)
def test_no_throttle_after_learning_with_random_latency(
    seed: int, concurrency: int | None, max_in_flight: int
) -> None:
    requests = virtual(run_watcher, concurrency, max_in_flight, 0.5, seed)
    assert_no_throttle_after_learning(requests)


async def run_with_user_fetches(seed: int) -> list[Any]:
    """The watcher and the user's own fetches share one client (max_in_flight=2)."""
    sim, refs, policy = quota_sim(seed, 0.5)
    sim.add_evs_job(P, "mine", [(0, "RUNNING")])

    async def user(client: Client) -> None:
        while True:
            await client.fetch(EvsJob("mine"))

    async with (
        Client(URL, P, transport=sim.transport(), max_in_flight=2) as client,
        Watcher(client, policy=policy) as watcher,
        anyio.create_task_group() as tg,
    ):
        watcher.watch_many(refs)
        tg.start_soon(user, client)
        await trio.sleep(END)
        tg.cancel_scope.cancel()
    return list(sim.requests)


@pytest.mark.parametrize("seed", [0, 1])
def test_no_throttle_after_learning_with_the_users_fetches(seed: int) -> None:
    requests = virtual(run_with_user_fetches, seed)
    assert_no_throttle_after_learning(requests)


async def run_instrumented(concurrency: int | None, user: bool, seed: int) -> list[float]:
    """How long after its token was taken each prepaid request went out."""
    import jobwatch._abandon as ab
    import jobwatch._client as cl
    from jobwatch._poller import Poller

    handed: dict[int, float] = {}
    lags: list[float] = []
    original_hand_off = Poller._hand_off
    original_prepaid_by = ab.prepaid_by  # what the client module imported

    async def hand_off(self: Poller, target: Any) -> None:
        await original_hand_off(self, target)
        if target.prepaid is not None:
            handed[id(target)] = trio.current_time()

    def prepaid_by(budget: Any) -> bool:
        poll = ab._current.get()
        spent = original_prepaid_by(budget)
        if spent and poll is not None:
            lags.append(trio.current_time() - handed[id(poll.serves[0])])
        return spent

    Poller._hand_off = hand_off  # type: ignore[method-assign]
    vars(cl)["prepaid_by"] = prepaid_by
    try:
        if user:
            await run_with_user_fetches(seed)
        else:
            await run_watcher(concurrency, 2, 0.5, seed)
    finally:
        Poller._hand_off = original_hand_off  # type: ignore[method-assign]
        vars(cl)["prepaid_by"] = original_prepaid_by
    return lags


@pytest.mark.parametrize(
    ("concurrency", "user"),
    [(None, False), (8, False), (None, True)],
    ids=["workers=slots", "workers>slots", "users-fetches"],
)
def test_a_prepaid_token_is_spent_at_once(concurrency: int | None, user: bool) -> None:
    lags = virtual(run_instrumented, concurrency, user, 0)
    assert lags, "no prepaid request"
    late = sorted(round(lag, 3) for lag in lags if lag > 1.0 / RATE)
    assert late == [], f"{len(late)} of {len(lags)} prepaid requests went late: {late[-10:]}"


async def run_pool(seed: int) -> list[Any]:
    """A ClientPool watcher at its default concurrency (4 workers per client slot),
    every job on one endpoint."""
    from jobwatch import ClientPool

    sim, refs, policy = quota_sim(seed, 0.5)
    async with (
        ClientPool(project_id=P, transport_for={URL: sim.transport()}, max_in_flight=2) as pool,
        Watcher(pool, policy=policy) as watcher,
    ):
        watcher.watch_many(refs, endpoint=URL)
        await trio.sleep(END)
    return list(sim.requests)


@pytest.mark.parametrize("seed", [0, 1])
def test_no_throttle_after_learning_pool_default(seed: int) -> None:
    requests = virtual(run_pool, seed)
    assert_no_throttle_after_learning(requests)
