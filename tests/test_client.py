"""The client's request path: errors, retries, Retry-After, throttling, limits, caps."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

import jobwatch
from jobwatch import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    Client,
    ConnectError,
    EvsJob,
    GesEngineJob,
    GesJob,
    JobNotFound,
    JobState,
    PermissionDeniedError,
    RateLimit,
    RateLimitError,
    RequestTimeout,
    ResponseTooLarge,
    ResponseValidationError,
    RetryDetails,
    RetryPolicy,
    ServerError,
)
from jobwatch._retry import parse_retry_after

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
ENDPOINT = "https://evs.example.test"
FAST = RetryPolicy(attempts=4, wait_initial=0.001, wait_max=0.002, retry_after_max=0.05)

EVS_OK = {"status": "RUNNING", "job_id": "j", "entities": {}, "begin_time": "", "end_time": ""}


def ok(body: Any = EVS_OK, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=body, headers={"X-Request-Id": "rid-ok", **headers})


def make_client(handler: Handler, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", FAST)
    return Client(ENDPOINT, "proj-1", transport=httpx.MockTransport(handler), **kwargs)


class Script:
    """Answers requests from a list in order, recording what was asked."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.times.append(anyio.current_time())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_fetch_builds_the_url_and_parses() -> None:
    script = Script(ok())
    async with make_client(script) as client:
        snap = await client.fetch(EvsJob("j"))
    assert snap.state is JobState.RUNNING
    (request,) = script.requests
    assert str(request.url) == f"{ENDPOINT}/v1/proj-1/jobs/j"
    assert request.headers["accept"] == "application/json"


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            400,
            {"errorCode": "GES.8000", "errorMessage": "graph : x not exist"},
            BadRequestError,
            "GES.8000",
        ),
        (400, {"error_code": "GES.8301", "error_msg": "can not find job"}, JobNotFound, "GES.8301"),
        (
            401,
            {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM"},
            AuthenticationError,
            "APIGW.0301",
        ),
        (
            403,
            {"error": {"code": "EVS.0003", "message": "forbidden"}},
            PermissionDeniedError,
            "EVS.0003",
        ),
        (404, {"error": {"code": "EVS.0004", "message": "no job"}}, JobNotFound, "EVS.0004"),
        (409, {"error_code": "X.1", "error_msg": "conflict"}, APIStatusError, "X.1"),
    ],
)
async def test_status_errors_are_typed_and_not_retried(
    status: int, body: Any, cls: type[APIStatusError], code: str
) -> None:
    script = Script(httpx.Response(status, json=body, headers={"X-Request-Id": "rid-9"}))
    async with make_client(script) as client:
        with pytest.raises(cls) as info:
            await client.fetch(GesJob("g", "j"))
    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.error_code, err.request_id) == (status, code, "rid-9")
    assert err.message
    assert len(script.requests) == 1  # never retried


