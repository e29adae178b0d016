"""Credentials that expire and refresh, and no request storms on bad credentials (issue 11).

The simulator answers as Huawei's FAQ "How Do I Handle the Error APIG.0301?" says: a
refused signature or token is HTTP 401 ``APIGW.0301`` "Incorrect IAM authentication
information: ...", an expired token "... token expires, expires_at: ...".  Five bad
AK/SK signatures in a row lock the AK for five minutes (same page), so a client that
was refused once must not send again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from jobwatch import (
    AKSKAuth,
    AuthenticationError,
    BadRequestError,
    Client,
    Credentials,
    CredentialsUnavailable,
    EvsJob,
    GaveUp,
    GiveUpReason,
    JobwatchError,
    PollPolicy,
    TokenAuth,
    Watcher,
)
from jobwatch._client import fast_available
from jobwatch._credentials import ProvidedAuth
from jobwatch.sim import ManualClock, SimAuth, Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj"
AK = "HPUAKEYEXAMPLE01"
SK = "the-right-SECRET-key"
STACKS = ["in-process", "httpx", "aiohttp"]


@asynccontextmanager
async def client_on(
    stack: str, sim: Simulator[Any], backend: str, **kwargs: Any
) -> AsyncIterator[Client]:
    if stack == "in-process":
        async with Client("http://sim.test", P, transport=sim.transport(), **kwargs) as c:
            yield c
        return
    if stack == "aiohttp" and (backend != "asyncio" or not fast_available()):
        pytest.skip("aiohttp runs on asyncio only (and needs the fast extra)")
    with serve(sim) as url:
        async with Client(url, P, fast=stack == "aiohttp", **kwargs) as c:
            assert c.transport_name == stack
            yield c


def with_jobs(auth: SimAuth, count: int, clock: ManualClock | None = None) -> Simulator[Any]:
    sim = Simulator(clock=clock or ManualClock(), auth=auth)
    for n in range(count):
        sim.add_evs_job(P, f"job-{n}", [(0, "RUNNING"), (100, "SUCCESS")])
    return sim


# -- no storms ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
async def test_a_wrong_secret_sends_no_more_than_the_requests_already_in_flight(
    stack: str, anyio_backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = with_jobs(SimAuth(credentials={AK: SK}), 200)
    refs = [EvsJob(f"job-{n}") for n in range(200)]
    auth = AKSKAuth(AK, "a-wrong-SECRET-key")
    with caplog.at_level(logging.INFO, logger="jobwatch"):
        async with client_on(stack, sim, anyio_backend_name, auth=auth, max_in_flight=4) as client:
            async with Watcher(client, policy=PollPolicy(wait_initial=0.01)) as watcher:
                with anyio.fail_after(10):
                    finals = await watcher.wait_all(refs)
            stats = client.statistics()
    assert all(isinstance(f, GaveUp) and f.reason is GiveUpReason.AUTH for f in finals)
    assert len(sim.requests) <= 4  # only what was already in flight at the first 401
    assert stats.requests == len(sim.requests)
    assert all(isinstance(f, GaveUp) and isinstance(f.error, AuthenticationError) for f in finals)
    not_sent = [f.message for f in finals if isinstance(f, GaveUp) and "not sent" in f.message]
    assert len(not_sent) >= 200 - 4
    assert all("AKSKAuth(ak='HPUA" in message for message in not_sent)  # which credentials
    assert "wrong-SECRET" not in caplog.text + str(
        [f.message for f in finals if isinstance(f, GaveUp)]
    )


async def test_after_a_refusal_every_call_fails_at_once_without_a_request() -> None:
    sim = with_jobs(SimAuth(tokens={"good-token"}), 3)
    async with Client(
        "http://sim.test", P, transport=sim.transport(), auth=TokenAuth("bad-token-SECRET")
    ) as client:
        with pytest.raises(AuthenticationError) as first:
            await client.fetch(EvsJob("job-0"))
        with pytest.raises(AuthenticationError) as again:
            await client.fetch(EvsJob("job-1"))
        results = await client.fetch_many([EvsJob("job-1"), EvsJob("job-2")])
    assert first.value.error_code == "APIGW.0301"
    assert "decrypt token fail" in first.value.message
    assert again.value.error_code == "APIGW.0301"
    assert "not sent" in again.value.message
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(sim.requests) == 1


# -- providers ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
async def test_an_expired_token_is_refreshed_once_and_the_watch_goes_on(
    stack: str, anyio_backend_name: str
) -> None:
    clock = ManualClock()
    # The first token expires at sim time 5; the second is good for the whole run.
    sim = with_jobs(SimAuth(token_expiry={"token-1": 5.0}, tokens={"token-2"}), 20, clock)
    issued: list[str] = []

    async def provider() -> str:
        issued.append(f"token-{len(issued) + 1}")
        return issued[-1]

    refs = [EvsJob(f"job-{n}") for n in range(20)]
    async with client_on(stack, sim, anyio_backend_name, auth=provider) as client:
        first = await client.fetch_many(refs)
        clock.advance(10)  # token-1 expires
        second = await client.fetch_many(refs)
        clock.advance(100)
        third = await client.fetch_many(refs)
    assert all(not isinstance(r, Exception) for r in first + second + third)
    assert issued == ["token-1", "token-2"]  # asked once for all twenty refused requests
    expired = [r for r in sim.requests if r.status_code == 401]
    assert 1 <= len(expired) <= client.max_in_flight


async def test_credentials_still_refused_after_the_refresh_end_with_auth() -> None:
    sim = with_jobs(SimAuth(tokens={"good"}), 5)
    calls = 0

    def provider() -> str:  # a sync provider runs in a worker thread
        nonlocal calls
        calls += 1
        return f"bad-{calls}"

    async with (
        Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client,
        Watcher(client, policy=PollPolicy(wait_initial=0.01)) as watcher,
    ):
        with anyio.fail_after(5):
            finals = await watcher.wait_all([EvsJob(f"job-{n}") for n in range(5)])
    assert all(isinstance(f, GaveUp) and f.reason is GiveUpReason.AUTH for f in finals)
    assert calls == 2  # the first credentials, and one refresh
    assert len(sim.requests) <= 2 * client.max_in_flight


async def test_aksk_triples_from_a_provider_are_signed_and_refreshed_ahead_of_expiry() -> None:
    sim = with_jobs(SimAuth(credentials={AK: SK, "HPUAKEYEXAMPLE02": "second-SECRET"}), 1)
    handed: list[Credentials] = []
    soon = datetime.now(UTC) + timedelta(minutes=30)

    def provider() -> Credentials:
        if not handed:
            creds = Credentials(ak=AK, sk=SK, security_token="sts-SECRET", expires_at=soon)
        else:
            creds = Credentials(ak="HPUAKEYEXAMPLE02", sk="second-SECRET")
        handed.append(creds)
        return creds

    async with Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client:
        await client.fetch(EvsJob("job-0"))
        # 30 minutes left of a 30-minute lifetime: refreshed at half of it, not now.
        await client.fetch(EvsJob("job-0"))
        assert len(handed) == 1
        assert isinstance(client._auth, ProvidedAuth)
        client._auth._refresh_at = datetime.now(UTC) - timedelta(seconds=1)  # time passes
        await client.fetch(EvsJob("job-0"))
    assert len(handed) == 2
    assert [r.headers.get("x-security-token") for r in sim.requests] == ["sts-SECRET"] * 2 + [None]
    assert "HPUAKEYEXAMPLE02" in sim.requests[-1].headers["authorization"]
    assert "SECRET" not in repr(handed[0]) + repr(client)


@pytest.mark.parametrize(
    "value",
    [42, ("ak-only",), ("ak", 3), None, Credentials],
)
async def test_a_provider_returning_nonsense_gets_a_clear_type_error(value: object) -> None:
    sim = with_jobs(SimAuth(tokens={"t"}), 1)
    provider: Any = lambda: value  # noqa: E731 - a provider breaking its contract
    async with Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client:
        with pytest.raises(CredentialsUnavailable) as info:
            await client.fetch(EvsJob("job-0"))
    assert isinstance(info.value.__cause__, TypeError)
    assert "credential provider must return" in str(info.value.__cause__)
    assert sim.requests == []


def test_credentials_are_checked_and_never_shown() -> None:
    with pytest.raises(ValueError, match="not both"):
        Credentials(token="t", ak="a", sk="s")
    with pytest.raises(ValueError, match="not both"):
        Credentials()
    with pytest.raises(ValueError, match="sk"):
        Credentials(ak="HPUA", sk="")
    shown = repr(Credentials(ak=AK, sk=SK, security_token="sts-SECRET"))
    assert "SECRET" not in shown
    assert "SECRET" not in repr(Credentials(token="tok-SECRET"))


async def test_a_secret_echoed_by_the_server_never_reaches_the_error() -> None:
    import httpx

    token = "echoed-SECRET-token"

    def echo(request: httpx.Request) -> httpx.Response:
        sent = request.headers["x-auth-token"]
        return httpx.Response(400, json={"error_code": "EVS.1", "error_msg": f"bad {sent}"})

    async with Client(
        "http://x.test", P, transport=httpx.MockTransport(echo), auth=TokenAuth(token)
    ) as client:
        with pytest.raises(BadRequestError) as info:
            await client.fetch(EvsJob("j"))
    assert token not in str(info.value) + repr(info.value)
    assert "<redacted>" in str(info.value)


async def test_a_failing_provider_is_not_asked_in_a_loop_and_the_jobs_end() -> None:
    # Review: a provider raising after a 401 was called ~275 times a second, forever.
    sim = with_jobs(SimAuth(credentials={AK: SK}), 50)
    calls = 0

    def provider() -> tuple[str, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return (AK, "a-wrong-SECRET-key")
        raise OSError("IAM is down")

    refs = [EvsJob(f"job-{n}") for n in range(50)]
    async with (
        Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client,
        Watcher(client, policy=PollPolicy(wait_initial=0.01)) as watcher,
    ):
        with anyio.fail_after(5):
            finals = await watcher.wait_all(refs)
        # fetch_many keeps one result per job, the provider's failure among them.
        results = await client.fetch_many(refs[:3])
    assert all(isinstance(f, GaveUp) and f.reason is GiveUpReason.AUTH for f in finals)
    assert calls == 2  # backed off: not asked again for PROVIDER_BACKOFF seconds
    assert all(isinstance(r, CredentialsUnavailable) for r in results)


async def test_a_failed_refresh_ahead_of_expiry_keeps_the_valid_credentials() -> None:
    sim = with_jobs(SimAuth(tokens={"t1"}), 1)
    calls = 0

    def provider() -> Credentials:
        nonlocal calls
        calls += 1
        if calls == 1:
            return Credentials(token="t1", expires_at=datetime.now(UTC) + timedelta(hours=1))
        raise OSError("IAM blip")

    async with Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client:
        await client.fetch(EvsJob("job-0"))
        assert isinstance(client._auth, ProvidedAuth)
        client._auth._refresh_at = datetime.now(UTC) - timedelta(seconds=1)  # refresh due
        snapshot = await client.fetch(EvsJob("job-0"))  # the blip: t1 still holds
    assert snapshot.raw_status == "RUNNING"
    assert calls == 2


async def test_credentials_handed_out_expired_do_not_ask_the_provider_per_request() -> None:
    sim = with_jobs(SimAuth(tokens={"t1"}), 1)
    calls = 0

    def provider() -> Credentials:
        nonlocal calls
        calls += 1
        return Credentials(token="t1", expires_at=datetime.now(UTC) - timedelta(minutes=1))

    async with Client("http://sim.test", P, transport=sim.transport(), auth=provider) as client:
        for _ in range(20):
            await client.fetch(EvsJob("job-0"))
    assert calls == 1


@pytest.mark.parametrize(
    ("status", "template"),
    [
        (400, b'{"error_code": "EVS.1", "error_msg": "bad %s"}'),
        (200, b'{"error_code": "EVS.1", "error_msg": "bad %s"}'),
        (200, b"<html>not json: %s</html>"),
        (404, b'{"error_code": "APIGW.0101", "error_msg": "no API %s"}'),
    ],
)
async def test_a_long_token_echoed_by_the_server_is_redacted_before_it_is_cut(
    status: int, template: bytes
) -> None:
    # Review: real IAM tokens are kilobytes long; the message was cut at 500
    # characters first, so the replace never matched and ~480 characters leaked.
    import httpx

    token = "MIIT" + "A" * 5000 + "SECRET"

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=template % request.headers["x-auth-token"].encode())

    async with Client(
        "http://x.test", P, transport=httpx.MockTransport(echo), auth=TokenAuth(token)
    ) as client:
        with pytest.raises(JobwatchError) as info:
            await client.fetch(EvsJob("j"))
    shown = str(info.value) + repr(info.value) + getattr(info.value, "excerpt", "")
    assert "AAAAAAAAAA" not in shown
    assert "<redacted>" in shown
