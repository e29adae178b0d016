"""Both HTTP stacks over a real socket: aiohttp (the ``fast`` extra, asyncio) and httpx.

Whatever the stack, the same requests reach the server (signed the same way)
and the same failures come back as the same ``JobwatchError``s.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import ClassVar

import anyio
import httpx
import pytest

from jobwatch import (
    AKSKAuth,
    AuthenticationError,
    Client,
    ConnectError,
    EvsJob,
    GesEngineJob,
    JobState,
    JobwatchError,
    RequestTimeout,
    ResponseTooLarge,
    ResponseValidationError,
    RetryPolicy,
    TokenAuth,
    TransportError,
)
from jobwatch._exchange import HttpxExchange, http_transports
from jobwatch.sim import Fault, MonotonicClock, SimAuth, Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj-1"
AK, SK = "AKIDEXCHANGE00001", "exchange-SECRET-key"
ONCE = RetryPolicy(attempts=1)


@pytest.fixture
def client(on_stack: Callable[..., Client]) -> Callable[..., Client]:
    """``client(url, stack, **kwargs)``: a ``Client`` on the stack under test."""
    return lambda url, _stack, **kwargs: on_stack(url, **kwargs)


def simulator(auth: SimAuth | None = None) -> Simulator[MonotonicClock]:
    sim = Simulator(auth=auth)
    for job in ("plain", "job-1.a_B", "0123456789abcdef"):
        sim.add_evs_job(P, job, [(0, "RUNNING")])
    for n in range(5):
        sim.add_engine_job(P, "graph_x", f"e{n}", [(0, "running")])
    return sim


async def test_ak_sk_signatures_are_accepted_for_paths_and_queries(
    client: Callable[..., Client], stack: str
) -> None:
    sim = simulator(SimAuth(credentials={AK: SK}))
    with serve(sim) as url:
        async with client(url, stack, auth=AKSKAuth(AK, SK, security_token="sts")) as c:
            for job in ("plain", "job-1.a_B", "0123456789abcdef"):
                assert (await c.fetch(EvsJob(job))).state is JobState.RUNNING
            pages = [s.ref async for s in c.list_engine_jobs("graph_x", page_size=2)]
    assert pages == [GesEngineJob("graph_x", f"e{n}") for n in range(5)]
    queries = [r.query for r in sim.requests if "graph" in r.path]
    assert queries == [f"limit=2&offset={n}" for n in (0, 2, 4)]
    assert all(r.status_code == 200 for r in sim.requests)
    assert all(r.headers["x-security-token"] == "sts" for r in sim.requests)


async def test_tokens_are_sent_and_a_wrong_one_is_refused(
    client: Callable[..., Client], stack: str
) -> None:
    sim = simulator(SimAuth(tokens={"good-token"}))
    with serve(sim) as url:
        async with client(url, stack, auth=TokenAuth("good-token")) as good:
            assert (await good.fetch(EvsJob("plain"))).state is JobState.RUNNING
        async with client(url, stack, auth=TokenAuth("bad-token"), retry=ONCE) as bad:
            with pytest.raises(AuthenticationError):
                await bad.fetch(EvsJob("plain"))


async def test_a_reset_connection_is_a_connect_error(
    client: Callable[..., Client], stack: str
) -> None:
    sim = simulator()
    sim.add_fault(Fault("reset"))
    with serve(sim) as url:
        async with client(url, stack, retry=ONCE) as c:
            with pytest.raises(ConnectError, match=r"connection to 127\.0\.0\.1:\d+ was reset"):
                await c.fetch(EvsJob("plain"))


async def test_a_slow_answer_is_a_request_timeout(
    client: Callable[..., Client], stack: str
) -> None:
    sim = simulator()
    sim.add_fault(Fault("latency", latency=2.0))
    with serve(sim) as url:
        async with client(url, stack, retry=ONCE, timeout=0.2) as c:
            with pytest.raises(RequestTimeout, match=r"within 0\.2s"):
                await c.fetch(EvsJob("plain"))


async def test_throttling_is_retried_after_the_servers_delay(
    client: Callable[..., Client], stack: str
) -> None:
    sim = simulator()
    sim.add_fault(Fault("throttle_429", count=1, retry_after=0))
    with serve(sim) as url:
        async with client(url, stack) as c:
            assert (await c.fetch(EvsJob("plain"))).state is JobState.RUNNING
            assert (c.statistics().requests, c.statistics().retries) == (2, 1)
    assert [r.status_code for r in sim.requests] == [429, 200]


async def test_a_declared_body_over_the_cap_is_refused(
    client: Callable[..., Client], stack: str
) -> None:
    with serve(simulator()) as url:
        async with client(url, stack, retry=ONCE, max_body_bytes=40) as c:
            with pytest.raises(ResponseTooLarge, match="40 bytes"):
                await c.fetch(EvsJob("plain"))


async def test_fast_refuses_an_authentication_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="DigestAuth"):
        Client("http://sim.test", P, auth=httpx.DigestAuth("u", "p"), fast=True)


# -- a hand-made server, for what the simulator does not send --------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers by path: a chunked body, a gzip body, a body its Content-Encoding does not
    decode (``broken-<encoding>``), a redirect; records request lines."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []
    body = json.dumps({"status": "SUCCESS", "job_id": "j", "entities": {"x": "y" * 200}})

    def do_GET(self) -> None:
        self.seen.append(self.requestline)
        if "chunked" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            data = self.body.encode()
            for start in range(0, len(data), 50):
                part = data[start : start + 50]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif "broken-" in self.path:
            data = self.body.encode()  # not encoded as the header says
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", self.path.rsplit("broken-", 1)[1])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif "gzip" in self.path:
            data = gzip.compress(self.body.encode())
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_response(302)
            self.send_header("Location", "/v1/proj-1/jobs/chunked")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def raw_server() -> Iterator[str]:
    _Handler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_chunked_and_compressed_bodies_are_read_and_capped(
    client: Callable[..., Client], stack: str, raw_server: str
) -> None:
    async with client(raw_server, stack) as c:
        for job in ("chunked", "gzip"):
            snapshot = await c.fetch(EvsJob(job))
            assert snapshot.state is JobState.SUCCEEDED
            assert snapshot.entities == {"x": "y" * 200}
    async with client(raw_server, stack, retry=ONCE, max_body_bytes=100) as c:
        for job in ("chunked", "gzip"):
            with pytest.raises(ResponseTooLarge):
                await c.fetch(EvsJob(job))


async def test_a_body_its_content_encoding_does_not_decode_is_a_validation_error(
    client: Callable[..., Client], stack: str, raw_server: str
) -> None:
    async with client(raw_server, stack) as c:
        for encoding in ("gzip", "deflate"):
            with pytest.raises(ResponseValidationError, match="cannot be decoded") as caught:
                await c.fetch(EvsJob(f"broken-{encoding}"))
            assert type(caught.value) is ResponseValidationError
            assert f"Content-Encoding: {encoding}" in str(caught.value)
            assert caught.value.status_code == 200
    # Not worth a retry: one request each.
    assert [line.split()[1].rsplit("/", 1)[1] for line in _Handler.seen] == [
        "broken-gzip",
        "broken-deflate",
    ]


async def test_redirects_are_not_followed(
    client: Callable[..., Client], stack: str, raw_server: str
) -> None:
    async with client(raw_server, stack, retry=ONCE) as c:
        with pytest.raises(Exception, match="302") as caught:
            await c.fetch(EvsJob("elsewhere"))
    assert type(caught.value).__module__.startswith("jobwatch")
    assert _Handler.seen == ["GET /v1/proj-1/jobs/elsewhere HTTP/1.1"]


async def test_the_proxy_named_in_the_environment_is_used(
    client: Callable[..., Client], stack: str, raw_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", raw_server)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with client("http://jobs.example.test", stack) as c:
        assert (await c.fetch(EvsJob("chunked"))).state is JobState.SUCCEEDED
    assert _Handler.seen == ["GET http://jobs.example.test/v1/proj-1/jobs/chunked HTTP/1.1"]


class _StampAuth(httpx.Auth):
    """A user's own authentication: jobwatch runs its flow through httpx.AsyncClient."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:  # type: ignore[override]
        request.headers["X-Stamp"] = "stamped"
        yield request


