"""Errors read as Huawei sends them, and what the watcher does with each (issue 11, part).

The simulator answers as the documentation says: a job EVS cannot find is HTTP 400
``Common.0011`` ("query job fail."), a route the gateway does not know is 404
``APIGW.0101``.  Both HTTP stacks (httpx in process and on a socket; aiohttp on a
socket, asyncio only) must read them alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from jobwatch import (
    APIStatusError,
    AuthenticationError,
    Client,
    EvsJob,
    GaveUp,
    GiveUpReason,
    JobNotFound,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    UnknownAPIError,
    Watcher,
)
from jobwatch._client import fast_available
from jobwatch.sim import Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj"
STACKS = ["in-process", "httpx", "aiohttp"]


@asynccontextmanager
async def client_on(
    stack: str, sim: Simulator[Any], backend: str, path: str = ""
) -> AsyncIterator[Client]:
    """A client of ``sim`` on ``stack`` (``path`` appended to the endpoint)."""
    retry = RetryPolicy(attempts=1)
    if stack == "in-process":
        async with Client("http://sim.test" + path, P, transport=sim.transport(), retry=retry) as c:
            yield c
        return
    if stack == "aiohttp" and (backend != "asyncio" or not fast_available()):
        pytest.skip("aiohttp runs on asyncio only (and needs the fast extra)")
    with serve(sim) as url:
        async with Client(url + path, P, fast=stack == "aiohttp", retry=retry) as c:
            assert c.transport_name == stack
            yield c


@pytest.mark.parametrize("stack", STACKS)
async def test_a_job_evs_cannot_find_is_400_common_0011_and_job_not_found(
    stack: str, anyio_backend_name: str
) -> None:
    sim = Simulator()
    async with client_on(stack, sim, anyio_backend_name) as client:
        with pytest.raises(JobNotFound) as info:
            await client.fetch(EvsJob("nope"))
    assert (info.value.status_code, info.value.error_code) == (400, "Common.0011")
    assert "query job fail" in info.value.message


@pytest.mark.parametrize("stack", STACKS)
async def test_a_wrong_endpoint_path_is_an_unknown_api_and_ends_the_watch_at_once(
    stack: str, anyio_backend_name: str
) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=0.05, not_found_grace=30)
    # (An endpoint ending in a version, as /v1, is refused when the client is made.)
    async with client_on(stack, sim, anyio_backend_name, path="/evs") as client:
        with pytest.raises(UnknownAPIError) as info:
            await client.fetch(EvsJob("j"))
        started = anyio.current_time()
        async with Watcher(client, policy=policy) as watcher:
            with anyio.fail_after(5):
                (final,) = await watcher.wait_all([EvsJob("j")])
        took = anyio.current_time() - started
    assert info.value.error_code == "APIGW.0101"
    assert "GET /evs/v1/proj/jobs/j" in str(info.value)  # the path asked for, named
    assert "endpoint" in str(info.value)
    assert isinstance(final, GaveUp)
    assert final.reason is GiveUpReason.ERROR  # not `not_found` after the 30 s grace
    assert isinstance(final.error, UnknownAPIError)
    assert took < 2


def answering(status: int, body: dict[str, Any]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "message"),
    [
        # ECS answers with a flat {code, message}; on HTTP 200 too it is an error.
        (400, {"code": "Ecs.0114", "message": "bad"}, APIStatusError, "Ecs.0114", "bad"),
        (200, {"code": "Ecs.0114", "message": "bad"}, APIStatusError, "Ecs.0114", "bad"),
        (400, {"errorCode": "GES.8011", "errorMsg": "x"}, APIStatusError, "GES.8011", "x"),
        (404, {"itemNotFound": {"code": "E.404", "message": "gone"}}, JobNotFound, "E.404", "gone"),
        (429, {"error_code": "APIG.0308", "error_msg": "limit"}, RateLimitError, "APIG.0308", None),
        (200, {"error_code": "APIG.0308", "error_msg": "limit"}, RateLimitError, "APIG.0308", None),
        (
            401,
            {"error_code": "APIG.0301", "error_msg": "token expires"},
            AuthenticationError,
            "APIG.0301",
            "token expires",
        ),
        (
            404,
            {"error_code": "APIG.0101", "error_msg": "no API"},
            UnknownAPIError,
            "APIG.0101",
            None,
        ),
        # The gateway's IAM code is an authentication failure whatever the status.
        (
            400,
            {"error_code": "APIGW.0301", "error_msg": "verify aksk signature fail"},
            AuthenticationError,
            "APIGW.0301",
            None,
        ),
        (
            200,
            {"error_code": "APIG.0301", "error_msg": "decrypt token fail"},
            AuthenticationError,
            "APIG.0301",
            None,
        ),
    ],
)
async def test_every_error_body_shape_is_read(
    status: int, body: dict[str, Any], error: type[Exception], code: str, message: str | None
) -> None:
    async with Client(
        "http://x.test", P, transport=answering(status, body), retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(error) as info:
            await client.fetch(EvsJob("j"))
    raised = info.value
    assert isinstance(raised, APIStatusError)
    assert (raised.status_code, raised.error_code) == (status, code)
    if message is not None:
        assert raised.message == message


async def test_an_unknown_evs_job_waits_out_the_grace_as_documented() -> None:
    sim = Simulator()
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0.1)
    async with (
        Client("http://sim.test", P, transport=sim.transport()) as client,
        Watcher(client, policy=policy) as watcher,
    ):
        with anyio.fail_after(5):
            (final,) = await watcher.wait_all([EvsJob("never")])
    assert isinstance(final, GaveUp)
    assert final.reason is GiveUpReason.NOT_FOUND  # Common.0011 is not-found, not `error`
    assert isinstance(final.error, JobNotFound)
    assert len(sim.requests) > 2


@pytest.mark.parametrize(
    "body",
    [
        # An empty nested error is no error, whatever flat keys stand beside it.
        {"error": {}, "code": "Ecs.0114", "status": "RUNNING", "job_id": "j"},
        {"error": {"code": None, "message": ""}, "code": "X", "status": "RUNNING", "job_id": "j"},
        # A job body with a stray flat code is a job.
        {"code": "Ecs.0114", "status": "RUNNING", "job_id": "j"},
    ],
)
async def test_a_job_body_with_an_empty_error_or_a_stray_code_is_a_job(
    body: dict[str, Any],
) -> None:
    async with Client("http://x.test", P, transport=answering(200, body)) as client:
        snapshot = await client.fetch(EvsJob("j"))
    assert snapshot.raw_status == "RUNNING"


async def test_an_unknown_api_sent_with_http_200_names_the_path() -> None:
    body = {"error_code": "APIGW.0101", "error_msg": "The API does not exist"}
    async with Client("http://x.test/evs", P, transport=answering(200, body)) as client:
        with pytest.raises(UnknownAPIError) as info:
            await client.fetch(EvsJob("j"))
    assert "GET /evs/v1/proj/jobs/j" in str(info.value)


@pytest.mark.parametrize("status", [200, 400, 401])
async def test_an_expired_token_is_said_whatever_the_status(status: int) -> None:
    body = {
        "error_code": "APIGW.0301",
        "error_msg": "Incorrect IAM authentication information: token expires, expires_at: x",
    }
    async with Client("http://x.test", P, transport=answering(status, body)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.fetch(EvsJob("j"))
    assert info.value.token_expired
    assert not AuthenticationError("verify aksk signature fail", status_code=401).token_expired


async def test_a_megabyte_error_message_is_cut() -> None:
    body = {"error_code": "EVS.0001", "error_msg": "x" * 1_000_000}
    async with Client("http://x.test", P, transport=answering(400, body)) as client:
        with pytest.raises(APIStatusError) as info:
            await client.fetch(EvsJob("j"))
    assert 100 < len(str(info.value)) < 1000
