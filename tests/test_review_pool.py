"""A review of the pool, the watcher across endpoints and resume tokens v2, as a
demanding user would test them: one job ID on two services and two endpoints,
unwatch while a pool client's request is in flight, tampered tokens (nothing
added, a clear error, no secret shown), version 1 tokens on a pool, and the
round trip of a token through JSON for every service.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import (
    ClientPool,
    EcsJob,
    EvsJob,
    GaveUp,
    JobRef,
    JobState,
    PollPolicy,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch._kinds import kinds
from jobwatch._refs import ref_to_dict
from jobwatch.sim import Simulator

pytestmark = pytest.mark.anyio

P = "proj"
FAST = PollPolicy(wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0)
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)
ASLEEP = PollPolicy(first_poll_delay=600)  # nothing is polled: the token as watched
A, B = "https://a.sim.test", "https://b.sim.test"


def pool_of(sims: dict[str, Simulator[Any]], **options: Any) -> ClientPool:
    return ClientPool(
        project_id=P, retry=QUICK_RETRY, transport_for=lambda e: sims[e].transport(), **options
    )


async def collect(watcher: Watcher, within: float = 10) -> list[Any]:
    with anyio.fail_after(within):
        return [event async for event in watcher.events()]


def check_one_final_each(events: list[Any]) -> Counter[JobRef]:
    """Exactly one final event per watched job, and it is the job's last event."""
    finals: Counter[JobRef] = Counter()
    last: dict[JobRef, Any] = {}
    for event in events:
        if event.parent is None:
            last[event.ref] = event
            if event.final:
                finals[event.ref] += 1
    assert all(count == 1 for count in finals.values()), finals
    assert all(event.final for event in last.values()), last
    return finals


# -- one job ID, two services, two endpoints -----------------------------------------------------


async def test_one_job_id_on_two_services_is_two_jobs_each_on_its_endpoint(
    anyio_backend: str,
) -> None:
    sims = {A: Simulator(), B: Simulator()}
    sims[A].add_evs_job(P, "x", [(0, "RUNNING"), (0.05, "SUCCESS")])
    sims[B].add_evs_job(P, "x", [(0, "RUNNING"), (0.05, "FAIL")], service="ecs")
    async with pool_of(sims) as pool, Watcher(pool, policy=FAST) as watcher:
        watcher.watch(EvsJob("x"), endpoint=A)
        watcher.watch(EcsJob("x"), endpoint=B)
        events = await collect(watcher)
    assert check_one_final_each(events) == Counter({EvsJob("x"): 1, EcsJob("x"): 1})
    ends = {e.ref: e.state for e in events if e.final}
    assert ends == {EvsJob("x"): JobState.SUCCEEDED, EcsJob("x"): JobState.FAILED}
    assert {r.api for r in sims[A].requests} == {"evs"}
    assert {r.api for r in sims[B].requests} == {"ecs"}


async def test_one_reference_on_two_endpoints_is_refused_and_the_first_watch_kept(
    anyio_backend: str,
) -> None:
    sims = {A: Simulator(), B: Simulator()}
    for sim in sims.values():
        sim.add_evs_job(P, "x", [(0, "RUNNING"), (0.1, "SUCCESS")])
    async with pool_of(sims) as pool, Watcher(pool, policy=FAST) as watcher:
        watcher.watch(EvsJob("x"), endpoint=A)
        with pytest.raises(ValueError, match=r"watched on https://a\.sim\.test"):
            watcher.watch(EvsJob("x"), endpoint=B)
        with pytest.raises(ValueError, match=r"watched on https://a\.sim\.test"):
            watcher.watch(EvsJob("x"), endpoint=A, project_id="other")
        watcher.watch(EvsJob("x"), endpoint=A)  # the same place: a no-op
        events = await collect(watcher)
    assert check_one_final_each(events) == Counter({EvsJob("x"): 1})
    assert sims[A].requests
    assert not sims[B].requests


# -- unwatch while a pool client's request is in flight ------------------------------------------


