"""A tenant quota: the simulator's gateway throttling, and the budget that learns it.

Watching runs in virtual time where it can (trio's autojumping ``MockClock``, the
simulator's clock following the loop's), in real but short time on asyncio.  What
the tests try to break: the simulator answering other than the APIG.0308 FAQ says;
the budget bursting after a throttle, starving a job, exceeding a user's
``RateLimit``, or two clients of one tenant overrunning a shared budget.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loopclock import LoopClock, virtual

from jobwatch import (
    AdaptiveRate,
    Client,
    EvsJob,
    JobState,
    PollDetails,
    PollPolicy,
    RateLimit,
    RateLimitError,
    Watcher,
)
from jobwatch.sim import ManualClock, Quota, RecordedRequest, Simulator

P = "proj-1"
URL = "http://sim.test"
MESSAGE = "The throttling threshold has been reached: policy user over ratelimit,limit:{},time:{}"


# -- the simulator's quota ------------------------------------------------------------


def test_quota_is_checked() -> None:
    for bad in ({"limit": 0}, {"limit": True}, {"limit": 2.5}, {"limit": 5, "burst": 0}):
        with pytest.raises(ValueError, match="positive integer"):
            Quota(**bad)
    for period in ("1 sec", "0 second", "second", "1 seconds", 1):
        with pytest.raises(ValueError, match="period"):
            Quota(5, period)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        Quota(5, key="user")  # type: ignore[arg-type]
    assert Quota(200, "5 minute").rate == pytest.approx(200 / 300)
    with pytest.raises(TypeError):
        Simulator().set_quota(40)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_beyond_the_quota_the_gateway_answers_apig_0308_as_documented() -> None:
    """The FAQ "How Do I Handle the Error APIG.0308?": the limit and window in the
    message, HTTP 429, no Retry-After; the bucket refills by the simulator's clock,
    per tenant (project), and a refused request takes no token."""
    clock = ManualClock()
    sim = Simulator(clock=clock)
    for project in (P, "proj-2"):
        sim.add_evs_job(project, "j", [(0, "RUNNING")])
    sim.set_quota(Quota(3, burst=2))
    assert sim.quota == Quota(3, burst=2)
    async with httpx.AsyncClient(transport=sim.transport(), base_url=URL) as http:
        codes = [(await http.get(f"/v1/{P}/jobs/j")).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        answer = await http.get(f"/v1/{P}/jobs/j")
        assert answer.status_code == 429
        assert "retry-after" not in answer.headers
        body = answer.json()
        assert body["error_code"] == "APIGW.0308"
        assert body["error_msg"] == MESSAGE.format(3, "1 second")
        assert body["request_id"] == answer.headers["x-request-id"]
        assert (await http.get("/v1/proj-2/jobs/j")).status_code == 200  # another tenant
        clock.advance(1 / 3)  # one token back
        assert [(await http.get(f"/v1/{P}/jobs/j")).status_code for _ in range(2)] == [200, 429]
        clock.advance(10)  # full again, to the burst only
        codes = [(await http.get(f"/v1/{P}/jobs/j")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        clock.set(0)  # a clock put back refills nothing
        assert (await http.get(f"/v1/{P}/jobs/j")).status_code == 429
        sim.set_quota(None)
        assert all([(await http.get(f"/v1/{P}/jobs/j")).status_code == 200 for _ in range(9)])


@pytest.mark.anyio
async def test_a_quota_by_access_key_counts_each_key_across_projects() -> None:
    clock = ManualClock()
    sim = Simulator(clock=clock)
    for project in (P, "proj-2"):
        sim.add_evs_job(project, "j", [(0, "RUNNING")])
    sim.set_quota(Quota(2, "1 minute", key="ak"))

    def signed(ak: str) -> dict[str, str]:
        return {"Authorization": f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders=host, Signature=x"}

    async with httpx.AsyncClient(transport=sim.transport(), base_url=URL) as http:
        got = [
            (await http.get(f"/v1/{project}/jobs/j", headers=signed("AK1"))).status_code
            for project in (P, "proj-2", P)
        ]
        assert got == [200, 200, 429]
        answer = await http.get("/v1/proj-2/jobs/j", headers=signed("AK1"))
        assert answer.json()["error_msg"] == MESSAGE.format(2, "1 minute")
        assert (await http.get(f"/v1/{P}/jobs/j", headers=signed("AK2"))).status_code == 200


# -- the budget alone -----------------------------------------------------------------


def test_adaptive_rate_is_checked() -> None:
    for bad in ({"headroom": 1.0}, {"cut": 1.0}, {"cut": 0}, {"floor": 0}, {"cooldown": -1}):
        with pytest.raises(ValueError, match="must"):
            AdaptiveRate(**bad)
    with pytest.raises(ValueError, match="ceiling"):
        AdaptiveRate(floor=1.0, ceiling=0.5)
    with pytest.raises(TypeError, match="adaptive"):
        Client(URL, P, adaptive="yes")  # type: ignore[arg-type]


def test_a_named_window_is_the_ceiling_at_once_and_a_bare_throttle_cuts_and_recovers() -> None:
    async def main() -> None:
        budget = AdaptiveRate()
        assert budget.rate is None
        assert not budget.limited
        budget.throttled(MESSAGE.format(200, "5 minute"))
        assert budget.rate == pytest.approx(200 / 300 * 0.98)
        for _ in range(20):  # the answers to a burst: no further cut
            budget.throttled(MESSAGE.format(200, "5 minute"))
        assert budget.rate == pytest.approx(200 / 300 * 0.98)
        assert budget.throttles == 21
        await anyio.sleep(60)
        assert budget.rate == pytest.approx(200 / 300 * 0.98)  # never above the ceiling

        bare = AdaptiveRate()
        for _ in range(50):  # 50 answers got through in the last second, then a throttle
            bare.passed()
        bare.throttled(None)
        assert bare.rate == pytest.approx(50 * 0.7)
        bare.throttled("Too Many Requests")  # within the cooldown: the same cut
        assert bare.rate == pytest.approx(35)
        seen: list[float] = []
        for _ in range(10):
            await anyio.sleep(1)
            assert bare.rate is not None
            seen.append(bare.rate)
        assert seen == sorted(seen)  # recovers while no throttle comes
        assert seen[-1] == pytest.approx(100)  # to at most twice the rate cut from
        plateau = [s for s in seen if abs(s - 50) < 2]
        assert plateau  # slowly near the rate it was cut from
        bare.throttled(None)
        assert bare.rate is not None
        assert bare.rate < seen[-1]

    virtual(main)


def test_a_user_ceiling_paces_from_the_start_and_a_throttle_still_cuts_below_it() -> None:
    async def main() -> None:
        budget = AdaptiveRate(ceiling=10)
        assert budget.limited  # before any throttle: evenly spaced at the ceiling
        assert budget.rate == pytest.approx(10)
        started = anyio.current_time()
        for _ in range(50):
            await budget.acquire()
        assert anyio.current_time() - started == pytest.approx(4.9, abs=0.11)  # first at once
        assert budget.paused == pytest.approx(4.9, abs=0.11)
        # Throttled while under the window the gateway names: others spend the same
        # quota, so it cuts below the ceiling (and never climbs back above it).
        budget.throttled(MESSAGE.format(40, "1 second"))
        assert budget.rate == pytest.approx(7.0)
        await anyio.sleep(60)
        assert budget.rate == pytest.approx(10)
        # A window named below the ceiling is the rate at once.
        budget.throttled(MESSAGE.format(5, "1 second"))
        assert budget.rate == pytest.approx(5 * 0.98)

        late = AdaptiveRate()
        late.limit_to(4)  # as a client's RateLimit sets it
        assert late.rate == pytest.approx(4)
        assert late.expected_wait() == 0.0  # a token at hand
        await late.acquire()
        assert late.expected_wait() == pytest.approx(0.25)

    virtual(main)


def test_a_ceiling_below_the_floor_is_the_rate() -> None:
    """A ``RateLimit`` of one request per 1,000 s (0.001/s, under the default floor of
    0.01/s): paced at it, not at the floor (whose tokens came ten times too often,
    and each poll then waited ~900 s in the sliding window, in a worker)."""

    async def main() -> None:
        budget = AdaptiveRate()
        budget.limit_to(0.001)
        assert budget.rate == pytest.approx(0.001)
        await budget.acquire()
        assert budget.expected_wait() == pytest.approx(1000.0)
        budget.throttled(None)  # a cut stays at or under the ceiling too
        assert budget.rate is not None
        assert budget.rate <= 0.001
        shared = AdaptiveRate(floor=5.0)  # one budget of clients of one tenant
        shared.limit_to(1.0)
        assert shared.rate == pytest.approx(1.0)
        unbounded = AdaptiveRate(ceiling=math.inf)  # no ceiling, as None
        unbounded.limit_to(math.inf)
        assert not unbounded.limited
        assert unbounded.rate is None

    virtual(main)


def test_a_budget_shows_its_rate_outside_an_event_loop() -> None:
    """``repr`` and ``statistics()`` are read outside the loop too (a client made at
    import time, logged, looked at after ``anyio.run`` returned)."""
    assert repr(AdaptiveRate(ceiling=5)) == "AdaptiveRate(5/s, throttles=0)"
    client = Client(URL, P, rate_limit=RateLimit(5))
    assert client.statistics().rate == pytest.approx(5.0)
    learned = AdaptiveRate()

    async def throttle() -> None:
        learned.throttled(MESSAGE.format(40, "1 second"))

    anyio.run(throttle)
    assert learned.rate == pytest.approx(40 * 0.98)  # as of its last use
    assert repr(learned) == "AdaptiveRate(39.2/s, throttles=1)"


# -- watching under a quota -----------------------------------------------------------


@dataclass
class Run:
    requests: list[RecordedRequest]
    ends: dict[str, float]
    finals: list[JobState]
    details: list[PollDetails]
    stats: Any


async def watch_under_quota(
    quota: Quota,
    n: int,
    span: tuple[float, float],
    *,
    clients: int = 1,
    shared: bool = True,
    policy: PollPolicy | None = None,
    seed: int = 0,
    **client_kwargs: Any,
) -> Run:
    sim = Simulator(clock=LoopClock())
    sim.set_quota(quota)
    rng = random.Random(seed)
    ends = {f"j{i}": rng.uniform(*span) for i in range(n)}
    for job, end in ends.items():
        sim.add_evs_job(P, job, [(0, "RUNNING"), (end, "SUCCESS")])
    budget = AdaptiveRate() if shared else None
    made = [
        Client(URL, P, transport=sim.transport(), adaptive=budget or True, **client_kwargs)
        for _ in range(clients)
    ]
    details: list[PollDetails] = []
    refs = [EvsJob(job) for job in ends]
    async with Watcher(made[0], policy=policy or PollPolicy(), on_poll=details.append) as w:
        for index, client in enumerate(made):
            w.watch_many(refs[index::clients], client=client)
        finals = [event.snapshot.state for event in await w.wait_all(refs)]  # type: ignore[union-attr]
        stats = w.statistics()
    for client in made:
        await client.aclose()
    return Run(sim.requests, ends, finals, details, stats)


def throttled_share(requests: Sequence[RecordedRequest], after: float) -> float:
    late = [r for r in requests if r.t >= after]
    return sum(r.status_code == 429 for r in late) / max(len(late), 1)


def longest_gap(run: Run) -> float:
    """The longest time between two polls of a job while it was open (and the poll
    that saw it end)."""
    times: dict[str, list[float]] = {}
    for request in run.requests:
        if request.status_code == 200 and request.job is not None:
            times.setdefault(request.job, []).append(request.t)
    gaps = [0.0]
    for job, seen in times.items():
        end = run.ends[job]
        kept = [t for t in seen if t < end] + [t for t in seen if t >= end][:1]
        gaps += [b - a for a, b in itertools.pairwise(kept)]
    return max(gaps)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    rate=st.integers(5, 60),
    burst_factor=st.floats(0.1, 2.0),
    n=st.integers(10, 120),
    seed=st.integers(0, 1000),
)
def test_watching_under_any_quota_learns_it_detects_every_job_and_starves_none(
    rate: int, burst_factor: float, n: int, seed: int
) -> None:
    burst = max(1, round(rate * burst_factor))
    quota = Quota(rate, burst=burst)
    cycle = n / (rate * 0.98)  # a round of every job at the learned rate
    policy = PollPolicy(wait_initial=0.5, wait_max=max(cycle, 0.5), wait_jitter=0.1)
    run = virtual(watch_under_quota, quota, n, (1.0, 10.0), policy=policy, seed=seed)
    assert run.finals == [JobState.SUCCEEDED] * n  # every job detected
    assert throttled_share(run.requests, after=2.0) <= 0.02
    # No job starved: earliest due first, one token each (the interval itself, up to
    # the cycle, plus one round of the others: 2 x N/R when the quota binds).
    assert longest_gap(run) <= (policy.wait_max * 1.1 + cycle) * 1.05 + 2 / rate
    assert run.details[-1].throttles == run.stats.throttles
    if run.stats.throttles:  # (a quota a few jobs never reach is never learned)
        assert run.stats.rate == pytest.approx(rate * 0.98)
        assert run.details[-1].rate == pytest.approx(rate * 0.98)
    else:
        assert run.stats.rate is None


def requests_in_windows(times: Sequence[float], per: float) -> int:
    """The most requests in any window of ``per`` seconds (half-open: one ``per``
    after another is in the next window; summed as the limiter sums it, ``t0 + per``,
    whose rounding can differ from ``t - per``'s)."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] + per <= t:
            start += 1
        most = max(most, end - start + 1)
    return most


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    limit=st.integers(2, 30),
    per=st.sampled_from([0.5, 1.0, 2.0]),
    quota=st.integers(5, 80),
)
def test_a_users_rate_limit_is_never_exceeded_whatever_the_quota(
    limit: int, per: float, quota: int
) -> None:
    run = virtual(
        watch_under_quota,
        Quota(quota),
        40,
        (0.5, 4.0),
        rate_limit=RateLimit(limit, per),
        policy=PollPolicy(wait_initial=0.2, wait_max=1.0),
    )
    assert run.finals == [JobState.SUCCEEDED] * 40
    assert requests_in_windows([r.t for r in run.requests], per) <= limit


