"""GES engine job lists larger than the client's body cap: page size, totalCount, halving.

Issue 11: a list of 100,000 entries is ~19 MB, above the default 8 MiB cap.  The
simulator serves the lists (real HTTP in process; one case over a socket); the
hostile servers are httpx ``MockTransport`` handlers behind a real ``Client``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

from jobwatch import (
    Client,
    GesEngineJob,
    JobNotFound,
    JobSnapshot,
    JobState,
    PollPolicy,
    ResponseTooLarge,
    ResponseValidationError,
    RetryPolicy,
    Watcher,
)
from jobwatch._dialects import _engine
from jobwatch.sim import ManualClock, Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj-1"
G = "big"
SMALL_CAP = 64 * 1024
ONCE = RetryPolicy(attempts=1)
# The documented sample entry (2.2.13 page, "请求成功样例"): an import_graph request.
DOC_REQUEST = {
    "command": "import_graph",
    "url": "/ges/v1.0/10001/graphs/moviejx/action?action_id=import-graph",
    "body": {
        "edgesetPath": "file:///root/ges-install/auDatas/ranking_edge-sp.csv",
        "vertexsetPath": "file:///root/ges-install/auDatas/movies_vertex_new.csv",
        "schemaPath": "file:///root/ges-install/auDatas/schema_aikv.xml.bak",
    },
}


def job(i: int) -> str:
    return f"job-{i:06d}"


def big_graph(n: int, *, drift: bool = False, request: Any = None) -> Simulator[ManualClock]:
    sim = Simulator(clock=ManualClock(), engine_schema="drift" if drift else "2.2.13")
    for i in range(n):
        sim.add_engine_job(P, G, job(i), [(0, "running")], request=request, created_at=0.0)
    return sim


def sim_client(sim: Simulator[Any], cap: int = SMALL_CAP, **kwargs: Any) -> Client:
    return Client(
        "https://ges.sim.test", P, transport=sim.transport(), max_body_bytes=cap, **kwargs
    )


def lists(sim: Simulator[Any]) -> list[Any]:
    return [r for r in sim.requests if r.api == "ges-engine"]


def limits(sim: Simulator[Any]) -> list[tuple[int, int]]:
    out = []
    for r in lists(sim):
        q = dict(part.split("=", 1) for part in r.query.split("&"))
        out.append((int(q["limit"]), int(q["offset"])))
    return out


# -- the simulator's list is larger than the cap ------------------------------------------------


@pytest.mark.parametrize("drift", [False, True], ids=["2.2.13", "drift"])
async def test_a_list_larger_than_the_cap_is_read_in_pages_that_fit(drift: bool) -> None:
    n = 3_000
    sim = big_graph(n, drift=drift)
    async with sim_client(sim) as client:
        listed = [s.ref.job_id async for s in client.list_engine_jobs(G)]
        assert listed == [job(i) for i in range(n)]
        # two jobs of the graph: one reading of its list (one job alone: its own path)
        last, missing = await client.fetch_many(
            [GesEngineJob(G, job(n - 1)), GesEngineJob(G, "not-there")]
        )
        assert isinstance(last, JobSnapshot)
        assert last.state is JobState.RUNNING
        assert isinstance(missing, JobNotFound)
    assert all(r.status_code == 200 for r in lists(sim))
    pages = limits(sim)
    assert len({limit for limit, _ in pages}) == 1  # the page size fit at once: no halving
    assert 1 < len(pages) < n


async def test_fetch_many_finds_members_across_pages_and_stops_once_all_are_found() -> None:
    n = 3_000
    sim = big_graph(n)
    async with sim_client(sim) as client:
        early = [GesEngineJob(G, job(0)), GesEngineJob(G, job(3))]
        results = await client.fetch_many(early)
        assert all(isinstance(r, JobSnapshot) for r in results)
        assert len(lists(sim)) == 1  # both on the first page: no further page is read
        spread = [GesEngineJob(G, job(1)), GesEngineJob(G, job(n - 1)), GesEngineJob(G, "gone")]
        first, last, gone = await client.fetch_many(spread)
    assert isinstance(first, JobSnapshot)
    assert isinstance(last, JobSnapshot)
    assert last.ref == spread[1]
    assert isinstance(gone, JobNotFound)  # absent from every page: missing_from_list
    whole = limits(sim)[1:]
    assert whole[-1][1] + whole[-1][0] >= n  # "gone" made it read to the end


async def test_watching_one_job_of_a_big_graph_under_a_small_cap() -> None:
    sim = Simulator()  # a monotonic clock: the job completes while watched
    for i in range(2_000):
        sim.add_engine_job(P, G, job(i), [(0, "running")], created_at=0.0)
    sim.add_engine_job(P, G, "mine", [(0, "running"), (0.2, "complete")], created_at=0.0)
    policy = PollPolicy(wait_initial=0.05, wait_max=0.1, wait_jitter=0.0)
    async with sim_client(sim) as client, Watcher(client, policy=policy) as watcher:
        with anyio.fail_after(20):
            snapshot = await watcher.wait(GesEngineJob(G, "mine"))
    assert snapshot.state is JobState.SUCCEEDED
    assert all(r.status_code == 200 for r in lists(sim))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # ~3 s; the small cases run on both
async def test_a_real_size_graph_under_the_default_cap() -> None:
    n = 100_000
    request = {"command": "import_graph", "url": "/ges/v1.0/p/graphs/g/action", "body": {}}
    sim = big_graph(n, request=request)
    entry = {"jobId": job(n - 1), "status": "running", "request": request}
    whole = n * (len(json.dumps(entry, separators=(",", ":"))) + 1)
    assert whole > 8 * 1024 * 1024  # one page of everything would be ResponseTooLarge
    started = time.perf_counter()
    async with Client("https://ges.sim.test", P, transport=sim.transport()) as client:
        first, found = await client.fetch_many(
            [GesEngineJob(G, job(0)), GesEngineJob(G, job(n - 1))]
        )
    assert isinstance(first, JobSnapshot)
    assert isinstance(found, JobSnapshot)
    assert all(r.status_code == 200 for r in lists(sim))
    assert len(lists(sim)) <= 16
    assert time.perf_counter() - started < 30  # a guard against quadratic work, not a benchmark


async def test_a_list_over_a_real_socket() -> None:
    sim = big_graph(1_500)
    with serve(sim) as url:
        async with Client(url, P, max_body_bytes=SMALL_CAP) as client:
            count = 0
            async for _ in client.list_engine_jobs(G):
                count += 1
    assert count == 1_500


# -- entries larger than estimated: halve the page and retry it --------------------------------


async def test_a_page_that_is_still_too_large_is_halved_and_retried() -> None:
    fat = {**DOC_REQUEST, "body": {"padding": "x" * 1_500}}
    n = 400
    sim = big_graph(n, request=fat)
    async with sim_client(sim, retry=ONCE) as client:
        listed = [s.ref.job_id async for s in client.list_engine_jobs(G)]
    assert listed == [job(i) for i in range(n)]
    sizes = [limit for limit, _ in limits(sim)]
    assert sizes[0] > sizes[-1]
    # each halving is one request more; the smaller page size is kept for the pages after it
    assert sizes == sorted(sizes, reverse=True)
    assert all(b in (a, a // 2) for a, b in itertools.pairwise(sizes))


async def test_an_entry_larger_than_the_cap_is_response_too_large() -> None:
    huge = {**DOC_REQUEST, "body": {"padding": "x" * 5_000}}
    sim = big_graph(3, request=huge)
    async with sim_client(sim, cap=4_096, retry=ONCE) as client:
        alone = await client.fetch(GesEngineJob(G, job(2)))  # its own status: a small body
        results = await client.fetch_many([GesEngineJob(G, job(0)), GesEngineJob(G, job(1))])
    assert alone.state is JobState.RUNNING
    assert all(isinstance(r, ResponseTooLarge) for r in results)
    assert limits(sim)[-1][0] == 1  # halved down to one entry per page, then gave up
    assert len(lists(sim)) <= 2 * (_engine.MAX_HALVINGS + 1)


# -- totalCount: short pages, absent, hostile ---------------------------------------------------

Handler = Callable[[int, int, int], dict[str, Any]]


def entries(start: int, stop: int) -> list[dict[str, Any]]:
    return [{"jobId": job(i), "status": "running"} for i in range(start, stop)]


def mock_client(answer: Handler) -> tuple[Client, list[tuple[int, int]]]:
    asked: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        asked.append((limit, offset))
        body = {"result": "success", **answer(len(asked), limit, offset)}
        return httpx.Response(200, json=body)

    client = Client("https://ges.sim.test", P, transport=httpx.MockTransport(handler), retry=ONCE)
    return client, asked


def short_pages(n: int, per_page: int, total: object = "n") -> Handler:
    """A server answering at most ``per_page`` entries whatever the limit."""

    def answer(_: int, limit: int, offset: int) -> dict[str, Any]:
        body: dict[str, Any] = {"jobs": entries(offset, min(n, offset + min(limit, per_page)))}
        if total != "absent":
            body["totalCount"] = n if total == "n" else total
        return body

    return answer


async def listed_ids(client: Client, **kwargs: Any) -> list[str]:
    async with client:
        return [s.ref.job_id async for s in client.list_engine_jobs(G, **kwargs)]


async def test_short_pages_do_not_end_the_list_when_total_count_says_more() -> None:
    client, asked = mock_client(short_pages(250, per_page=100))
    assert await listed_ids(client, page_size=1_000) == [job(i) for i in range(250)]
    assert asked == [(1_000, 0), (1_000, 100), (1_000, 200)]


async def test_without_total_count_a_short_page_ends_the_list() -> None:
    client, asked = mock_client(short_pages(250, per_page=100, total="absent"))
    assert await listed_ids(client, page_size=1_000) == [job(i) for i in range(100)]
    assert asked == [(1_000, 0)]


async def test_a_full_page_reaching_total_count_ends_the_list_without_another_request() -> None:
    client, asked = mock_client(short_pages(200, per_page=100))
    assert len(await listed_ids(client, page_size=100)) == 200
    assert asked == [(100, 0), (100, 100)]


@pytest.mark.parametrize("total", [-5, "many", 12.5, True, None, [3]], ids=repr)
async def test_a_total_count_that_is_not_a_count_is_ignored(
    total: object, caplog: pytest.LogCaptureFixture
) -> None:
    client, asked = mock_client(short_pages(250, per_page=100, total=total))
    with caplog.at_level(logging.WARNING, "jobwatch"):
        assert len(await listed_ids(client, page_size=1_000)) == 100  # the old end rule
    assert asked == [(1_000, 0)]
    if total is not None:
        assert "totalCount" in caplog.text


async def test_a_huge_total_count_ends_at_the_first_empty_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, asked = mock_client(short_pages(250, per_page=100, total=10**30))
    with caplog.at_level(logging.WARNING, "jobwatch"):
        assert len(await listed_ids(client, page_size=1_000)) == 250
    assert asked[-1] == (1_000, 250)  # the empty page
    assert len(asked) == 4
    assert "totalCount" in caplog.text


async def test_a_changing_total_count_is_read_from_each_page() -> None:
    def answer(number: int, limit: int, offset: int) -> dict[str, Any]:
        # 300 jobs, but the total shrinks to 150 on the second page (jobs expired)
        total = 300 if number == 1 else 150
        return {"jobs": entries(offset, min(300, offset + min(limit, 100))), "totalCount": total}

    client, asked = mock_client(answer)
    assert len(await listed_ids(client, page_size=1_000)) == 200
    assert asked == [(1_000, 0), (1_000, 100)]


async def test_a_list_that_never_ends_is_an_error_after_a_bounded_number_of_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_engine, "MAX_PAGES", 20)

    def endless(number: int, limit: int, offset: int) -> dict[str, Any]:
        page = min(limit, 10)
        return {"jobs": entries(offset, offset + page), "totalCount": offset + 2 * page}

    client, asked = mock_client(endless)
    with pytest.raises(ResponseValidationError, match="20 pages"):
        await listed_ids(client, page_size=10)
    assert len(asked) == 20
    client, asked = mock_client(endless)
    async with client:
        results = await client.fetch_many([GesEngineJob(G, "never-listed"), GesEngineJob(G, "nor")])
    # not JobNotFound: the list never ended
    assert all(isinstance(result, ResponseValidationError) for result in results)
    assert len(asked) == 20


async def test_a_server_ignoring_offset_with_a_total_count_stops_after_one_page() -> None:
    def same(_: int, limit: int, offset: int) -> dict[str, Any]:
        return {"jobs": entries(0, 100), "totalCount": 10_000}

    client, asked = mock_client(same)
    assert len(await listed_ids(client, page_size=1_000)) == 100
    assert len(asked) == 2


async def test_leaving_a_paged_list_early_sends_no_more_requests() -> None:
    client, asked = mock_client(short_pages(1_000, per_page=100))
    async with client, aclosing(client.list_engine_jobs(G)) as snapshots:
        async for snapshot in snapshots:
            if snapshot.ref.job_id == job(150):
                break
    assert len(asked) == 2