async def test_a_users_own_auth_goes_through_httpx_whatever_the_stack(anyio_backend: str) -> None:
    sim = simulator()
    async with Client("http://sim.test", P, transport=sim.transport(), auth=_StampAuth()) as c:
        assert (await c.fetch(EvsJob("plain"))).state is JobState.RUNNING
        assert c.transport_name == "custom"
    with serve(sim) as url:
        async with Client(url, P, auth=_StampAuth()) as c:
            assert (await c.fetch(EvsJob("plain"))).state is JobState.RUNNING
            assert c.transport_name == "httpx"  # not aiohttp, even on asyncio
    assert [r.headers.get("x-stamp") for r in sim.requests] == ["stamped", "stamped"]


class _Gate(httpx.AsyncBaseTransport):
    """Holds every request until released; counts how many it holds at most."""

    def __init__(self, release: anyio.Event) -> None:
        self.release = release
        self.now = self.most = self.total = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.total += 1
        self.most = max(self.most, self.now)
        try:
            await self.release.wait()
        finally:
            self.now -= 1
        return httpx.Response(200, json={"status": "RUNNING"})


async def test_requests_go_to_the_least_busy_transport() -> None:
    release = anyio.Event()
    gates = [_Gate(release) for _ in range(4)]
    exchange = HttpxExchange(
        transports=gates, auth=None, timeout=5, max_body_bytes=1000, owned=True, name="t"
    )
    replies: list[int] = []

    async def one() -> None:
        replies.append((await exchange.get("http://x.test/v1/p/jobs/j", {})).status)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        assert [g.now for g in gates] == [2, 2, 2, 2]
        release.set()
    assert replies == [200] * 8
    assert [g.most for g in gates] == [2, 2, 2, 2]
    await exchange.get("http://x.test/v1/p/jobs/j", {})
    assert [g.total for g in gates] == [3, 2, 2, 2]  # all idle: the first one