def test_two_clients_of_one_tenant_share_one_budget() -> None:
    quota = Quota(20, burst=5)
    policy = PollPolicy(wait_initial=0.5, wait_max=4.0)
    run = virtual(watch_under_quota, quota, 120, (1.0, 12.0), clients=2, policy=policy)
    assert run.finals == [JobState.SUCCEEDED] * 120
    assert throttled_share(run.requests, after=2.0) <= 0.02
    # One budget for both: together they stay under the tenant's rate once learned.
    late = [r.t for r in run.requests if r.t >= 2.0]
    assert requests_in_windows(late, 1.0) <= 20
    assert run.stats.rate == pytest.approx(20 * 0.98)
    # Each with its own budget, both learn 20/s and send up to 40/s together: the
    # throttles that follow cut each one to its share, and nothing is lost.
    apart = virtual(
        watch_under_quota, quota, 120, (1.0, 12.0), clients=2, shared=False, policy=policy
    )
    assert apart.finals == [JobState.SUCCEEDED] * 120
    assert sum(r.status_code == 429 for r in apart.requests) > sum(
        r.status_code == 429 for r in run.requests
    )


@pytest.mark.anyio
async def test_watching_under_a_quota_in_real_time(anyio_backend: str) -> None:
    """Both backends, real time: 60 jobs, 150 requests/s, ending within 0.3-1.5 s."""
    quota = Quota(150, burst=10)
    policy = PollPolicy(wait_initial=0.1, wait_max=0.4, wait_jitter=0.1)
    with anyio.fail_after(30):
        run = await watch_under_quota(quota, 60, (0.3, 1.5), policy=policy)
    assert run.finals == [JobState.SUCCEEDED] * 60
    throttled = sum(r.status_code == 429 for r in run.requests)
    assert 1 <= throttled <= 0.1 * len(run.requests)
    assert run.stats.throttles == throttled
    assert run.stats.rate == pytest.approx(150 * 0.98)


