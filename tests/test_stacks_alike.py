"""Both HTTP stacks behave alike, over a real socket: every failure, header, TLS, proxy,
redirect and decoding case gives the same error type, ``cause`` and wording on
httpx (asyncio and trio) and aiohttp (asyncio)."""

from __future__ import annotations

import errno
import http.server
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import anyio
import httpx
import pytest
import trustme

from jobwatch import (
    APIStatusError,
    CertificateError,
    Client,
    ConnectError,
    EvsJob,
    JobState,
    RequestTimeout,
    ResponseValidationError,
    RetryPolicy,
    TransportCause,
    TransportError,
)
from jobwatch._exchange_errors import HTTPX_HINTS, cause_of
from jobwatch._meaning import Meaning, meaning_of
from jobwatch.sim import Fault, MonotonicClock, Simulator, serve

pytestmark = pytest.mark.anyio

P = "proj-1"
ONCE = RetryPolicy(attempts=1)
MakeClient = Callable[..., Client]
#: What a stack's own wording looks like: class names, aiohttp's ``ssl:default``.
_STACK_WORDS = re.compile(r"\b\w*(Error|Exception)\b|ssl:|httpx|httpcore|aiohttp|Errno")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_ours(error: TransportError, kind: type[TransportError], cause: str) -> None:
    assert type(error) is kind
    assert error.cause == cause
    assert isinstance(error.cause, TransportCause)
    assert not _STACK_WORDS.search(str(error)), str(error)