async def test_200_error_body_is_an_error_and_transient_codes_are_retried() -> None:
    throttled = ok({"error": {"code": "APIGW.0308", "message": "limit:2,time:1 second"}})
    script = Script(throttled, ok())
    async with make_client(script) as client:
        snap = await client.fetch(EvsJob("j"))
    assert snap.state is JobState.RUNNING
    assert len(script.requests) == 2

    final = Script(ok({"error": {"code": "EVS.1000", "message": "broken"}}))
    async with make_client(final) as client:
        with pytest.raises(APIStatusError) as info:
            await client.fetch(EvsJob("j"))
    assert (info.value.status_code, info.value.error_code) == (200, "EVS.1000")
    assert len(final.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error_code": "GES.9999", "error_msg": "boom"}),
        httpx.Response(503, text="<html><body>503 Service Unavailable</body></html>"),
        httpx.Response(408, text=""),
        httpx.Response(429, json={"error_code": "APIGW.0308", "error_msg": "throttled"}),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset by peer"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_transient_failures_are_retried(failure: httpx.Response | Exception) -> None:
    script = Script(failure, failure, ok())
    async with make_client(script) as client:
        snap = await client.fetch(EvsJob("j"))
    assert snap.raw_status == "RUNNING"
    assert len(script.requests) == 3


async def test_retries_are_bounded_and_the_last_error_is_raised() -> None:
    script = Script(httpx.Response(503, text="<html>down</html>"))
    async with make_client(script) as client:
        with pytest.raises(ServerError) as info:
            await client.fetch(EvsJob("j"))
    assert info.value.status_code == 503
    assert "down" in info.value.message
    assert len(script.requests) == FAST.attempts

    script = Script(httpx.ConnectError("refused"))
    async with make_client(script) as client:
        with pytest.raises(ConnectError, match=r"the request to evs\.example\.test:443 failed"):
            await client.fetch(EvsJob("j"))
    assert len(script.requests) == FAST.attempts


async def test_total_retry_time_is_bounded() -> None:
    policy = RetryPolicy(attempts=100, timeout=0.3, wait_initial=0.1, wait_max=0.1)
    script = Script(httpx.Response(500, text="x"))
    started = anyio.current_time()
    async with make_client(script, retry=policy) as client:
        with pytest.raises(ServerError):
            await client.fetch(EvsJob("j"))
    assert anyio.current_time() - started < 1.0
    assert 2 <= len(script.requests) <= 30


async def test_backoff_delays_grow_with_full_jitter() -> None:
    policy = RetryPolicy(attempts=6, wait_initial=0.001, wait_max=0.004, wait_exp_base=2)
    seen: list[RetryDetails] = []
    script = Script(httpx.Response(502, text="bad gateway"))
    async with make_client(script, retry=policy, on_retry=seen.append) as client:
        with pytest.raises(ServerError):
            await client.fetch(EvsJob("j"))
    assert [d.attempt for d in seen] == [1, 2, 3, 4, 5]
    caps = [0.001, 0.002, 0.004, 0.004, 0.004]
    assert all(0 <= d.wait_for <= cap for d, cap in zip(seen, caps, strict=True))
    assert all(isinstance(d.caused_by, ServerError) for d in seen)
    assert seen[0].what == "evs:j"


async def test_retry_after_seconds_is_honoured_for_real() -> None:
    policy = RetryPolicy(attempts=3, wait_initial=0.0, wait_max=0.0, retry_after_max=5)
    throttled = httpx.Response(
        429, headers={"Retry-After": "1"}, json={"error_code": "APIGW.0308", "error_msg": "x"}
    )
    script = Script(throttled, ok())
    async with make_client(script, retry=policy) as client:
        await client.fetch(EvsJob("j"))
    gap = script.times[1] - script.times[0]
    assert 0.95 <= gap < 2.0


async def test_retry_after_is_clamped_and_read_as_http_date() -> None:
    seen: list[RetryDetails] = []
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    script = Script(
        httpx.Response(503, headers={"Retry-After": later}, text="busy"),
        httpx.Response(429, headers={"Retry-After": "3600"}, text="slow down"),
        ok(),
    )
    policy = RetryPolicy(attempts=3, retry_after_max=0.01)
    async with make_client(script, retry=policy, on_retry=seen.append) as client:
        await client.fetch(EvsJob("j"))
    assert all(0.01 <= d.wait_for <= 0.011 for d in seen)  # waited in full, with jitter
    assert len(seen) == 2
    assert isinstance(seen[0].caused_by, ServerError)
    assert seen[0].caused_by.retry_after is not None
    assert seen[0].caused_by.retry_after > 3500
    assert isinstance(seen[1].caused_by, RateLimitError)


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"retry-after": "7"}, now) == 7
    assert parse_retry_after({"retry-after": "1.5"}, now) == 1.5
    assert parse_retry_after({"retry-after-ms": "250"}, now) == 0.25
    assert parse_retry_after({"retry-after": "Thu, 01 Jan 2026 00:00:30 GMT"}, now) == 30
    assert parse_retry_after({"retry-after": "Wed, 31 Dec 2025 00:00:00 GMT"}, now) == 0
    assert parse_retry_after({"retry-after": "soon"}, now) is None
    assert parse_retry_after({"retry-after": "-4"}, now) == 0
    assert parse_retry_after({}, now) is None