@pytest.mark.anyio
async def test_a_throttled_fetch_is_paced_not_paused(anyio_backend: str) -> None:
    """Without Retry-After the retry waits for the budget's next token (1/rate), not
    for the window named; requests after it go at that rate, not in a burst."""
    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    sim.set_quota(Quota(50, burst=1))
    async with Client(URL, P, transport=sim.transport()) as client:
        started = anyio.current_time()
        await client.fetch(EvsJob("j"))
        await client.fetch(EvsJob("j"))  # throttled once, then paced
        took = anyio.current_time() - started
        for _ in range(10):
            await client.fetch(EvsJob("j"))
        stats = client.statistics()
    assert took < 0.5
    assert stats.throttles == 1
    assert stats.rate == pytest.approx(49)
    assert stats.paused > 0
    assert [r.status_code for r in sim.requests].count(429) == 1
    off = Client(URL, P, transport=sim.transport(), adaptive=False)
    assert off.budget is None
    assert off.statistics().rate is None


@pytest.mark.anyio
async def test_a_throttle_past_the_call_budget_fails_at_once(anyio_backend: str) -> None:
    """limit:1,time:1 minute: the next token is a minute away, past the call's 5 s."""
    from jobwatch import RetryPolicy

    sim = Simulator(clock=LoopClock())
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    sim.set_quota(Quota(1, "1 minute"))
    retry = RetryPolicy(timeout=5.0)
    async with Client(URL, P, transport=sim.transport(), retry=retry) as client:
        await client.fetch(EvsJob("j"))
        with anyio.fail_after(2):
            with pytest.raises(RateLimitError, match="limit:1,time:1 minute"):
                await client.fetch(EvsJob("j"))


def test_the_cli_summary_shows_the_rate_learned() -> None:
    from jobwatch._cli._summary import Summary, summary_json, summary_lines, trouble_line

    assert trouble_line(0, 0.0, {}, 39.2) == ""  # no throttle: nothing to say
    assert trouble_line(3, 2.4, {}, 39.2) == "throttled \u00d73, paused 2 s, rate 39.2/s"
    assert trouble_line(3, 2.4, {}) == "throttled \u00d73, paused 2 s"
    summary = Summary(
        jobs=1,
        sub_jobs=0,
        outcomes={"succeeded": 1},
        sub_outcomes={},
        imports_with_failed_files=0,
        batches_with_failed_sub_jobs=0,
        polls=5,
        requests=6,
        retries=1,
        naive_requests=9,
        elapsed=9.0,
        problems=(),
        throttled=1,
        paused=0.5,
        rate=19.6,
    )
    assert "throttled \u00d71, paused 0 s, rate 19.6/s" in summary_lines(summary)
    assert summary_json(summary)["rate"] == 19.6
