"""Serving a simulator on a real socket with uvicorn, from a background thread."""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobwatch.sim._faults import SimulatedReset

if TYPE_CHECKING:
    from jobwatch.sim._simulator import Simulator

__all__ = ["serve"]

_POLL = 0.01


class _DropResets(logging.Filter):
    """Keep uvicorn from logging a traceback for every ``reset`` fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


@contextmanager
def serve(
    sim: Simulator[Any],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> Iterator[str]:
    """Serve ``sim`` over HTTP on ``host:port`` (0: any free port) while the block runs.

    Yields the base URL, e.g. ``"http://127.0.0.1:54321"``, once the server listens.
    uvicorn runs in a background thread with its own asyncio loop, so the caller may
    be synchronous, asyncio or trio.  On exit the server stops (requests still in
    flight get ``shutdown_timeout`` seconds), the thread is joined and the socket
    closed.  The ``reset`` fault arrives as a connection closed after the response
    head (``httpx.RemoteProtocolError``).  Needs uvicorn (the ``sim`` extra).

    With ``ssl_certfile`` and ``ssl_keyfile`` (PEM files) it serves HTTPS and yields an
    ``https://`` URL, to test TLS handling.
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("serve() needs uvicorn: pip install 'jobwatch[sim]'") from exc

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and accepted sockets inherit it; with 0 every keep-alive answer
    # waits ~40 ms for the client's delayed ACK.
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        config = uvicorn.Config(
            sim.app,
            interface="asgi3",
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=math.ceil(shutdown_timeout),
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"jobwatch.sim.serve:{bound}",
            daemon=True,
        )

        def counter() -> int:
            return len(server.server_state.connections)

        sim._connection_counters.append(counter)
        quiet = _DropResets()
        logger = logging.getLogger("uvicorn.error")
        logger.addFilter(quiet)
        thread.start()
        try:
            deadline = time.monotonic() + startup_timeout
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError(f"the simulator's server on {host}:{bound} did not start")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the simulator's server on {host}:{bound} did not start")
                time.sleep(_POLL)
            scheme = "https" if ssl_certfile else "http"
            yield (
                f"{scheme}://[{host}]:{bound}"
                if family == socket.AF_INET6
                else f"{scheme}://{host}:{bound}"
            )
        finally:
            server.should_exit = True
            thread.join(shutdown_timeout + 5.0)
            logger.removeFilter(quiet)
            sim._connection_counters.remove(counter)