async def test_apigw_0308_window_sets_the_wait_and_pauses_other_requests() -> None:
    seen: list[RetryDetails] = []
    message = (
        "The throttling threshold has been reached: "
        "policy user over ratelimit,limit:200,time:5 minute"
    )
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, json={"error_code": "APIGW.0308", "error_msg": message})
        return ok()

    policy = RetryPolicy(attempts=3, retry_after_max=0.4)
    # adaptive=False: the pause of the whole client (the default paces by the budget:
    # tests/test_quota.py).
    async with make_client(handler, retry=policy, on_retry=seen.append, adaptive=False) as client:
        started = anyio.current_time()
        results = await client.fetch_many([EvsJob("a")])
        assert [round(d.wait_for, 1) for d in seen] in ([0.4], [0.5])  # 300 s, clamped
        # The gate is shared: a request made now waits out the same window.
        assert client._gate.until > started
        await client.fetch(EvsJob("b"))
        assert anyio.current_time() - started >= 0.39
    assert isinstance(results[0], jobwatch.JobSnapshot)


async def test_timeout_is_enforced_whatever_the_transport() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        return ok()

    policy = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.001)
    started = anyio.current_time()
    async with make_client(slow, retry=policy, timeout=0.1) as client:
        with pytest.raises(RequestTimeout, match=r"0\.1s"):
            await client.fetch(EvsJob("j"))
    assert anyio.current_time() - started < 1.0


async def test_in_flight_requests_are_bounded() -> None:
    current = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal current, peak
        current += 1
        peak = max(peak, current)
        await anyio.sleep(0.01)
        current -= 1
        return ok()

    async with make_client(handler, max_in_flight=3) as client:
        results = await client.fetch_many([EvsJob(f"j{i}") for i in range(30)])
    assert peak == 3
    assert len(results) == 30
    assert all(isinstance(r, jobwatch.JobSnapshot) for r in results)


async def test_rate_limit_holds_a_sliding_window() -> None:
    script = Script(ok())
    limit = RateLimit(4, per=0.25)
    async with make_client(script, rate_limit=limit, max_in_flight=8) as client:
        await client.fetch_many([EvsJob(f"j{i}") for i in range(12)])
    times = sorted(script.times)
    assert times[-1] - times[0] >= 0.5 - 0.01
    for i in range(len(times) - 4):
        assert times[i + 4] - times[i] >= 0.25 - 0.005


def test_rate_limit_validation() -> None:
    with pytest.raises(ValueError, match="requests"):
        RateLimit(0)
    with pytest.raises(ValueError, match="per"):
        RateLimit(1, per=0)


async def test_fetch_many_keeps_order_and_reports_errors_per_job() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        job = request.url.path.rsplit("/", 1)[-1]
        if job == "gone":
            return httpx.Response(404, json={"error": {"code": "EVS.0004", "message": "gone"}})
        return ok(dict(EVS_OK, job_id=job))

    refs = [EvsJob("a"), EvsJob("gone"), EvsJob("c")]
    async with make_client(handler) as client:
        results = await client.fetch_many(refs)
    assert isinstance(results[1], JobNotFound)
    assert [r.ref for r in results if isinstance(r, jobwatch.JobSnapshot)] == [refs[0], refs[2]]


def engine_handler(jobs: list[str], hits: list[httpx.Request]) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        hits.append(request)
        *_, job, _ = request.url.path.split("/")
        if job != "jobs":  # one job's own status path
            if job not in jobs:
                body = {"errorMessage": f"can not find job, jobId is {job}"}
                return httpx.Response(400, json={**body, "errorCode": "GES.8301"})
            return ok({"status": "running", "data": {}, "result": "success"})
        limit = int(request.url.params["limit"])
        offset = int(request.url.params["offset"])
        page = [
            {"jobId": j, "status": "running", "request": {}} for j in jobs[offset : offset + limit]
        ]
        return ok({"result": "success", "jobs": page})

    return handler


async def test_engine_paging_and_coalesced_fetch_many() -> None:
    jobs = [f"job-{i}" for i in range(7)]
    hits: list[httpx.Request] = []
    async with make_client(engine_handler(jobs, hits)) as client:
        listed = [s.ref.job_id async for s in client.list_engine_jobs("movie", page_size=3)]
        assert listed == jobs
        assert [(r.url.params["limit"], r.url.params["offset"]) for r in hits] == [
            ("3", "0"),
            ("3", "3"),
            ("3", "6"),
        ]
        assert hits[0].url.path == "/ges/v1.0/proj-1/graphs/movie/jobs/status"
        hits.clear()
        refs = [GesEngineJob("movie", j) for j in ("job-1", "job-5", "nope")]
        results = await client.fetch_many(refs)
        assert len(hits) == 1  # one list for the whole graph
        assert [getattr(r, "ref", None) for r in results[:2]] == refs[:2]
        assert isinstance(results[2], JobNotFound)
        with pytest.raises(JobNotFound, match="can not find job, jobId is nope"):
            await client.fetch(GesEngineJob("movie", "nope"))  # alone: its own status path
        # GES.8301 on its own path: the list decides (and lacks it too)
        assert [r.url.path.split("/")[-2] for r in hits[-2:]] == ["nope", "jobs"]
        with pytest.raises(ValueError, match="page_size"):
            async for _ in client.list_engine_jobs("movie", page_size=100_001):
                pass