async def test_endless_redirects_followed_by_a_users_client_are_a_validation_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": str(request.url)})

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), follow_redirects=True, max_redirects=3
    )
    async with http, Client("http://x.test", P, http_client=http) as c:
        with pytest.raises(ResponseValidationError, match=r"too many redirects from x\.test"):
            await c.fetch(EvsJob("j"))


class _Raising(httpx.AsyncBaseTransport):
    """Raises ``error`` for every request."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected", "attempts"),
    [
        (httpx.DecodingError("bad gzip"), ResponseValidationError, 1),
        (httpx.TooManyRedirects("loop"), ResponseValidationError, 1),
        (httpx.InvalidURL("bad url"), TransportError, 2),
        (httpx.StreamConsumed(), TransportError, 2),
        (httpx.LocalProtocolError("bad header"), ConnectError, 2),
        (httpx.UnsupportedProtocol("gopher"), ConnectError, 2),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
async def test_no_httpx_exception_escapes(
    error: Exception, expected: type[JobwatchError], attempts: int
) -> None:
    transport = _Raising(error)
    retry = RetryPolicy(attempts=2, wait_initial=0.0)
    async with Client("http://x.test", P, transport=transport, retry=retry) as c:
        with pytest.raises(expected, match=r"x\.test") as caught:
            await c.fetch(EvsJob("j"))
    assert type(caught.value) is expected
    assert transport.calls == attempts  # only transport failures are retried


def test_the_client_spreads_its_own_httpx_connections() -> None:
    transports = http_transports(True, in_flight=8)
    assert len(transports) == 4
    assert len(http_transports(True, in_flight=5)) == 3
