"""The cheapest request per GES job (issue 13): an engine job alone on its own status
path, several in the graph's list; GES management jobs of one project in the job list.

Real HTTP through the simulator (in process, and on a socket for both HTTP
stacks); hostile lists from ``httpx.MockTransport`` handlers behind a real client.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import (
    Client,
    GesEngineJob,
    GesJob,
    JobNotFound,
    JobSnapshot,
    JobState,
    PollPolicy,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    Transition,
    Watcher,
)
from jobwatch.sim import Fault, ManualClock, Simulator, serve

P = "proj-1"
ONCE = RetryPolicy(attempts=1)
FAST = PollPolicy(wait_initial=0.02, wait_max=0.05, wait_jitter=0.0)
GES_STATUSES = ("pending", "running", "success", "failed")
ENGINE_STATUSES = ("pending", "running", "complete", "success", "failed")


def run(main: Callable[[], Any], backend: str) -> Any:
    return anyio.run(main, backend=backend)


def client_of(sim: Simulator[Any], **kwargs: Any) -> Client:
    return Client("https://ges.sim.test", P, transport=sim.transport(), **kwargs)


def paths(sim: Simulator[Any]) -> list[str]:
    return [r.path for r in sim.requests]


def query(request: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(request.query).items()}


# -- the engine: one job on its own path, several in the list ------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from(ENGINE_STATUSES) | st.from_regex(r"[a-zA-Z]{1,10}", fullmatch=True),
    other=st.sampled_from(ENGINE_STATUSES),
    drift=st.booleans(),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_an_engine_job_alone_or_with_another_gives_the_same_snapshot(
    status: str, other: str, drift: bool, backend: str
) -> None:
    sim = Simulator(clock=ManualClock(), engine_schema="drift" if drift else "2.2.13")
    sim.add_engine_job(P, "g", "a", [(0, status)])
    sim.add_engine_job(P, "g", "b", [(0, other)])
    a, b = GesEngineJob("g", "a"), GesEngineJob("g", "b")

    async def main() -> tuple[Any, ...]:
        async with client_of(sim) as client:
            (alone,) = await client.fetch_many([a])
            fetched = await client.fetch(a)
            with_b = await client.fetch_many([a, b])
        return alone, fetched, *with_b

    alone, fetched, listed, listed_b = run(main, backend)
    assert isinstance(alone, JobSnapshot)
    assert alone == fetched == listed  # every field but raw (the body it came from)
    assert (alone.raw_status, alone.request, alone.job_type) == (status, None, None)
    assert isinstance(listed_b, JobSnapshot)
    assert listed_b.raw_status == other
    own = f"/ges/v1.0/{P}/graphs/g/jobs/a/status"
    assert paths(sim) == [own, own, f"/ges/v1.0/{P}/graphs/g/jobs/status"]
    assert query(sim.requests[0]) == {"offset": "0", "limit": "1"}


def _engine_sim() -> Simulator[ManualClock]:
    sim = Simulator(clock=ManualClock())
    sim.add_engine_job(P, "g", "a", [(0, "running"), (5, "complete")])
    sim.add_graph(P, "empty")
    return sim


@pytest.mark.anyio
async def test_an_engine_job_the_engine_does_not_keep_and_an_unknown_graph() -> None:
    sim = _engine_sim()
    async with client_of(sim, retry=ONCE) as client:
        gone, alone_gone = await client.fetch_many([GesEngineJob("g", "gone")]), None
        with pytest.raises(JobNotFound, match="can not find job, jobId is gone") as caught:
            await client.fetch(GesEngineJob("g", "gone"))
        alone_gone = caught.value
        no_graph = await client.fetch_many([GesEngineJob("nope", "a")])
    assert isinstance(gone[0], JobNotFound)
    assert alone_gone.error_code == "GES.8301"
    assert alone_gone.status_code == 400
    (unknown,) = no_graph
    assert not isinstance(unknown, JobNotFound | JobSnapshot)
    assert "graph : nope not exist" in str(unknown)
    # GES.8301 on its own path: the graph's list decides (and lacks it too)
    assert [(r.status_code, r.job) for r in sim.requests] == [
        (400, "gone"),
        (200, "g"),
        (400, "gone"),
        (200, "g"),
        (400, "a"),  # an unknown graph is no missing job: no list read
    ]


@pytest.mark.anyio
async def test_an_engine_job_its_status_path_does_not_know_is_found_on_the_list() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path.split("/")[-2])
        if request.url.path.endswith("/jobs/status"):
            page = [{"jobId": "imp", "status": "complete", "request": {"command": "import_graph"}}]
            return httpx.Response(200, json={"result": "success", "jobs": page})
        body = {"errorMessage": "can not find job, jobId is imp", "errorCode": "GES.8301"}
        return httpx.Response(400, json={**body, "result": "failed"})

    async with _mock(handler, retry=ONCE) as client:
        found = await client.fetch(GesEngineJob("g", "imp"))
    assert (found.state, found.raw_status, found.request) == (JobState.SUCCEEDED, "complete", None)
    assert asked == ["imp", "jobs"]


@pytest.mark.anyio
async def test_the_engine_status_route_answers_as_the_page_documents() -> None:
    sim = _engine_sim()
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        ok = await http.get(f"/ges/v1.0/{P}/graphs/g/jobs/a/status", params={"limit": "2"})
        missing = await http.get(f"/ges/v1.0/{P}/graphs/g/jobs/zz/status")
        bad = await http.get(f"/ges/v1.0/{P}/graphs/g/jobs/a/status", params={"limit": "0"})
        sim.clock.set(6)
        done = await http.get(f"/ges/v1.0/{P}/graphs/g/jobs/a/status")
    assert ok.json() == {"status": "running", "data": {}, "result": "success"}
    assert missing.status_code == 400
    assert missing.json() == {
        "errorMessage": "can not find job, jobId is zz",
        "errorCode": "GES.8301",
        "result": "failed",
    }
    assert bad.status_code == 400
    assert bad.json()["errorCode"] == "GES.8000"
    assert done.json()["status"] == "complete"
    assert [r.job for r in sim.requests] == ["a", "zz", "a", "a"]


@pytest.mark.anyio
async def test_watching_engine_jobs_alone_and_together() -> None:
    sim = Simulator()
    sim.add_engine_job(P, "g", "solo", [(0, "running"), (0.15, "complete")])
    for name in ("x", "y", "z"):
        sim.add_engine_job(P, "h", name, [(0, "running"), (0.15, "complete")])
    async with client_of(sim) as client, Watcher(client, policy=FAST) as watcher:
        with anyio.fail_after(10):
            solo = await watcher.wait(GesEngineJob("g", "solo"))
        assert solo.state is JobState.SUCCEEDED
        assert {r.path for r in sim.requests} == {f"/ges/v1.0/{P}/graphs/g/jobs/solo/status"}
        sim.clear_requests()
        with anyio.fail_after(10):
            await watcher.wait_all([GesEngineJob("h", n) for n in ("x", "y", "z")])
    listed = [r for r in sim.requests if r.path == f"/ges/v1.0/{P}/graphs/h/jobs/status"]
    # three jobs of one graph: one list request a tick (a last member may finish alone)
    assert len(listed) >= len(sim.requests) - 1


# -- the management plane: the job list ------------------------------------------------------------


def _ges_sim(n: int, *, version_body: Any = "flat") -> Simulator[ManualClock]:
    sim = Simulator(clock=ManualClock())
    for i in range(n):
        sim.add_ges_job(P, f"graph-{i % 3}", f"job-{i:04d}", [(0, "running")], v1_body=version_body)
    return sim


def _ges_refs(version: str, ids: Sequence[int]) -> list[GesJob]:
    return [GesJob(f"graph-{i % 3}", f"job-{i:04d}", version) for i in ids]  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from(["v1.0", "v2"]),
    v1_body=st.sampled_from(["flat", "wrapped"]),
    timeline=st.lists(st.sampled_from(GES_STATUSES), min_size=1, max_size=4),
    at=st.integers(0, 5),
    job_name=st.sampled_from(["ImportGraph", "CreateGraph"]),
    fail_reason=st.none() | st.text(min_size=1, max_size=20),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_a_ges_job_on_its_status_path_and_in_the_list_gives_the_same_snapshot(
    version: str,
    v1_body: Any,
    timeline: list[str],
    at: int,
    job_name: str,
    fail_reason: str | None,
    backend: str,
) -> None:
    sim = Simulator(clock=ManualClock())
    detail = {"edgeset_path": [{"path": "obs://b/e.csv", "status": "partFailed", "cause": "x"}]}
    sim.add_ges_job(
        P,
        "graph-a",
        "a",
        [(float(i), s) for i, s in enumerate(timeline)],
        job_name=job_name,
        import_detail=detail if job_name == "ImportGraph" else None,
        fail_reason=fail_reason,
        v1_body=v1_body,
    )
    sim.add_ges_job(P, "graph-b", "b", [(0, "running")])
    sim.clock.set(at)
    a, b = GesJob("graph-a", "a", version), GesJob("graph-b", "b", version)  # type: ignore[arg-type]

    async def main() -> tuple[Any, ...]:
        async with client_of(sim) as client:
            (alone,) = await client.fetch_many([a])
            return (alone, *await client.fetch_many([a, b]))

    alone, listed, other = run(main, backend)
    assert isinstance(alone, JobSnapshot), alone
    assert alone == listed  # every field but raw
    assert alone.import_detail == listed.import_detail
    assert isinstance(other, JobSnapshot)
    assert paths(sim) == [
        f"/{version}/{P}/graphs/graph-a/jobs/a/status",
        f"/{version}/{P}/graphs/jobs",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["v1.0", "v2"])
async def test_n_jobs_of_one_project_cost_one_request_a_tick(version: str) -> None:
    n = 60
    sim = _ges_sim(n)
    refs = _ges_refs(version, range(n))
    async with client_of(sim) as client:
        for tick in range(3):
            sim.clear_requests()
            results = await client.fetch_many(refs)
            assert all(isinstance(r, JobSnapshot) for r in results)
            assert [r.ref for r in results if isinstance(r, JobSnapshot)] == refs
            assert paths(sim) == [f"/{version}/{P}/graphs/jobs"], tick
    assert query(sim.requests[0]) == {"offset": "0", "limit": "100"}


@pytest.mark.anyio
async def test_a_watcher_polls_many_ges_jobs_with_about_one_request_a_tick() -> None:
    n = 40
    sim: Simulator[Any] = Simulator()
    for i in range(n):
        sim.add_ges_job(P, "graph-1", f"job-{i:04d}", [(0, "running"), (0.3, "success")])
    refs = [GesJob("graph-1", f"job-{i:04d}") for i in range(n)]
    async with client_of(sim) as client, Watcher(client, policy=FAST) as watcher:
        with anyio.fail_after(20):
            finals = await watcher.wait_all(refs)
        stats = watcher.statistics()
    assert all(isinstance(f, Transition) and f.state is JobState.SUCCEEDED for f in finals)
    lists = [r for r in sim.requests if r.path == f"/v2/{P}/graphs/jobs"]
    assert len(lists) >= len(sim.requests) - 1  # (a last open job may be asked alone)
    ticks = stats.polls / n
    assert stats.requests <= ticks + 2, (stats.requests, stats.polls)
    assert stats.requests_saved >= stats.polls - stats.requests - n


@pytest.mark.anyio
async def test_paging_follows_pages_until_every_member_is_found() -> None:
    sim = _ges_sim(250)  # newest first: job-0249 .. job-0150 on page 1, ... job-0000 on page 3
    async with client_of(sim) as client:
        spread = _ges_refs("v2", [249, 150, 120, 60])  # pages 1, 1, 2, 2
        results = await client.fetch_many(spread)
        assert all(isinstance(r, JobSnapshot) for r in results)
        assert [query(r)["offset"] for r in sim.requests] == ["0", "100"]
        sim.clear_requests()
        # two members on the last page: the first page finds neither, and another page
        # would cost more than asking each on its own; they are asked on their paths
        oldest = _ges_refs("v2", [0, 1])
        results = await client.fetch_many(oldest)
    assert all(isinstance(r, JobSnapshot) for r in results)
    assert paths(sim) == [
        f"/v2/{P}/graphs/jobs",
        f"/v2/{P}/graphs/graph-0/jobs/job-0000/status",
        f"/v2/{P}/graphs/graph-1/jobs/job-0001/status",
    ]


@pytest.mark.anyio
async def test_a_job_missing_from_the_list_gets_its_status_paths_answer() -> None:
    sim = _ges_sim(5)
    refs = [*_ges_refs("v1.0", [0, 1]), GesJob("graph-0", "gone", "v1.0")]
    async with client_of(sim) as client:
        first, second, gone = await client.fetch_many(refs)
    assert isinstance(first, JobSnapshot)
    assert isinstance(second, JobSnapshot)
    assert isinstance(gone, JobNotFound)
    assert gone.error_code == "GES.8301"  # as the status path says it, as before
    assert paths(sim) == [f"/v1.0/{P}/graphs/jobs", f"/v1.0/{P}/graphs/graph-0/jobs/gone/status"]


def _mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Client:
    return Client("https://ges.mock", P, transport=httpx.MockTransport(handler), **kwargs)


def _status(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "status": "running", "job_type": "GraphManagement"}


@pytest.mark.anyio
async def test_a_job_the_list_does_not_show_is_asked_on_its_path() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/graphs/jobs"):
            return httpx.Response(200, json={"job_count": 1, "job_list": [_status("a")]})
        return httpx.Response(200, json=_status(request.url.path.split("/")[-2]))

    async with _mock(handler) as client:
        a, b = await client.fetch_many([GesJob("g", "a"), GesJob("g", "b")])
    assert isinstance(a, JobSnapshot)
    assert isinstance(b, JobSnapshot)
    assert asked == [f"/v2/{P}/graphs/jobs", f"/v2/{P}/graphs/g/jobs/b/status"]


@pytest.mark.anyio
async def test_a_refused_list_sends_this_clients_batches_to_the_status_paths() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/graphs/jobs"):
            message = "The API does not exist or has not been published in the environment"
            return httpx.Response(404, json={"error_code": "APIGW.0101", "error_msg": message})
        return httpx.Response(200, json=_status(request.url.path.split("/")[-2]))

    refs = [GesJob("g", "a"), GesJob("g", "b")]
    async with _mock(handler, retry=ONCE) as client:
        first = await client.fetch_many(refs)
        second = await client.fetch_many(refs)
        v1 = await client.fetch_many([GesJob("g", "a", "v1.0"), GesJob("g", "b", "v1.0")])
    assert all(isinstance(r, JobSnapshot) for r in [*first, *second])
    per_job = [f"/v2/{P}/graphs/g/jobs/a/status", f"/v2/{P}/graphs/g/jobs/b/status"]
    assert asked[:3] == [f"/v2/{P}/graphs/jobs", *per_job]
    assert asked[3:5] == per_job  # refused once: this client no longer asks the v2 list
    assert asked[5] == f"/v1.0/{P}/graphs/jobs"  # another version: its own list
    assert all(isinstance(r, JobSnapshot) for r in v1)


@pytest.mark.anyio
async def test_a_failed_list_is_the_error_of_every_member() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error_code": "GES.9999", "error_msg": "down"})

    async with _mock(handler, retry=ONCE) as client:
        results = await client.fetch_many([GesJob("g", "a"), GesJob("g", "b")])
    assert all(isinstance(r, ServerError) for r in results)


@pytest.mark.anyio
@pytest.mark.parametrize("count", [None, "many", -1, 10**9])
async def test_hostile_counts_and_lists_that_ignore_paging_end(count: object) -> None:
    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.url.params))
        if request.url.path.endswith("/graphs/jobs"):  # always the same full page
            page = [_status(f"x{i}") for i in range(100)]
            return httpx.Response(200, json={"job_count": count, "job_list": page})
        return httpx.Response(400, json={"error_code": "GES.8301", "error_msg": "can not find"})

    refs = [GesJob("g", f"m{i}") for i in range(300)]
    async with _mock(handler, retry=ONCE) as client:
        with anyio.fail_after(10):
            results = await client.fetch_many(refs)
    assert all(isinstance(r, JobNotFound) for r in results)
    lists = [q for q in asked if "limit" in q]
    assert len(lists) <= 2  # the repeated page ends the reading
    assert len(asked) == len(lists) + len(refs)


@pytest.mark.anyio
async def test_a_list_entry_that_does_not_fit_is_that_members_error() -> None:
    pages = [
        [{"job_id": "b", "status": 7}, {"job_id": "../x", "status": "running"}, _status("a")],
        ["junk", _status("a"), _status("b")],
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"job_count": 3, "job_list": pages.pop(0)})

    refs = [GesJob("g", "a"), GesJob("g", "b")]
    async with _mock(handler, retry=ONCE) as client:
        a, b = await client.fetch_many(refs)
        broken = await client.fetch_many(refs)
    assert isinstance(a, JobSnapshot)  # the unwatchable "../x" was skipped
    assert isinstance(b, ResponseValidationError)  # its own entry's error
    assert all(isinstance(r, ResponseValidationError) for r in broken)  # the page's


# -- the simulator's lists -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_simulated_job_lists_page_filter_and_refuse_as_documented() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_ges_job(P, "gid-1", "old", [(0, "pending"), (1, "running"), (86_400, "success")])
    sim.clock.set(2 * 86_400)
    sim.add_ges_job(P, "gid-2", "new", [(0, "running")], related_graph="movies")
    sim.add_ges_job("other", "gid-3", "elsewhere", [(0, "running")])
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:

        async def get(path: str, **params: str) -> httpx.Response:
            return await http.get(path, params=params)

        v1 = (await get(f"/v1.0/{P}/graphs/jobs")).json()
        v2 = (await get(f"/v2/{P}/graphs/jobs", limit="1", offset="1")).json()
        movies = (await get(f"/v2/{P}/graphs/jobs", graph_name="movies")).json()
        waiting = (await get(f"/v2/{P}/graphs/jobs", status="waiting")).json()
        done = (await get(f"/v2/{P}/graphs/jobs", status="success")).json()
        since = (await get(f"/v1.0/{P}/graphs/jobs", startTime="2024-01-02")).json()
        until = (await get(f"/v2/{P}/graphs/jobs", end_time="2024-01-02")).json()
        refused = [
            await get(f"/v2/{P}/graphs/jobs", limit="0"),
            await get(f"/v2/{P}/graphs/jobs", offset="-1"),
            await get(f"/v2/{P}/graphs/jobs", status="done"),
            await get(f"/v1.0/{P}/graphs/jobs", status="partiallyFailed"),
            await get(f"/v2/{P}/graphs/jobs", start_time="2024-13-01"),
        ]
    assert v1["jobCount"] == 2
    assert (v1["errorMessage"], v1["errorCode"]) == ("", "")
    assert [job["jobId"] for job in v1["jobList"]] == ["new", "old"]  # the newest first
    assert set(v1["jobList"][1]) >= {"jobId", "status", "jobType", "beginTime", "endTime"}
    assert v2 == {"job_count": 2, "job_list": [v2["job_list"][0]]}
    assert v2["job_list"][0]["job_id"] == "old"
    assert v2["job_list"][0]["end_time"] == "2024-01-02T00:00:00"
    assert [job["job_id"] for job in movies["job_list"]] == ["new"]
    assert waiting["job_count"] == 0  # "waiting" matches pending jobs; none is pending now
    assert [job["job_id"] for job in done["job_list"]] == ["old"]
    assert [job["jobId"] for job in since["jobList"]] == ["new"]
    assert [job["job_id"] for job in until["job_list"]] == ["old"]
    assert [r.status_code for r in refused] == [400] * 5
    assert all(r.json()["error_code"] == "GES.8000" for r in refused if "error_code" in r.json())
    assert refused[3].json()["errorCode"] == "GES.8000"
    assert [r.job for r in sim.requests] == [None] * len(sim.requests)


@pytest.mark.anyio
async def test_faults_of_listed_jobs_hit_the_list() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_ges_job(P, "g", "a", [(0, "running")], faults=[Fault("unknown_status", status="odd")])
    sim.add_ges_job(P, "g", "b", [(0, "running")])
    async with client_of(sim) as client:
        a, b = await client.fetch_many([GesJob("g", "a"), GesJob("g", "b")])
    assert isinstance(a, JobSnapshot)
    assert isinstance(b, JobSnapshot)
    assert (a.raw_status, a.state, b.raw_status) == ("odd", JobState.UNKNOWN, "running")
    assert sim.requests[0].served == (("b", "running"), ("a", "odd"))


# -- both HTTP stacks on a real socket -----------------------------------------------------------


@pytest.mark.anyio
async def test_both_requests_on_a_real_socket(on_stack: Callable[..., Client]) -> None:
    sim = _ges_sim(3)
    sim.add_engine_job(P, "g", "e1", [(0, "complete")])
    sim.add_engine_job(P, "g", "e2", [(0, "running")])
    with serve(sim) as url:
        async with on_stack(url, retry=ONCE) as client:
            ges = await client.fetch_many(_ges_refs("v2", [0, 1, 2]))
            (ges_alone,) = await client.fetch_many(_ges_refs("v2", [0]))
            (engine_alone,) = await client.fetch_many([GesEngineJob("g", "e1")])
            engine_listed, _ = await client.fetch_many(
                [GesEngineJob("g", "e1"), GesEngineJob("g", "e2")]
            )
    assert all(isinstance(r, JobSnapshot) for r in ges)
    assert ges_alone == ges[0]
    assert engine_alone == engine_listed
    assert isinstance(engine_alone, JobSnapshot)
    assert engine_alone.state is JobState.SUCCEEDED
    assert json.dumps(engine_alone.raw) == '{"status": "complete", "data": {}, "result": "success"}'
    assert [r.path.rsplit("/", 2)[-2:] for r in sim.requests] == [
        ["graphs", "jobs"],
        ["job-0000", "status"],
        ["e1", "status"],
        ["jobs", "status"],
    ]