class _Handler(http.server.BaseHTTPRequestHandler):
    """By path: ``cut`` (a body cut short), ``br`` (an encoding not asked for),
    ``moved`` (a 302); anything else a small job body.  Records the headers."""

    protocol_version = "HTTP/1.1"
    headers_seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.headers_seen.append(dict(self.headers.items()))
        body = b'{"status": "RUNNING", "job_id": "j"}'
        if self.path.endswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "https://elsewhere.test/v1/jobs/j?token=secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.endswith("/cut"):
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(body[:10])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.path.endswith("/br"):
            self.send_header("Content-Encoding", "br")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plain() -> Iterator[str]:
    """``host:port`` of a plain-HTTP server (``_Handler``)."""
    _Handler.headers_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def untrusted(tmp_path: Path) -> Iterator[tuple[str, Simulator[MonotonicClock]]]:
    """An HTTPS simulator whose certificate no default trust store accepts."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    with serve(sim, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile)) as url:
        yield url, sim


# -- no answer --------------------------------------------------------------------------------


async def test_a_refused_connection(on_stack: MakeClient) -> None:
    port = _free_port()
    async with on_stack(f"http://127.0.0.1:{port}", retry=ONCE) as c:
        with pytest.raises(ConnectError) as caught:
            await c.fetch(EvsJob("j"))
    assert_ours(caught.value, ConnectError, "refused")
    assert str(caught.value) == f"cannot connect to 127.0.0.1:{port}: connection refused"


async def test_a_name_that_does_not_resolve(on_stack: MakeClient) -> None:
    async with on_stack("https://evs.nowhere.invalid", retry=ONCE) as c:
        with pytest.raises(ConnectError) as caught:
            await c.fetch(EvsJob("j"))
    assert_ours(caught.value, ConnectError, "dns")
    assert str(caught.value) == (
        "cannot connect to evs.nowhere.invalid:443: the name evs.nowhere.invalid was not found"
        " (DNS)"
    )


async def test_a_slow_answer(on_stack: MakeClient) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    sim.add_fault(Fault("latency", latency=2.0))
    with serve(sim) as url:
        async with on_stack(url, retry=ONCE, timeout=0.2) as c:
            with pytest.raises(RequestTimeout) as caught:
                await c.fetch(EvsJob("j"))
    assert_ours(caught.value, RequestTimeout, "timeout")
    assert str(caught.value) == f"no answer within 0.2s from {url.removeprefix('http://')}"


async def test_a_connection_closed_after_the_head(on_stack: MakeClient) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j", [(0, "RUNNING")])
    sim.add_fault(Fault("reset"))
    with serve(sim) as url:
        async with on_stack(url, retry=ONCE) as c:
            with pytest.raises(ConnectError) as caught:
                await c.fetch(EvsJob("j"))
    assert_ours(caught.value, ConnectError, "reset")


async def test_a_connection_closed_mid_body(on_stack: MakeClient, plain: str) -> None:
    async with on_stack(f"http://{plain}", retry=ONCE) as c:
        with pytest.raises(ConnectError) as caught:
            await c.fetch(EvsJob("cut"))
    assert_ours(caught.value, ConnectError, "reset")
    assert str(caught.value) == (
        f"the connection to {plain} was reset or closed before the whole answer arrived"
    )


# -- TLS ------------------------------------------------------------------------------------------


async def test_tls_to_a_plain_http_port(on_stack: MakeClient, plain: str) -> None:
    async with on_stack(f"https://{plain}", retry=ONCE) as c:
        with pytest.raises(ConnectError) as caught:
            await c.fetch(EvsJob("j"))
    assert_ours(caught.value, ConnectError, "tls")
    assert str(caught.value).startswith(f"cannot connect to {plain}: the TLS handshake failed (")
    assert meaning_of(caught.value) is Meaning.TRANSIENT


async def test_a_certificate_that_fails_verification_is_not_retried(
    on_stack: MakeClient,
    untrusted: tuple[str, Simulator[MonotonicClock]],
) -> None:
    url, sim = untrusted
    retry = RetryPolicy(attempts=3, wait_initial=0.0)
    async with on_stack(url, retry=retry) as c:
        with pytest.raises(CertificateError) as caught:
            await c.fetch(EvsJob("j"))
        assert c.statistics().requests == 1
    assert_ours(caught.value, CertificateError, "certificate")
    where = url.removeprefix("https://")
    assert str(caught.value) == (
        f"cannot connect to {where}: its TLS certificate failed verification"
        " (unable to get local issuer certificate)"
    )
    assert meaning_of(caught.value) is Meaning.CONFIGURATION
    assert meaning_of(caught.value).ends_watch
    assert sim.requests == []


# -- answers that cannot be read ----------------------------------------------------------------


async def test_accept_encoding_is_the_same_and_gzip_deflate_only(
    on_stack: MakeClient, plain: str
) -> None:
    async with on_stack(f"http://{plain}", retry=ONCE) as c:
        assert (await c.fetch(EvsJob("j"))).state is JobState.RUNNING
        with pytest.raises(ResponseValidationError) as caught:
            await c.fetch(EvsJob("br"))
    assert [seen["Accept-Encoding"] for seen in _Handler.headers_seen] == ["gzip, deflate"] * 2
    assert type(caught.value) is ResponseValidationError
    assert str(caught.value) == (
        "the body from 127.0.0.1 cannot be decoded (Content-Encoding: br): "
        "jobwatch decodes only gzip and deflate, not br"
    )


async def test_a_redirect_is_not_followed(on_stack: MakeClient, plain: str) -> None:
    async with on_stack(f"http://{plain}", retry=RetryPolicy(attempts=3)) as c:
        with pytest.raises(APIStatusError) as caught:
            await c.fetch(EvsJob("moved"))
    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == 302
    assert str(caught.value) == (
        "HTTP 302: redirected to https://elsewhere.test/v1/jobs/j, and redirects are not "
        "followed: check the endpoint"
    )
    assert len(_Handler.headers_seen) == 1


# -- proxies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [False, True, None])
def test_a_socks_proxy_is_refused_at_construction(
    fast: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:1080")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"socks5://127\.0\.0\.1:1080 .* not an HTTP proxy") as e:
        Client("https://evs.example.test", P, fast=fast)
    assert "secret" not in str(e.value)


async def test_a_proxy_that_cannot_be_reached(
    on_stack: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with on_stack("http://evs.example.test", retry=ONCE) as c:
        with pytest.raises(ConnectError) as caught:
            await c.fetch(EvsJob("j"))
    assert_ours(caught.value, ConnectError, "proxy")
    assert str(caught.value) == (
        f"cannot reach evs.example.test:80 through the proxy 127.0.0.1:{port}: connection refused"
    )


# -- choosing the stack, and a client of the user's ------------------------------------------


def test_fast_on_a_client_made_outside_the_loop_uses_aiohttp(plain: str) -> None:
    made = Client(f"http://{plain}", P, fast=True)  # as the README's "against the cloud"
    assert made.transport_name == "aiohttp"  # asking does not pick a stack outside the loop

    async def use() -> str:
        async with made:
            assert (await made.fetch(EvsJob("j"))).state is JobState.RUNNING
            return made.transport_name

    assert anyio.run(use, backend="asyncio") == "aiohttp"


async def test_a_users_client_keeps_its_own_auth(anyio_backend: str, plain: str) -> None:
    async with (
        httpx.AsyncClient(auth=httpx.BasicAuth("user", "pass")) as http,
        Client(f"http://{plain}", P, http_client=http) as c,
    ):
        assert (await c.fetch(EvsJob("j"))).state is JobState.RUNNING
    assert _Handler.headers_seen[0]["Authorization"] == "Basic dXNlcjpwYXNz"


def _raised(error: BaseException, under: BaseException) -> BaseException:
    """``error`` raised from ``under``, as a stack wraps an OS error."""
    try:
        raise error from under
    except BaseException as caught:  # noqa: BLE001 - building a chain
        return caught


@pytest.mark.parametrize(
    ("error", "proxied", "cause"),
    [
        # trio: the refusals of every address, in an exception group
        (
            _raised(
                OSError("all attempts failed"), ExceptionGroup("x", [ConnectionRefusedError()])
            ),
            False,
            "refused",
        ),
        (_raised(httpx.ReadError(""), OSError(errno.ECONNRESET, "reset")), False, "reset"),
        # a refused certificate reported as a timeout is a certificate failure
        (_raised(TimeoutError(), ssl.SSLCertVerificationError("bad")), False, "certificate"),
        (_raised(httpx.ConnectError(""), socket.gaierror(-2, "unknown")), True, "proxy"),
        (httpx.ProxyError("502 Bad Gateway"), False, "proxy"),
        (httpx.ConnectError("something else"), False, "other"),
    ],
)
def test_the_cause_is_read_from_the_chain(error: BaseException, proxied: bool, cause: str) -> None:
    assert cause_of(error, HTTPX_HINTS, proxied=proxied) == cause