@pytest.mark.parametrize("answer", ["RUNNING", "SUCCESS"])
async def test_unwatch_during_a_poll_on_a_pool_client_ends_the_job_once(
    anyio_backend: str, answer: str
) -> None:
    arrived, release = anyio.Event(), anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await release.wait()
        return httpx.Response(200, json={"status": answer, "job_id": "x"})

    sims = {B: Simulator()}
    sims[B].add_evs_job(P, "y", [(0, "RUNNING"), (0.05, "SUCCESS")])
    routes: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {
        A: lambda: httpx.MockTransport(slow),
        B: sims[B].transport,
    }
    pool = ClientPool(project_id=P, retry=QUICK_RETRY, transport_for=lambda e: routes[e]())
    async with pool, Watcher(pool, policy=FAST) as watcher:
        watcher.watch(EvsJob("x"), endpoint=A)
        watcher.watch(EvsJob("y"), endpoint=B)
        with anyio.fail_after(5):
            await arrived.wait()
        watcher.unwatch(EvsJob("x"))
        watcher.unwatch(EvsJob("x"))  # twice: still one outcome
        release.set()
        events = await collect(watcher)
    finals = check_one_final_each(events)
    assert finals == Counter({EvsJob("x"): 1, EvsJob("y"): 1})
    (end,) = [e for e in events if e.final and e.ref == EvsJob("x")]
    if answer == "SUCCESS":  # the poll in flight ended it: its own outcome, or removed
        assert isinstance(end, Transition | GaveUp)
    else:
        assert isinstance(end, GaveUp)
        assert end.reason == "removed"
    (y_end,) = [e for e in events if e.final and e.ref == EvsJob("y")]
    assert isinstance(y_end, Transition)
    assert y_end.state is JobState.SUCCEEDED


# -- tampered tokens: nothing added, a clear error -------------------------------------------------


def entry(ref: dict[str, str], endpoint: object = A, project_id: object = P, **more: Any) -> Any:
    return {"ref": ref, "endpoint": endpoint, "project_id": project_id, "state": None,
            "seen": False, "subs": [], **more}  # fmt: skip


GOOD = entry({"api": "evs", "job_id": "good"})
SECRET = "S3cr3tT0ken"
TAMPERED: dict[str, tuple[Any, str]] = {
    "userinfo": (entry({"api": "evs", "job_id": "b"}, f"https://ak:{SECRET}@a.sim.test"), "user"),
    "userinfo, ftp": (entry({"api": "evs", "job_id": "b"}, f"ftp://ak:{SECRET}@h"), "user"),
    "path with a version": (entry({"api": "evs", "job_id": "b"}, f"{A}/v1"), "API version"),
    "a query": (entry({"api": "evs", "job_id": "b"}, f"{A}?token={SECRET}"), "query"),
    "no endpoint": (entry({"api": "evs", "job_id": "b"}, endpoint=None), "needs an 'endpoint'"),
    "project path": (entry({"api": "evs", "job_id": "b"}, project_id="../x"), "project_id"),
    "project number": (entry({"api": "evs", "job_id": "b"}, project_id=7), "project_id"),
    "unknown api": (entry({"api": "evs-v9", "job_id": "b"}), "evs-v9"),
    "api of another kind's shape": (entry({"api": "ges", "job_id": "b"}), "graph_id"),
    "job id": (entry({"api": "evs", "job_id": "../b"}), "job_id"),
    "a final state": (entry({"api": "evs", "job_id": "b"}, state="succeeded"), "final state"),
    "an unknown state": (entry({"api": "evs", "job_id": "b"}, state="done"), "unknown state"),
    "one job on two endpoints": (entry({"api": "evs", "job_id": "good"}, B), "and on"),
    "one job on two projects": (entry({"api": "evs", "job_id": "good"}, A, "p2"), "and on"),
}  # fmt: skip