async def test_engine_that_ignores_paging_does_not_loop_forever() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return ok({"result": "success", "jobs": [{"jobId": "a", "status": "running"}]})

    async with make_client(handler) as client:
        listed = [s async for s in client.list_engine_jobs("g", page_size=1)]
    assert [s.ref.job_id for s in listed] == ["a"]


class EndlessStream(httpx.AsyncByteStream):
    """A body that never ends until its connection is closed, like a socket."""

    def __init__(self) -> None:
        self.produced = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.closed:
            self.produced += 1
            yield b" " * 1024
            await anyio.lowlevel.checkpoint()
        raise httpx.ReadError("connection closed")

    async def aclose(self) -> None:
        self.closed = True


async def test_body_cap_refuses_large_bodies_without_reading_them_whole() -> None:
    stream = EndlessStream()

    async def streaming(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=stream)

    async with make_client(streaming, max_body_bytes=8 * 1024) as client:
        with pytest.raises(ResponseTooLarge, match="max_body_bytes"):
            await client.fetch(EvsJob("j"))
    assert stream.closed
    assert stream.produced < 20

    declared = Script(httpx.Response(200, content=b"x" * 100_000))
    async with make_client(declared, max_body_bytes=1000) as client:
        with pytest.raises(ResponseTooLarge):
            await client.fetch(EvsJob("j"))


async def test_malformed_json_is_a_validation_error_with_an_excerpt() -> None:
    script = Script(httpx.Response(200, content=b'{"status": "RUNNING", "job_'))
    async with make_client(script) as client:
        with pytest.raises(ResponseValidationError) as info:
            await client.fetch(EvsJob("j"))
    assert info.value.excerpt.startswith('{"status": "RUNNING"')
    assert len(script.requests) == 1


async def test_user_http_client_is_used_and_left_open() -> None:
    script = Script(ok())
    async with httpx.AsyncClient(transport=httpx.MockTransport(script)) as http:
        client = Client(ENDPOINT, "p", http_client=http)
        await client.fetch(EvsJob("j"))
        await client.aclose()
        assert not http.is_closed
    assert len(script.requests) == 1


async def test_logs_carry_request_ids_and_no_secrets(caplog: pytest.LogCaptureFixture) -> None:
    script = Script(httpx.Response(500, text="x", headers={"X-Request-Id": "rid-500"}), ok())
    auth = jobwatch.TokenAuth("tok-SECRET-123")
    with caplog.at_level(logging.DEBUG, logger="jobwatch"):
        async with make_client(script, auth=auth) as client:
            await client.fetch(EvsJob("j"))
            assert "tok-SECRET-123" not in repr(client)
    assert "rid-500" in caplog.text
    assert "rid-ok" in caplog.text
    assert "tok-SECRET-123" not in caplog.text
    assert script.requests[0].headers["x-auth-token"] == "tok-SECRET-123"


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        Client("ftp://x", "p")
    with pytest.raises(ValueError, match="project_id"):
        Client(ENDPOINT, "../p")
    with pytest.raises(ValueError, match="max_in_flight"):
        Client(ENDPOINT, "p", max_in_flight=0)
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKIDEXAMPLE")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk-SECRET-xyz")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "proj-env")
    client = Client.from_env(ENDPOINT)
    assert client.project_id == "proj-env"
    assert "sk-SECRET-xyz" not in repr(client)
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID")
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        Client.from_env(ENDPOINT)


def test_public_names_are_exported() -> None:
    public = {n for n in dir(jobwatch) if not n.startswith("_")}
    assert set(jobwatch.__all__) - {"__version__"} <= public
    assert sorted(jobwatch.__all__) == jobwatch.__all__
    for name in jobwatch.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(jobwatch, name)
        if isinstance(obj, type):
            assert obj.__doc__, f"{name} has no docstring"
    assert json.dumps(jobwatch.__version__)
