"""An endpoint that never answers is said at once and given up after a bounded time.

Issue 11: a refused connection ran 558 s in silence (20 failed polls x retries).
Now the first failure is a warning naming the endpoint and the cause, and a client
that never had an answer gives its jobs up (``error``) after ``unreachable_timeout``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import pytest

from jobwatch import (
    Client,
    EndpointUnreachable,
    EvsJob,
    GaveUp,
    GiveUpReason,
    PollPolicy,
    RetryPolicy,
    TransportError,
    Watcher,
)
from jobwatch._client import fast_available
from jobwatch.sim import Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj"
RETRY = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02)


def refused_url() -> str:
    """A local port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def stack_kwargs(stack: str, backend: str) -> dict[str, Any]:
    if stack == "aiohttp" and (backend != "asyncio" or not fast_available()):
        pytest.skip("aiohttp runs on asyncio only (and needs the fast extra)")
    return {"fast": stack == "aiohttp"}


@pytest.mark.parametrize("stack", ["httpx", "aiohttp"])
async def test_a_refused_endpoint_is_warned_at_once_and_given_up_in_bounded_time(
    stack: str, anyio_backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = refused_url()
    kwargs = stack_kwargs(stack, anyio_backend_name)
    policy = PollPolicy(wait_initial=0.05, wait_max=0.1)
    refs = [EvsJob(f"j{n}") for n in range(3)]
    with caplog.at_level(logging.WARNING, logger="jobwatch"):
        async with Client(url, P, retry=RETRY, unreachable_timeout=0.5, **kwargs) as client:
            started = anyio.current_time()
            async with Watcher(client, policy=policy) as watcher:
                with anyio.fail_after(10):
                    finals = await watcher.wait_all(refs)
            took = anyio.current_time() - started
    assert client.transport_name == stack
    assert all(isinstance(f, GaveUp) and f.reason is GiveUpReason.ERROR for f in finals)
    assert all(isinstance(f, GaveUp) and isinstance(f.error, EndpointUnreachable) for f in finals)
    assert 0.5 <= took < 5
    warnings = [r.getMessage() for r in caplog.records if "cannot reach" in r.getMessage()]
    assert len(warnings) == 1  # said once, at the first failure
    assert url in warnings[0]
    assert "connection refused" in warnings[0]  # the cause, in our words
    assert "within 0.5s" in warnings[0]
    assert all(isinstance(f, GaveUp) and f.error.cause == "refused" for f in finals)  # type: ignore[union-attr]


async def test_an_endpoint_that_answered_once_is_retried_as_usual_when_it_goes_away() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    with serve(sim) as url:
        client = Client(url, P, retry=RETRY, unreachable_timeout=0.0)
        await client.fetch(EvsJob("j"))
    # The server is gone now: an ordinary transport error, not EndpointUnreachable.
    with pytest.raises(TransportError) as info:
        await client.fetch(EvsJob("j"))
    await client.aclose()
    assert not isinstance(info.value, EndpointUnreachable)


async def test_no_bound_keeps_trying() -> None:
    async with Client(refused_url(), P, retry=RETRY, unreachable_timeout=None) as client:
        for _ in range(3):
            with pytest.raises(TransportError) as info:
                await client.fetch(EvsJob("j"))
            assert not isinstance(info.value, EndpointUnreachable)


def test_the_bound_is_checked() -> None:
    with pytest.raises(ValueError, match="unreachable_timeout"):
        Client("http://x.test", P, unreachable_timeout=-1)
    with pytest.raises(ValueError, match="unreachable_timeout"):
        Client("http://x.test", P, unreachable_timeout=float("nan"))
