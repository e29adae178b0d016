"""One ``Watcher`` across services and endpoints through a ``ClientPool``.

Each service runs on a simulator of its own, reached as its own endpoint through
the pool's transport routing (or on a real socket for the resume in a new
process).  The tests check where requests land, that rate limits and engine-job
coalescing stay per client, that resume tokens carry each job's endpoint and
project (and are refused when the pool may not reach one), and that the pool
closes what it made only.  A service is one line of ``SERVICES``.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import (
    AKSKAuth,
    CceJob,
    Client,
    ClientPool,
    EcsJob,
    EndpointNotInPool,
    Event,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GesJob,
    JobRef,
    JobState,
    PollPolicy,
    RateLimit,
    RdsJob,
    RetryPolicy,
    TokenAuth,
    Transition,
    UnknownRegion,
    Watcher,
    api_of,
    endpoint_for,
)
from jobwatch._refs import ref_to_dict
from jobwatch.sim import Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj"
FAST = PollPolicy(
    wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0, not_found_grace=2.0
)
QUICK_RETRY = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002)
#: Raw statuses of a job of each service: queued, running, done.
Statuses = tuple[str, str, str]


@dataclass(frozen=True)
class Service:
    """One service: how the simulator names its requests, and how to add a job to it."""

    name: str
    apis: frozenset[str]  # ``RecordedRequest.api`` of its requests
    statuses: Statuses
    add: Callable[[Simulator[Any], str, list[tuple[float, str]]], JobRef]

    def job(self, sim: Simulator[Any], job_id: str, running: float, end: float) -> JobRef:
        """Add a job queued at 0, running at ``running``, done at ``end``; its reference."""
        queued, run, done = self.statuses
        return self.add(sim, job_id, [(0, queued), (running, run), (end, done)])


def _evs(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_evs_job(P, job, timeline)
    return EvsJob(job)


def _ges(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_ges_job(P, "graph-1", job, timeline)
    return GesJob("graph-1", job)


def _engine(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_engine_job(P, "movies", job, timeline)  # one graph: its jobs share a list
    return GesEngineJob("movies", job)


def _ecs(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_evs_job(P, job, timeline, service="ecs")
    return EcsJob(job)


def _cce(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_cce_job(P, job, timeline)
    return CceJob(job)


def _rds(sim: Simulator[Any], job: str, timeline: list[tuple[float, str]]) -> JobRef:
    sim.add_rds_job(P, job, timeline)
    return RdsJob(job)


#: Every service the cross-endpoint tests watch (each on an endpoint of its own).
SERVICES = [
    Service("evs", frozenset({"evs"}), ("INIT", "RUNNING", "SUCCESS"), _evs),
    Service("ecs", frozenset({"ecs"}), ("INIT", "RUNNING", "SUCCESS"), _ecs),
    Service("cce", frozenset({"cce"}), ("Initializing", "Running", "Success"), _cce),
    Service("rds", frozenset({"rds"}), ("Pending", "Running", "Completed"), _rds),
    Service("ges", frozenset({"ges-v2"}), ("pending", "running", "success"), _ges),
    Service("ges-engine", frozenset({"ges-engine"}), ("pending", "running", "complete"), _engine),
]


def endpoint_of(service: Service) -> str:
    return f"https://{service.name}.sim.test"


@dataclass
class World:
    """A simulator per service, and the jobs added to each."""

    sims: dict[str, Simulator[Any]]  # endpoint -> simulator
    jobs: dict[str, list[JobRef]]  # endpoint -> its jobs
    services: dict[str, Service]  # endpoint -> its service

    def route(self, endpoint: str) -> httpx.AsyncBaseTransport:
        return self.sims[endpoint].transport()

    def pool(self, **options: Any) -> ClientPool:
        options.setdefault("retry", QUICK_RETRY)
        options.setdefault("project_id", P)
        return ClientPool(transport_for=self.route, **options)

    def every_job(self) -> list[JobRef]:
        return [ref for refs in self.jobs.values() for ref in refs]


def world(per_service: int = 3, running: float = 0.05, end: float = 0.3) -> World:
    sims: dict[str, Simulator[Any]] = {}
    jobs: dict[str, list[JobRef]] = {}
    services: dict[str, Service] = {}
    for service in SERVICES:
        endpoint = endpoint_of(service)
        sim = sims[endpoint] = Simulator()
        services[endpoint] = service
        jobs[endpoint] = [
            service.job(sim, f"{service.name}-{i}", running, end + 0.05 * i)
            for i in range(per_service)
        ]
    return World(sims, jobs, services)


def finals(events: list[Event]) -> Counter[JobRef]:
    return Counter(e.ref for e in events if e.final and e.parent is None)


def transitions(events: list[Event]) -> list[tuple[JobRef, Any, Any]]:
    return [(e.ref, e.previous, e.state) for e in events if isinstance(e, Transition)]


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - state kept by the watcher
            await anyio.sleep(0.005)


async def collect(watcher: Watcher, within: float = 10) -> list[Event]:
    with anyio.fail_after(within):
        return [event async for event in watcher.events()]


async def test_one_watcher_across_services_and_endpoints(anyio_backend: str) -> None:
    w = world()
    async with w.pool() as pool, Watcher(pool, policy=FAST) as watcher:
        for endpoint, refs in w.jobs.items():
            watcher.watch_many(refs, endpoint=endpoint)
        events = await collect(watcher)
        stats = watcher.statistics()
        clients = pool.clients()

    assert finals(events) == Counter(w.every_job())  # every job ends, once
    for event in events:
        if event.final:
            assert isinstance(event, Transition)
            assert event.state is JobState.SUCCEEDED
    # Requests landed on the right simulator only: each saw its own service and jobs.
    for endpoint, sim in w.sims.items():
        own = {ref.job_id for ref in w.jobs[endpoint]} | {"movies"}
        assert sim.requests, endpoint
        for request in sim.requests:
            assert request.api in w.services[endpoint].apis, (endpoint, request)
            # (a GES management list names no job: it answers for the project's jobs)
            listed = request.job is None and request.path.endswith("/graphs/jobs")
            assert request.job in own or listed, (endpoint, request)
    assert sorted(c.endpoint for c in clients) == sorted(w.sims)
    assert stats.clients == len(SERVICES)
    sent = sum(len(sim.requests) for sim in w.sims.values())
    assert stats.requests == sent == sum(c.statistics().requests for c in clients)
    assert stats.requests_saved > 0  # the engine jobs of one graph shared list requests


async def test_engine_jobs_coalesce_only_on_the_same_client(anyio_backend: str) -> None:
    # Two graph endpoints with a graph of the same name: one list request each,
    # never one endpoint's list asked for the other's jobs.
    engine = next(s for s in SERVICES if s.name == "ges-engine")
    sims = {"https://graph-a.sim.test": Simulator(), "https://graph-b.sim.test": Simulator()}
    jobs = {
        endpoint: [engine.job(sim, f"{tag}{i}", 0.05, 0.2 + 0.02 * i) for i in range(4)]
        for (endpoint, sim), tag in zip(sims.items(), "ab", strict=True)
    }
    pool = ClientPool(project_id=P, retry=QUICK_RETRY, transport_for=lambda e: sims[e].transport())
    async with pool, Watcher(pool, policy=FAST) as watcher:
        for endpoint, refs in jobs.items():
            watcher.watch_many(refs, endpoint=endpoint)
        events = await collect(watcher)
        stats = watcher.statistics()
    assert finals(events) == Counter(ref for refs in jobs.values() for ref in refs)
    assert all(isinstance(e, Transition) for e in events if e.final)
    polls_per_sim = [len(sim.requests) for sim in sims.values()]
    assert all(polls_per_sim)
    assert stats.requests == sum(polls_per_sim)
    assert stats.requests_saved > 0


async def test_each_endpoint_has_its_own_rate_limit(anyio_backend: str) -> None:
    # Jobs that never end, polled far faster than the limit allows, on two endpoints.
    limit, per, duration = 5, 0.25, 2.0
    sims = {f"https://evs-{n}.sim.test": Simulator() for n in range(2)}
    for n, sim in enumerate(sims.values()):
        for i in range(12):
            sim.add_evs_job(P, f"job-{n}-{i}", [(0, "RUNNING")])
    pool = ClientPool(
        project_id=P,
        rate_limit=RateLimit(limit, per=per),
        transport_for=lambda e: sims[e].transport(),
    )
    async with pool, Watcher(pool, policy=FAST, events=False) as watcher:
        for n, endpoint in enumerate(sims):
            watcher.watch_many([EvsJob(f"job-{n}-{i}") for i in range(12)], endpoint=endpoint)
        await anyio.sleep(duration)
    counts = [len(sim.requests) for sim in sims.values()]
    cap = limit * (int(duration / per) + 1)  # the most one limited client can send
    assert all(count <= cap for count in counts), counts
    # Neither endpoint waits for the other's budget: together they send more than
    # one shared limit would let through.
    assert sum(counts) > cap, counts
    assert min(counts) >= cap // 2, counts


async def test_a_token_records_each_jobs_endpoint_and_project(anyio_backend: str) -> None:
    w = world(per_service=1)
    delayed = PollPolicy(first_poll_delay=60)  # nothing is polled: the token as watched
    async with w.pool() as pool, Watcher(pool, policy=delayed) as watcher:
        for endpoint, refs in w.jobs.items():
            watcher.watch_many(refs, endpoint=endpoint)
        watcher.watch(EvsJob("elsewhere"), endpoint=endpoint_of(SERVICES[0]), project_id="p2")
        token = watcher.export_state()
        assert watcher.statistics().clients == len(SERVICES) + 1
    assert token["version"] == 2
    where = {json.dumps(job["ref"]): (job["endpoint"], job["project_id"]) for job in token["jobs"]}
    for endpoint, refs in w.jobs.items():
        for ref in refs:
            assert where[json.dumps(ref_to_dict(ref))] == (endpoint, P)
    assert where[json.dumps(ref_to_dict(EvsJob("elsewhere")))] == (endpoint_of(SERVICES[0]), "p2")


EVS = "https://evs.sim.test"
#: Pools that reach EVS only: three ways to say so.
ONLY_EVS: dict[str, Callable[[], ClientPool]] = {
    "allow-list": lambda: ClientPool(project_id=P, endpoints=[EVS]),
    "credentials": lambda: ClientPool(project_id=P, credentials={EVS: TokenAuth("t")}),
    "transports": lambda: ClientPool(
        project_id=P, transport_for={EVS: httpx.MockTransport(_never)}
    ),
}


@pytest.mark.parametrize("make", ONLY_EVS.values(), ids=ONLY_EVS.keys())
async def test_a_token_naming_an_endpoint_the_pool_cannot_reach_is_refused(
    anyio_backend: str, make: Callable[[], ClientPool]
) -> None:
    token = {
        "version": 2,
        "jobs": [
            {"ref": {"api": "evs", "job_id": "a"}, "endpoint": "https://evs.sim.test",
             "project_id": P, "state": "running", "seen": True, "subs": []},
            {"ref": {"api": "evs", "job_id": "b"}, "endpoint": "https://other.sim.test",
             "project_id": P, "state": None, "seen": False, "subs": []},
        ],
    }  # fmt: skip
    pool = make()
    async with pool, Watcher(pool, policy=FAST) as watcher:
        with pytest.raises(EndpointNotInPool, match=r"https://other\.sim\.test") as caught:
            watcher.resume(token)
        assert str(EvsJob("b")) in str(caught.value)
        assert watcher.statistics().jobs_watched == 0
        assert watcher.export_state()["jobs"] == []
        assert pool.clients() == []  # not even the reachable job's client was made
        with pytest.raises(EndpointNotInPool):
            watcher.watch(EvsJob("c"), endpoint="https://other.sim.test")


async def test_a_single_client_refuses_a_token_of_another_endpoint_or_project(
    anyio_backend: str,
) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "a", [(0, "RUNNING"), (0.1, "SUCCESS")])
    client = Client("https://evs.sim.test", P, transport=sim.transport(), retry=QUICK_RETRY)
    job: dict[str, Any] = {"ref": {"api": "evs", "job_id": "a"}, "state": None, "seen": False}
    here = {**job, "endpoint": "https://evs.sim.test/", "project_id": P}
    for other in ({"endpoint": "https://ecs.sim.test"}, {"project_id": "someone-else"}):
        token = {
            "version": 2,
            "jobs": [here, {**here, **other, "ref": {"api": "evs", "job_id": "z"}}],
        }
        async with client_copy(client) as c, Watcher(c, policy=FAST) as watcher:
            with pytest.raises(ValueError, match="not on this client's") as caught:
                watcher.resume(token)
            assert next(iter(other.values())) in str(caught.value)
            assert watcher.statistics().jobs_watched == 0
    async with client, Watcher(client, policy=FAST) as watcher:
        assert watcher.resume({"version": 2, "jobs": [here]}) == 1  # its own: resumed
        events = await collect(watcher)
    assert finals(events) == Counter([EvsJob("a")])


class client_copy:
    """A client like ``client`` (same endpoint and project), closed after the block."""

    def __init__(self, client: Client) -> None:
        self._client = Client(
            client.endpoint, client.project_id, transport=httpx.MockTransport(_never)
        )

    async def __aenter__(self) -> Client:
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()


def _no_requests() -> httpx.MockTransport:
    return httpx.MockTransport(_never)


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


async def test_version_1_tokens_are_still_read(anyio_backend: str) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "old", [(0, "RUNNING"), (0.1, "SUCCESS")])
    v1 = {
        "version": 1,
        "jobs": [{"ref": {"api": "evs", "job_id": "old"}, "state": "running", "seen": True}],
    }
    client = Client("https://evs.sim.test", P, transport=sim.transport(), retry=QUICK_RETRY)
    pool = ClientPool(project_id=P, transport_for=lambda e: sim.transport())
    async with client, pool, Watcher(pool, policy=FAST) as watcher:
        with pytest.raises(ValueError, match="version 1 token"):
            watcher.resume(v1)  # a pool has no default client to give it
        assert watcher.statistics().jobs_watched == 0
        assert watcher.resume(v1, client=client) == 1
        token = watcher.export_state()
        assert token["version"] == 2
        assert token["jobs"][0]["endpoint"] == "https://evs.sim.test"
        events = await collect(watcher)
    # Resumed as delivered: RUNNING is not delivered again, only the end.
    assert transitions(events) == [(EvsJob("old"), JobState.RUNNING, JobState.SUCCEEDED)]
    assert sim.requests
    assert all(r.job == "old" for r in sim.requests)


async def test_pool_closes_what_it_made_not_what_it_was_given(anyio_backend: str) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    given = Client("https://given.sim.test", P, transport=sim.transport())
    pool = ClientPool(project_id=P, clients=[given], transport_for=lambda e: sim.transport())
    async with pool:
        assert pool.client("https://given.sim.test/") is given
        made = pool.client("https://made.sim.test")
        assert made is not given
        assert pool.clients() == [given, made]
        assert (await made.fetch(EvsJob("a"))).state is JobState.SUCCEEDED
    with pytest.raises(RuntimeError, match="closed"):
        await made.fetch(EvsJob("a"))
    assert (await given.fetch(EvsJob("a"))).state is JobState.SUCCEEDED  # still open
    with pytest.raises(RuntimeError, match="pool was closed"):
        pool.client("https://made.sim.test")
    await pool.aclose()  # idempotent
    await given.aclose()


async def test_one_client_per_endpoint_project_and_credentials(anyio_backend: str) -> None:
    retry = RetryPolicy(attempts=2)
    token = TokenAuth("ges-token")
    pool = ClientPool(
        project_id=P,
        auth=AKSKAuth("AKPUBLIC", "sk-secret"),
        credentials={"https://ges.sim.test": token},
        retry=retry,
        timeout=3.0,
        max_in_flight=3,
        endpoint_for=lambda service, region: f"https://{service}.{region}.sim.test",
    )
    async with pool:
        evs = pool.client("https://evs.sim.test")
        assert pool.client("https://EVS.sim.test/") is evs  # the same endpoint, spelled otherwise
        assert pool.client("https://evs.sim.test", "p2") is not evs  # another tenant
        assert pool.client_for("evs", endpoint="https://evs.sim.test") is evs
        assert pool.client_for("evs", region="r-1").endpoint == "https://evs.r-1.sim.test"
        assert (evs.retry, evs.timeout, evs.max_in_flight) == (retry, 3.0, 3)
        assert pool.client("https://ges.sim.test")._auth is token  # its own credentials
        assert len(pool.clients()) == 4
        with pytest.raises(ValueError, match="region or endpoint"):
            pool.client_for("evs", region="r-1", endpoint="https://evs.sim.test")
    # By default the region table: the official endpoints, and its typed errors.
    async with ClientPool(project_id=P) as default:
        made = default.client_for("ecs", region="cn-north-4")
        assert made.endpoint == "https://ecs.cn-north-4.myhuaweicloud.com"
        with pytest.raises(UnknownRegion, match="mars-1"):
            default.client_for("evs", region="mars-1")
    with pytest.raises(ValueError, match="no project ID"):
        ClientPool().client("https://evs.sim.test")
    with pytest.raises(ValueError, match="endpoint"):
        ClientPool(project_id=P).client("https://user:pw@evs.sim.test")


async def test_a_pools_provider_is_shared_by_its_clients(anyio_backend: str) -> None:
    asked: list[int] = []

    def provider() -> str:
        asked.append(1)
        return "token-from-provider"

    sims = {f"https://evs-{n}.sim.test": Simulator() for n in range(3)}
    for sim in sims.values():
        sim.add_evs_job(P, "a", [(0, "SUCCESS")])
    pool = ClientPool(project_id=P, auth=provider, transport_for=lambda e: sims[e].transport())
    async with pool:
        for endpoint in sims:
            await pool.client(endpoint).fetch(EvsJob("a"))
    assert len(asked) == 1  # one provider, asked once for every client
    for sim in sims.values():
        assert sim.requests[0].headers["x-auth-token"] == "token-from-provider"


async def test_watcher_arguments(anyio_backend: str) -> None:
    sim = Simulator()
    client = Client("https://evs.sim.test", P, transport=sim.transport())
    pool = ClientPool(project_id=P, transport_for=lambda e: sim.transport())
    delayed = PollPolicy(first_poll_delay=60)
    async with client, pool:
        async with Watcher(client, policy=delayed) as watcher:
            with pytest.raises(ValueError, match="ClientPool"):
                watcher.watch(EvsJob("a"), endpoint="https://evs.sim.test")
            with pytest.raises(ValueError, match="endpoint= too"):
                watcher.watch(EvsJob("a"), project_id="p2")
            other = pool.client("https://other.sim.test")
            watcher.watch(EvsJob("a"), client=other)
            assert watcher.statistics().clients == 1
            watcher.watch(EvsJob("b"))
            assert watcher.statistics().clients == 2
        async with Watcher(pool, policy=delayed) as watcher:
            assert watcher.client is None
            assert watcher.pool is pool
            with pytest.raises(ValueError, match="no default client"):
                watcher.watch(EvsJob("a"))
            with pytest.raises(ValueError, match="not both"):
                watcher.watch(EvsJob("a"), client=client, endpoint="https://evs.sim.test")
            await watcher.awatch_many([EvsJob("a"), EvsJob("b")], endpoint="https://evs.sim.test")
            assert watcher.statistics().jobs_open == 2
            watcher.watch(EvsJob("a"), endpoint="https://evs.sim.test/")  # the same: no-op
            # One reference, one job: not watched on two endpoints (or projects) at once,
            # and a list with such a job adds none of it.
            with pytest.raises(ValueError, match=r"watched on https://evs\.sim\.test"):
                watcher.watch(EvsJob("a"), endpoint="https://ecs.sim.test")
            with pytest.raises(ValueError, match="project proj"):
                watcher.watch_many([EvsJob("c"), EvsJob("b")], endpoint=EVS, project_id="p2")
            assert watcher.statistics().jobs_open == 2
            token = watcher.export_state()
            with pytest.raises(ValueError, match="already"):
                watcher.resume({**token, "jobs": [{**token["jobs"][0], "project_id": "p3"}]})
            watcher.unwatch(EvsJob("a"))
            await until(lambda: watcher.statistics().jobs_open == 1)
            watcher.watch(EvsJob("a"), endpoint="https://ecs.sim.test")  # ended: may move
            assert watcher.statistics().jobs_open == 2
    # The default concurrency with a pool: four clients' worth of workers.
    assert Watcher(ClientPool(max_in_flight=2))._concurrency == 8
    assert Watcher(client)._concurrency == client.max_in_flight


async def test_secrets_never_in_reprs_or_tokens(anyio_backend: str) -> None:
    secrets = ["sk-VERY-secret", "security-TOKEN-secret", "iam-TOKEN-secret"]
    pool = ClientPool(
        project_id=P,
        auth=AKSKAuth("AKPUBLIC", secrets[0], secrets[1]),
        credentials={"https://ges.sim.test": TokenAuth(secrets[2])},
        transport_for=lambda e: Simulator().transport(),
    )
    delayed = PollPolicy(first_poll_delay=60)
    async with pool, Watcher(pool, policy=delayed) as watcher:
        watcher.watch(EvsJob("a"), endpoint="https://evs.sim.test")
        watcher.watch(GesJob("g", "b"), endpoint="https://ges.sim.test")
        shown = [repr(pool), *map(repr, pool.clients()), json.dumps(watcher.export_state())]
    for text in shown:
        for secret in secrets:
            assert secret not in text


# -- resumed in a new process -----------------------------------------------------------


#: The second process: a watcher with a pool allowed the given endpoints resumes
#: the token and prints each event as a JSON line, then its statistics.
CHILD = textwrap.dedent(
    """
    import json, sys
    import anyio
    from jobwatch import ClientPool, PollPolicy, Transition, Watcher
    from jobwatch._refs import ref_to_dict

    token = json.load(open(sys.argv[1]))
    endpoints = sys.argv[2:]
    policy = PollPolicy(wait_initial=0.02, wait_max=0.1, wait_jitter=0.0)

    async def main():
        async with ClientPool(project_id="proj", endpoints=endpoints) as pool:
            async with Watcher(pool, policy=policy) as watcher:
                watcher.resume(token)
                async for e in watcher.events():
                    line = {"ref": ref_to_dict(e.ref), "final": e.final,
                            "parent": None if e.parent is None else ref_to_dict(e.parent)}
                    if isinstance(e, Transition):
                        line.update(previous=e.previous and e.previous.value, state=e.state.value)
                    else:
                        line.update(gave_up=e.reason.value)
                    print(json.dumps(line), flush=True)
                stats = watcher.statistics()
                print(json.dumps({"clients": stats.clients, "requests": stats.requests}))

    anyio.run(main)
    """
)


def _line(event: Event) -> dict[str, Any]:
    line: dict[str, Any] = {"ref": ref_to_dict(event.ref), "final": event.final}
    if isinstance(event, Transition):
        line.update(previous=event.previous and event.previous.value, state=event.state.value)
    else:
        assert isinstance(event, GaveUp)
        line.update(gave_up=event.reason.value)
    return line


def _key(line: dict[str, Any]) -> tuple[str, Any, Any]:
    return (json.dumps(line["ref"]), line.get("previous"), line.get("state", line.get("gave_up")))


async def test_a_token_resumed_in_a_new_process_with_a_pool(
    anyio_backend: str, tmp_path: Path
) -> None:
    sims = {service.name: Simulator() for service in SERVICES}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve(sim)) for name, sim in sims.items()}
        jobs = {
            urls[service.name]: [
                service.job(sims[service.name], f"{service.name}-{i}", 0.2, 2.5 + 0.1 * i)
                for i in range(3)
            ]
            for service in SERVICES
        }
        every = [ref for refs in jobs.values() for ref in refs]
        first: list[dict[str, Any]] = []
        pool = ClientPool(project_id=P, endpoints=list(urls.values()), retry=QUICK_RETRY)
        async with pool, Watcher(pool, policy=FAST) as watcher:
            for url, refs in jobs.items():
                watcher.watch_many(refs, endpoint=url)
            with anyio.fail_after(10):
                async for event in watcher.events():
                    first.append(_line(event))
                    if sum(line.get("state") == "running" for line in first) == len(every):
                        break  # every job was delivered RUNNING: stop, as if killed
            token = watcher.export_state()
        assert {(job["endpoint"], job["project_id"]) for job in token["jobs"]} == {
            (url, P) for url in urls.values()
        }
        path = tmp_path / "token.json"
        path.write_text(json.dumps(token), encoding="utf-8")
        argv = [sys.executable, "-c", CHILD, str(path), *urls.values()]
        child = await anyio.run_process(argv, check=False)
        assert child.returncode == 0, child.stderr.decode()
        *second, summary = [json.loads(line) for line in child.stdout.decode().splitlines()]
        for service in SERVICES:  # each simulator was asked about its own jobs only
            own = {ref.job_id for ref in jobs[urls[service.name]]} | {"movies"}
            asked = sims[service.name].requests
            # (a GES management list names no job: it answers for the project's jobs)
            assert {r.job for r in asked if not r.path.endswith("/graphs/jobs")} <= own
            assert {r.api for r in sims[service.name].requests} <= service.apis

    assert not {_key(line) for line in first} & {_key(line) for line in second}  # none twice
    ended = Counter(json.dumps(line["ref"]) for line in first + second if line["final"])
    assert ended == Counter(json.dumps(ref_to_dict(ref)) for ref in every)  # each ends once
    assert all(line.get("state") == "succeeded" for line in first + second if line["final"])
    assert summary["clients"] == len(SERVICES)
    assert summary["requests"] > 0


# -- model: which endpoint each job is on, through watch, export and resume ----------

ENDPOINTS = ["https://evs-a.sim.test", "https://evs-b.sim.test", "https://ges.sim.test"]
Plan = list[tuple[str, int, str]]  # (job id, endpoint index, project)
plans = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.integers(0, 2), st.sampled_from([P, "p2"])),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, allowed=st.sets(st.integers(0, 2)))
def test_model_jobs_stay_on_their_endpoint_through_tokens(plan: Plan, allowed: set[int]) -> None:
    anyio.run(_check_plan, plan, allowed)


async def _check_plan(plan: Plan, allowed: set[int]) -> None:
    delayed = PollPolicy(first_poll_delay=3600)  # no poll: the model is about placement
    model: dict[JobRef, tuple[str, str]] = {}
    async with ClientPool(transport_for=lambda e: _no_requests()) as pool:
        async with Watcher(pool, policy=delayed) as watcher:
            for job_id, at, project in plan:
                ref, where = EvsJob(job_id), (ENDPOINTS[at], project)
                if model.get(ref, where) != where:
                    with pytest.raises(ValueError, match="a reference is watched on one"):
                        watcher.watch(ref, endpoint=where[0], project_id=project)
                else:
                    watcher.watch(ref, endpoint=where[0], project_id=project)
                    model[ref] = where
            token = json.loads(json.dumps(watcher.export_state()))
            stats = watcher.statistics()
        assert stats.jobs_open == len(model)
        assert stats.clients == len(set(model.values()))
        assert {
            EvsJob(job["ref"]["job_id"]): (job["endpoint"], job["project_id"])
            for job in token["jobs"]
        } == model
    reachable = [ENDPOINTS[i] for i in allowed]
    routed = ClientPool(endpoints=reachable, transport_for=lambda e: _no_requests())
    async with routed, Watcher(routed, policy=delayed) as watcher:
        if all(endpoint in reachable for endpoint, _ in model.values()):
            assert watcher.resume(token) == len(model)
            assert json.loads(json.dumps(watcher.export_state())) == token
        else:
            with pytest.raises(EndpointNotInPool):
                watcher.resume(token)
            assert watcher.statistics().jobs_watched == 0
            assert routed.clients() == []
    # The same token in version 1: every job goes to the one client given.
    old = [
        {k: v for k, v in job.items() if k not in ("endpoint", "project_id")}
        for job in token["jobs"]
    ]
    client = Client(ENDPOINTS[0], P, transport=_no_requests())
    async with client, Watcher(client, policy=delayed) as watcher:
        assert watcher.resume({"version": 1, "jobs": old}) == len(model)
        placed = {(job["endpoint"], job["project_id"]) for job in watcher.export_state()["jobs"]}
        assert placed <= {(ENDPOINTS[0], P)}


async def test_jobs_of_any_service_placed_by_region(anyio_backend: str) -> None:
    """``watch(ref, region=)`` and ``watch_in``: each job on its service's endpoint there."""
    w = world(per_service=2)
    by_api = {api_of(refs[0]): endpoint for endpoint, refs in w.jobs.items()}
    assert set(by_api) == {"evs", "ecs", "cce", "rds", "ges-v2", "ges-engine"}
    placed: list[tuple[str, str]] = []

    def endpoint_for(service: str, region: str) -> str:
        placed.append((service, region))
        return by_api[service]

    every = [ref for refs in w.jobs.values() for ref in refs]
    async with w.pool(endpoint_for=endpoint_for) as pool, Watcher(pool, policy=FAST) as watcher:
        first, *rest = every
        watcher.watch(first, region="r-1")
        watcher.watch_in(rest, "r-1")
        with pytest.raises(ValueError, match="one of them"):
            watcher.watch(first, region="r-1", endpoint=by_api["evs"])
        events = await collect(watcher)
    assert finals(events) == Counter(every)
    assert {region for _, region in placed} == {"r-1"}
    for endpoint, sim in w.sims.items():  # every job was asked on its own endpoint
        asked = {r.job for r in sim.requests if not r.path.endswith("/graphs/jobs")}
        assert asked <= {ref.job_id for ref in w.jobs[endpoint]} | {"movies"}
    one = Client("https://evs.sim.test", P, transport=w.route("https://evs.sim.test"))
    async with one, Watcher(one) as alone:
        with pytest.raises(ValueError, match="ClientPool"):
            alone.watch(first, region="r-1")
    # The default table refuses what it does not know, before anything is added.
    async with ClientPool(project_id=P) as plain, Watcher(plain) as watcher:
        with pytest.raises(UnknownRegion):
            watcher.watch_in([EvsJob("a"), EcsJob("b")], "mars-1")
        assert watcher.statistics().jobs_watched == 0


def test_api_of_names_each_service_as_the_region_table_does() -> None:
    assert api_of(GesJob("g", "j", "v1.0")) == "ges-v1"
    assert api_of(GesJob("g", "j")) == "ges-v2"
    assert api_of(EcsJob("j")) == "ecs"
    for ref in (EvsJob("j"), EcsJob("j"), CceJob("j"), RdsJob("j"), GesJob("g", "j")):
        assert endpoint_for(api_of(ref), "cn-north-4").endswith(".cn-north-4.myhuaweicloud.com")