@pytest.mark.parametrize("bad", TAMPERED.values(), ids=TAMPERED.keys())
async def test_a_tampered_token_adds_nothing_and_says_what_is_wrong(
    anyio_backend: str, bad: tuple[Any, str]
) -> None:
    job, says = bad
    sims = {A: Simulator(), B: Simulator()}
    async with pool_of(sims) as pool, Watcher(pool, policy=ASLEEP) as watcher:
        with pytest.raises(ValueError, match=says) as caught:
            watcher.resume({"version": 2, "jobs": [GOOD, job]})
        assert SECRET not in str(caught.value)
        assert watcher.statistics().jobs_watched == 0
        assert watcher.export_state()["jobs"] == []
        assert pool.clients() == []


async def test_resume_counts_the_jobs_it_added(anyio_backend: str) -> None:
    sims = {A: Simulator(), B: Simulator()}
    token = {"version": 2, "jobs": [GOOD, GOOD, entry({"api": "evs", "job_id": "b"}, B)]}
    async with pool_of(sims) as pool, Watcher(pool, policy=ASLEEP) as watcher:
        assert watcher.resume(token) == 2  # (a job named twice at one place is one job)
        assert watcher.resume(token) == 0  # watched already: nothing added
        assert watcher.statistics().jobs_open == 2


async def test_a_version_1_token_on_a_pool_needs_a_client(anyio_backend: str) -> None:
    sims = {A: Simulator()}
    sims[A].add_evs_job(P, "v1", [(0, "RUNNING"), (0.05, "SUCCESS")])
    token = {"version": 1, "jobs": [{"ref": {"api": "evs", "job_id": "v1"}, "state": "running",
                                     "seen": True}]}  # fmt: skip
    async with pool_of(sims) as pool, Watcher(pool, policy=FAST) as watcher:
        with pytest.raises(ValueError, match="version 1 token"):
            watcher.resume(token)
        assert watcher.statistics().jobs_watched == 0
        assert watcher.resume(token, client=pool.client(A)) == 1
        events = await collect(watcher)
    # What the first process delivered (running) is not delivered again.
    assert [(e.previous, e.state) for e in events] == [(JobState.RUNNING, JobState.SUCCEEDED)]


# -- a token's round trip through JSON, for every service ------------------------------------------


def a_ref(kind_name: str, job_id: str) -> JobRef:
    kind = next(k for k in kinds() if k.name == kind_name)
    graph = {"ges": {"graph_id": "g"}, "ges-engine": {"graph_name": "g"}}.get(kind_name, {})
    return kind.from_dict({"api": kind_name, "job_id": job_id, **graph})  # type: ignore[no-any-return]


KIND_NAMES = sorted(k.name for k in kinds() if not k.name.startswith("test-"))
ids = st.from_regex(r"[A-Za-z0-9_\-]{1,20}(\.[A-Za-z0-9_\-]{1,5})?", fullmatch=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(
        st.tuples(
            st.sampled_from(KIND_NAMES), ids, st.sampled_from([A, B]), st.sampled_from([P, "p-2"])
        ),
        min_size=1,
        max_size=12,
        unique_by=lambda t: (t[0], t[1]),
    ),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_a_token_survives_json_for_every_service(
    jobs: list[tuple[str, str, str, str]], backend: str
) -> None:
    placed = {a_ref(kind, job_id): (endpoint, project) for kind, job_id, endpoint, project in jobs}

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        sims = {A: Simulator(), B: Simulator()}
        async with pool_of(sims) as pool, Watcher(pool, policy=ASLEEP) as watcher:
            for ref, (endpoint, project) in placed.items():
                watcher.watch(ref, endpoint=endpoint, project_id=project)
            first = json.loads(json.dumps(watcher.export_state()))
        async with pool_of(sims) as pool, Watcher(pool, policy=ASLEEP) as watcher:
            assert watcher.resume(first) == len(placed)
            again = json.loads(json.dumps(watcher.export_state()))
            assert {(c.endpoint, c.project_id) for c in pool.clients()} == set(placed.values())
        return first, again

    first, again = anyio.run(main, backend=backend)
    assert again == first
    where = {json.dumps(job["ref"]): (job["endpoint"], job["project_id"]) for job in first["jobs"]}
    assert where == {json.dumps(ref_to_dict(ref)): place for ref, place in placed.items()}
