"""A review of the GES management job list coalescing, with lists that lie.

A ``httpx.MockTransport`` behind a real client answers the list with pages that
miss members, repeat them, name other jobs, carry any count, never end, or are
refused at some page; each job's status path answers for it.  Whatever the list
does, each member gets one result (its snapshot, of its own reference, or one of
our errors), and the requests stay bounded.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import Client, GesJob, JobSnapshot, JobwatchError, RetryPolicy

P = "proj-1"
ONCE = RetryPolicy(attempts=1)
MEMBERS = [f"m{i}" for i in range(6)]

entry_ids = st.sampled_from([*MEMBERS, "other", "../bad", ""])
page = st.lists(
    st.tuples(entry_ids, st.sampled_from(["running", "success", "failed", 7, None])), max_size=8
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pages=st.lists(page, min_size=1, max_size=6),
    count=st.none() | st.integers(-5, 10**12) | st.just("many"),
    refused_at=st.none() | st.integers(0, 5),
    refusal=st.sampled_from([400, 404, 500]),
    endless=st.booleans(),
    watched=st.integers(2, len(MEMBERS)),
    version=st.sampled_from(["v2", "v1.0"]),
    backend=st.sampled_from(["asyncio", "trio"]),
)
def test_a_lying_list_still_gives_each_member_one_result(
    pages: list[list[tuple[str, Any]]],
    count: object,
    refused_at: int | None,
    refusal: int,
    endless: bool,
    watched: int,
    version: str,
    backend: str,
) -> None:
    lists: list[int] = []
    status_asked: list[str] = []
    snake = version == "v2"

    def entry(job_id: str, status: Any) -> dict[str, Any]:
        key = "job_id" if snake else "jobId"
        return {key: job_id, "status": status, "job_type": "ImportGraph"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/graphs/jobs"):
            n = len(lists)
            lists.append(n)
            if refused_at is not None and n == refused_at:
                return httpx.Response(refusal, json={"error_code": "GES.0001", "error_msg": "no"})
            items = pages[n % len(pages)] if endless else (pages[n] if n < len(pages) else [])
            body = [entry(f"{job_id}{n}" if endless and job_id == "other" else job_id, status)
                    for job_id, status in items]  # fmt: skip
            key = ("job_count", "job_list") if snake else ("jobCount", "jobList")
            return httpx.Response(200, json={key[0]: count, key[1]: body})
        job_id = request.url.path.split("/")[-2]
        status_asked.append(job_id)
        return httpx.Response(200, json={"job_id": job_id, "status": "running"})

    refs = [GesJob("g", job_id, version) for job_id in MEMBERS[:watched]]  # type: ignore[arg-type]

    async def main() -> list[Any]:
        client = Client("https://ges.mock", P, transport=httpx.MockTransport(handler), retry=ONCE)
        async with client:
            with anyio.fail_after(10):
                return list(await client.fetch_many(refs))

    results = anyio.run(main, backend=backend)
    assert len(results) == len(refs)
    for ref, result in zip(refs, results, strict=True):
        assert isinstance(result, JobSnapshot | JobwatchError), result
        if isinstance(result, JobSnapshot):
            assert result.ref == ref
    assert len(set(status_asked)) == len(status_asked)  # no job asked twice on its path
    refused = refused_at is not None and refused_at < len(lists)
    bound = len(refs) + 1 + (len(refs) if refused else 0)
    assert len(lists) + len(status_asked) <= bound, (lists, status_asked)
